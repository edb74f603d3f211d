"""compare_runs and paired answer every bad input with one line on stderr and exit status 2, write
nothing, and show no traceback (tinyconvnext/cli.py's conventions). Each row of the tables is one bad
input: the arguments, the exit status, and a phrase the one line must hold."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinyconvnext import compare_runs, paired
from tinyconvnext.cli import DEBUG_ENV, EXIT_USAGE, run_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A folder of good and bad inputs for both commands, and the working directory set to it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    for name, accuracies in (("run_a", [0.5, 0.6]), ("run_b", [0.55, 0.58])):
        (tmp_path / name).mkdir()
        records = [{"epoch": e, "test_acc": acc, "note": "x"} for e, acc in enumerate(accuracies, 1)]
        (tmp_path / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "no_metrics").mkdir()
    (tmp_path / "later.jsonl").write_text(json.dumps({"epoch": 9, "test_acc": 0.5}) + "\n")
    (tmp_path / "corrupt.jsonl").write_text('{"epoch": 1, "test_acc": 0.5}\n{"epoch": 2, "test_')
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "no_epoch.jsonl").write_text('["epoch", 1]\n')

    labels = np.array([0, 1, 2, 1])
    np.savez(tmp_path / "a.npz", labels=labels, logits=np.eye(3)[[0, 1, 1, 1]])
    np.savez(tmp_path / "other_labels.npz", labels=labels[::-1], logits=np.eye(3)[[0, 1, 1, 1]])
    np.savez(tmp_path / "shorter.npz", labels=labels[:3], logits=np.eye(3)[[0, 1, 1]])
    np.savez(tmp_path / "more_classes.npz", labels=labels, logits=np.eye(4)[[0, 1, 1, 1]])
    np.savez(tmp_path / "float_labels.npz", labels=labels.astype(float), logits=np.eye(3)[[0, 1, 1, 1]])
    np.savez(tmp_path / "bare.npz", scores=np.zeros(3))
    np.save(tmp_path / "single.npy", np.zeros((4, 3)))
    (tmp_path / "truncated.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:60])
    (tmp_path / "text.npz").write_text("not an archive")
    with zipfile.ZipFile(tmp_path / "bad_member.npz", "w") as archive:
        archive.writestr("labels.npy", b"\x93NUMPY garbage")
        archive.writestr("logits.npy", b"\x93NUMPY garbage")
    return tmp_path


def _run_bad(module, argv, folder, capsys):
    """Run a command in-process on bad input; its exit status and stderr, after checking that it wrote
    nothing to stdout or to the folder, showed no traceback, and said what was wrong in one line (after
    argparse's usage line, when argparse refused the input)."""
    before = sorted(folder.rglob("*"))
    try:
        status = run_command(module.main, argv, prog=f"python -m {module.__name__}")
    except SystemExit as stop:  # argparse's own refusal
        status = stop.code
    captured = capsys.readouterr()
    assert sorted(folder.rglob("*")) == before
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith(f"python -m {module.__name__}: error: ")
    assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), captured.err
    return status, lines[-1]


COMPARE_BAD = [
    (["run_a", "nowhere"], "nowhere: no such run folder"),
    (["no_metrics", "run_b"], "no_metrics holds no metrics.jsonl"),
    (["run_a", "corrupt.jsonl"], "line 2: not a JSON record"),
    (["run_a", "empty.jsonl"], "holds no epochs"),
    (["binary.jsonl", "run_b"], "cannot be read as a metrics.jsonl"),
    (["run_a", "no_epoch.jsonl"], "integer 'epoch'"),
    (["run_a", "later.jsonl"], "no epoch in common (A: epochs 1-2, B: epochs 9-9)"),
    (["run_a", "run_b", "--key", "test_acc_ema"], "no 'test_acc_ema'"),
    (["run_a", "run_b", "--key", "note"], "no 'note' (a number)"),
    (["run_a"], "the following arguments are required: b"),
    (["run_a", "run_b", "--colour"], "unrecognized arguments: --colour"),
]


@pytest.mark.parametrize("argv, phrase", COMPARE_BAD, ids=[" ".join(argv) for argv, _ in COMPARE_BAD])
def test_compare_runs_refuses_bad_input_in_one_line(inputs, capsys, argv, phrase):
    status, err = _run_bad(compare_runs, argv, inputs, capsys)
    assert status == EXIT_USAGE
    assert phrase in err


PAIRED_BAD = [
    (["a.npz", "missing.npz"], "missing.npz: no such file"),
    (["a.npz", "a.npz:logits_tta"], "expected 'labels' and 'logits_tta'"),
    (["a.npz", "other_labels.npz"], "hold different test sets"),
    (["a.npz", "shorter.npz"], "hold different test sets"),
    (["a.npz", "more_classes.npz"], "same images and classes"),
    (["a.npz", "float_labels.npz"], "one whole-number label per image"),
    (["bare.npz", "a.npz"], "bare.npz holds ['scores']"),
    (["single.npy", "a.npz"], "holds one array (a .npy file)"),
    (["truncated.npz", "a.npz"], "truncated.npz: not a readable .npz file"),
    (["text.npz", "a.npz"], "text.npz: not a readable .npz file"),
    (["bad_member.npz", "a.npz"], "bad_member.npz: logits or labels cannot be read"),
    (["a.npz"], "the following arguments are required: b"),
]


@pytest.mark.parametrize("argv, phrase", PAIRED_BAD, ids=[" ".join(argv) for argv, _ in PAIRED_BAD])
def test_paired_refuses_bad_input_in_one_line(inputs, capsys, argv, phrase):
    status, err = _run_bad(paired, argv, inputs, capsys)
    assert status == EXIT_USAGE
    assert phrase in err


def test_good_input_still_compares(inputs, capsys):
    assert compare_runs.main(["run_a", "run_b"]) == 0
    assert "B higher at 1 of 2 common epochs" in capsys.readouterr().out
    assert paired.main(["a.npz", "a.npz:logits"]) == 0
    assert json.loads(capsys.readouterr().out)["gained"] == 0


@pytest.mark.parametrize("module", ["tinyconvnext.compare_runs", "tinyconvnext.paired"])
def test_the_command_shows_one_line_and_no_traceback(inputs, module):
    """In a fresh interpreter, as a user runs it; --debug brings the traceback back."""
    env = {key: value for key, value in os.environ.items() if key != DEBUG_ENV}
    command = [sys.executable, "-m", module, "missing_a", "missing_b"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=inputs, timeout=120)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith(f"python -m {module}: error: missing_a")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    debug = subprocess.run(command + ["--debug"], capture_output=True, text=True, env=env, cwd=inputs)
    assert "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr
