"""Training records: one JSON line and one CSV row per epoch, and a PNG of the curves redrawn each epoch."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

COLUMNS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "test_acc_ema",
    "epoch_seconds",
    "images_per_second",
    "elapsed_seconds",
    "image_size",
]


def append_metrics(out_dir, row: dict) -> None:
    out_dir = Path(out_dir)
    with open(out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    csv_path = out_dir / "metrics.csv"
    new = not csv_path.exists()
    with open(csv_path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in COLUMNS})


def read_metrics(out_dir) -> list[dict]:
    path = Path(out_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_metrics(out_dir, last_epoch: int) -> None:
    """Drop records after ``last_epoch`` (a resumed run rewrites the epochs it repeats)."""
    rows = [r for r in read_metrics(out_dir) if r["epoch"] <= last_epoch]
    for name in ("metrics.jsonl", "metrics.csv"):
        path = Path(out_dir) / name
        if path.exists():
            path.unlink()
    for row in rows:
        append_metrics(out_dir, row)


def plot_curves(out_dir, title: str = "") -> Path:
    """curves.png: loss (left) and accuracy (right) per epoch, train and test (and EMA when present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(out_dir)
    path = Path(out_dir) / "curves.png"
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        ax_loss.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    for key, label in (("train_acc", "train"), ("test_acc", "test"), ("test_acc_ema", "test (EMA)")):
        values = [r.get(key) for r in rows]
        if any(v is not None for v in values):
            ax_acc.plot(epochs, [100 * v if v is not None else None for v in values], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(".curves.png.tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
