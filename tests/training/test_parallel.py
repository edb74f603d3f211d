"""Data-parallel training over CPU processes (tinyconvnext/parallel.py): the same gradients as one process,
the optimizer's updates seen by the workers, exact resume, learning, and clear errors."""

import json

import numpy as np
import pytest
from train_helpers import synthetic_cifar, tiny_config

import autograd as ag
from autograd import optim
from autograd.nn import functional as F
from tinyconvnext import augment
from tinyconvnext.build import resolve_processes
from tinyconvnext.checkpoint import load_checkpoint
from tinyconvnext.cli import EXIT_INTERRUPTED
from tinyconvnext.config import TrainConfig
from tinyconvnext.parallel import DataParallel, WorkerFailed
from tinyconvnext.train import train
from tinyconvnext.variants import create_model


def small_model(drop_path_rate=0.0):
    return create_model(
        "convnext_cifar_atto",
        num_classes=10,
        depths=(1, 1, 1, 1),
        dims=(8, 16, 24, 32),
        drop_path_rate=drop_path_rate,
        layer_scale_init_value=0.5,
    )


def twins():
    """A model and an independent copy with the same weights."""
    ag.manual_seed(0)
    model, reference = small_model(), small_model()
    reference.load_state_dict(model.state_dict())
    return model, reference


def batch(n, seed=0, soft=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, size=n)
    if not soft:
        return x, labels
    return augment.mixup_cutmix(x, labels, 10, rng, mixup_alpha=0.8, cutmix_alpha=0.0, smoothing=0.1)


@pytest.fixture(scope="module")
def model_and_parallel():
    model, reference = twins()
    with DataParallel(
        model, small_model, processes=2, max_batch=16, input_shape=(3, 32, 32), num_classes=10
    ) as dp:
        yield model, reference, dp


def reference_gradients(reference, x, y, label_smoothing):
    reference.train()
    for p in reference.parameters():
        p.grad = None
    loss = F.cross_entropy(reference(ag.tensor(x)), ag.tensor(y), label_smoothing=label_smoothing)
    loss.backward()
    return float(loss.item()), [p.grad.data for p in reference.parameters()]


@pytest.mark.parametrize("n, soft", [(16, False), (7, False), (10, True)])  # 7: unequal slices (3 and 4)
def test_gradient_is_the_whole_batch_mean_loss_gradient(model_and_parallel, n, soft):
    model, reference, dp = model_and_parallel
    x, y = batch(n, seed=n, soft=soft)
    loss, logits = dp.train_step(x, y, label_smoothing=0.1, step=0)
    expected_loss, expected_grads = reference_gradients(reference, x, y, 0.0 if soft else 0.1)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert logits.shape == (n, 10)
    for p, expected in zip(model.parameters(), expected_grads, strict=False):
        np.testing.assert_allclose(p.grad.data, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("side", [16, 32])
def test_smaller_inputs_fit_the_buffers_built_for_the_largest(model_and_parallel, side):
    """Progressive resizing sends 16x16 batches to workers built for 32x32 ones, then 32x32 again."""
    model, reference, dp = model_and_parallel
    x = np.random.default_rng(side).standard_normal((6, 3, side, side)).astype(np.float32)
    y = np.arange(6) % 10
    loss, logits = dp.train_step(x, y, label_smoothing=0.1, step=1)
    expected_loss, expected_grads = reference_gradients(reference, x, y, 0.1)
    assert loss == pytest.approx(expected_loss, rel=1e-5) and logits.shape == (6, 10)
    for p, expected in zip(model.parameters(), expected_grads, strict=False):
        np.testing.assert_allclose(p.grad.data, expected, rtol=1e-4, atol=1e-6)


def test_eval_step_matches_one_process(model_and_parallel):
    model, reference, dp = model_and_parallel
    x, y = batch(9, seed=5)
    loss_sum, logits = dp.eval_step(x, y)
    reference.eval()
    with ag.no_grad():
        expected = reference(ag.tensor(x))
    reference.train()
    np.testing.assert_allclose(logits, expected.data, rtol=1e-5, atol=1e-5)
    assert loss_sum == pytest.approx(
        float(F.cross_entropy(expected, ag.tensor(y), reduction="sum").item()), rel=1e-5
    )


def test_tta_on_the_workers_matches_one_process(tmp_path):
    from tinyconvnext.evaluate import evaluate
    from tinyconvnext.pipeline import make_loaders

    data = synthetic_cifar()
    config = tiny_config(tmp_path, epochs=1, eval_batch_size=40)  # 96 test images: the last batch has 16
    model, _ = twins()
    _, test_loader, _ = make_loaders(config, data)
    with DataParallel(model, small_model, 2, 40, (3, 32, 32), 10) as dp:
        on_workers = evaluate(model, test_loader, "cpu", dp, flip=True)
        shifted_on_workers = evaluate(model, test_loader, "cpu", dp, flip=True, shift=2)
    assert on_workers == pytest.approx(evaluate(model, test_loader, "cpu", flip=True), rel=1e-5)
    assert shifted_on_workers == pytest.approx(
        evaluate(model, test_loader, "cpu", flip=True, shift=2), rel=1e-5
    )


def test_optimizer_updates_reach_the_workers():
    """Three AdamW steps through the workers follow three steps of one process."""
    model, reference = twins()
    opt = optim.AdamW(optim.weight_decay_groups(model.named_parameters(), 0.05), lr=1e-2)
    ref_opt = optim.AdamW(optim.weight_decay_groups(reference.named_parameters(), 0.05), lr=1e-2)
    with DataParallel(model, small_model, 2, 8, (3, 32, 32), 10) as dp:
        for step in range(3):
            x, y = batch(8, seed=step)
            loss, _ = dp.train_step(x, y, step=step)
            expected_loss, _ = reference_gradients(reference, x, y, 0.0)
            assert loss == pytest.approx(expected_loss, rel=1e-4)
            opt.step()
            ref_opt.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=False):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-4, atol=1e-5)
    # After close the model owns ordinary arrays again, with the trained values.
    assert all(isinstance(p.data, np.ndarray) and p.data.base is None for p in model.parameters())


