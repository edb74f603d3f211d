"""A training run's records: its configuration, its checkpoint (saved, and resumed), its metrics and curves,
and its trained model loaded back.

A run folder (``--out``) holds ``config.json`` (the run's options, the truth a resume continues from, and
``changes``: the options that resumes changed, each with its old and new value and the epoch it took effect
after), ``metrics.jsonl``/``metrics.csv`` (one record per epoch), ``curves.png`` and ``checkpoint.npz``
(model, optimizer, EMA, random states, epoch, batch and step: see checkpoint.py), all rewritten atomically
after every epoch. When the run ends (its last epoch, or its time budget spent) also ``model.safetensors``,
the trained weights (not their EMA) with official names and, as metadata, the variant, the classes, the
run's preprocessing and configuration (what ``python -m tinyconvnext.predict`` and other tools need; the
machine's paths, ``data`` and ``out``, left out); a run with ``--ema-decay`` writes its averaged weights
beside them, as ``model_ema.safetensors`` (the same metadata, and ``"weights": "ema"``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from autograd import random as ag_random

from . import cli
from .build import build_model
from .checkpoint import load_checkpoint, save_checkpoint, write_text_atomically
from .config import INVOCATION_ONLY, RESUME_MAY_CHANGE, RESUME_RULE, config_from_record, flag
from .curves import plot_curves, record_epoch, truncate_metrics
from .weights import num_classes_of, run_preprocessing, save_safetensors, weights_metadata

RECORD_FILES = (
    "checkpoint.npz",
    "config.json",
    "metrics.jsonl",
    "metrics.csv",
    "model.safetensors",
    "model_ema.safetensors",
)
MACHINE_PATHS = ("data", "out")  # where the run lived on its machine: of no use to a weights file's reader


def save_final_weights(out: Path, config, model, num_classes: int, ema=None) -> Path:
    """``model.safetensors``: the trained weights, written atomically, with their metadata; with ``ema``
    (a ``ModelEma``) also ``model_ema.safetensors``, the averaged weights."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in MACHINE_PATHS}
    metadata = weights_metadata(config.model, num_classes, run_preprocessing(settings), settings)
    if ema is not None:
        save_safetensors(
            ema.state_dict(), Path(out) / "model_ema.safetensors", {**metadata, "weights": "ema"}
        )
    return save_safetensors(model, Path(out) / "model.safetensors", metadata)


def write_config(out: Path, config, changes: list | None = None) -> None:
    """config.json: ``config``'s fields and the ``changes`` resumes made, written atomically."""
    record = {**dataclasses.asdict(config), "changes": changes or []}
    write_text_atomically(Path(out) / "config.json", json.dumps(record, indent=2) + "\n")


def recorded_config(out: Path) -> dict:
    """The run in ``out`` as recorded: config.json's fields and ``changes`` (a run without config.json: its
    checkpoint's configuration, no changes)."""
    path = Path(out) / "config.json"
    if not path.exists():
        return {**load_checkpoint(Path(out) / "checkpoint.npz")["config"], "changes": []}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a run's configuration: {error}") from None
    return {"changes": [], **record}


def check_run_folder(out: Path, resume: bool) -> dict | None:
    """A resume's recorded run (``recorded_config``), after checking that ``out`` holds one; for a new run,
    None after checking that ``out`` holds no other run's records (a new run never appends to them)."""
    found = [name for name in RECORD_FILES if (out / name).exists()]
    if resume:
        if "checkpoint.npz" not in found:
            raise FileNotFoundError(
                f"--resume: no checkpoint.npz in {out} to continue; drop --resume to start a new run there"
            )
        return recorded_config(out)
    if "checkpoint.npz" in found:
        raise FileExistsError(
            f"{out / 'checkpoint.npz'} exists: pass --resume to continue it, or choose another --out"
        )
    if found:
        raise FileExistsError(
            f"{out} holds another run's records ({', '.join(found)}) but no checkpoint to resume: "
            "choose another --out, or remove them"
        )
    return None


def _as_flag(field: str, value) -> str:
    if isinstance(value, bool):
        return flag(field) if value else flag("no_" + field)
    return f"{flag(field)} {value}"


