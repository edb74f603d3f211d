"""safetensors weights: timm's names mapped to ours (against real timm names), our files with their metadata,
round trips through the official format, the variant a file fits, and damaged or foreign files refused."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file
from safetensors.torch import load_file as torch_load_file
from torch_convnext import TorchConvNeXt, randomize_

import autograd as ag
import tinyconvnext
from tinyconvnext import convert
from tinyconvnext.variant_table import VARIANTS
from tinyconvnext.weight_names import architecture_of, fitting_variants, to_official_names, variant_shapes
from tinyconvnext.weights import (
    load_weights,
    read_weights_file,
    save_safetensors,
    weights_metadata,
)

TIMM_NAMES = json.loads(Path(__file__).with_name("timm_convnext_names.json").read_text())["models"]
ATTO = VARIANTS["convnext_atto"]


def _zeros(shapes):
    """A state dict of the given shapes that costs no memory (read-only zero views)."""
    return {name: np.broadcast_to(np.float32(0), tuple(shape)) for name, shape in shapes.items()}


@pytest.mark.parametrize("name", sorted(TIMM_NAMES))
def test_timm_names_map_to_exactly_our_names_and_shapes(name):
    ours = to_official_names(_zeros(TIMM_NAMES[name]))
    assert {k: tuple(v.shape) for k, v in ours.items()} == variant_shapes(VARIANTS[name], 1000)
    assert architecture_of(_zeros(TIMM_NAMES[name])) == "ConvNeXt (timm names)"
    assert fitting_variants(ours, VARIANTS) == [(name, 1000)]


@pytest.mark.parametrize(
    "name", ["convnext_atto", "convnext_atto_ols", "convnext_nano_ols", "convnext_cifar_3stage"]
)
def test_variant_shapes_are_the_models_own(name):
    model = tinyconvnext.create_model(name, num_classes=7)
    assert {k: tuple(p.shape) for k, p in model.named_parameters()} == variant_shapes(VARIANTS[name], 7)


@settings(max_examples=10, deadline=None)
@given(name=st.sampled_from(sorted(VARIANTS)), num_classes=st.sampled_from([10, 1000, 21841]))
def test_every_variant_is_told_apart_from_the_others(name, num_classes):
    shapes = _zeros(variant_shapes(VARIANTS[name], num_classes))  # xlarge too: no memory, no model built
    assert fitting_variants(shapes, VARIANTS) == [(name, num_classes)]


def _random_atto(num_classes=10, seed=0):
    ag.manual_seed(seed)
    model = tinyconvnext.create_model("convnext_atto", num_classes=num_classes)
    rng = np.random.default_rng(seed)
    for parameter in model.parameters():  # every weight away from its init, so that a wrong key shows
        parameter.data = parameter.data + rng.normal(0, 0.05, parameter.shape).astype(np.float32)
    return model


def _logits(model, images):
    with ag.no_grad():
        return model.eval()(images).numpy()


IMAGES = np.random.default_rng(9).standard_normal((2, 3, 64, 64)).astype(np.float32)


def test_official_pth_to_safetensors_to_our_model_and_back_to_pytorch(tmp_path, capsys):
    reference = randomize_(TorchConvNeXt(num_classes=10, **ATTO), seed=4).eval()
    pth, out = tmp_path / "atto.pth", tmp_path / "atto.safetensors"
    torch.save({"model": reference.state_dict()}, pth)
    assert convert.main([str(pth), str(out)]) == 0
    assert "convnext_atto, 10 classes, short side 256, centre crop 224" in capsys.readouterr().out
    ours = tinyconvnext.create_model("convnext_atto", num_classes=10, weights=out)
    with torch.no_grad():
        expected = reference(torch.from_numpy(IMAGES)).numpy()
    np.testing.assert_allclose(_logits(ours, IMAGES), expected, atol=1e-4, rtol=1e-4)
    # The reverse: the official model (our PyTorch twin) reads our file with safetensors' own loader.
    twin = TorchConvNeXt(num_classes=10, **ATTO).eval()
    twin.load_state_dict(torch_load_file(str(out)))
    with torch.no_grad():
        np.testing.assert_array_equal(twin(torch.from_numpy(IMAGES)).numpy(), expected)


def test_saved_file_records_variant_classes_and_preprocessing_and_loads_without_torch(tmp_path, monkeypatch):
    model = _random_atto()
    path = save_safetensors(model, tmp_path / "deep" / "model.safetensors")
    assert not list(path.parent.glob(".*.tmp"))  # written atomically: the temporary file was renamed
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" fails: loading must not need it
    loaded = read_weights_file(path)
    assert (loaded.variant, loaded.num_classes) == ("convnext_atto", 10)
    assert (loaded.preprocessing.resize, loaded.preprocessing.crop) == (256, 224)
    again = tinyconvnext.create_model("convnext_atto", num_classes=10, weights=path)
    np.testing.assert_array_equal(_logits(again, IMAGES), _logits(model, IMAGES))


def test_cifar_metadata_keeps_its_own_preprocessing(tmp_path):
    model = tinyconvnext.create_model("convnext_cifar_atto", num_classes=10)
    path = save_safetensors(model, tmp_path / "cifar.safetensors")
    loaded = read_weights_file(path)
    assert loaded.preprocessing.crop == loaded.preprocessing.resize == 32
    assert loaded.preprocessing.mean[0] == pytest.approx(0.4914)


def _good_file(tmp_path):
    return save_safetensors(_random_atto(), tmp_path / "good.safetensors")


def _header_claims_too_much(tmp_path):
    data = bytearray(_good_file(tmp_path).read_bytes())
    data[:8] = (10**9).to_bytes(8, "little")
    return data


def _foreign(keys, dtype=np.float32):
    """The bytes of a valid safetensors file holding zeros of these names and shapes."""

    def make(tmp_path):
        path = tmp_path / "foreign.safetensors"
        save_file({k: np.zeros(shape, dtype) for k, shape in keys.items()}, str(path))
        return path.read_bytes()

    return make


def _edited(edit):
    """The bytes of a good file whose JSON header ``edit(header)`` changed (its length prefix rewritten)."""

    def make(tmp_path):
        data = _good_file(tmp_path).read_bytes()
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size])
        edit(header)
        text = json.dumps(header).encode("utf-8")
        return len(text).to_bytes(8, "little") + text + data[8 + size :]

    return make


def _first_tensor(header):
    return header[next(name for name in header if name != "__metadata__")]


RESNET = {"conv1.weight": (64, 3, 7, 7), "layer1.0.conv1.weight": (64, 64, 3, 3), "fc.weight": (10, 512)}
VIT = {
    "cls_token": (1, 1, 192),
    "patch_embed.proj.weight": (192, 3, 16, 16),
    "blocks.0.attn.qkv.weight": (576, 192),
}
BAD_FILES = {
    "truncated": (lambda tmp: _good_file(tmp).read_bytes()[:-1000], "truncated"),
    "header claims more bytes": (_header_claims_too_much, "header claims 1000000000 bytes"),
    "garbage": (lambda tmp: b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!", "corrupt header"),
    "too short": (lambda tmp: b"\x01\x02", "too short"),
    "integer tensor": (_foreign({"head.weight": (10, 320)}, np.int64), "dtype I64"),
    "a ResNet": (_foreign(RESNET), "holds ResNet weights, not a ConvNeXt's"),
    "a ViT": (_foreign(VIT), "holds Vision Transformer weights, not a ConvNeXt's"),
    "offsets as text": (
        _edited(lambda h: _first_tensor(h).update(data_offsets=["0", 64])),
        "has data_offsets ['0', 64]: expected [begin, end], two whole numbers",
    ),
    "one offset": (_edited(lambda h: _first_tensor(h).update(data_offsets=[0])), "expected [begin, end]"),
    "shape not a list": (
        _edited(lambda h: _first_tensor(h).update(shape="40,3,4,4")),
        "has shape '40,3,4,4': expected a list of whole numbers",
    ),
    "num_classes not a number": (
        _edited(lambda h: h["__metadata__"].update(num_classes='"ten"')),
        "unreadable metadata",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_refused_by_name_and_nothing_is_loaded(tmp_path, case):
    make, phrase = BAD_FILES[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make(tmp_path))
    model = tinyconvnext.create_model("convnext_atto", num_classes=10)
    before = model.state_dict()
    with pytest.raises(ValueError) as info:
        load_weights(model, path)
    message = str(info.value)
    assert str(path) in message and phrase in message
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())


def test_metadata_helper_takes_a_run_configuration():
    metadata = weights_metadata(
        "convnext_cifar_atto", 10, config={"model": "convnext_cifar_atto", "dataset": "cifar10"}
    )
    assert metadata["image_size"] == 32 and metadata["training_config"]["dataset"] == "cifar10"
