"""Lesson 09: trained weights: the official checkpoints, timm's safetensors, and a prediction.

The ConvNeXt authors publish their trained networks as PyTorch checkpoints; most people get ConvNeXt
weights from timm or the Hugging Face Hub instead, as `model.safetensors` files with timm's names. Our
model keeps the official attribute names and shapes (lesson 8), so an official checkpoint loads one to
one; timm's names are mapped onto them by one small table. This lesson opens both kinds of file, saves
and reloads weights as safetensors (ours carry the variant, the classes and the preprocessing), shows what
happens when a file does not fit, and runs the official evaluation pipeline on one image.

The real files cannot be downloaded on this project's machines, so the lesson makes its own files from
the model's (random) weights, and uses a real checkpoint only if you point it at one:

    python lessons/09_official_weights.py --quick
    python lessons/09_official_weights.py
    TINYCONVNEXT_OFFICIAL_CKPT=convnext_tiny_1k_224_ema.pth python lessons/09_official_weights.py
    TINYCONVNEXT_OFFICIAL_CKPT=model.safetensors python lessons/09_official_weights.py  # timm's (the Hub)

(reading a .pth file needs PyTorch; safetensors files do not: `python -m tinyconvnext.convert IN.pth
OUT.safetensors` converts once). The image is the first validation image of Imagenette if
imagenette2-160.tgz is found in $TINYCONVNEXT_DATA or in ../shared/data beside the repository; otherwise
one drawn with Pillow.

Figure (in --out, default lessons/output/09/):
    prediction.png   the image after the official preprocessing, and the top-5 probabilities
"""

import io
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from common import lesson_setup, plt, save_figure, section

args = lesson_setup("09", "official and timm weights, safetensors, and a prediction")

from PIL import Image, ImageDraw  # noqa: E402

import autograd as ag  # noqa: E402
from tinyconvnext import create_model  # noqa: E402
from tinyconvnext.imagenet import class_names, wnid_to_index  # noqa: E402
from tinyconvnext.images import IMAGENET_EVAL, load_rgb, preprocess  # noqa: E402
from tinyconvnext.predict import predict  # noqa: E402
from tinyconvnext.weights import (  # noqa: E402
    OFFICIAL_URLS,
    TIMM_STEMS,
    TIMM_TO_OFFICIAL,
    CheckpointError,
    load_weights,
    read_weights_file,
    save_npz,
    save_safetensors,
    variants_that_fit,
)

REPOSITORY = Path(__file__).resolve().parents[1]
scratch = Path(tempfile.mkdtemp(prefix="lesson09_"))  # weight files are large: kept out of --out
model_name = "convnext_atto" if args.quick else "convnext_tiny"
image = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)


def logits_of(network):
    with ag.no_grad():
        return network.eval()(image).numpy()


# --------------------------------------------------------------------------------------------------
section("1. Where trained weights live")
# --------------------------------------------------------------------------------------------------
# The official files: one per model and training set. "1k" models were trained on ImageNet-1k (1000
# classes); their "_ema" files hold the exponential moving average of the weights that the paper
# evaluates. "22k" models were trained on ImageNet-22k and have a head of 21,841 classes.
for name, url in OFFICIAL_URLS.items():
    print(f"    {name:22s} {url}")
# Each is what torch.save wrote: a zip holding a pickled dict {"model": state_dict}. Unpickling can run
# code, so tinyconvnext reads it with torch.load(..., weights_only=True), and only there needs PyTorch.
# timm's weights (timm.create_model("convnext_atto", pretrained=True)) come from the Hugging Face Hub as
# model.safetensors: a JSON header of names, dtypes and shapes, then the raw numbers. Nothing in it can
# run, and NumPy alone reads it.

# --------------------------------------------------------------------------------------------------
section("2. The key names: a state dict is the model's attribute paths")
# --------------------------------------------------------------------------------------------------
# A key is the path of attributes from the model to the parameter. Our modules carry the official
# names (downsample_layers, stages, dwconv, pwconv1, gamma, norm, head), so our state dict has exactly
# the official keys and shapes: loading an official checkpoint is a lookup by name.
ag.manual_seed(0)
model = create_model(model_name)
state = model.state_dict()
print(f"{model_name}: {len(state)} keys, {sum(v.size for v in state.values()):,d} numbers")
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
#                           layout; pwconv1 (4d, d) and pwconv2 (d, 4d) are Linear weights, (out, in)
#   norm, head              the final LayerNorm and the classifier (classes, width)

