"""Ctrl-C during an epoch's bookkeeping waits for the record, curves and checkpoint to be written whole."""

import os
import signal

import numpy as np
import pytest
from train_helpers import synthetic_cifar, tiny_config

import tinyconvnext.records
import tinyconvnext.train as train_module
from tinyconvnext import cli
from tinyconvnext.checkpoint import load_checkpoint
from tinyconvnext.curves import read_metrics
from tinyconvnext.interrupt import ctrl_c_deferred


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_inside_the_block_is_raised_when_it_ends():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_deferred():
            _ctrl_c()
            finished.append("the rest of the block")
    assert finished == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the old handler is back


def test_without_ctrl_c_nothing_is_raised_and_ignored_ctrl_c_stays_ignored():
    with ctrl_c_deferred():
        pass
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    try:
        with ctrl_c_deferred():
            _ctrl_c()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_the_curves_are_drawn_still_saves_the_finished_epoch(tmp_path, monkeypatch, capsys):
    """The CI flake this guards against: Ctrl-C during matplotlib's first import aborted the interpreter.
    The command saves, says so, and exits with status 130; ``train`` itself raises ``KeyboardInterrupt``."""
    data = synthetic_cifar()
    plot_curves = tinyconvnext.records.plot_curves

    def plot_and_be_interrupted(out, title=""):
        _ctrl_c()  # arrives in the middle of the bookkeeping
        return plot_curves(out, title)

    monkeypatch.setattr(tinyconvnext.records, "plot_curves", plot_and_be_interrupted)
    config = tiny_config(tmp_path / "b", epochs=3)
    status = cli.run_command(lambda argv: train_module.train(config, data) and 0, [], prog="train")
    assert status == cli.EXIT_INTERRUPTED
    out, err = capsys.readouterr()
    assert "interrupted: saved" in out and "continue with --resume" in out
    assert err.strip() == "train: interrupted" and "Traceback" not in err
    run = tmp_path / "b" / "run"
    state = load_checkpoint(run / "checkpoint.npz")
    assert (state["epoch"], state["batch"], state["step"]) == (1, 0, 5)  # epoch 1 finished, 5 steps
    assert [r["epoch"] for r in read_metrics(run)] == [1]
    assert (run / "curves.png").exists()
    with pytest.raises(KeyboardInterrupt):  # called from Python: saved, then the interrupt goes on
        train_module.train(tiny_config(tmp_path / "c", epochs=3), data)
    assert load_checkpoint(tmp_path / "c" / "run" / "checkpoint.npz")["epoch"] == 1

    # ... and resuming gives the weights of an uninterrupted run.
    monkeypatch.setattr(tinyconvnext.records, "plot_curves", plot_curves)
    train_module.train(tiny_config(tmp_path / "a", epochs=3), data)
    train_module.train(tiny_config(tmp_path / "b", epochs=3, resume=True), data)
    a = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.npz")["model"]
    b = load_checkpoint(run / "checkpoint.npz")["model"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
