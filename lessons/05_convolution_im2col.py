"""Lesson 05: convolution as im2col + matmul, and patchify as reshape + matmul.

A 2-D convolution slides a small filter over an image and, at every position, takes a dot product
between the filter and the window under it. Written that way it is a loop nest, slow in Python.
Rewritten, it is ONE matrix product: copy every window into a row of a matrix (im2col, "image to
columns"), flatten each filter into a column, multiply. The fast path of every framework is some
version of this, or a kernel that avoids the copy.

ConvNeXt's stem is a special case: a 4x4 filter moved 4 pixels at a time (kernel == stride). The
windows then do not overlap, so cutting the image into windows needs no copy of any pixel: it is a
reshape, and the conv is a single matmul (the paper's "patchify" stem, Section 2.2).

Everything here is checked against the engine's `F.conv2d`.

    python lessons/05_convolution_im2col.py --quick
    python lessons/05_convolution_im2col.py

Figures (in --out, default lessons/output/05/):
    im2col.png     a 4x4 image, its four 3x3 windows, and the 4 x 9 matrix they become
    patchify.png   the same image cut into 2x2 patches: every pixel appears exactly once
"""

import time

import numpy as np
from common import lesson_setup, plt, save_figure, section

# Options first, before the engine is imported: a bad option is refused at once.
args = lesson_setup("05", "convolution as im2col + matmul")

import autograd as ag  # noqa: E402
from autograd.nn import functional as F  # noqa: E402

rng = np.random.default_rng(0)


# --------------------------------------------------------------------------------------------------
section("1. The definition, as loops")
# --------------------------------------------------------------------------------------------------
# x (N, C, H, W), weight (O, C, KH, KW), bias (O,). With zero padding p and stride s,
#     out[n, o, i, j] = bias[o] + sum_{c, u, v} weight[o, c, u, v] * xpad[n, c, i*s + u, j*s + v],
# an output of size Ho = (H + 2p - KH) // s + 1 (Wo likewise). What deep-learning libraries call
# convolution is this cross-correlation: the filter is not flipped.


def conv2d_loops(x, weight, bias, stride=1, padding=0):
    n_images, _, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (height + 2 * padding - kh) // stride + 1
    wo = (width + 2 * padding - kw) // stride + 1
    out = np.zeros((n_images, out_channels, ho, wo), dtype=x.dtype)
    for n in range(n_images):
        for o in range(out_channels):
            for i in range(ho):
                for j in range(wo):
                    window = xpad[n, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[n, o, i, j] = bias[o] + np.sum(weight[o] * window)
    return out


image = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
kernel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]).reshape(1, 1, 3, 3)  # Sobel
print(f"a 4x4 image (pixel value = its index):\n{image[0, 0]}")
print(f"a 3x3 filter (Sobel, responds to left-right change):\n{kernel[0, 0]}")
print(f"conv2d_loops -> 2x2 output:\n{conv2d_loops(image, kernel, np.zeros(1))[0, 0]}")
print("(the image brightens by 1 per column everywhere, so the filter gives the same answer everywhere)")

# --------------------------------------------------------------------------------------------------
section("2. im2col on the tiny image: every window becomes a row")
# --------------------------------------------------------------------------------------------------
# Four output positions, four 3x3 windows. Write each window out as a row of 9 numbers:
rows = []
for i in range(2):
    for j in range(2):
        rows.append(image[0, 0, i : i + 3, j : j + 3].reshape(-1))
columns = np.stack(rows)
print(f"the column matrix, one row per output pixel (4 x 9):\n{columns}")
# Then the conv is one matrix product with the filter flattened the same way:
print(
    f"columns @ filter.reshape(9) = {columns @ kernel.reshape(9)} -> reshaped to 2x2:\n"
    f"{(columns @ kernel.reshape(9)).reshape(2, 2)}   (the same as the loops)"
)
# The windows themselves are a strided VIEW (lesson 1, section 4); the copy happens when they are
# flattened into rows, because a row of 9 cannot be described with strides over the image.
windows = np.lib.stride_tricks.sliding_window_view(image, (3, 3), axis=(2, 3))
print(
    f"sliding_window_view: shape {windows.shape}, strides {windows.strides}, shares memory with the image: "
    f"{np.shares_memory(windows, image)}"
)
flat = windows.reshape(4, 9)
print(
    f"reshaped to (4, 9): shares memory: {np.shares_memory(flat, image)}; equal to the rows above: "
    f"{np.array_equal(flat, columns)}. 16 pixels became {flat.size} numbers: pixel 5 is in every row."
)

