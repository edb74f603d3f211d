"""Lesson 01: arrays and broadcasting in NumPy.

Everything after this lesson (the autograd engine, the convolutions, ConvNeXt itself) is written in
the vocabulary of NumPy arrays: shapes, strides, views and copies, broadcasting, reductions. This
lesson takes those words one at a time and prints the numbers behind them.

    python lessons/01_arrays_and_broadcasting.py --quick      # small sizes, a few seconds
    python lessons/01_arrays_and_broadcasting.py              # the full timings

Figures (in --out, default lessons/output/01/):
    strides.png        one buffer in memory, seen through three views
    broadcasting.png   (3, 1) + (4,) -> (3, 4): which values are reused, and the zero stride behind it
"""

import time

import numpy as np
from common import lesson_setup, plt, save_figure, section

args = lesson_setup("01", "arrays and broadcasting in NumPy")


# --------------------------------------------------------------------------------------------------
section("1. An array is one block of memory, plus a shape, strides and a dtype")
# --------------------------------------------------------------------------------------------------
# The numbers of an array lie one after another in a single flat buffer. What makes the buffer a
# 3 x 4 matrix is metadata: the shape (3, 4), the dtype (4-byte float32) and the strides: how many
# BYTES to move in the buffer to step by one along each axis. Element a[i, j] lives at byte
#     i * strides[0] + j * strides[1].

a = np.arange(12, dtype=np.float32).reshape(3, 4)
print(a)
print(
    f"shape {a.shape}, dtype {a.dtype} ({a.itemsize} bytes each), strides {a.strides}, "
    f"{a.nbytes} bytes in all"
)
i, j = 2, 1
offset = i * a.strides[0] + j * a.strides[1]
print(
    f"a[{i}, {j}] = {a[i, j]} lives at byte {offset} = {i}*{a.strides[0]} + {j}*{a.strides[1]}, "
    f"element {offset // a.itemsize} of the flat buffer {a.ravel()}"
)

# The last axis moves fastest ("C order", row-major): a row is contiguous, a column is not. Deep
# learning code names its axes by this order: NCHW means batch, channel, height, width, with width
# contiguous; channels-last NHWC puts the channels of one pixel next to each other.
x = np.zeros((8, 96, 56, 56), dtype=np.float32)
print(
    f"an NCHW activation {x.shape}: strides {x.strides} (one pixel step = 4 bytes, one channel step "
    f"= 56*56*4 = {56 * 56 * 4} bytes)"
)

# --------------------------------------------------------------------------------------------------
section("2. Views: new shape and strides over the same memory, no copy")
# --------------------------------------------------------------------------------------------------
# Transposing, slicing with steps and most reshapes only write new metadata. They cost nothing,
# whatever the size, and writing through a view changes the original.

views = {
    "a.T": a.T,
    "a[:, ::2]": a[:, ::2],
    "a[1]": a[1],
    "a.reshape(2, 6)": a.reshape(2, 6),
    "a.reshape(2, 2, 3)": a.reshape(2, 2, 3),
}
for name, v in views.items():
    print(
        f"{name:20s} shape {str(v.shape):11s} strides {str(v.strides):12s} "
        f"shares memory with a: {np.shares_memory(a, v)}, C-contiguous: {v.flags['C_CONTIGUOUS']}"
    )

t = a.T
t[0, 2] = 100.0  # t[0, 2] is a[2, 0]
print(f"after a.T[0, 2] = 100:  a[2, 0] = {a[2, 0]}")
a[2, 0] = 8.0  # put it back

# --------------------------------------------------------------------------------------------------
section("3. Copies: when the new layout cannot be described by strides")
# --------------------------------------------------------------------------------------------------
# a.T is not contiguous: reading it row by row jumps through memory. Flattening it into one row
# cannot be expressed with strides over the old buffer, so NumPy copies. Fancy indexing (with an
# array of indices or a mask) always copies too.

flat = a.T.reshape(-1)
print(f"a.T.reshape(-1) = {flat}: shares memory with a: {np.shares_memory(a, flat)} (a copy)")
picked = a[[0, 2]]
print(f"a[[0, 2]] (fancy indexing): shares memory with a: {np.shares_memory(a, picked)} (a copy)")
print(f"a[a > 6] = {a[a > 6]} (a boolean mask: a copy)")
packed = np.ascontiguousarray(a.T)
print(f"np.ascontiguousarray(a.T): strides {packed.strides}, C-contiguous {packed.flags['C_CONTIGUOUS']}")
# The engine relies on this: an op receives arrays that may be views, and a fast kernel that walks
# raw memory first asks for a contiguous copy (np.ascontiguousarray does nothing if it already is).

# --------------------------------------------------------------------------------------------------
section("4. Strides can do more: every window of a signal, without copying")
# --------------------------------------------------------------------------------------------------
# A sliding window of length 3 over a 1-D signal is a 2-D view whose two strides are BOTH one
# element: moving to the next window and moving inside a window step the same 4 bytes. Lesson 5
# builds convolution on exactly this (2-D windows over an image, then a matrix multiply).

