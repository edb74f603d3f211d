r"""Training ConvNeXt: a run from its configuration to its records, epoch by epoch (``train``, ``main``).

    python -m tinyconvnext.train --dataset cifar10 --model convnext_cifar_atto --epochs 30
    python -m tinyconvnext.train --dataset imagenette --model convnext_atto --image-size 128 --epochs 20
    python -m tinyconvnext.train --dataset imagenette --model resnet18d --optimizer sgd --lr 0.1 \
        --weight-decay 5e-4

Recipe: AdamW (no decay on biases, norms and layer-scale gammas), or SGD with Nesterov momentum for the
ResNet-D baselines (``--optimizer sgd``), linear warmup then cosine decay per step,
label smoothing, optional mixup/cutmix, RandAugment and random erasing, stochastic depth, gradient
clipping, and an EMA of the weights evaluated beside them.
Every epoch rewrites ``config.json``, ``metrics.jsonl`` and ``metrics.csv`` whole, redraws ``curves.png``
and writes ``checkpoint.npz`` (model, optimizer, EMA, random states, epoch and step), each atomically (a
temporary file renamed over the old one). A new run refuses a folder that holds another run's records.
``--resume`` continues the recorded run exactly where its checkpoint stopped, with its recorded settings: a
flag that contradicts them is refused, and the few that may change (a longer ``--epochs``, a
``--time-budget``) are recorded in ``config.json``'s ``changes``. Ctrl-C saves and exits (status 130); a
loss that turns NaN or inf stops the run and leaves the last good checkpoint in place. A run that fails
before its first epoch's records leaves nothing behind. Bad values are refused with one line and exit
status 2 (``cli.py``). The run's end (its last epoch, or its time budget spent) also writes its trained
weights as ``model.safetensors`` (records.py).

Where the parts live: config.py (the options), build.py (model, optimizer), pipeline.py (data),
engine.py (the training step and evaluation), after_epoch.py, records.py (checkpoints and metrics).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from autograd import nn, optim
from autograd.memory import retain_freed_memory

from . import cli, records
from .after_epoch import evaluate_after_epoch
from .build import (
    BackendUnavailable,
    build_fused_model,
    build_model,
    build_optimizer,
    device_for,
    resolve_processes,
)
from .config import TrainConfig, check_values, parse_command_line
from .ema import ModelEma
from .engine import NonFiniteLoss, evaluate, forward_backward, train_one_epoch
from .interrupt import ctrl_c_deferred
from .parallel import DataParallel
from .pipeline import (
    ImageDataset,
    eval_size,
    fit_progressive_size,
    initial_model,
    load_dataset,
    make_loaders,
    normalization,
    progressive_stride,
    train_image_size,
)
from .records import load_trained_model

# What lessons, tests and scripts import from here, some of it defined in the modules above.
__all__ = [
    "BackendUnavailable",
    "ImageDataset",
    "NonFiniteLoss",
    "TrainConfig",
    "build_model",
    "evaluate",
    "load_trained_model",
    "main",
    "make_loaders",
    "normalization",
    "train",
]


PROG = "python -m tinyconvnext.train"


@dataclasses.dataclass
class Run:
    """What a training run holds while it runs, and where a checkpoint written now would resume."""

    config: TrainConfig
    device: str
    out: Path
    train_loader: object
    test_loader: object
    num_classes: int
    model: object
    optimizer: object
    ema: ModelEma | None
    ema_model: object | None
    changes: list = dataclasses.field(default_factory=list)  # config.json's: what resumes changed
    parallel: DataParallel | None = None
    position: dict = dataclasses.field(
        default_factory=lambda: {"epoch": 0, "batch": 0, "step": 0, "elapsed_seconds": 0.0}
    )
    started: float = dataclasses.field(default_factory=time.perf_counter)

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoint.npz"

    def elapsed(self) -> float:
        """Seconds of training so far, over every invocation of this run."""
        return self.position["elapsed_seconds"] + time.perf_counter() - self.started

    def save(self) -> None:
        """A checkpoint that resumes at ``position``, and config.json beside it."""
        position = {**self.position, "elapsed_seconds": self.elapsed()}
        records.save_run(self.checkpoint, self.config, self.model, self.optimizer, self.ema, position)
        records.write_config(self.out, self.config, self.changes)


def check_config(config: TrainConfig) -> TrainConfig:
    """The configuration as the run records it (``processes`` resolved, ``out`` and ``data`` absolute
    paths), after clear errors (``cli.UsageError``) for values out of range and options that cannot go
    together."""
    config = dataclasses.replace(config, processes=resolve_processes(config))
    check_values(config)
    out = Path(os.path.abspath(Path(config.out).expanduser()))
    check_out_folder(out, config.out)
    data = config.data
    if data is not None:
        data = os.path.abspath(Path(data).expanduser())
        if not os.path.exists(data):
            raise cli.UsageError(f"--data {config.data}: no such folder (expected one holding the data set)")
    return dataclasses.replace(config, out=str(out), data=data)


def check_out_folder(out: Path, given: str) -> None:
    """Refuse, before any data is loaded, an ``--out`` (``given``, absolute: ``out``) that cannot become a
    run folder: a file, or a path whose nearest existing folder is a file or cannot be written to."""
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"--out {given} is a file: expected a run folder")
    existing = out
    while not existing.exists():  # the folders that the run would create, up to one that is there
        existing = existing.parent
    if not existing.is_dir():
        raise cli.UsageError(f"--out {given}: {existing} is a file, so no run folder can be made in it")
    try:  # a trial file, nameless where the file system allows it, tells what permissions alone do not
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise cli.UsageError(
            f"--out {given}: {existing} is not writable ({error.strerror}): expected a folder you can write"
        ) from None


def set_up(config: TrainConfig, device: str, dataset: ImageDataset | None, typed=None) -> Run:
    """The data, the model (fused), its optimizer and EMA; with --resume, where the checkpoint stopped.
    Nothing is written yet: the run folder gets its first files with the first epoch's records. ``typed``:
    the configuration as given (a resume's refusal quotes it)."""
    out = Path(config.out)
    recorded = records.check_run_folder(out, config.resume)  # a resume's recorded config and changes
    changes = records.resume_changes(recorded, config, out, typed) if recorded else []
    data = dataset if dataset is not None else load_dataset(config)
    train_loader, test_loader, num_classes = make_loaders(config, data)
    if len(train_loader) == 0:
        raise cli.UsageError(
            f"--batch-size {config.batch_size} is larger than the training set "
            f"({train_loader.num_items} images)"
        )
    model = initial_model(config, data, num_classes).to(device)  # seeded; a resume loads its weights below
    if config.precise_bn_batches and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        raise cli.UsageError(
            f"--precise-bn-batches recomputes BatchNorm statistics, but {config.model} with "
            f"--norm-layer {config.norm_layer} has no BatchNorm layer"
        )
    ema = ModelEma(model, config.ema_decay) if config.ema_decay else None
    # The model that evaluates the EMA weights is built now, so that its initialisation never draws from
    # the random generator between a checkpoint and the batches after it.
    ema_model = build_fused_model(config, num_classes).to(device) if ema is not None else None
    optimizer = build_optimizer(config, model)
    run = Run(config, device, out, train_loader, test_loader, num_classes, model, optimizer, ema, ema_model)
    if config.resume:
        run.position = records.resume_run(run.checkpoint, config, model, optimizer, ema)
        run.changes = records.dated_changes(recorded, changes, run.position["epoch"])
    return run


def start_workers(run: Run) -> None:
    """With --processes N > 1, the data-parallel workers, started from the weights the run has now."""
    config = run.config
    side = max(config.image_size, eval_size(config))  # the largest images the workers are sent
    run.parallel = DataParallel(
        run.model,
        functools.partial(build_fused_model, config, run.num_classes, config.drop_path),
        config.processes,
        max(config.batch_size, config.eval_batch_size),
        (3, side, side),
        run.num_classes,
        seed=config.seed,
    )


def one_epoch(run: Run, epoch: int, stride: int) -> tuple[dict, bool]:
    """Train one epoch (or its rest, when resuming inside it) and evaluate: (its record, whether it ran to
    its end)."""
    config, position = run.config, run.position
    steps = len(run.train_loader)
    total, warmup = config.epochs * steps, int(round(config.warmup_epochs * steps))
    schedule = functools.partial(_lr_at, total=total, warmup=warmup, config=config)
    if run.parallel is not None:
        step_fn = functools.partial(_parallel_step, run.parallel, config.label_smoothing)
    else:
        step_fn = functools.partial(_step, run.model, run.device, config.label_smoothing)
    deadline = run.started - position["elapsed_seconds"] + 60 * config.time_budget
    side = train_image_size(config, epoch, stride)
    trained = train_one_epoch(
        run.model, step_fn, run.optimizer, run.train_loader, epoch, side, config, schedule, position,
        ema=run.ema, deadline=deadline if config.time_budget else None,
    )  # fmt: skip
    finished = position["batch"] == steps  # else the time budget ended it: resume inside it
    record = {"epoch": epoch + 1, **{key: trained[key] for key in ("step", "lr", "train_loss", "train_acc")}}
    tests = evaluate_after_epoch(run, epoch, side, finished)
    record.update(test_loss=tests.pop("test_loss"), test_acc=tests.pop("test_acc"))
    record.update({key: trained[key] for key in ("epoch_seconds", "images_per_second")})
    record["elapsed_seconds"] = run.elapsed()
    if config.progressive_size:
        record["image_size"] = side
    record.update(tests)
    return record, finished


def write_records(run: Run, record: dict, finished: bool, ends: bool) -> None:
    """The epoch's record and curves, and a checkpoint that resumes after it (or inside it, when the time
    budget ended it), written whole even if Ctrl-C comes meanwhile; when the run ``ends`` (its last epoch,
    or its time budget spent), its trained weights too."""
    position = run.position
    with ctrl_c_deferred():
        records.write_epoch(run.out, record, f"{run.config.model} on {run.config.dataset}")
        if finished:
            position["epoch"], position["batch"] = record["epoch"], 0
        run.save()
        if ends:
            records.save_final_weights(run.out, run.config, run.model, run.num_classes, run.ema)
    print(json.dumps(record), flush=True)


def _lr_at(step, total, warmup, config):
    return optim.cosine_with_warmup(step, total, warmup, config.lr, config.min_lr)


def _step(model, device, label_smoothing, x, y, step):
    return forward_backward(model, x, y, device, label_smoothing)


def _parallel_step(parallel, label_smoothing, x, y, step):
    return parallel.train_step(x, y, label_smoothing, step)


def budget_spent(config: TrainConfig, record: dict) -> bool:
    """Whether the run's time budget (if any) is spent by the end of ``record``'s epoch."""
    return bool(config.time_budget) and record["elapsed_seconds"] > 60 * config.time_budget


def stops_early(config: TrainConfig, record: dict, epochs_run: int) -> bool:
    """Whether the run ends before its last epoch: its time budget is spent, or --stop-after says so."""
    if budget_spent(config, record):
        print(
            f"time budget of {config.time_budget} minutes reached after epoch {record['epoch']}", flush=True
        )
        return True
    if config.stop_after and epochs_run >= config.stop_after and record["epoch"] < config.epochs:
        print(f"stopping after {config.stop_after} epoch(s) as asked; continue with --resume", flush=True)
        return True
    return False


def train(config: TrainConfig, dataset: ImageDataset | None = None) -> dict:
    """Run (or resume) a training run; returns the last epoch's record. ``dataset`` overrides loading.
    Ctrl-C saves a checkpoint where training stopped, says so, and raises ``KeyboardInterrupt``."""
    typed, config = config, check_config(config)
    device = device_for(config.backend)
    stride = progressive_stride(config)
    retain_freed_memory()  # reuse freed activations instead of faulting in fresh pages every step
    run = set_up(config, device, dataset, typed)
    record, first_epoch = {}, run.position["epoch"]
    if first_epoch >= config.epochs:
        print(f"{run.out} has finished its {config.epochs} epochs: pass a larger --epochs to extend it")
    if config.processes > 1:  # after any resume: the workers start from the weights loaded
        start_workers(run)
    try:
        for epoch in range(first_epoch, config.epochs):
            run.position["epoch"] = epoch
            record, finished = one_epoch(run, epoch, stride)
            ends = (finished and record["epoch"] == config.epochs) or budget_spent(config, record)
            write_records(run, record, finished, ends)
            if stops_early(config, record, epoch + 1 - first_epoch):
                break
    except NonFiniteLoss as error:
        kept = (
            f"The last good checkpoint is {run.checkpoint}"
            if run.checkpoint.exists()
            else f"No checkpoint was written yet in {run.out}"
        )
        raise NonFiniteLoss(f"{error}. {kept} (lower --lr, or clip gradients with --grad-clip)") from None
    except KeyboardInterrupt:
        run.save()
        print(
            f"\ninterrupted: saved {run.checkpoint} at epoch {run.position['epoch'] + 1}, batch "
            f"{run.position['batch']}; continue with --resume",
            flush=True,
        )
        raise  # the command exits with cli.EXIT_INTERRUPTED (run_command)
    finally:
        if run.parallel is not None:
            run.parallel.close()
    return record


def command_line_config(argv, defaults: TrainConfig, prog: str, doc: str | None) -> TrainConfig:
    """The run a command line asks for: a new run's options over ``defaults`` (with a default that does not
    fit the model adapted, and said so), or a resume's recorded options with the flags given over them."""
    config, given = parse_command_line(defaults, argv, prog, doc)
    if config.resume:
        return records.resumed_config(config, given)
    check_values(config)  # before the model's stride is worked out from its --depths and --dims
    config, note = fit_progressive_size(config, given)
    if note:
        print(f"{prog}: note: {note}", file=sys.stderr)
    return config


def main(argv=None, defaults: TrainConfig | None = None, prog=PROG, doc: str | None = __doc__) -> int:
    """The training command: ``train(...)`` of the command line ``argv`` (None: ``sys.argv``)."""
    config = command_line_config(argv, defaults or TrainConfig(), prog, doc)
    try:
        train(config)
    except (NonFiniteLoss, BackendUnavailable) as error:
        print(f"{prog}: error: {cli.one_line(error)}", file=sys.stderr)
        return cli.EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main, prog=PROG))
