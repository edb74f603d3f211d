"""A resume continues the recorded run: its options come from config.json, a flag that contradicts them is
refused by name, the few that may change are recorded; a new run never writes into another run's records,
and records survive a failure in the middle of their rewrite."""

import csv
import dataclasses
import errno
import json
import os
import re

import pytest
from train_helpers import synthetic_cifar, tiny_config

import train_cifar
from tinyconvnext import cli
from tinyconvnext.config import TrainConfig, config_from_record
from tinyconvnext.curves import read_metrics
from tinyconvnext.engine import NonFiniteLoss
from tinyconvnext.evaluate import recorded_data_path
from tinyconvnext.records import recorded_config, resume_changes, write_config
from tinyconvnext.train import check_config, command_line_config, main, train


def _resume_argv(run, *flags):
    return ["--resume", "--out", str(run), *flags]


def test_a_resume_takes_the_recorded_options_and_records_what_it_changes(tmp_path, capsys):
    data = synthetic_cifar(128, 32)
    run = tmp_path / "run"
    train(tiny_config(tmp_path, epochs=1, subset=96, eval_subset=32, time_budget=30.0), data)

    # Not repeated on the command line: the recorded --subset, model shape and schedule, not the defaults.
    config = command_line_config(_resume_argv(run, "--epochs", "2"), TrainConfig(), "train", None)
    recorded = json.loads((run / "config.json").read_text())
    assert (config.subset, config.depths, config.lr, config.time_budget) == (96, "1,1,2,1", 2e-3, 30.0)
    assert config.epochs == 2 and recorded["epochs"] == 1 and recorded["changes"] == []
    assert config.progress is True  # this invocation's own option, not the recorded --no-progress

    train(config, data)
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["epochs"] == 2 and recorded["subset"] == 96
    assert recorded["changes"] == [{"flag": "--epochs", "old": 1, "new": 2, "after_epoch": 1}]
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]
    # the schedule spans the new total: the last step's learning rate is near --min-lr
    assert read_metrics(run)[-1]["lr"] < read_metrics(run)[0]["lr"]

    # A contradicting flag is refused by name, before anything is loaded or written.
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    capsys.readouterr()
    for flags, phrase in [
        (["--subset", "0"], f"--subset 0 contradicts the recorded --subset 96 of {run}"),
        (["--epochs", "1"], "--epochs 1 contradicts the recorded --epochs 2"),
        (["--no-tta", "--lr", "0.1"], "--lr 0.1 contradicts the recorded --lr 0.002"),
        (["--model", "convnext_cifar_femto"], "--model convnext_cifar_femto contradicts the recorded"),
    ]:
        assert cli.run_command(main, _resume_argv(run, *flags), prog="train") == cli.EXIT_USAGE
        error = capsys.readouterr().err
        assert phrase in error and "Only --epochs (to more), --time-budget and --data may change" in error, (
            error
        )
        assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_a_new_run_never_writes_into_another_runs_records(tmp_path):
    data = synthetic_cifar(64, 32)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 2.0}\n')
    with pytest.raises(
        FileExistsError, match=r"holds another run's records \(metrics.jsonl\) but no checkpoint"
    ):
        train(tiny_config(tmp_path, epochs=1), data)
    with pytest.raises(FileNotFoundError, match="--resume: no checkpoint.npz in"):
        train(tiny_config(tmp_path, epochs=1, resume=True), data)
    assert [p.name for p in run.iterdir()] == ["metrics.jsonl"]


def test_a_failed_metrics_rewrite_keeps_every_earlier_epochs_record(tmp_path, monkeypatch):
    """The disk fills up while the resumed run rewrites metrics.csv: metrics.jsonl has been replaced, the
    csv keeps its old version, and both still hold epoch 1 as it was; the next resume repairs them."""
    data = synthetic_cifar(64, 32)
    run = tmp_path / "run"
    train(tiny_config(tmp_path, epochs=2, stop_after=1), data)
    epoch_1 = read_metrics(run)
    csv_before = (run / "metrics.csv").read_text()

    replace = os.replace

    def full_disk_for_the_csv(source, target):
        if str(target).endswith("metrics.csv"):
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return replace(source, target)

    monkeypatch.setattr(os, "replace", full_disk_for_the_csv)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config(tmp_path, epochs=2, resume=True), data)
    monkeypatch.setattr(os, "replace", replace)

    assert read_metrics(run)[:1] == epoch_1
    assert (run / "metrics.csv").read_text() == csv_before
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]

    train(tiny_config(tmp_path, epochs=2, resume=True), data)
    assert read_metrics(run)[0] == epoch_1[0] and [r["epoch"] for r in read_metrics(run)] == [1, 2]
    with open(run / "metrics.csv", newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]


def test_a_loss_that_diverges_in_the_first_epoch_leaves_no_folder(tmp_path):
    with pytest.raises(NonFiniteLoss, match="No checkpoint was written yet"):
        train(
            tiny_config(tmp_path, epochs=1, lr=1e30, warmup_epochs=0.0, grad_clip=0.0),
            synthetic_cifar(64, 32),
        )
    assert not (tmp_path / "run").exists()


def test_recorded_paths_are_absolute_and_old_relative_ones_still_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    train(tiny_config(tmp_path, epochs=1, out="runs/a", data="data"), synthetic_cifar(64, 32))
    recorded = json.loads((tmp_path / "runs" / "a" / "config.json").read_text())
    assert recorded["out"] == str(tmp_path / "runs" / "a") and recorded["data"] == str(tmp_path / "data")

    # A run recorded by an older version, with the paths relative to the folder it was trained from:
    old = TrainConfig(out="runs/a", data="../shared/data")
    (tmp_path.parent / "shared" / "data").mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path / "runs")  # evaluated from elsewhere
    assert recorded_data_path(tmp_path / "runs" / "a", old) == str(tmp_path / "../shared/data")


def test_a_torn_record_past_the_checkpoint_does_not_stop_a_resume_and_a_damaged_one_is_named(tmp_path):
    data = synthetic_cifar(64, 32)
    train(tiny_config(tmp_path, epochs=2, stop_after=1, subset=64, eval_subset=32), data)
    run = tmp_path / "run"
    epoch_1 = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(epoch_1 + '{"epoch": 2, "step": 4, "lr"')  # epoch 2's, torn
    train(tiny_config(tmp_path, epochs=2, subset=64, eval_subset=32, resume=True), data)
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]

    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(f"{lines[0]}\n{lines[1][:30]}\n")
    with pytest.raises(
        cli.UsageError, match=re.escape(f"{run / 'metrics.jsonl'}, line 2: not a JSON record")
    ):
        read_metrics(run)
    assert [r["epoch"] for r in read_metrics(run, through_epoch=1)] == [1]  # what a resume reads
    (run / "metrics.jsonl").write_text(f'{lines[0]}\n["epoch", 2]\n')
    with pytest.raises(cli.UsageError, match="line 2: expected a JSON object with an integer 'epoch'"):
        read_metrics(run)


def test_a_resume_refusal_quotes_processes_as_typed_and_train_cifar_resumes_its_own_default(tmp_path):
    recorded = dataclasses.asdict(TrainConfig(processes=4))
    resolved, typed = TrainConfig(processes=2), TrainConfig(processes=0)
    with pytest.raises(
        cli.UsageError, match=r"^--processes 0 \(2 on this machine\) contradicts the recorded "
    ):
        resume_changes(recorded, resolved, tmp_path, typed)

    # A train_cifar.py run records --processes 0 resolved to a count; its resume, with that default or with
    # --processes 0 typed, resolves to the same count here and is no contradiction.
    run = tmp_path / "cifar"
    first = check_config(dataclasses.replace(train_cifar.CIFAR_DEFAULTS, out=str(run)))
    write_config(run, first)
    (run / "checkpoint.npz").write_bytes(b"")  # only its presence matters before the resume loads it
    for flags in ([], ["--processes", "0"]):
        given = command_line_config(_resume_argv(run, *flags), train_cifar.CIFAR_DEFAULTS, "train", None)
        assert resume_changes(recorded_config(run), check_config(given), run, given) == []


def test_a_recorded_configuration_keeps_the_known_options_only():
    config = config_from_record({"model": "resnet18d", "epochs": 3, "changes": [], "from_the_future": 1})
    assert (config.model, config.epochs, config.lr) == ("resnet18d", 3, TrainConfig().lr)