def resume_changes(recorded: dict, config, out: Path, typed=None) -> list[tuple]:
    """(field, recorded value, new value) for each option that ``config`` changes and a resume may change
    (``RESUME_MAY_CHANGE``; ``--epochs`` only to more); any other difference is refused by name. ``typed``:
    the configuration as given, before ``--processes 0`` was resolved to a count, which the refusal quotes."""
    changes, refused = [], []
    for field in dataclasses.fields(config):
        name = field.name
        if name in ("out", "resume", *INVOCATION_ONLY):
            continue
        old, new = recorded.get(name, field.default), getattr(config, name)
        if old == new:
            continue
        if name in RESUME_MAY_CHANGE and not (name == "epochs" and new < old):
            changes.append((name, old, new))
            continue
        given = getattr(typed, name, new)
        shown = _as_flag(name, given) + (f" ({new} on this machine)" if given != new else "")
        refused.append(f"{shown} contradicts the recorded {_as_flag(name, old)}")
    if refused:
        raise cli.UsageError(
            f"{'; '.join(refused)} of {out}: a resume continues the recorded run. {RESUME_RULE.capitalize()}"
        )
    return changes


def dated_changes(recorded: dict, changes: list[tuple], epoch: int) -> list[dict]:
    """config.json's ``changes``: the recorded ones, then ``changes`` in effect after ``epoch`` epochs."""
    new = [
        {"flag": flag(name), "old": old, "new": value, "after_epoch": epoch} for name, old, value in changes
    ]
    return [*recorded.get("changes", []), *new]


def resumed_config(config, given: set):
    """The configuration of ``--resume``: the run recorded in ``config.out``, with the options ``given`` on
    the command line over it (``resume_changes`` then refuses those that contradict it) and this
    invocation's own ``INVOCATION_ONLY`` options."""
    resumed = config_from_record(check_run_folder(Path(config.out).expanduser(), resume=True))
    keep = {name: getattr(config, name) for name in (*given, *INVOCATION_ONLY, "out", "resume")}
    return dataclasses.replace(resumed, **keep)


def save_run(path: Path, config, model, optimizer, ema, position: dict) -> None:
    """The checkpoint of a run: weights, optimizer, EMA, the random generator, and ``position`` (where it
    resumes: ``epoch``, ``batch``, ``step``, and ``elapsed_seconds`` so far)."""
    state = {
        "config": dataclasses.asdict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": ag_random.default_generator.get_state(),
        **position,
    }
    if ema is not None:
        state["ema"] = ema.state_dict()
    save_checkpoint(path, state)


def resume_run(path: Path, config, model, optimizer, ema) -> dict:
    """Load a run's checkpoint into ``model``, ``optimizer``, ``ema`` and the random generator, drop the
    metrics of the epochs it will repeat, and return its position (as ``save_run`` takes it). A checkpoint
    of another model or data set is refused."""
    state = load_checkpoint(path)
    if state["config"]["model"] != config.model or state["config"]["dataset"] != config.dataset:
        raise ValueError(
            f"{path} is a {state['config']['model']} run on {state['config']['dataset']}, "
            f"not {config.model} on {config.dataset}: use another --out"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if ema is not None and "ema" in state:
        ema.load_state_dict(state["ema"])
    ag_random.default_generator.set_state(state["rng"])
    position = {key: state[key] for key in ("epoch", "batch", "step")}
    position["elapsed_seconds"] = state.get("elapsed_seconds", 0.0)
    truncate_metrics(path.parent, position["epoch"])  # records of completed epochs only (numbered from 1)
    print(
        f"resumed from {path}: epoch {position['epoch']}, batch {position['batch']}, step {position['step']}"
    )
    return position


def write_epoch(out: Path, record: dict, title: str) -> None:
    """Write an epoch's record after the earlier epochs' (``curves.record_epoch``) and redraw the curves."""
    record_epoch(out, record)
    plot_curves(out, title)


def load_trained_model(path, ema: bool = False):
    """(model, config) of a training run: ``path`` is its run folder (``--out``) or its ``checkpoint.npz``.
    ``ema=True`` loads the averaged weights (the run must have used ``--ema-decay``). The model is in eval
    mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder or checkpoint")
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"no training checkpoint at {path}: expected a run folder or its checkpoint.npz"
        )
    state = load_checkpoint(path)
    try:
        config = config_from_record(state["config"])
        if ema and "ema" not in state:
            raise ValueError(f"{path} holds no EMA weights (the run was trained without --ema-decay)")
        weights = state["ema"] if ema else state["model"]
    except KeyError as error:
        raise ValueError(f"{path} is not a training checkpoint: it has no {error} entry") from None
    model = build_model(config, num_classes=num_classes_of(weights))
    model.load_state_dict(weights)
    return model.eval(), config
