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

__all__ = ["find_cifar10", "lesson_setup", "plt", "save_figure", "section"]

REPOSITORY = Path(__file__).resolve().parents[1]

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


def find_cifar10(stops: str):
    """(CIFAR-10, the folder it was found in) where the lessons look: ``$TINYCONVNEXT_DATA``, else
    ``../shared/data`` beside the repository, else the download cache; they never download. When it is not
    there: (None, the folder looked in), after one line saying where it looked and that the lesson ``stops``
    (e.g. "here, before training")."""
    import os

    from tinyconvnext.data import DataNotFoundError, load_cifar10

    candidates = [os.environ.get("TINYCONVNEXT_DATA"), REPOSITORY.parent / "shared" / "data"]
    data_dir = next((Path(c) for c in candidates if c and Path(c).is_dir()), None)
    try:
        return load_cifar10(data_dir, download=False, progress=False), data_dir
    except DataNotFoundError:
        looked = (
            f"{data_dir} and the download cache"
            if data_dir
            else "the download cache (no $TINYCONVNEXT_DATA, no ../shared/data)"
        )
        print(f"CIFAR-10 not found in {looked}: this lesson {stops}.")
        print("Put cifar-10-binary.tar.gz in a folder, set TINYCONVNEXT_DATA to it and run the lesson again.")
        return None, data_dir