# --------------------------------------------------------------------------------------------------
section("3. The general case: batches, channels, stride and padding")
# --------------------------------------------------------------------------------------------------


def im2col(x, kh, kw, stride, padding):
    """(N, C, H, W) -> (N*Ho*Wo, C*KH*KW): row (n, i, j) holds window (i, j) of image n, all channels."""
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xpad, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw), (ho, wo)


def conv2d_im2col(x, weight, bias, stride=1, padding=0):
    out_channels, _, kh, kw = weight.shape
    cols, (ho, wo) = im2col(x, kh, kw, stride, padding)
    out = cols @ weight.reshape(out_channels, -1).T + bias  # (N*Ho*Wo, O)
    return out.reshape(x.shape[0], ho, wo, out_channels).transpose(0, 3, 1, 2)


x = rng.standard_normal((2, 3, 9, 9))
weight = rng.standard_normal((4, 3, 3, 3))
bias = rng.standard_normal(4)
ours = conv2d_im2col(x, weight, bias, stride=2, padding=1)
engine = F.conv2d(ag.tensor(x), ag.tensor(weight), ag.tensor(bias), stride=2, padding=1).numpy()
loops = conv2d_loops(x, weight, bias, stride=2, padding=1)
print(f"x {x.shape}, weight {weight.shape}, stride 2, padding 1 -> out {ours.shape}")
print(f"    im2col vs F.conv2d: largest difference {np.abs(ours - engine).max():.1e}")
print(f"    im2col vs loops:    largest difference {np.abs(ours - loops).max():.1e}")

# --------------------------------------------------------------------------------------------------
section("4. Backward is two more matmuls (and col2im)")
# --------------------------------------------------------------------------------------------------
# With out2 = cols @ Wm^T (Wm the filters as rows) and g = dL/dout2 of shape (N*Ho*Wo, O):
#     dL/dWm   = g^T @ cols           (O, C*KH*KW)
#     dL/dcols = g @ Wm               (N*Ho*Wo, C*KH*KW), one gradient per COPY of each pixel
#     dL/dx    = col2im(dL/dcols): every copy's gradient is added back to the pixel it came from
# (the copy was a broadcast in disguise, so its backward is a sum: lesson 1, section 6).
xt = ag.tensor(x, requires_grad=True)
wt = ag.tensor(weight, requires_grad=True)
out = F.conv2d(xt, wt, ag.tensor(bias), stride=2, padding=1)
upstream = rng.standard_normal(out.shape)
out.backward(ag.tensor(upstream))

cols, (ho, wo) = im2col(x, 3, 3, stride=2, padding=1)
g = upstream.transpose(0, 2, 3, 1).reshape(-1, 4)  # (N*Ho*Wo, O), rows in im2col's order
grad_weight = (g.T @ cols).reshape(weight.shape)
grad_cols = (g @ weight.reshape(4, -1)).reshape(2, ho, wo, 3, 3, 3)  # (n, i, j, c, u, v)
grad_xpad = np.zeros((2, 3, 11, 11))
for u in range(3):  # col2im: each of the 9 taps adds its copies back where they were read
    for v in range(3):
        grad_xpad[:, :, u : u + 2 * ho : 2, v : v + 2 * wo : 2] += grad_cols[:, :, :, :, u, v].transpose(
            0, 3, 1, 2
        )
grad_x = grad_xpad[:, :, 1:-1, 1:-1]
print(
    f"dL/dweight by hand vs the engine's backward: largest difference "
    f"{np.abs(grad_weight - wt.grad.numpy()).max():.1e}"
)
print(
    f"dL/dx      by hand vs the engine's backward: largest difference "
    f"{np.abs(grad_x - xt.grad.numpy()).max():.1e}"
)