def test_worker_error_is_reported_with_its_traceback(model_and_parallel):
    _, _, dp = model_and_parallel
    x, y = batch(4)
    y[0] = 12  # not a class of a 10-class head
    with pytest.raises(WorkerFailed, match="worker 0 failed"):
        dp.train_step(x, y)
    loss, _ = dp.train_step(*batch(4))  # the workers survive a failed step
    assert np.isfinite(loss)


def test_bad_arguments_are_clear(model_and_parallel):
    _, _, dp = model_and_parallel
    with pytest.raises(ValueError, match="larger than the 16"):
        dp.train_step(*batch(17))
    with pytest.raises(ValueError, match="cannot be split over 2 processes"):
        dp.train_step(*batch(1))
    for wrong in [(4, 3, 40, 40), (4, 32, 32, 3)]:  # too large; channels last
        with pytest.raises(
            ValueError, match=r"expected inputs of shape \(N, 3, H, W\) with H <= 32 and W <= 32"
        ):
            dp.train_step(np.zeros(wrong, np.float32), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="at least 1 process"):
        DataParallel(small_model(), small_model, 0, 8, (3, 32, 32), 10)
    with pytest.raises(ValueError, match="cannot be split"):
        DataParallel(small_model(), small_model, 4, 2, (3, 32, 32), 10)


@pytest.mark.parametrize(
    "ramp", [{}, dict(progressive_size=16, progressive_epochs=1)], ids=["32px", "16-32px"]
)
def test_train_with_two_processes_resumes_exactly(tmp_path, ramp):
    """Stochastic depth included (the tiny config's drop path is 0.1): the workers' masks are resumed too;
    and with progressive resizing, epoch 1 at 16x16 and epoch 2 at 32x32."""
    data = synthetic_cifar()
    train(tiny_config(tmp_path / "a", processes=2, **ramp), data)
    train(tiny_config(tmp_path / "b", processes=2, stop_after=1, **ramp), data)
    train(tiny_config(tmp_path / "b", processes=2, resume=True, **ramp), data)
    a = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.npz")["model"]
    b = load_checkpoint(tmp_path / "b" / "run" / "checkpoint.npz")["model"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_train_with_two_processes_learns(tmp_path):
    record = train(
        tiny_config(tmp_path, processes=2, epochs=4, lr=4e-3, drop_path=0.0), synthetic_cifar(640, 200)
    )
    assert record["test_acc"] > 0.4  # chance is 0.1; the single-process test asks the same
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_processes_need_the_cpu_and_a_splittable_batch(tmp_path):
    with pytest.raises(ValueError, match="at least 1, or 0"):
        train(TrainConfig(processes=-1, out=str(tmp_path / "r")))
    with pytest.raises(ValueError, match="--backend numpy"):
        train(TrainConfig(processes=2, backend="cupy", out=str(tmp_path / "r")))
    with pytest.raises(ValueError, match="cannot be split"):
        train(TrainConfig(processes=4, batch_size=2, out=str(tmp_path / "r")))


def test_auto_processes_is_one_per_core_with_16_images_each(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert resolve_processes(TrainConfig(processes=0, batch_size=128)) == 4
    assert resolve_processes(TrainConfig(processes=0, batch_size=32)) == 2  # 16 images per process at least
    assert resolve_processes(TrainConfig(processes=0, batch_size=8)) == 1
    assert resolve_processes(TrainConfig(processes=0, backend="cupy")) == 1
    assert resolve_processes(TrainConfig(processes=3)) == 3


CTRL_C_CHILD = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # even where the parent shell ignores Ctrl-C
sys.path.insert(0, {tests!r})
from train_helpers import synthetic_cifar, tiny_config
from tinyconvnext.cli import run_command
from tinyconvnext.train import train
from pathlib import Path
def main(argv):
    train(tiny_config(Path({folder!r}), epochs=200, processes={processes}), synthetic_cifar())
    return 0
sys.exit(run_command(main, [], prog="train"))
"""


@pytest.mark.parametrize("processes", [1, 2])
def test_ctrl_c_saves_and_exits_cleanly(tmp_path, processes):
    """Ctrl-C in a terminal signals the whole process group: the loop saves, the workers stop, nothing is
    left, and the command exits with the status of an interruption."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    tests = str(Path(__file__).resolve().parents[1])
    script = CTRL_C_CHILD.format(tests=tests, folder=str(tmp_path), processes=processes)
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 120
        while not metrics.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metrics.exists(), "the run did not finish its first epoch"
        os.killpg(child.pid, signal.SIGINT)
        output, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == EXIT_INTERRUPTED, output  # as a command ends on Ctrl-C, after saving
    assert "interrupted: saved" in output and "Traceback" not in output, output
    state = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert state["step"] >= 5  # at least the first epoch's 5 steps (160 images, batch 32)
    for _ in range(50):  # the workers (and the resource tracker) leave with the main process
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the interrupted run are still alive")
