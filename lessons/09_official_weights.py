"""Lesson 09: official weights: the checkpoint layout, our .npz format, and a prediction.

The ConvNeXt authors publish their trained networks as PyTorch checkpoints. Because our model keeps
the official attribute names and parameter shapes (lesson 8), such a checkpoint loads into it one
to one, without a translation table. This lesson shows what is inside a checkpoint, saves and reloads
weights in our own format, shows what happens when a checkpoint does not fit, and runs the official
evaluation pipeline on one image: preprocessing, forward pass, top-5 classes.

The official files cannot be downloaded on this project's machines, so the lesson works with our
model's own (random) weights, and uses a real checkpoint only if you point it at one:

    python lessons/09_official_weights.py --quick
    python lessons/09_official_weights.py
    TINYCONVNEXT_OFFICIAL_CKPT=convnext_tiny_1k_224_ema.pth python lessons/09_official_weights.py

(reading a .pth file needs PyTorch; an .npz converted with `python -m tinyconvnext.convert` does not).
The image is the first validation image of Imagenette if imagenette2-160.tgz is found in
$TINYCONVNEXT_DATA or in ../shared/data beside the repository; otherwise one drawn with Pillow.

Figure (in --out, default lessons/output/09/):
    prediction.png   the image after the official preprocessing, and the top-5 probabilities
"""

import argparse
import io
import os
import tarfile
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import autograd as ag  # noqa: E402
from tinyconvnext import VARIANTS, create_model  # noqa: E402
from tinyconvnext.imagenet import class_names, wnid_to_index  # noqa: E402
from tinyconvnext.images import eval_transform, load_rgb  # noqa: E402
from tinyconvnext.predict import predict  # noqa: E402
from tinyconvnext.weights import OFFICIAL_URLS, CheckpointError, load_weights, read_weights, save_npz  # noqa: E402

parser = argparse.ArgumentParser(description="Lesson 09: official weights and our .npz format")
parser.add_argument(
    "--quick", action="store_true", help="use the small convnext_atto instead of convnext_tiny"
)
parser.add_argument(
    "--out",
    type=Path,
    default=Path(__file__).resolve().parent / "output" / "09",
    help="folder for the figure",
)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
REPOSITORY = Path(__file__).resolve().parents[1]
scratch = Path(tempfile.mkdtemp(prefix="lesson09_"))  # weight files are large: kept out of --out
model_name = "convnext_atto" if args.quick else "convnext_tiny"


def section(title):
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


# --------------------------------------------------------------------------------------------------
section("1. Where the official weights live")
# --------------------------------------------------------------------------------------------------
# One file per model and training set. "1k" models were trained on ImageNet-1k (1000 classes); their
# "_ema" files hold the exponential moving average of the weights that the paper evaluates (lesson
# 10). "22k" models were trained on ImageNet-22k and have a head of 21,841 classes.
for name, url in OFFICIAL_URLS.items():
    print(f"    {name:22s} {url}")
# Each file is what torch.save wrote: a zip archive holding a pickled dict {"model": state_dict},
# where state_dict maps a parameter's dotted name to its tensor. Unpickling can run code, so
# tinyconvnext reads it with torch.load(..., weights_only=True), which refuses anything but tensors
# and plain containers, and only there is PyTorch needed.

# --------------------------------------------------------------------------------------------------
section("2. The key names: a state dict is the model's attribute paths")
# --------------------------------------------------------------------------------------------------
# A key is the path of attributes from the model to the parameter. Since our modules carry the
# official names (downsample_layers, stages, dwconv, pwconv1, gamma, norm, head), our state dict has
# exactly the official keys and shapes: loading is a lookup by name.
ag.manual_seed(0)
model = create_model(model_name)
state = model.state_dict()
print(
    f"{model_name}: {len(state)} keys, {sum(v.size for v in state.values()):,d} numbers "
    f"(the state dict holds only parameters: LayerNorm has no running statistics)"
)
shown = ("downsample_layers.0.", "downsample_layers.1.", "stages.0.0.", "norm.", "head.")
skipped = []
for key in list(state) + [None]:
    if key is not None and not key.startswith(shown):
        skipped.append(key)
        continue
    if skipped:
        print(f"    ... {len(skipped)} more keys, {skipped[0]} to {skipped[-1]}")
        skipped = []
    if key is not None:
        print(f"    {key:34s} {str(state[key].shape):18s} {state[key].dtype}")