# With stride 1 there is a shortcut the engine takes: dL/dx is itself a convolution, of the upstream
# gradient padded by K - 1 - padding, with every filter flipped (u -> K-1-u, v -> K-1-v) and the roles
# of in- and out-channels swapped. So backward is im2col + matmul again, and col2im's scattered adds go.
xt = ag.tensor(x, requires_grad=True)
out = F.conv2d(xt, ag.tensor(weight), ag.tensor(bias), stride=1, padding=1)
upstream = rng.standard_normal(out.shape)
out.backward(ag.tensor(upstream))
flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, O, 3, 3): out-channels become in-channels
grad_x = conv2d_im2col(upstream, flipped, np.zeros(3), padding=3 - 1 - 1)
print(
    f"dL/dx as a conv with the flipped kernel (stride 1) vs the engine: largest difference "
    f"{np.abs(grad_x - xt.grad.numpy()).max():.1e}"
)

# --------------------------------------------------------------------------------------------------
section("5. Why bother: loops against one matmul, and what the copy costs")
# --------------------------------------------------------------------------------------------------
shape, channels = ((2, 8, 16, 16), 8) if args.quick else ((8, 32, 32, 32), 32)
x = rng.standard_normal(shape).astype(np.float32)
weight = rng.standard_normal((channels, shape[1], 3, 3)).astype(np.float32)
bias = np.zeros(channels, np.float32)
start = time.perf_counter()
slow = conv2d_loops(x, weight, bias, padding=1)
loop_seconds = time.perf_counter() - start
im2col_seconds = []
for _ in range(5):  # best of 5: the matmul shares the machine's cores with whatever else runs
    start = time.perf_counter()
    fast = conv2d_im2col(x, weight, bias, padding=1)
    im2col_seconds.append(time.perf_counter() - start)
im2col_seconds = min(im2col_seconds)
print(f"3x3 conv, x {shape} -> {channels} channels, float32:")
print(f"    loops                {loop_seconds * 1e3:9.1f} ms")
print(
    f"    im2col (best of 5)   {im2col_seconds * 1e3:9.1f} ms   "
    f"({loop_seconds / im2col_seconds:.0f}x faster, "
    f"largest difference {np.abs(slow - fast).max():.1e})"
)

# The price is memory: a KxK stride-1 conv copies every pixel K*K times. For ConvNeXt's 7x7
# depthwise conv on the first stage of ConvNeXt-T (96 channels, 56x56 pixels at 224x224 input):
activation = 96 * 56 * 56 * 4
print(
    f"one image's stage-1 activation: {activation / 2**20:.1f} MiB; as im2col columns for a 7x7 kernel: "
    f"{49 * activation / 2**20:.0f} MiB; for a batch of 64: {64 * 49 * activation / 2**30:.1f} GiB"
)
print("and a depthwise conv would then use only 1/96 of that matrix product (each output channel reads one")
print("input channel). Lesson 6 computes it without any copy.")

# --------------------------------------------------------------------------------------------------
section("6. Patchify: kernel == stride, so the windows do not overlap")
# --------------------------------------------------------------------------------------------------
# With a 2x2 kernel moved 2 pixels at a time, the 4x4 image falls into four 2x2 patches with nothing
# shared. Splitting each axis in two (H -> H/2 x 2, W -> W/2 x 2) and moving the patch indices
# forward is a reshape and a transpose: the pixels are only reordered.