signal = np.arange(6, dtype=np.float32)
windows = np.lib.stride_tricks.sliding_window_view(signal, 3)
print(f"signal {signal}, strides {signal.strides}")
print(
    f"windows of 3, shape {windows.shape}, strides {windows.strides}, "
    f"shares memory: {np.shares_memory(signal, windows)}"
)
print(windows)
print(f"a moving sum is then one reduction: windows.sum(axis=1) = {windows.sum(axis=1)}")

# --------------------------------------------------------------------------------------------------
section("5. Broadcasting: operating on arrays of different shapes")
# --------------------------------------------------------------------------------------------------
# The rule, for an elementwise op between shapes A and B:
#   1. line the shapes up on the RIGHT; a missing leading axis counts as size 1;
#   2. on every axis the sizes must be equal, or one of them must be 1;
#   3. an axis of size 1 is repeated to the other size, virtually: a stride of 0 re-reads one value.

col = np.array([[0.0], [10.0], [20.0]], dtype=np.float32)  # (3, 1)
row = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)  # (4,)  -> treated as (1, 4)
total = col + row
print(f"{col.shape} + {row.shape} -> {total.shape}")
print(total)
stretched = np.broadcast_to(row, (3, 4))
print(
    f"np.broadcast_to(row, (3, 4)): strides {stretched.strides}  <- stride 0 on axis 0: "
    f"the same 4 values, read three times; shares memory: {np.shares_memory(row, stretched)}"
)

# The one you will meet in every layer: a per-channel bias (C,) added to an NCHW batch. Reshaped to
# (C, 1, 1), it lines up with axis 1 and is repeated over batch, height and width.
batch = np.zeros((2, 3, 4, 5), dtype=np.float32)
bias = np.array([0.1, 0.2, 0.3], dtype=np.float32)
print(f"NCHW {batch.shape} + bias.reshape(3, 1, 1) -> {(batch + bias.reshape(3, 1, 1)).shape}")
try:
    batch + bias  # (2, 3, 4, 5) + (3,): 3 lines up with W = 5
except ValueError as error:
    print(f"NCHW {batch.shape} + bias {bias.shape} fails, because 3 lines up with the width 5:\n    {error}")
# In channels-last layout (N, H, W, C) the channels are the last axis, and a (C,) bias simply works.
print(f"NHWC {(2, 4, 5, 3)} + bias {bias.shape} -> {(np.zeros((2, 4, 5, 3)) + bias).shape}")

# Broadcasting also builds tables: every pair from two lists, with no loop.
p = np.array([0.0, 1.0, 2.0])[:, None]  # (3, 1)
q = np.array([0.0, 3.0])[None, :]  # (1, 2)
print(f"pairwise |p - q|, (3, 1) with (1, 2) -> (3, 2):\n{np.abs(p - q)}")

# --------------------------------------------------------------------------------------------------
section("6. Reductions, and why keepdims matters")
# --------------------------------------------------------------------------------------------------
# sum, mean, max, var take `axis` (one axis or a tuple) and remove it from the shape; keepdims=True
# leaves it in with size 1, so that the result broadcasts straight back against the input. That is
# how normalisation is written (lesson 7): subtract the mean of each row from that row.

rng = np.random.default_rng(0)
m = rng.normal(5.0, 2.0, size=(4, 3)).astype(np.float32)
row_mean = m.mean(axis=1)
row_mean_kept = m.mean(axis=1, keepdims=True)
print(
    f"m.mean(axis=1).shape = {row_mean.shape},  m.mean(axis=1, keepdims=True).shape = {row_mean_kept.shape}"
)
centred = m - row_mean_kept
print(f"rows of (m - mean(keepdims)) now average to {np.abs(centred.mean(axis=1)).max():.1e} at most")
try:
    m - row_mean  # (4, 3) - (4,): the 4 lines up with the 3 columns
except ValueError as error:
    print(f"without keepdims: {error}")
square = rng.normal(size=(3, 3))
wrong = square - square.mean(axis=1)  # runs, and is wrong: subtracts row means from COLUMNS
print(
    f"on a square matrix the same mistake runs silently: rows then average to "
    f"{np.round(wrong.mean(axis=1), 3)} instead of 0"
)

# Several axes at once: per-channel statistics of an NCHW batch (what BatchNorm computes) reduce
# over the batch and both spatial axes, leaving one number per channel.
images = rng.normal(size=(8, 3, 16, 16)).astype(np.float32) * np.array([1, 2, 3], np.float32).reshape(3, 1, 1)
print(
    f"per-channel std over (N, H, W) of {images.shape}: {images.std(axis=(0, 2, 3)).round(2)}, "
    f"kept shape {images.std(axis=(0, 2, 3), keepdims=True).shape}"
)

# Backward of a broadcast is a reduction: if a bias (3,) was repeated over 4 rows, each copy got its
# own gradient and the bias's gradient is their sum over the repeated axis. Lesson 3 shows the engine
# doing exactly this (autograd.graph.sum_to_shape).
upstream = np.ones((4, 3), dtype=np.float32)
print(f"gradient of a (3,) bias broadcast over (4, 3): upstream.sum(axis=0) = {upstream.sum(axis=0)}")