# --------------------------------------------------------------------------------------------------
section("3. timm's names, and the table that maps them")
# --------------------------------------------------------------------------------------------------
# timm names the same numbers differently. The whole mapping, timm -> official, is this table
# (tinyconvnext/weight_names.py), applied in order to every name of a file that has timm's names:
print("the stem (patchify: conv, norm):")
for old, new in TIMM_STEMS[1].items():
    print(f"    {old + '*':30s} -> {new}*")
print("everything else (regular expressions):")
for pattern, replacement in TIMM_TO_OFFICIAL:
    print(f"    {pattern:30s} -> {replacement}")


def official_to_timm(state_dict, conv_mlp):
    """Our names -> timm's: what timm's checkpoint_filter_fn does, here to make a timm-style file."""
    out = {}
    for key, value in state_dict.items():
        key = key.replace("downsample_layers.0.", "stem.")
        key = re.sub(r"^stages\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2.", key)
        key = re.sub(r"^downsample_layers\.(\d+)\.", r"stages.\1.downsample.", key)
        key = key.replace("dwconv", "conv_dw").replace("pwconv", "mlp.fc")
        key = re.sub(r"^norm\.", "head.norm.", re.sub(r"^head\.", "head.fc.", key))
        if conv_mlp and ".mlp.fc" in key and value.ndim == 2:
            value = value[:, :, None, None]  # a Linear weight as a 1x1 conv's, (out, in, 1, 1)
        out[key] = np.ascontiguousarray(value)
    return out


# timm builds atto..nano with conv_mlp=True: their MLP's two layers are 1x1 convolutions, whose weights
# are (out, in, 1, 1). A 1x1 conv over every pixel is a Linear layer over the channels, so the loader
# only drops the two axes of size 1.
conv_mlp = model_name in ("convnext_atto", "convnext_femto", "convnext_pico", "convnext_nano")
timm_state = official_to_timm(state, conv_mlp)
hub_file = scratch / "model.safetensors"
save_safetensors(timm_state, hub_file, metadata={})  # as the Hub's files: timm's names, no metadata
for key in ("stem.0.weight", "stages.0.blocks.0.conv_dw.weight", "stages.0.blocks.0.mlp.fc1.weight"):
    print(f"    timm: {key:36s} {str(timm_state[key].shape):18s}")
print(
    f"    timm: {'stages.1.downsample.1.weight':36s} {str(timm_state['stages.1.downsample.1.weight'].shape)}"
)
print(f"    timm: {'head.fc.weight':36s} {str(timm_state['head.fc.weight'].shape)}")
from_hub = create_model(model_name, weights=hub_file)
print(
    f"create_model({model_name!r}, weights='model.safetensors'): logits identical to the original's: "
    f"{np.array_equal(logits_of(from_hub), logits_of(model))}"
)
# The file records no variant: the loader tells it from the names and shapes alone, comparing them with
# each variant's (derived from VARIANTS, without building a model):
fits = variants_that_fit(read_weights_file(hub_file).state_dict)
print(f"the variant (and number of classes) its names and shapes fit: {fits}")

# --------------------------------------------------------------------------------------------------
section("4. Our format: safetensors, with what is needed to use the weights")
# --------------------------------------------------------------------------------------------------
# save_safetensors writes official names and, in the header's "__metadata__", the variant, the number of
# classes and the evaluation preprocessing: python -m tinyconvnext.predict reads them, so a CIFAR model
# is not fed 224-pixel ImageNet crops. It writes atomically: a temporary file, then a rename.
path = save_safetensors(model, scratch / f"{model_name}.safetensors")
header_size = int.from_bytes(path.read_bytes()[:8], "little")
metadata = json.loads(path.read_bytes()[8 : 8 + header_size])["__metadata__"]
print(f"save_safetensors -> {path.name}: {path.stat().st_size / 1e6:.1f} MB; its metadata:")
for key in ("variant", "num_classes", "resize", "image_size", "mean", "std", "format"):
    print(f"    {key:12s} {metadata[key]}")
loaded = read_weights_file(path)
print(f"read back: {loaded.variant}, {loaded.num_classes} classes, {loaded.preprocessing.describe()}")
ag.manual_seed(1)
other = create_model(model_name)  # different random weights
difference = np.abs(logits_of(other) - logits_of(model)).max()
print(f"a second model, other random weights: logits differ by up to {difference:.2f}")
load_weights(other, path)
print(
    f"after load_weights: logits identical, bit for bit: {np.array_equal(logits_of(other), logits_of(model))}"
)
# Our older .npz format (a zip of .npy arrays, read with allow_pickle=False) still loads the same way.
npz = save_npz(model, scratch / f"{model_name}.npz")
load_weights(other, npz)
print(f".npz loads too: logits identical {np.array_equal(logits_of(other), logits_of(model))}")

