"""Image reading (every Pillow mode to RGB), the official eval preprocessing, and the predict command: bad
images named and the rest classified, the weights' own preprocessing, and every bad value of predict and
convert refused in one line."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch_convnext import TorchConvNeXt, randomize_

import tinyconvnext
from tinyconvnext import cli, convert, predict
from tinyconvnext.checkpoint import save_checkpoint
from tinyconvnext.data.cifar import CLASSES as CIFAR10_CLASSES
from tinyconvnext.imagenet import class_names, wnid_to_index
from tinyconvnext.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageReadError,
    eval_transform,
    load_rgb,
    preprocess,
    to_rgb,
)
from tinyconvnext.weights import run_preprocessing, save_safetensors


def test_imagenet_classes_and_imagenette_wnids():
    names = class_names()
    assert len(names) == 1000 and names[0].startswith("tench")
    index = wnid_to_index()
    assert index["n01440764"] == 0 and index["n02102040"] == 217 and index["n03888257"] == 701


@pytest.mark.parametrize(
    "mode, value, expected",
    [
        ("L", 100, (100, 100, 100)),
        ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
        ("RGBA", (10, 20, 30, 0), (255, 255, 255)),  # transparent: white background
        ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
        ("I;16", 65535, (255, 255, 255)),
        ("I;16", 32896, (128, 128, 128)),
    ],
)
def test_every_mode_becomes_rgb(mode, value, expected):
    rgb = to_rgb(Image.new(mode, (4, 3), value))
    assert rgb.mode == "RGB" and rgb.size == (4, 3)
    assert tuple(np.asarray(rgb)[1, 2]) == expected


def test_palette_image_becomes_rgb():
    image = Image.new("P", (2, 2))
    image.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    image.putpixel((0, 0), 1)
    assert tuple(np.asarray(to_rgb(image))[0, 0]) == (200, 100, 50)


def test_eval_transform_resizes_crops_and_normalises():
    image = Image.new("RGB", (400, 300), (124, 116, 104))
    x = eval_transform(image)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(
        x[:, 100, 100], (np.array([124, 116, 104]) / 255 - IMAGENET_MEAN) / IMAGENET_STD, atol=1e-5
    )
    gradient = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (256, 1)))  # 256 x 256, columns 0..255
    x = eval_transform(gradient)
    assert x.shape == (3, 224, 224)
    assert (
        abs(x[0, 0, 0] - ((16 / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0])) < 1e-4
    )  # crop starts at column 16


def test_unreadable_images_are_named(tmp_path):
    with pytest.raises(ImageReadError, match="missing.jpg: no such file"):
        load_rgb(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match="bad.jpg: not a readable image"):
        load_rgb(bad)
    good = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="truncated.png"):
        load_rgb(truncated)


def test_predict_command_reports_bad_images_and_predicts_the_rest(tmp_path, capsys):
    reference = randomize_(TorchConvNeXt(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)), seed=5)
    weights = tmp_path / "atto.pth"
    torch.save({"model": reference.state_dict()}, weights)
    rng = np.random.default_rng(0)
    paths = []
    for i, mode in enumerate(["RGB", "L", "RGBA"]):
        array = rng.integers(0, 256, size=(300, 260, len(mode)), dtype=np.uint8)
        path = tmp_path / f"image{i}.png"
        Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode).save(path)
        paths.append(path)
    (tmp_path / "broken.jpg").write_bytes(b"garbage")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (15000, 15000)).save(bomb)  # a small file of 225M pixels: over Pillow's safety limit
    args = [str(p) for p in paths] + [
        str(tmp_path / "broken.jpg"),
        str(bomb),
        str(tmp_path / "absent.png"),
        "--model",
        "convnext_atto",
        "--weights",
        str(weights),
        "--topk",
        "3",
    ]
    status = predict.main(args)
    out, err = capsys.readouterr()
    assert status == 1
    assert "broken.jpg: not a readable image" in err and "absent.png: no such file" in err
    assert f"{bomb}: too many pixels to decode safely" in err and str(bomb) not in out
    for p in paths:
        assert str(p) in out
    # The printed top class is the PyTorch reference's top class for the same preprocessed image.
    reference.eval()
    with torch.no_grad():
        logits = reference(torch.from_numpy(eval_transform(Image.open(paths[0]))[None]))
    top = int(logits.argmax())
    first_block = out.split(str(paths[0]))[1].splitlines()[1]
    assert f"({top})" in first_block and class_names()[top] in first_block


# -- weights that say how to use them: a training run's checkpoint, our safetensors ------------------------
RUN_CONFIG = {"model": "convnext_cifar_atto", "dataset": "cifar10", "image_size": 32, "eval_image_size": 0}


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """A CIFAR run's checkpoint.npz (model and EMA weights), its model as .safetensors, and an image."""
    folder = tmp_path_factory.mktemp("run")
    model, ema = (tinyconvnext.create_model("convnext_cifar_atto", num_classes=10) for _ in range(2))
    state = {"config": RUN_CONFIG, "model": model.state_dict(), "ema": ema.state_dict(), "epoch": 2}
    checkpoint = save_checkpoint(folder / "checkpoint.npz", state)
    no_ema = save_checkpoint(folder / "no_ema.npz", {k: v for k, v in state.items() if k != "ema"})
    weights = save_safetensors(model, folder / "model.safetensors")
    image = folder / "frog.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(image)
    return dict(checkpoint=checkpoint, no_ema=no_ema, weights=weights, image=image, model=model, ema=ema)


