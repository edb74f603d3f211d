"""Image reading (every Pillow mode to RGB), the official eval preprocessing, and the predict command."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch_convnext import TorchConvNeXt, randomize_

from tinyconvnext import predict
from tinyconvnext.imagenet import class_names, wnid_to_index
from tinyconvnext.images import IMAGENET_MEAN, IMAGENET_STD, ImageReadError, eval_transform, load_rgb, to_rgb


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
    args = [str(p) for p in paths] + [
        str(tmp_path / "broken.jpg"),
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
    assert "broken.jpg" in err and "absent.png" in err
    for p in paths:
        assert str(p) in out
    # The printed top class is the PyTorch reference's top class for the same preprocessed image.
    reference.eval()
    with torch.no_grad():
        logits = reference(torch.from_numpy(eval_transform(Image.open(paths[0]))[None]))
    top = int(logits.argmax())
    first_block = out.split(str(paths[0]))[1].splitlines()[1]
    assert f"({top})" in first_block and class_names()[top] in first_block