# --------------------------------------------------------------------------------------------------
section("5. All or nothing: a file that does not fit")
# --------------------------------------------------------------------------------------------------
# Load the 1000-class weights into a 10-class model, then into another variant. The whole file is
# checked against the model first; one error says how many keys are missing, unexpected or mis-shaped,
# shows the first few, and names the variant the file does fit; nothing changes: a half-loaded network
# (a new body with an old head) would run without complaint and predict nonsense.
ag.manual_seed(2)
for wrong in (create_model(model_name, num_classes=10), create_model("convnext_femto")):
    stem_before = wrong.state_dict()["downsample_layers.0.0.weight"]
    try:
        load_weights(wrong, path)
    except CheckpointError as error:
        print(f"CheckpointError: {str(error).replace(str(scratch) + os.sep, '')[:400]}")
    unchanged = np.array_equal(stem_before, wrong.state_dict()["downsample_layers.0.0.weight"])
    print(f"    the model's stem was left unchanged: {unchanged}")
# A damaged file is reported as such, with its name, before anything is read into the model.
truncated = scratch / "truncated.safetensors"
truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
try:
    load_weights(other, truncated)
except CheckpointError as error:
    print(f"half a file: {str(error).replace(str(scratch) + os.sep, '')}")

# --------------------------------------------------------------------------------------------------
section("6. A real checkpoint, if you have one")
# --------------------------------------------------------------------------------------------------
# Official .pth or timm's model.safetensors: the variant and the number of classes are read off the
# names and shapes, as in section 3.
official = os.environ.get("TINYCONVNEXT_OFFICIAL_CKPT")
weights_label = f"random weights ({model_name}): the top-5 means nothing"
if not official:
    print("TINYCONVNEXT_OFFICIAL_CKPT is not set, so there is no trained network here; the pipeline below")
    print("runs with the random weights of section 2. With a file from section 1, set it and run again.")
else:
    try:
        found = read_weights_file(official)
        fits = variants_that_fit(found.state_dict)
        if not fits:
            raise CheckpointError(f"{official} fits none of the variants")
        name, classes = fits[0]
        print(f"{official}: {len(found.state_dict)} keys -> {name}, {classes} classes")
        model = create_model(name, num_classes=classes, weights=official)
        model_name, weights_label = name, f"trained weights: {Path(official).name}"
        print("loaded, all keys matched")
    except (OSError, ImportError, CheckpointError) as error:
        print(f"could not use {official}: {type(error).__name__}: {error}")
        print("going on with random weights")

# --------------------------------------------------------------------------------------------------
section("7. An image, through the official preprocessing")
# --------------------------------------------------------------------------------------------------
# preprocess(image, IMAGENET_EVAL) does what the official evaluation does (and timm at crop_pct
# 0.875): resize the short side to 256 with bicubic interpolation, cut the central 224 x 224
# (224 / 256 = 0.875), scale to [0, 1] and standardise each channel with ImageNet's mean and std.


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
pixels = preprocess(picture, IMAGENET_EVAL)
short = min(picture.size)
print(f"    read:        {picture.size[0]} x {picture.size[1]} RGB, uint8")
print(f"    resized:     short side {short} -> 256, long side {round(max(picture.size) * 256 / short)}")
print("    cropped:     the central 224 x 224; scaled to [0, 1] and standardised")
print(
    f"    model input: {pixels.shape} {pixels.dtype}; per channel mean "
    f"{np.round(pixels.mean(axis=(1, 2)), 2)}, std {np.round(pixels.std(axis=(1, 2)), 2)}"
)

# --------------------------------------------------------------------------------------------------
section("8. The prediction: softmax over the classes, top 5")
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
section("9. Figure")
# --------------------------------------------------------------------------------------------------
mean, std = np.array(IMAGENET_EVAL.mean), np.array(IMAGENET_EVAL.std)
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
save_figure(fig, "prediction.png", dpi=110)

for leftover in scratch.iterdir():
    leftover.unlink()
scratch.rmdir()

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# Change one thing, predict the result, then run and see.
# 1. In official_to_timm (section 3), leave the MLP weights as (out, in) for atto (conv_mlp=False). Predict
#    whether create_model still loads the file, and whether the logits still match: which line of
#    to_official_names in tinyconvnext/weight_names.py decides it?
# 2. In section 5, load the file into create_model(model_name, num_classes=21841). Predict the error: how
#    many keys are mis-shaped, and what does the hint tell you to do?
# 3. In section 4, save the model with save_safetensors(model, path, weights_metadata(model_name, 1000,
#    Preprocessing(36, 32))) (from tinyconvnext.weights and tinyconvnext.images). Predict what
#    python -m tinyconvnext.predict IMAGE --weights path prints as its preprocessing, and why the
#    prediction of a 224-pixel ImageNet model is now worse.