# --------------------------------------------------------------------------------------------------
section("7. Why all this matters: NumPy against a Python loop")
# --------------------------------------------------------------------------------------------------
# A Python loop handles one number per iteration through the interpreter; a NumPy call runs one
# compiled loop over the whole buffer. Same arithmetic, very different speed.

n = 200_000 if args.quick else 2_000_000
repeats = 3 if args.quick else 5
values = rng.standard_normal(n)
as_list = values.tolist()


def best_time(fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def python_sum_of_squares():
    s = 0.0
    for v in as_list:
        s += v * v
    return s


t_python = best_time(python_sum_of_squares)
t_numpy = best_time(lambda: (values * values).sum())
print(f"sum of squares of {n:,} float64 values (best of {repeats}):")
print(f"    Python loop over a list   {t_python * 1e3:9.2f} ms")
print(f"    (values * values).sum()   {t_numpy * 1e3:9.2f} ms   ({t_python / t_numpy:,.0f}x faster)")
print(f"    same answer: {python_sum_of_squares():.6f} vs {(values * values).sum():.6f}")
# (The two sums differ in the last digits at most: NumPy adds in pairs, the loop one by one.)

# --------------------------------------------------------------------------------------------------
section("8. Figures")
# --------------------------------------------------------------------------------------------------


def draw_cells(ax, values, title, stored=None, colour=None):
    """A 2-D array as labelled cells, coloured by value (or all `colour`); cells outside `stored` are grey
    and dashed."""
    rows, cols = values.shape
    stored = np.ones(values.shape, bool) if stored is None else stored
    for r in range(rows):
        for c in range(cols):
            real = stored[r, c]
            face = (colour or plt.cm.tab20(int(values[r, c]) % 20)) if real else "0.93"
            edge, line = ("black", "-") if real else ("0.6", "--")
            ax.add_patch(
                plt.Rectangle((c, rows - 1 - r), 1, 1, facecolor=face, edgecolor=edge, linestyle=line)
            )
            ax.text(c + 0.5, rows - 0.5 - r, f"{values[r, c]:g}", ha="center", va="center", color=edge)
    ax.set_xlim(-0.1, cols + 0.1)
    ax.set_ylim(-0.1, rows + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)


# One buffer, three views: each view's cells above, and below them the buffer with the cells it reads.
a = np.arange(12, dtype=np.float32).reshape(3, 4)
buffer = np.arange(12).reshape(1, 12)
fig, axes = plt.subplots(2, 3, figsize=(13, 4.6), gridspec_kw={"height_ratios": [3, 1]})
for column, (name, view) in enumerate([("a", a), ("a.T", a.T), ("a[:, ::2]", a[:, ::2])]):
    draw_cells(axes[0, column], view, f"{name}: shape {view.shape}, strides {view.strides}")
    draw_cells(axes[1, column], buffer, f"the buffer {name} reads (cell k at byte 4k)", np.isin(buffer, view))
fig.suptitle("One buffer, three views: a cell's value is its place in memory; nothing is copied", fontsize=11)
save_figure(fig, "strides.png")

# Broadcasting: the dashed cells are not stored anywhere; a zero stride re-reads the solid ones.
col = np.array([[0.0], [10.0], [20.0]])
row = np.array([[1.0, 2.0, 3.0, 4.0]])
first_column, first_row = np.arange(12).reshape(3, 4) % 4 == 0, np.arange(12).reshape(3, 4) < 4
fig, axes = plt.subplots(1, 5, figsize=(14, 3.8), gridspec_kw={"width_ratios": [4, 0.7, 4, 0.7, 4]})
draw_cells(
    axes[0],
    np.broadcast_to(col, (3, 4)),
    "col (3, 1), strides (8, 0) once stretched",
    first_column,
    "#8ecae6",
)
draw_cells(axes[2], np.broadcast_to(row, (3, 4)), "row (4,) -> (1, 4), strides (0, 8)", first_row, "#8ecae6")
draw_cells(axes[4], col + row, "col + row (3, 4): 12 stored values", colour="#8ecae6")
for ax, symbol in ((axes[1], "+"), (axes[3], "=")):
    ax.axis("off")
    ax.text(0.5, 0.5, symbol, fontsize=30, ha="center", va="center", transform=ax.transAxes)
fig.suptitle("Broadcasting: align the shapes on the right, (3, 1) with (_, 4) -> (3, 4)", fontsize=11)
save_figure(fig, "broadcasting.png")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# Change one thing, predict the result, then run and see.
# 1. In section 1, make `a` float64 instead of float32. Predict its strides and the byte offset of a[2, 1]
#    and the strides of a.T before you run it.
# 2. In section 5, add the bias to the NCHW batch as bias.reshape(3, 1) instead of (3, 1, 1). Predict the
#    result's shape, or the error, from the rule "line the shapes up on the right".
# 3. In section 6, make `square` a 3 x 4 matrix. Predict what square - square.mean(axis=1) does now: an
#    error, or a silently wrong answer? Which of the two would you rather get?
