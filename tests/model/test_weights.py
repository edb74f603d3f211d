"""Reading official checkpoints and our .npz: prefixes, conversion, and clear errors that load nothing."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch_convnext import TorchConvNeXt, randomize_

import tinyconvnext
from tinyconvnext.weights import CheckpointError, load_official, load_weights, read_npz, save_npz

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


def test_convert_command(tmp_path, atto_state):
    pth, npz = tmp_path / "atto.pth", tmp_path / "atto.npz"
    torch.save({"model": atto_state}, pth)
    result = subprocess.run(
        [sys.executable, "-m", "tinyconvnext.convert", str(pth), str(npz), "--model", "convnext_atto"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote" in result.stdout
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


def test_checkpoint_of_another_variant_lists_every_bad_key(tmp_path):
    femto = randomize_(
        TorchConvNeXt(num_classes=10, depths=(2, 2, 8, 2), dims=(48, 96, 192, 384))
    ).state_dict()
    path = tmp_path / "other.pth"
    torch.save({"model": femto}, path)
    model = _our_atto()
    message = _unchanged_after_failure(model, lambda: load_official(model, path))
    assert "unexpected keys (" in message and "stages.2.7.gamma" in message
    assert "mis-shaped keys (" in message and "downsample_layers.0.0.weight" in message


def test_missing_keys_are_listed(tmp_path, atto_state):
    partial = {k: v for k, v in atto_state.items() if not k.startswith("head.")}
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    model = _our_atto()
    message = _unchanged_after_failure(model, lambda: load_official(model, path))
    assert "missing keys (2): head.weight, head.bias" in message


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
    with pytest.raises(ImportError, match=r"pip install torch==2.13.0.*python -m tinyconvnext.convert"):
        load_official(_our_atto(), path)
