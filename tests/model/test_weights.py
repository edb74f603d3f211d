"""Reading official checkpoints and our .npz: prefixes, conversion, and clear errors that load nothing."""

import sys

import numpy as np
import pytest
import torch
from torch_convnext import TorchConvNeXt, randomize_

import tinyconvnext
from tinyconvnext import convert
from tinyconvnext.checkpoint import save_checkpoint
from tinyconvnext.weights import (
    CheckpointError,
    load_official,
    load_state,
    load_weights,
    read_npz,
    read_official_checkpoint,
    read_weights_file,
    save_npz,
)

ATTO = dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320))


@pytest.fixture(scope="module")
def atto_state():
    return randomize_(TorchConvNeXt(num_classes=10, **ATTO), seed=3).state_dict()


def _our_atto(num_classes=10):
    return tinyconvnext.create_model("convnext_atto", num_classes=num_classes)


def _assert_loaded(model, state):
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[name].numpy(), err_msg=name)


@pytest.mark.parametrize("wrap", ["official", "bare", "module-prefix", "compiled-prefix"])
def test_checkpoint_layouts(tmp_path, atto_state, wrap):
    state = {
        "official": {"model": atto_state},
        "bare": atto_state,
        "module-prefix": {"model": {f"module.{k}": v for k, v in atto_state.items()}},
        "compiled-prefix": {f"_orig_mod.{k}": v for k, v in atto_state.items()},
    }[wrap]
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)
    model = _our_atto()
    load_official(model, path)
    _assert_loaded(model, atto_state)


def test_npz_round_trip_and_create_model_weights(tmp_path, atto_state):
    pth = tmp_path / "atto.pth"
    torch.save({"model": atto_state}, pth)
    model = tinyconvnext.create_model("convnext_atto", num_classes=10, weights=pth)
    npz = save_npz(model, tmp_path / "atto.npz")
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away
    again = tinyconvnext.create_model("convnext_atto", num_classes=10, weights=npz)
    _assert_loaded(again, atto_state)
    assert set(read_npz(npz)) == set(atto_state)


def test_convert_command(tmp_path, atto_state, capsys):
    pth, npz = tmp_path / "atto.pth", tmp_path / "atto.npz"
    torch.save({"model": atto_state}, pth)
    assert convert.main([str(pth), str(npz), "--model", "convnext_atto"]) == 0
    assert "wrote" in capsys.readouterr().out
    model = _our_atto()
    load_weights(model, npz)
    _assert_loaded(model, atto_state)


def _unchanged_after_failure(model, call):
    before = model.state_dict()
    with pytest.raises((CheckpointError, FileNotFoundError)) as info:
        call()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])  # nothing was loaded
    return str(info.value)


def test_wrong_num_classes_says_how_many(tmp_path, atto_state):
    path = tmp_path / "ckpt.pth"
    torch.save({"model": atto_state}, path)
    model = _our_atto(num_classes=1000)
    message = _unchanged_after_failure(model, lambda: load_official(model, path))
    assert "head.weight: checkpoint (10, 320), model (1000, 320)" in message
    assert "num_classes=10" in message


def test_checkpoint_of_another_variant_names_the_variant_that_fits(tmp_path):
    femto = randomize_(
        TorchConvNeXt(num_classes=10, depths=(2, 2, 6, 2), dims=(48, 96, 192, 384))
    ).state_dict()
    path = tmp_path / "other.pth"
    torch.save({"model": femto}, path)
    model = _our_atto()
    message = _unchanged_after_failure(model, lambda: load_official(model, path))
    assert "(the file holds convnext_femto weights with 10 classes)" in message
    first = "downsample_layers.0.0.weight: checkpoint (48, 3, 4, 4), model (40, 3, 4, 4)"
    assert f"{len(femto) - 1} mis-shaped keys ({first}" in message  # all but head.bias: 10 classes each
    assert message.count("checkpoint (") == 5  # the first few, not every key


def test_counts_and_first_few_keys_of_each_kind(tmp_path):
    other = randomize_(
        TorchConvNeXt(num_classes=10, depths=(2, 2, 8, 2), dims=(40, 80, 160, 320))
    ).state_dict()
    path = tmp_path / "deeper.pth"
    torch.save({"model": other}, path)
    model = _our_atto()
    message = _unchanged_after_failure(model, lambda: load_official(model, path))
    assert "18 unexpected keys (stages.2.6.gamma, stages.2.6.dwconv.weight" in message
    assert ", and 13 more)" in message and "fits" not in message  # no variant has these depths


def test_missing_keys_are_listed(tmp_path, atto_state):
    partial = {k: v for k, v in atto_state.items() if not k.startswith("head.")}
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    model = _our_atto()
    message = _unchanged_after_failure(model, lambda: load_official(model, path))
    assert "2 missing keys (head.weight, head.bias)" in message


