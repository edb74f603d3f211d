"""Two training runs side by side, epoch by epoch: the per-epoch tables of ``docs/results.md``.

    python -m tinyconvnext.compare_runs runs/cifar10_old runs/cifar10_new              # test accuracy
    python -m tinyconvnext.compare_runs runs/cifar10 runs/torch_twin --key train_acc
    python -m tinyconvnext.compare_runs a/metrics.jsonl b/metrics.jsonl --markdown

Each argument is a run folder (its ``metrics.jsonl``, written by ``tinyconvnext.train`` and by
``bench/torch_twin_cifar.py``) or the file itself. Only the epochs both runs have are compared. The summary
says at how many of them B is higher, the mean of B - A over each phase of image sizes (progressive resizing),
and the last common epoch's values. One pair of runs is one sample of each: seeds alone move CIFAR-10's
final accuracy by about a point (docs/results.md), so a lead at most epochs is weak evidence unless it
repeats on other seeds; ``python -m tinyconvnext.paired`` compares two sets of final weights image by image.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .cli import UsageError, make_parser, run_command
from .curves import read_metrics_file

PERCENT_KEYS = ("train_acc", "test_acc", "test_acc_ema", "test_acc_tta")


def load_run(spec) -> list[dict]:
    """The per-epoch records of a run folder or of a ``metrics.jsonl`` file, in epoch order."""
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{spec}: no such run folder or metrics.jsonl file")
    if path.is_dir():
        path = path / "metrics.jsonl"
        if not path.is_file():
            raise FileNotFoundError(
                f"{spec} holds no metrics.jsonl: expected a run folder of python -m tinyconvnext.train"
            )
    rows = read_metrics_file(path)
    if not rows:
        raise UsageError(f"{path} holds no epochs: expected one JSON record per line")
    return sorted(rows, key=lambda row: row["epoch"])


def compare_runs(rows_a: list[dict], rows_b: list[dict], key: str = "test_acc") -> dict:
    """Per-epoch values of ``key`` in A and B over their common epochs, B - A, and a summary.

    Returns ``{"key", "epochs": [{"epoch", "image_size", "a", "b", "b_minus_a"}], "b_ahead", "a_ahead",
    "mean_b_minus_a": {image size (or "all"): mean}, "last": the last common epoch's row}``."""
    by_epoch_b = {row["epoch"]: row for row in rows_b}
    common = [(row, by_epoch_b[row["epoch"]]) for row in rows_a if row["epoch"] in by_epoch_b]
    if not common:
        raise ValueError(f"the two runs have no epoch in common (A: {_span(rows_a)}, B: {_span(rows_b)})")
    for side, rows in (("A", rows_a), ("B", rows_b)):
        missing = [row["epoch"] for row in rows if not _is_number(row.get(key))]
        if missing:
            available = sorted({k for row in rows for k in row})
            raise ValueError(
                f"run {side} has no {key!r} (a number) at epoch(s) {missing[:5]}; "
                f"its records hold {available}"
            )
    epochs = []
    for row_a, row_b in common:
        a, b = float(row_a[key]), float(row_b[key])
        epochs.append(
            {
                "epoch": row_a["epoch"],
                "image_size": row_a.get("image_size"),
                "a": a,
                "b": b,
                "b_minus_a": b - a,
            }
        )
    phases: dict = {}
    for row in epochs:
        phases.setdefault(row["image_size"] if _is_number(row["image_size"]) else "all", []).append(
            row["b_minus_a"]
        )
    return {
        "key": key,
        "epochs": epochs,
        "b_ahead": sum(row["b_minus_a"] > 0 for row in epochs),
        "a_ahead": sum(row["b_minus_a"] < 0 for row in epochs),
        "mean_b_minus_a": {phase: sum(diffs) / len(diffs) for phase, diffs in phases.items()},
        "last": epochs[-1],
    }


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _span(rows) -> str:
    return f"epochs {rows[0]['epoch']}-{rows[-1]['epoch']}" if rows else "no epochs"


def format_report(result: dict, name_a: str = "A", name_b: str = "B", markdown: bool = False) -> str:
    """The comparison as plain text, or as a Markdown table; accuracies in percent."""
    scale, digits = (100.0, 2) if result["key"] in PERCENT_KEYS else (1.0, 4)
    unit = " %" if scale == 100.0 else ""
    header = ["epoch", "image px", f"{name_a}{unit}", f"{name_b}{unit}", "B - A"]
    lines = []
    rows = [
        [
            str(row["epoch"]),
            "" if row["image_size"] is None else str(row["image_size"]),
            f"{scale * row['a']:.{digits}f}",
            f"{scale * row['b']:.{digits}f}",
            f"{scale * row['b_minus_a']:+.{digits}f}",
        ]
        for row in result["epochs"]
    ]
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("| " + " | ".join("---" for _ in header) + " |")
        lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    else:
        widths = [max(len(header[i]), *(len(cells[i]) for cells in rows)) for i in range(len(header))]
        lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=False)))
        lines += ["  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=False)) for cells in rows]
    n = len(result["epochs"])
    means = ", ".join(
        f"{phase} px: {scale * mean:+.{digits}f}" if phase != "all" else f"{scale * mean:+.{digits}f}"
        for phase, mean in result["mean_b_minus_a"].items()
    )
    last = result["last"]
    lines.append("")
    lines.append(
        f"{result['key']}: B higher at {result['b_ahead']} of {n} common epochs, "
        f"A higher at {result['a_ahead']}; "
        f"mean B - A {means}; epoch {last['epoch']}: {scale * last['a']:.{digits}f} -> "
        f"{scale * last['b']:.{digits}f} ({scale * last['b_minus_a']:+.{digits}f})"
    )
    return "\n".join(lines)


def _run_name(spec: str) -> str:
    """A run's folder name, also when its metrics.jsonl is named."""
    path = Path(spec).resolve()
    return path.parent.name if path.is_file() else path.name


def main(argv=None) -> int:
    parser = make_parser("python -m tinyconvnext.compare_runs", __doc__)
    parser.add_argument("a", help="run folder or its metrics.jsonl: the reference")
    parser.add_argument("b", help="run folder or its metrics.jsonl: the run compared with it")
    parser.add_argument(
        "--key",
        default="test_acc",
        help="the per-epoch record to compare (accuracies are shown in percent, others as stored)",
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table instead of text")
    args = parser.parse_args(argv)
    result = compare_runs(load_run(args.a), load_run(args.b), args.key)
    print(format_report(result, _run_name(args.a), _run_name(args.b), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, prog="python -m tinyconvnext.compare_runs"))
