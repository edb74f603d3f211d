"""A training run's records: its checkpoint (saved, and resumed), its metrics and curves, and its trained
model loaded back.

A run folder (``--out``) holds ``config.json``, ``metrics.jsonl``/``metrics.csv`` (one record per epoch),
``curves.png`` and ``checkpoint.npz`` (model, optimizer, EMA, random states, epoch, batch and step: see
checkpoint.py), all rewritten after every epoch.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from autograd import random as ag_random

from .build import build_model
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .curves import append_metrics, plot_curves, truncate_metrics
from .weights import num_classes_of


def write_config(out: Path, config) -> None:
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))


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
    """Append an epoch's record to the metrics and redraw the curves."""
    append_metrics(out, record)
    plot_curves(out, title)


def load_trained_model(path, ema: bool = False):
    """(model, config) of a training run: ``path`` is its run folder (``--out``) or its ``checkpoint.npz``.
    ``ema=True`` loads the averaged weights (the run must have used ``--ema-decay``). The model is in eval
    mode."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"no training checkpoint at {path}: expected a run folder or its checkpoint.npz"
        )
    state = load_checkpoint(path)
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    if ema and "ema" not in state:
        raise ValueError(f"{path} holds no EMA weights (the run was trained without --ema-decay)")
    weights = state["ema"] if ema else state["model"]
    model = build_model(config, num_classes=num_classes_of(weights))
    model.load_state_dict(weights)
    return model.eval(), config