@pytest.mark.parametrize("ema", [False, True])
def test_training_checkpoint_uses_its_weights_and_its_own_preprocessing(run_files, capsys, ema):
    argv = [str(run_files["image"]), "--weights", str(run_files["checkpoint"]), "--topk", "1"]
    assert predict.main(argv + (["--ema"] if ema else [])) == 0
    out, err = capsys.readouterr()
    which = "EMA weights" if ema else "model weights"
    assert f"the {which} of training checkpoint {run_files['checkpoint']} (epoch 2)" in err
    assert "short side 32, centre crop 32, mean (0.4914" in err  # CIFAR's, not ImageNet's 224 px
    model = run_files["ema" if ema else "model"]
    x = preprocess(load_rgb(run_files["image"]), run_preprocessing(RUN_CONFIG))
    top = int(np.argmax(model.eval()(x[None]).numpy()))
    assert f"1. {CIFAR10_CLASSES[top]} ({top})" in out


def test_safetensors_records_the_variant_and_preprocessing(run_files, capsys):
    assert predict.main([str(run_files["image"]), "--weights", str(run_files["weights"])]) == 0
    assert "short side 32, centre crop 32" in capsys.readouterr().err  # no --model: the file says it


def test_without_metadata_the_variant_is_the_one_the_weights_fit(run_files, tmp_path, capsys):
    bare = save_safetensors(run_files["model"].state_dict(), tmp_path / "bare.safetensors", metadata={})
    assert predict.main([str(run_files["image"]), "--weights", str(bare), "--topk", "1"]) == 0
    out, err = capsys.readouterr()
    assert "short side 32, centre crop 32, mean (0.4914" in err  # convnext_cifar_atto: CIFAR's by default
    assert "1. class " in out  # no record of the data set: the classes are numbered


# -- every bad value: one line, exit 2, no traceback, nothing written ------------------------------------
def _truncated(run_files, tmp_path):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(run_files["weights"].read_bytes()[:5000])
    return path


PREDICT_CASES = {
    "topk 0": (["--topk", "0"], "argument --topk: expected a whole number of at least 1, got '0'"),
    "negative crop": (["--crop", "-3"], "argument --crop: expected a whole number of at least 1, got '-3'"),
    "crop over resize": (
        ["--crop", "300", "--resize", "256"],
        "a centre crop of 300 is larger than the short side 256",
    ),
    "missing weights": (["--weights", "{tmp}/none.safetensors"], "weights file not found: "),
    "unknown format": (["--weights", "{tmp}/w.txt"], "unknown weights format '.txt'"),
    "truncated weights": (["--weights", "{cut}"], "truncated"),
    "another variant": (
        ["--model", "convnext_cifar_femto"],
        "does not fit convnext_cifar_femto (the file holds convnext_cifar_atto weights with 10 classes)",
    ),
    "ema of a weights file": (["--ema"], "--ema takes the EMA weights of a training checkpoint"),
    "ema of a run without": (["--weights", "{no_ema}", "--ema"], "holds no EMA weights"),
    "unknown model": (["--model", "convnext_huge"], "argument --model: invalid choice: 'convnext_huge'"),
    "no readable image": (["{tmp}/none.png"], "none of the 1 images could be read"),
}