def test_a_22k_head_is_named():
    state = _our_atto().state_dict()
    state["head.weight"], state["head.bias"] = np.zeros((21841, 320), np.float32), np.zeros(21841, np.float32)
    model = _our_atto(num_classes=1000)
    message = _unchanged_after_failure(model, lambda: load_state(model, state, "file x"))
    assert "head of 21841 classes (an ImageNet-22k head): create the model with num_classes=21841" in message


def test_training_checkpoint_gives_its_model_or_ema_weights(tmp_path):
    model, ema = _our_atto(), _our_atto()
    config = {"model": "convnext_atto", "dataset": "imagenette", "image_size": 160, "eval_crop_pct": 0.875}
    path = save_checkpoint(
        tmp_path / "checkpoint.npz",
        {"config": config, "model": model.state_dict(), "ema": ema.state_dict(), "epoch": 3},
    )
    loaded = read_weights_file(path)
    assert loaded.description == f"the model weights of training checkpoint {path} (epoch 3)"
    assert (loaded.preprocessing.resize, loaded.preprocessing.crop, loaded.variant) == (
        182,
        160,
        "convnext_atto",
    )
    averaged = read_weights_file(path, ema=True)
    assert averaged.description.startswith("the EMA weights")
    np.testing.assert_array_equal(averaged.state_dict["head.weight"], ema.state_dict()["head.weight"])
    target = _our_atto()
    load_weights(target, path)  # a run's checkpoint loads as its model's weights
    np.testing.assert_array_equal(target.state_dict()["head.weight"], model.state_dict()["head.weight"])


DAMAGED_CHECKPOINTS = {
    "__meta__ not JSON": ({"__meta__": np.frombuffer(b"{not json", np.uint8)}, "truncated or corrupt"),
    "__meta__ not an object": ({"__meta__": np.frombuffer(b"[1, 2]", np.uint8)}, "is not a JSON object"),
    "an array __meta__ names is missing": (
        {"__meta__": np.frombuffer(b'{"model": {"w": {"__array__": "model/w"}}}', np.uint8)},
        "truncated or corrupt (KeyError",
    ),
    "no model": ({"__meta__": np.frombuffer(b'{"epoch": 1}', np.uint8)}, "it has no 'model' entry"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_CHECKPOINTS))
def test_a_damaged_training_checkpoint_is_named_in_one_error(tmp_path, case):
    arrays, phrase = DAMAGED_CHECKPOINTS[case]
    path = tmp_path / "checkpoint.npz"
    np.savez(path, **arrays)
    model = _our_atto()
    message = _unchanged_after_failure(model, lambda: load_weights(model, path))
    assert str(path) in message and phrase in message
    with pytest.raises(CheckpointError):
        read_weights_file(path, ema=True)


def test_official_half_precision_weights_become_float32_and_integer_buffers_stay(tmp_path):
    path = tmp_path / "half.pth"
    weights = {
        "module.head.weight": torch.randn(10, 4, dtype=torch.bfloat16),
        "stem.1.weight": torch.randn(4, dtype=torch.float16),
        "bn.num_batches_tracked": torch.tensor(7),
    }
    torch.save({"model": weights}, path)
    read = read_official_checkpoint(path)
    assert {k: v.dtype for k, v in read.items()} == {
        "head.weight": np.float32,
        "stem.1.weight": np.float32,
        "bn.num_batches_tracked": np.int64,
    }
    np.testing.assert_array_equal(read["head.weight"], weights["module.head.weight"].float().numpy())
    assert read["bn.num_batches_tracked"] == 7


@pytest.mark.parametrize("suffix", [".pth", ".npz"])
def test_truncated_and_corrupt_files(tmp_path, atto_state, suffix):
    good = tmp_path / f"good{suffix}"
    if suffix == ".pth":
        torch.save({"model": atto_state}, good)
    else:
        save_npz({k: v.numpy() for k, v in atto_state.items()}, good)
    data = good.read_bytes()
    truncated, garbage = tmp_path / f"truncated{suffix}", tmp_path / f"garbage{suffix}"
    truncated.write_bytes(data[: len(data) // 2])
    garbage.write_bytes(b"this is not a checkpoint" * 100)
    model = _our_atto()
    for path in (truncated, garbage):
        message = _unchanged_after_failure(model, lambda path=path: load_weights(model, path))
        assert str(path) in message and ("truncated" in message or "corrupt" in message)


def test_missing_file_and_unknown_format(tmp_path):
    model = _our_atto()
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_weights(model, tmp_path / "nothere.pth")
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(CheckpointError, match=r"unknown weights format '.txt'"):
        load_weights(model, tmp_path / "w.txt")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"head.weight": Evil()}}, path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_official(_our_atto(), path)


def test_without_torch_the_error_says_how_to_install_or_convert(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" raise ImportError
    with pytest.raises(
        ImportError, match=r"pip install torch==2.13.0.*tinyconvnext.convert IN.pth OUT.safetensors"
    ):
        load_official(_our_atto(), path)