# How to read them:
#   downsample_layers.0     the stem: .0 the 4x4 conv (out, in, 4, 4), .1 its LayerNorm
#   downsample_layers.1..3  .0 a LayerNorm, .1 the 2x2 conv (out, in, 2, 2)
#   stages.i.j              block j of stage i: dwconv (d, 1, 7, 7) is PyTorch's depthwise Conv2d
#                           layout even though we run it channels-last; pwconv1 (4d, d) and pwconv2
#                           (d, 4d) are Linear weights, (out, in)
#   norm, head              the final LayerNorm and the classifier (classes, width)

# --------------------------------------------------------------------------------------------------
section("3. Our format: .npz, saved and loaded back bit for bit")
# --------------------------------------------------------------------------------------------------
# An .npz is a zip of .npy arrays, one per key. numpy reads it with allow_pickle=False: no code can
# run, and no PyTorch is needed. python -m tinyconvnext.convert IN.pth OUT.npz converts an official
# checkpoint once, on any machine that has PyTorch.
path = save_npz(model, scratch / f"{model_name}.npz")
print(
    f"save_npz -> {path.name}: {path.stat().st_size / 1e6:.1f} MB (4 bytes per float32 number: "
    f"{4 * model.num_parameters() / 1e6:.1f} MB)"
)
read_back = read_weights(path)
print(
    f"read_weights: {len(read_back)} keys, the same names and arrays: "
    f"{list(read_back) == list(state) and all(np.array_equal(read_back[k], state[k]) for k in state)}"
)

ag.manual_seed(1)
other = create_model(model_name)  # different random weights
image = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
with ag.no_grad():
    before = other.eval()(image).numpy()
    load_weights(other, path)
    after = other(image).numpy()
    original = model.eval()(image).numpy()
print(
    f"a second model, other random weights: logits differ from the first by up to "
    f"{np.abs(before - original).max():.2f}"
)
print(
    "after load_weights: logits identical to the first model's, bit for bit: "
    f"{np.array_equal(after, original)}"
)

# Checkpoints saved from a model wrapped for several GPUs (DataParallel) or compiled (torch.compile)
# prefix every key with "module." or "_orig_mod."; the prefixes are stripped on reading.
prefixed = save_npz({f"module.{k}": v for k, v in state.items()}, scratch / "prefixed.npz")
load_weights(other, prefixed)
print(
    "keys prefixed with 'module.' load too: logits identical "
    f"{np.array_equal(other(image).numpy(), original)}"
)

# --------------------------------------------------------------------------------------------------
section("4. All or nothing: a checkpoint that does not fit")
# --------------------------------------------------------------------------------------------------
# Load the 1000-class weights into a 10-class model. The whole checkpoint is checked against the
# model first, every bad key is reported at once, and nothing changes: a half-loaded network
# (a new body with an old head) would run without complaint and predict nonsense.
ag.manual_seed(2)
ten_classes = create_model(model_name, num_classes=10)
stem_before = ten_classes.state_dict()["downsample_layers.0.0.weight"]
try:
    load_weights(ten_classes, path)
except CheckpointError as error:
    print(f"CheckpointError: {str(error).replace(str(path), path.name)}")
unchanged = np.array_equal(stem_before, ten_classes.state_dict()["downsample_layers.0.0.weight"])
print(f"the 10-class model's stem, whose shape did fit, was left unchanged: {unchanged}")

# A damaged file is reported as such, with its name, instead of failing deep inside numpy.
truncated = scratch / "truncated.npz"
truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
try:
    load_weights(other, truncated)
except CheckpointError as error:
    print(f"half a file: CheckpointError: {str(error).replace(str(scratch) + os.sep, '')}")