def _argv(template, run_files, tmp_path):
    names = dict(tmp=tmp_path, cut=_truncated(run_files, tmp_path), no_ema=run_files["no_ema"])
    return [part.format(**names) for part in template]


def _exit_code(main, argv):
    try:
        return cli.run_command(main, argv, prog="command")
    except SystemExit as stop:  # argparse's own refusals
        return stop.code


@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predict_bad_values(run_files, tmp_path, capsys, case):
    template, phrase = PREDICT_CASES[case]
    (tmp_path / "w.txt").write_text("x")
    argv = [
        str(run_files["image"]),
        "--weights",
        str(run_files["weights"]),
        *_argv(template, run_files, tmp_path),
    ]
    if case == "no readable image":
        argv.pop(0)
    assert _exit_code(predict.main, argv) == 2
    out, err = capsys.readouterr()
    assert phrase in err and "Traceback" not in err and out == ""


CONVERT_CASES = {
    "target suffix": (["{weights}", "{tmp}/out.pt"], "expected a name ending in .safetensors or .npz"),
    "missing source": (["{tmp}/none.pth", "{tmp}/out.safetensors"], "checkpoint not found: "),
    "source is target": (["{weights}", "{weights}"], "is the source"),
    "another variant": (
        ["{weights}", "{tmp}/out.safetensors", "--model", "convnext_cifar_femto"],
        "does not fit",
    ),
    "image size 0": (["{weights}", "{tmp}/out.safetensors", "--image-size", "0"], "at least 1, got '0'"),
    "crop over resize": (
        ["{weights}", "{tmp}/out.safetensors", "--image-size", "300", "--resize", "256"],
        "a centre crop of 300 is larger than the short side 256",
    ),
    "truncated source": (["{cut}", "{tmp}/out.safetensors"], "truncated"),
    "preprocessing into an npz": (
        ["{weights}", "{tmp}/out.npz", "--resize", "64"],
        "target {tmp}/out.npz is an .npz, which records no preprocessing",
    ),
}


@pytest.mark.parametrize("case", sorted(CONVERT_CASES))
def test_convert_bad_values(run_files, tmp_path, capsys, case):
    template, phrase = CONVERT_CASES[case]
    names = dict(tmp=tmp_path, cut=_truncated(run_files, tmp_path), weights=run_files["weights"])
    before = run_files["weights"].read_bytes()
    assert _exit_code(convert.main, [part.format(**names) for part in template]) == 2
    out, err = capsys.readouterr()
    assert phrase.format(tmp=tmp_path) in err and "Traceback" not in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.safetensors"]  # nothing written
    assert run_files["weights"].read_bytes() == before


def test_a_variant_we_do_not_have_is_named_and_model_chooses_one(run_files, tmp_path, capsys):
    metadata = {"variant": "convnext_gigantic", "num_classes": 10, "image_size": 32}
    weights = save_safetensors(run_files["model"].state_dict(), tmp_path / "gigantic.safetensors", metadata)
    phrase = f"{weights} records variant 'convnext_gigantic', which is not one of ours: name one with --model"
    for main, argv in (
        (predict.main, [str(run_files["image"]), "--weights", str(weights)]),
        (convert.main, [str(weights), str(tmp_path / "out.safetensors")]),
    ):
        assert _exit_code(main, argv) == 2
        err = capsys.readouterr().err
        assert phrase in err and len(err.strip().splitlines()) == 1
    argv = [str(run_files["image"]), "--weights", str(weights), "--model", "convnext_cifar_atto"]
    assert predict.main(argv) == 0


def test_an_image_over_pillows_pixel_limit_is_named_not_decoded(tmp_path, monkeypatch):
    image = tmp_path / "large.png"
    Image.new("RGB", (40, 40)).save(image)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 pixels: where Pillow only warns
    with pytest.raises(ImageReadError, match="large.png: too many pixels to decode safely"):
        load_rgb(image)


def test_no_traceback_reaches_the_user_of_the_module(run_files, tmp_path):
    command = [sys.executable, "-m", "tinyconvnext.predict", str(run_files["image"])]
    result = subprocess.run(
        command + ["--weights", str(tmp_path / "none.safetensors")], capture_output=True, text=True
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("python -m tinyconvnext.predict: error: weights file not")
    )