def patchify(x, p):
    """(N, C, H, W) -> (N*(H/p)*(W/p), C*p*p): one row per patch, channels then rows then columns."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // p, p, w // p, p).transpose(0, 2, 4, 1, 3, 5).reshape(-1, c * p * p)


print(f"patchify(image, 2):\n{patchify(image, 2)}")
print(
    f"16 pixels, {patchify(image, 2).size} numbers: each pixel once. "
    f"im2col with kernel 2 and stride 2 gives the same rows: "
    f"{np.array_equal(patchify(image, 2), im2col(image, 2, 2, 2, 0)[0])}"
)

# ConvNeXt-T's stem: 3 -> 96 channels, 4x4 patches, then (in the model) a LayerNorm.
size, batch = (32, 2) if args.quick else (224, 8)
x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
stem_weight = (rng.standard_normal((96, 3, 4, 4)) * 0.1).astype(np.float32)
stem_bias = np.zeros(96, np.float32)
ours = (patchify(x, 4) @ stem_weight.reshape(96, -1).T + stem_bias).reshape(batch, size // 4, size // 4, 96)
ours = ours.transpose(0, 3, 1, 2)
engine = F.conv2d(ag.tensor(x), ag.tensor(stem_weight), ag.tensor(stem_bias), stride=4).numpy()
print(f"stem on x {x.shape}: patches {patchify(x, 4).shape} @ weights (48, 96) -> {ours.shape}")
print(
    f"    patchify vs F.conv2d (its PatchifyConv2d path): largest difference "
    f"{np.abs(ours - engine).max():.1e}"
)
print(
    f"    patchify vs im2col: largest difference "
    f"{np.abs(ours - conv2d_im2col(x, stem_weight, stem_bias, stride=4)).max():.1e}"
)

# --------------------------------------------------------------------------------------------------
section("7. Figures")
# --------------------------------------------------------------------------------------------------
palette = np.array(["white", "#e63946", "#2a9d8f", "#f4a261", "#457b9d"])


def draw_matrix(ax, values, colour_index, title):
    """A 2-D array as labelled cells, cell (r, c) coloured palette[colour_index[r, c]] (0: white)."""
    rows_, cols_ = values.shape
    for r in range(rows_):
        for c in range(cols_):
            cell = plt.Rectangle(
                (c, rows_ - 1 - r), 1, 1, facecolor=palette[colour_index[r, c]], edgecolor="k"
            )
            ax.add_patch(cell)
            ax.text(c + 0.5, rows_ - 0.5 - r, f"{values[r, c]:g}", ha="center", va="center", fontsize=10)
    ax.set(xlim=(-0.1, cols_ + 0.1), ylim=(-0.1, rows_ + 0.1), aspect="equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)


pixels = image[0, 0]
fig = plt.figure(figsize=(13, 5))
grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 0.3, 3.2])
for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    window = np.zeros((4, 4), int)
    window[i : i + 3, j : j + 3] = k + 1
    draw_matrix(fig.add_subplot(grid[k // 2, k % 2]), pixels, window, f"window for output ({i}, {j})")
row_colours = np.arange(1, 5)[:, None].repeat(9, axis=1)
title = "im2col: the 4 windows as rows (4 x 9)\n36 numbers from 16 pixels; out = columns @ filter (9,)"
draw_matrix(fig.add_subplot(grid[:, 3]), columns, row_colours, title)
fig.suptitle("im2col: overlapping windows are copied into rows, so one matrix product computes the conv")
save_figure(fig, "im2col.png")

fig, (left, middle, right) = plt.subplots(
    1, 3, figsize=(11, 4), gridspec_kw={"width_ratios": [1.2, 0.5, 1.2]}
)
patch_of_pixel = 1 + (np.arange(4)[:, None] // 2) * 2 + np.arange(4)[None, :] // 2
draw_matrix(left, pixels, patch_of_pixel, "4x4 image cut into 2x2 patches (kernel = stride = 2)")
middle.axis("off")
middle.text(0.5, 0.5, "reshape\n+ transpose\n\u2192", ha="center", va="center", fontsize=14)
title = "patchify: one patch per row (4 x 4)\n16 numbers from 16 pixels: a reshape, no duplication"
draw_matrix(right, patchify(image, 2), row_colours[:, :4], title)
fig.suptitle(
    "Patchify (ConvNeXt's stem and downsampling layers): non-overlapping windows are reordered pixels"
)
save_figure(fig, "patchify.png")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# Change one thing, predict the result, then run and see.
# 1. Call im2col(image, 2, 2, 1, 0) on section 2's 4x4 image (2x2 windows, stride 1). Predict the matrix's
#    shape and how many times pixel 5 appears in it, then print it.
# 2. In section 4, the col2im loop adds (+=). Write = instead and predict which pixels of dL/dx go wrong:
#    those read by one window only, or those read by several? Check against the engine's gradient.
# 3. Predict the bytes of im2col's columns for ConvNeXt-T's stem (4x4 kernel, stride 4) on one 224x224 RGB
#    float32 image, against the image's own bytes; then check with im2col(x, 4, 4, 4, 0)[0].nbytes on
#    x = np.zeros((1, 3, 224, 224), np.float32).
