"""What every lesson shares: its command line, its section headings and its figures.

    from common import lesson_setup, section, save_figure, plt

    args = lesson_setup("07", "LayerNorm vs BatchNorm, GELU vs ReLU")   # --quick, --out, checked
    section("1. Same formula, different sets of numbers")
    fig, ax = plt.subplots()
    ...
    save_figure(fig, "norms.png")                                      # into --out, then closed

A bad option value is refused in one line, as by every command of tinyconvnext (tinyconvnext/cli.py).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures go to files; no screen needed
import matplotlib.pyplot as plt  # noqa: E402

from tinyconvnext.cli import make_parser  # noqa: E402

__all__ = ["lesson_setup", "plt", "save_figure", "section"]

_out: Path | None = None


def lesson_setup(number: str, title: str, add_options=None, argv=None):
    """Parse the lesson's options: ``--quick`` (small sizes: what CI runs) and ``--out`` (the figures'
    folder, default ``lessons/output/NUMBER``), plus any that ``add_options(parser)`` adds."""
    global _out
    parser = make_parser(f"lessons/{number}", f"Lesson {number}: {title}")
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (what CI runs)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "output" / number,
        help="folder for the figures",
    )
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out must be a folder for the figures, got the file {args.out}")
    args.out.mkdir(parents=True, exist_ok=True)
    _out = args.out
    return args


def section(title: str) -> None:
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


def save_figure(fig, name: str, dpi: int = 120, tight: bool = True) -> Path:
    """Save ``fig`` as ``name`` in the lesson's ``--out`` folder, say where, and close it. ``tight=False``
    keeps a layout the lesson set itself (``fig.tight_layout(rect=...)``)."""
    path = (_out or Path(".")) / name
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    print(f"wrote {path}")
    return path