# --------------------------------------------------------------------------------------------------
section("5. A real official checkpoint, if you have one")
# --------------------------------------------------------------------------------------------------
# The architecture can be read off the keys: the stem's output channels give the first width, the
# block indices under stages.i give the depths, head.weight gives the number of classes. That picks
# the variant from VARIANTS.


def variant_of(state_dict):
    dims = tuple(state_dict[f"downsample_layers.{i}.{0 if i == 0 else 1}.weight"].shape[0] for i in range(4))
    depths = tuple(
        len({k.split(".")[2] for k in state_dict if k.startswith(f"stages.{i}.")}) for i in range(4)
    )
    for name, config in VARIANTS.items():
        if config["depths"] == depths and config["dims"] == dims and "cifar" not in name:
            return name, depths, dims
    return None, depths, dims


official = os.environ.get("TINYCONVNEXT_OFFICIAL_CKPT")
weights_label = f"random weights ({model_name}): the top-5 means nothing"
if not official:
    print("TINYCONVNEXT_OFFICIAL_CKPT is not set, so there is no trained network here; the pipeline below")
    print(
        "runs with the random weights of section 3. With a checkpoint from section 1, set it and run again."
    )
else:
    try:
        official_state = read_weights(official)
        name, depths, dims = variant_of(official_state)
        if name is None:
            raise CheckpointError(f"no variant has depths {depths} and widths {dims}")
        classes = official_state["head.weight"].shape[0]
        print(
            f"{official}: {len(official_state)} keys; depths {depths}, widths {dims}, "
            f"{classes} classes -> {name}"
        )
        model = create_model(name, num_classes=classes)
        load_weights(model, official)
        model_name, weights_label = name, f"official weights: {Path(official).name}"
        print("loaded, all keys matched")
    except (OSError, ImportError, CheckpointError) as error:
        print(f"could not use {official}: {type(error).__name__}: {error}")
        print("going on with random weights")
        model = create_model(model_name)

# --------------------------------------------------------------------------------------------------
section("6. An image, through the official preprocessing")
# --------------------------------------------------------------------------------------------------
# eval_transform does what the official evaluation does (and timm at crop_pct 0.875): resize the
# short side to 256 with bicubic interpolation, cut the central 224 x 224 (224 / 256 = 0.875), scale
# to [0, 1] and standardise each channel with ImageNet's mean and standard deviation.


def imagenette_image():
    """The first validation JPEG of Imagenette and its ImageNet class index, or None if not found."""
    folders = [os.environ.get("TINYCONVNEXT_DATA"), REPOSITORY.parent / "shared" / "data"]
    for folder in folders:
        archive = Path(folder) / "imagenette2-160.tgz" if folder else None
        if archive is None or not archive.is_file():
            continue
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if "/val/" in member.name and member.name.endswith(".JPEG"):
                    target = scratch / Path(member.name).name
                    target.write_bytes(tar.extractfile(member).read())
                    return target, wnid_to_index()[member.name.split("/")[-2]]
    return None


