"""Training records: one JSON line and one CSV row per epoch, and a PNG of the curves redrawn each epoch.

``metrics.jsonl`` and ``metrics.csv`` are small: each change rewrites them whole and atomically (a temporary
file renamed over the old one), so a failure at any moment (a full disk, Ctrl-C) leaves every earlier
epoch's record as it was.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .checkpoint import write_atomically, write_text_atomically
from .cli import UsageError

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


def write_metrics(out_dir, rows: list[dict]) -> None:
    """``metrics.jsonl`` and ``metrics.csv`` holding ``rows``, each replaced atomically."""
    out_dir = Path(out_dir)
    write_text_atomically(out_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: row.get(k, "") for k in COLUMNS} for row in rows)
    write_text_atomically(out_dir / "metrics.csv", table.getvalue())


def append_metrics(out_dir, row: dict) -> None:
    """Add ``row`` after the records already there (``write_metrics``)."""
    write_metrics(out_dir, [*read_metrics(out_dir), row])


def read_metrics_file(path, through_epoch: int | None = None) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, as written (epoch order); a line that is not a JSON object
    with an integer ``epoch`` is refused with ``cli.UsageError`` naming the file and the line. With
    ``through_epoch`` (a resume's checkpoint epoch), reading stops at the first record past it: the lines
    after it, which the resume rewrites, are dropped unread (a torn last line among them included)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot be read as a metrics.jsonl text file ({error})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if through_epoch is not None and (rows[-1]["epoch"] if rows else 0) >= through_epoch:
            break  # epochs are numbered from 1: through epoch 0 is none of them
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}, line {number}: not a JSON record ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
            raise UsageError(
                f"{path}, line {number}: expected a JSON object with an integer 'epoch', got {line[:80]!r}"
            )
        rows.append(row)
    return rows if through_epoch is None else [row for row in rows if row["epoch"] <= through_epoch]


def read_metrics(out_dir, through_epoch: int | None = None) -> list[dict]:
    """The records of a run folder's ``metrics.jsonl`` (``read_metrics_file``); none when it has none."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return read_metrics_file(path, through_epoch)


def truncate_metrics(out_dir, last_epoch: int) -> None:
    """Keep the records up to ``last_epoch`` (a resumed run rewrites the epochs it repeats), rewritten
    atomically: never deleted first."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.exists():
        return
    rows = read_metrics(out_dir, through_epoch=last_epoch)
    if len(rows) != sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()):
        write_metrics(out_dir, rows)


def record_epoch(out_dir, record: dict) -> None:
    """Write ``record`` as its epoch's, after the earlier epochs' records and in place of any later ones."""
    write_metrics(out_dir, [*(r for r in read_metrics(out_dir) if r["epoch"] < record["epoch"]), record])


def plot_curves(out_dir, title: str = "") -> Path:
    """curves.png: loss (left) and accuracy (right) per epoch, train and test (and EMA when present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(out_dir)
    path = Path(out_dir) / "curves.png"
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    try:  # the figure is closed whatever happens: pyplot keeps every open one alive
        for key, label in (("train_loss", "train"), ("test_loss", "test")):
            ax_loss.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
        for key, label in (("train_acc", "train"), ("test_acc", "test"), ("test_acc_ema", "test (EMA)")):
            values = [r.get(key) for r in rows]
            if any(v is not None for v in values):
                ax_acc.plot(
                    epochs, [100 * v if v is not None else None for v in values], marker="o", label=label
                )
        ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        write_atomically(path, lambda f: fig.savefig(f, dpi=100, format="png"))
    finally:
        plt.close(fig)
    return path
