"""What every command of tinyconvnext does with bad input: one clear line on stderr, exit status 2.

A command builds its parser with ``make_parser`` (help texts show defaults; ``--debug`` shows tracebacks)
and checks numbers with the ``argparse`` types below, so that a bad value is refused by argparse with its
usage line and one ``error:`` line. Errors found later (a file that is missing, corrupt or of the wrong
kind; options that cannot go together) are raised as exceptions and turned into the same one line by
``run_command``:

    def main(argv=None) -> int:
        parser = make_parser("python -m tinyconvnext.predict", __doc__)
        ...
        return 0

    if __name__ == "__main__":
        sys.exit(run_command(main))

Exit status: 0 done; 1 only some inputs of a batch failed (each named on stderr), or an unexpected
failure; 2 bad input; 130 interrupted. ``--debug``, or ``TINYCONVNEXT_DEBUG=1``, lets the exception
through with its traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

DEBUG_ENV = "TINYCONVNEXT_DEBUG"
EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(ValueError):
    """Bad input from the user: the message names the value that came and what would be accepted."""


# Errors that a user's input causes: a bad value, a missing, unreadable or unwritable file, a file of the
# wrong kind.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` with each option's default, and the module docstring's examples kept as written."""


def make_parser(prog: str, doc: str | None, **kwargs) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` whose description is ``doc`` (a module docstring) and which has ``--debug``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=HelpFormatter, **kwargs)
    parser.add_argument(
        "--debug", action="store_true", help=f"show the traceback of an error (or set {DEBUG_ENV}=1)"
    )
    return parser


def debug_requested(argv=None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(error: BaseException) -> str:
    """The error's message on one line (a ``KeyError`` quotes its message; this does not)."""
    text = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
    return " ".join(text.split()) or type(error).__name__


def run_command(main, argv=None, prog: str | None = None) -> int:
    """``main(argv)``, with every error turned into one line ``PROG: error: ...`` on stderr and an exit
    status (see the module's docstring). argparse's own errors (``SystemExit``) pass through unchanged."""
    prog = prog or os.path.basename(sys.argv[0])
    if debug_requested(argv):
        return main(argv)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # a failure of ours or of the machine (a full disk): still one line
        print(
            f"{prog}: error: {type(error).__name__}: {one_line(error)} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_PARTIAL


# argparse types: each refuses a bad value by naming it and what would be accepted.


def _number(kind, text: str, accepted: str, ok) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}") from None
    if (isinstance(value, float) and not math.isfinite(value)) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {accepted}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, "a whole number of at least 1", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    return _number(int, text, "a whole number of at least 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(float, text, "a finite number above 0", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    return _number(float, text, "a finite number of at least 0", lambda v: v >= 0)


def fraction(text: str) -> float:
    return _number(float, text, "a number from 0 to 1", lambda v: 0 <= v <= 1)


def open_fraction(text: str) -> float:
    """A share that must keep something: above 0, at most 1 (a crop's scale or share)."""
    return _number(float, text, "a number above 0 and at most 1", lambda v: 0 < v <= 1)


def below_one(text: str) -> float:
    """A decay or probability that must stay below 1 (EMA decay, drop-path rate)."""
    return _number(float, text, "a number from 0 up to, but not including, 1", lambda v: 0 <= v < 1)
