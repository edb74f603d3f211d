"""Every lesson refuses a bad option as every command does (tinyconvnext/cli.py, lessons/common.py): exit
status 2, argparse's usage line and one ``error:`` line, no traceback, nothing printed or written, and no
work done before the options are read.

The lessons run in this process (``runpy``), so the interpreter, NumPy, Matplotlib and the engine start
once for all of them; one row runs a lesson in a fresh interpreter, as a user would. A lesson's own
numeric options are read from the parser it builds (the lesson stopped at ``parse_args``): each must have
a checked type of tinyconvnext.cli, and is given a word and a number out of its range."""

import argparse
import contextlib
import io
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tinyconvnext import cli
from tinyconvnext.cli import DEBUG_ENV, EXIT_USAGE

LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"
LESSONS = sorted(path.name for path in LESSONS_DIR.glob("[0-9][0-9]_*.py"))
NOT_A_NUMBER = "lots"


def _run_lesson(lesson: str, argv: list[str]) -> tuple[object, str, str]:
    """Run a lesson's file in this process with ``argv``; (exit status, stdout, stderr). A lesson that
    does not stop at its options fails the test here (it would run in full)."""
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(LESSONS_DIR / lesson), *argv]
    sys.path.insert(0, str(LESSONS_DIR))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(LESSONS_DIR / lesson), run_name="__main__")
        status = 0
    except SystemExit as stop:
        status = stop.code
    except Exception as error:  # what a user would see as a traceback
        pytest.fail(f"{lesson} {argv}: a traceback ({type(error).__name__}: {error}) instead of one line")
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return status, out.getvalue(), err.getvalue()


def _assert_refused(lesson, argv, phrase, folder):
    before = sorted(folder.rglob("*"))
    status, out, err = _run_lesson(lesson, argv)
    assert status == EXIT_USAGE, f"{lesson} {argv}: exit status {status!r}, stderr {err!r}"
    assert out == "", f"{lesson} printed before reading its options: {out[:200]!r}"
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines, err
    assert re.match(r"\S+: error: ", lines[-1]) and phrase in lines[-1], err
    assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), err
    assert sorted(folder.rglob("*")) == before, f"{lesson} {argv} wrote into {folder}"


class _ParserFound(Exception):
    """Stops a lesson at its ``parse_args``, carrying the parser it built."""


def _lesson_parser(lesson: str) -> argparse.ArgumentParser:
    """The parser a lesson builds, taken at its ``parse_args`` (nothing after it runs)."""

    def stop_here(parser, *args, **kwargs):
        raise _ParserFound(parser)

    saved_argv, saved_path, saved_parse = sys.argv, list(sys.path), argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = stop_here
    sys.argv, sys.path[:0] = [str(LESSONS_DIR / lesson)], [str(LESSONS_DIR)]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(str(LESSONS_DIR / lesson), run_name="__main__")
    except _ParserFound as found:
        return found.args[0]
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        argparse.ArgumentParser.parse_args = saved_parse
    pytest.fail(f"{lesson} never reads its options")


# For each checked number type of tinyconvnext.cli, a value it refuses although it is a number.
OUT_OF_RANGE = {
    cli.positive_int: "0",
    cli.non_negative_int: "-1",
    cli.positive_float: "0",
    cli.non_negative_float: "-1",
    cli.fraction: "1.5",
    cli.open_fraction: "0",
    cli.below_one: "1",
}


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)


@pytest.mark.parametrize("lesson", LESSONS)
def test_an_unknown_option_is_refused(lesson, tmp_path):
    out = tmp_path / "figures"
    _assert_refused(lesson, ["--quick", "--out", str(out), "--no-such-option"], "--no-such-option", tmp_path)
    assert not out.exists()


@pytest.mark.parametrize("lesson", LESSONS)
def test_out_naming_a_file_is_refused(lesson, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    _assert_refused(lesson, ["--quick", "--out", str(existing)], str(existing), tmp_path)
    assert existing.read_text() == "mine"


@pytest.mark.parametrize("lesson", LESSONS)
def test_a_bad_number_for_a_lesson_option_is_refused(lesson, tmp_path):
    """Each numeric option of the lesson is checked (a type of tinyconvnext.cli), and both a word and a
    number out of its range are refused."""
    parser = _lesson_parser(lesson)
    numeric = [action for action in parser._actions if action.type in (int, float, *OUT_OF_RANGE)]
    unchecked = [action.option_strings[0] for action in numeric if action.type not in OUT_OF_RANGE]
    assert not unchecked, f"{lesson}: {unchecked} take any number; use a checked type of tinyconvnext.cli"
    out = tmp_path / "figures"
    for action in numeric:
        option = action.option_strings[0]
        for bad in (NOT_A_NUMBER, OUT_OF_RANGE[action.type]):
            _assert_refused(lesson, ["--quick", "--out", str(out), option, bad], repr(bad), tmp_path)
            assert not out.exists()


def test_a_fresh_interpreter_shows_one_line(tmp_path):
    """As a user runs a lesson: the refusal reaches the terminal as one line, exit status 2."""
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    env = {key: value for key, value in os.environ.items() if key != DEBUG_ENV}
    command = [sys.executable, str(LESSONS_DIR / LESSONS[0]), "--quick", "--out", str(existing)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == EXIT_USAGE and "Traceback" not in done.stderr, done.stderr
    assert re.match(r"\S+: error: .*notes.txt", done.stderr.strip().splitlines()[-1]), done.stderr
    assert sorted(tmp_path.iterdir()) == [existing] and done.stdout == ""
