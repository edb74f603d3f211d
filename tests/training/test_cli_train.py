"""The training commands' command line: every bad value is one line on stderr naming it, exit status 2, no
traceback and no output folder left behind; a default that does not fit the model adapts and says so;
--help describes every option."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import train_cifar
from tinyconvnext import cli
from tinyconvnext.config import HELP, TrainConfig, build_parser
from tinyconvnext.train import command_line_config, main

REPO = Path(__file__).resolve().parents[2]
QUICK = [
    "--no-progress",
    "--model",
    "convnext_cifar_atto",
    "--epochs",
    "1",
    "--subset",
    "64",
    "--batch-size",
    "32",
]


def _train_cifar(argv):
    return main(argv, defaults=train_cifar.CIFAR_DEFAULTS, prog=train_cifar.PROG)


BAD_VALUES = [
    (["--epochs", "0"], "--epochs: expected a whole number of at least 1, got '0'"),
    (["--epochs", "-1"], "--epochs: expected a whole number of at least 1, got '-1'"),
    (["--batch-size", "0"], "--batch-size: expected a whole number of at least 1"),
    (["--lr", "nan"], "--lr: expected a finite number above 0, got 'nan'"),
    (["--lr", "-1"], "--lr: expected a finite number above 0, got '-1'"),
    (["--time-budget", "-1"], "--time-budget: expected a finite number of at least 0"),
    (["--drop-path", "1"], "--drop-path: expected a number from 0 up to, but not including, 1"),
    (["--rand-augment", "11"], "--rand-augment: expected a whole number from 0 to 10"),
    (["--depths", "2,x,2"], "--depths: expected whole numbers of at least 1 separated by commas"),
    (["--model", "convnext_huge"], "--model: invalid choice: 'convnext_huge'"),
    (["--min-lr", "0.1", "--lr", "0.01"], "--min-lr 0.1 is above --lr 0.01"),
    (["--backend", "cupy", "--processes", "2"], "--processes 2 is data parallelism over CPU cores"),
    (["--batch-size", "128"], "--batch-size 128 is larger than --subset 64"),
    (["--progressive-size", "24"], "--progressive-size must be a multiple of the network's stride (16"),
    (["--depths", "1,1", "--dims", "16,32,64"], "--depths 1,1 and --dims 16,32,64 name different numbers"),
    (["--resume"], "--resume: no checkpoint.npz in"),
    (["--data", "{tmp}/nowhere"], "no such folder"),
    (["--data", "{tmp}"], "CIFAR-10 not found in {tmp}: expected cifar-10-binary.tar.gz"),
]


def exit_status(command, argv) -> int:
    """``command``'s exit status as a shell sees it (argparse's own errors exit through SystemExit)."""
    try:
        return cli.run_command(command, argv, prog="train")
    except SystemExit as exit:
        return exit.code


def assert_one_clear_line(error: str, phrase: str) -> None:
    """One ``error:`` line holding ``phrase`` (argparse's usage lines may come before it), no traceback."""
    lines = error.strip().splitlines()
    assert phrase in lines[-1], error
    assert ": error: " in lines[-1] and "Traceback" not in error
    assert not any(": error: " in line for line in lines[:-1])


@pytest.mark.parametrize("command", [main, _train_cifar], ids=["tinyconvnext.train", "train_cifar.py"])
@pytest.mark.parametrize("argv, phrase", BAD_VALUES, ids=[" ".join(argv) for argv, _ in BAD_VALUES])
def test_a_bad_value_is_one_line_exit_2_and_leaves_nothing(command, argv, phrase, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert exit_status(command, [*QUICK, "--out", str(out), *argv]) == cli.EXIT_USAGE
    assert_one_clear_line(capsys.readouterr().err, phrase.format(tmp=tmp_path))
    assert not out.exists()


def test_an_out_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    assert exit_status(main, [*QUICK, "--out", str(out)]) == cli.EXIT_USAGE
    assert_one_clear_line(capsys.readouterr().err, f"--out {out} is a file: expected a run folder")
    assert out.read_text() == "mine"


def test_an_out_that_cannot_become_a_run_folder_is_refused_before_any_data(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" / "runs" / "a"
    argv = [*QUICK, "--out", str(out), "--data", str(tmp_path / "nowhere")]  # the data would be refused next
    assert exit_status(main, argv) == cli.EXIT_USAGE
    error = capsys.readouterr().err
    assert_one_clear_line(error, f"--out {out}: {tmp_path / 'notes.txt'} is a file, so no run folder")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_an_out_in_a_folder_that_cannot_be_written_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert exit_status(main, [*QUICK, "--out", str(locked / "run")]) == cli.EXIT_USAGE
    assert_one_clear_line(capsys.readouterr().err, f"--out {locked / 'run'}: {locked} is not writable")


def test_an_out_on_a_file_system_that_takes_no_files_is_refused(capsys):
    assert exit_status(main, [*QUICK, "--out", "/proc/tinyconvnext_run"]) == cli.EXIT_USAGE
    assert_one_clear_line(capsys.readouterr().err, "--out /proc/tinyconvnext_run: /proc is not writable")


def test_a_file_the_user_may_not_read_or_write_is_a_user_error(capsys):
    def denied(argv):
        raise PermissionError(13, "Permission denied", "/root/weights.safetensors")

    assert cli.run_command(denied, [], prog="predict") == cli.EXIT_USAGE
    assert capsys.readouterr().err.startswith("predict: error: [Errno 13] Permission denied")


@pytest.mark.parametrize(
    "model, image_size, progressive_size, note",
    [
        ("convnext_cifar_3stage", 32, 24, None),  # stride 8: train_cifar.py's default fits
        ("convnext_cifar_atto", 32, 16, "starting progressive resizing at 16 px instead"),  # stride 16
        ("convnext_atto", 32, 0, "progressive resizing is off"),  # stride 32: no smaller multiple
        ("convnext_atto", 96, 32, "starting progressive resizing at 32 px instead"),  # up to the stride
    ],
)
def test_the_progressive_default_adapts_to_the_model_and_says_so(
    model, image_size, progressive_size, note, capsys
):
    argv = ["--model", model, "--image-size", str(image_size)]
    config = command_line_config(argv, train_cifar.CIFAR_DEFAULTS, "train", None)
    assert config.progressive_size == progressive_size
    error = capsys.readouterr().err
    if note is None:
        assert error == ""
    else:
        assert len(error.splitlines()) == 1 and note in error and "--progressive-size 24" in error


def test_an_explicit_progressive_size_is_kept_as_given():
    config = command_line_config(["--progressive-size", "16"], train_cifar.CIFAR_DEFAULTS, "train", None)
    assert config.progressive_size == 16


def test_help_describes_every_option_with_its_default():
    parser = build_parser(train_cifar.CIFAR_DEFAULTS, "train", train_cifar.__doc__)
    assert set(HELP) == {field for field in TrainConfig.__dataclass_fields__}
    for action in parser._actions:
        assert action.help, action.option_strings
    text = " ".join(parser.format_help().split())
    assert "--time-budget MINUTES stop after the epoch that ends past this many minutes" in text
    assert "0 = no budget (default: 0.0)" in text
    assert "--epochs EPOCHS epochs to train" in text and "(default: 28)" in text
    resume = next(action for action in parser._actions if "--resume" in action.option_strings)
    assert "only --epochs (to more), --time-budget and --data may change" in resume.help
    for group in ("model:", "data:", "optimisation:", "run:"):
        assert group in text


@pytest.mark.parametrize(
    "command, phrase",
    [
        ([str(REPO / "train_cifar.py"), "--epochs", "0"], "--epochs: expected a whole number of at least 1"),
        (["-m", "tinyconvnext.evaluate", "{tmp}/nowhere"], "{tmp}/nowhere: no such run folder or checkpoint"),
    ],
)
def test_no_traceback_reaches_the_user_of_a_fresh_interpreter(command, phrase, tmp_path):
    command = [
        sys.executable,
        *(part.format(tmp=tmp_path) for part in command),
        "--out",
        str(tmp_path / "run"),
    ]
    if "tinyconvnext.evaluate" in command:
        command = command[:-2]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == cli.EXIT_USAGE
    assert_one_clear_line(result.stderr, phrase.format(tmp=tmp_path))
    assert not (tmp_path / "run").exists()


EVALUATE_BAD_VALUES = [
    (["{tmp}/nowhere"], "{tmp}/nowhere: no such run folder or checkpoint"),
    (["{tmp}"], "no training checkpoint at {tmp}/checkpoint.npz"),
    (["{tmp}", "--batch-size", "0"], "--batch-size: expected a whole number of at least 1, got '0'"),
    (["{tmp}", "--tta-shift", "-1"], "--tta-shift: expected a whole number of at least 0, got '-1'"),
    (["{tmp}", "--crop-pct", "1.5"], "--crop-pct: expected a number from 0 to 1, got '1.5'"),
    (["{tmp}", "--image-size", "nan"], "--image-size: expected a whole number of at least 0, got 'nan'"),
    (["{tmp}", "--precise-bn-batches", "-2"], "--precise-bn-batches: expected a whole number of at least 0"),
    (["{tmp}", "--data", "{tmp}/nowhere"], "--data {tmp}/nowhere: no such folder"),
]


@pytest.mark.parametrize(
    "argv, phrase", EVALUATE_BAD_VALUES, ids=[" ".join(a) for a, _ in EVALUATE_BAD_VALUES]
)
def test_evaluate_answers_a_bad_value_with_one_line(argv, phrase, tmp_path, capsys):
    from tinyconvnext import evaluate

    saved = tmp_path / "logits.npz"
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--save", str(saved)]
    assert exit_status(evaluate.main, argv) == cli.EXIT_USAGE
    assert_one_clear_line(capsys.readouterr().err, phrase.format(tmp=tmp_path))
    assert not saved.exists()