def drawn_image():
    """A 320 x 240 picture drawn with Pillow: sky, grass, and a white ball."""
    picture = Image.new("RGB", (320, 240))
    draw = ImageDraw.Draw(picture)
    for y in range(240):
        colour = (110 + y // 3, 160 + y // 4, 235) if y < 150 else (40, 120 + (y % 7) * 4, 40)
        draw.line([(0, y), (320, y)], fill=colour)
    draw.ellipse([125, 95, 215, 185], fill=(245, 245, 240), outline=(170, 170, 170), width=2)
    for dx, dy in ((-18, -15), (0, -20), (18, -12), (-22, 5), (-2, 0), (20, 8), (-12, 22), (8, 24)):
        draw.ellipse([170 + dx - 4, 140 + dy - 4, 170 + dx + 4, 140 + dy + 4], outline=(200, 200, 195))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    target = scratch / "drawn.png"
    target.write_bytes(buffer.getvalue())
    return target


found = imagenette_image()
if found is not None:
    image_path, true_index = found
    print(f"image: {image_path.name}, an Imagenette validation image of class {class_names()[true_index]!r}")
else:
    image_path, true_index = drawn_image(), None
    print("imagenette2-160.tgz not found: using a picture drawn with Pillow (a white ball on grass)")
picture = load_rgb(image_path)
pixels = eval_transform(picture)
short = min(picture.size)
print(f"    read:        {picture.size[0]} x {picture.size[1]} RGB, uint8")
print(f"    resized:     short side {short} -> 256, long side {round(max(picture.size) * 256 / short)}")
print("    cropped:     the central 224 x 224; scaled to [0, 1] and standardised")
print(
    f"    model input: {pixels.shape} {pixels.dtype}; per channel mean "
    f"{np.round(pixels.mean(axis=(1, 2)), 2)}, std {np.round(pixels.std(axis=(1, 2)), 2)}"
)

# --------------------------------------------------------------------------------------------------
section("7. The prediction: softmax over the classes, top 5")
# --------------------------------------------------------------------------------------------------
probabilities = predict(model, pixels[None])[0]
names = class_names() if len(probabilities) == 1000 else [f"class {i}" for i in range(len(probabilities))]
top5 = np.argsort(-probabilities)[:5]
print(f"{weights_label}")
for rank, k in enumerate(top5, 1):
    print(f"    {rank}. {100 * probabilities[k]:6.2f}%  {names[k]} (class {k})")
if true_index is not None and len(probabilities) == 1000:  # Imagenette's labels are ImageNet-1k classes
    rank = int((probabilities > probabilities[true_index]).sum()) + 1
    print(f"the true class {names[true_index]!r} is ranked {rank} of {len(probabilities)}")
print(
    f"uniform guessing gives every class {100 / len(probabilities):.2f}%; the largest probability here is "
    f"{100 * probabilities.max():.2f}%"
)
# Random weights spread the probability almost evenly over the 1000 classes: the head's weights are
# small (std 0.02), so all logits are close to zero. A trained network puts most of it on a few.

# --------------------------------------------------------------------------------------------------
section("8. Figure")
# --------------------------------------------------------------------------------------------------
mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # ImageNet's, as eval_transform
shown_image = np.clip(pixels.transpose(1, 2, 0) * std + mean, 0, 1)  # undo the standardisation to look at it
fig, (ax_image, ax_bars) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw=dict(width_ratios=[1, 1.5]))
ax_image.imshow(shown_image)
truth = f"\ntrue class: {class_names()[true_index].split(',')[0]}" if true_index is not None else ""
ax_image.set_title(
    f"model input: {image_path.name}{truth}\nshort side 256, centre crop 224 x 224", fontsize=10
)
ax_image.axis("off")
labels = [f"{names[k].split(',')[0]} ({k})" for k in top5][::-1]  # the first of the synonyms
values = [100 * probabilities[k] for k in top5][::-1]
bar_colours = ["#2a9d8f" if len(probabilities) == 1000 and k == true_index else "#e76f51" for k in top5][::-1]
ax_bars.barh(labels, values, color=bar_colours, edgecolor="0.3")
for position, value in enumerate(values):
    ax_bars.text(value, position, f" {value:.2f}%", va="center", fontsize=9)
ax_bars.axvline(100 / len(probabilities), color="0.4", ls="--", lw=1)
ax_bars.text(100 / len(probabilities), 4.45, " uniform (1 / classes)", fontsize=8, color="0.4", va="bottom")
ax_bars.set_xlim(0, max(values) * 1.25)
ax_bars.set_ylim(-0.6, 5.0)
ax_bars.set_xlabel("probability (%)")
ax_bars.set_title(f"top 5 of {len(probabilities)} classes, {weights_label}", fontsize=10)
ax_bars.grid(axis="x", alpha=0.3)
fig.tight_layout()
fig.savefig(args.out / "prediction.png", dpi=110)
plt.close(fig)
print(f"wrote {args.out / 'prediction.png'}")

for leftover in scratch.iterdir():
    leftover.unlink()
scratch.rmdir()
