"""The roadmap walk's runner (tinyconvnext.roadmap_walk): the roadmap's networks train through the normal
trainer, each finished result is recorded atomically and skipped on the next call, a result of another recipe
is not counted, and the report's statistics are right on known numbers. Tiny networks on synthetic data."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from train_helpers import synthetic_cifar

from tinyconvnext import checkpoint, cli, roadmap_walk
from tinyconvnext.build import build_fused_model, build_model
from tinyconvnext.config import TrainConfig
from tinyconvnext.roadmap import ROADMAP_MODELS, RoadmapNet
from tinyconvnext.roadmap_walk import (
    GROUPS,
    RECIPE,
    difference_interval,
    load_results,
    mean_and_sd,
    recipe_for,
    recorded,
    report,
    t_critical,
    verdict,
    walk,
)

REPO = Path(__file__).resolve().parents[2]
TINY = dict(batch_size=32, processes=1, warmup_epochs=0.5)  # one process: the tests share two cores


def tiny_recipe(epochs=1, **changes):
    return recipe_for(epochs, width=4, depths="1,1,1,1", base={**RECIPE, **TINY, **changes})


@pytest.mark.parametrize("name", ROADMAP_MODELS)
def test_every_roadmap_name_builds_through_the_trainers_build_model(name):
    config = TrainConfig(**{**tiny_recipe(), "model": name})
    model = build_fused_model(config, num_classes=10, drop_path_rate=0.1)
    assert isinstance(model, RoadmapNet) and model.variant == name
    assert model.config.depths == (1, 1, 1, 1) and model.config.width in (4, 6)  # 6: after "width x1.5"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(kernel_size=5), "--kernel-size cannot change it"),
        (dict(layer_scale=0.1), "--layer-scale cannot change it"),
        (dict(dims="4,6,16,32"), "each twice the one before"),
    ],
)
def test_roadmap_networks_refuse_options_that_would_change_their_step(change, message):
    config = TrainConfig(**{**tiny_recipe(), "model": "roadmap_05_inverted_bottleneck", **change})
    with pytest.raises(ValueError, match=message):
        build_model(config, num_classes=10)


def test_walk_trains_records_then_skips_what_is_recorded(tmp_path, capsys):
    results_path, runs = tmp_path / "results.json", tmp_path / "runs"
    networks, recipe, data = (
        ["roadmap_00_baseline", "roadmap_12_separate_downsampling"],
        tiny_recipe(),
        synthetic_cifar(),
    )
    trained = walk(networks, [0], recipe, results_path, runs, dataset=data, progress=False)
    assert [r["network"] for r in trained] == networks
    results = load_results(results_path)
    assert results == trained  # each appended as it finished, in the order trained
    first = results[0]
    assert first["step"] == "ResNet-style baseline" and first["group"] == "baseline" and first["seed"] == 0
    assert first["recipe"] == recipe and first["epochs"] == 1 and 0 <= first["test_acc"] <= 1
    assert first["params"] > 0 and first["flops"] > 0 and first["seconds"] >= 0 and first["finished_at"]
    assert len(list(runs.glob("roadmap_00_baseline_seed0_1ep_*/model.safetensors"))) == 1  # the trainer's
    capsys.readouterr()

    assert walk(networks, [0], recipe, results_path, runs, dataset=data, progress=False) == []
    assert capsys.readouterr().out.count("already recorded, skipped") == 2
    assert load_results(results_path) == results

    other = tiny_recipe(lr=1e-3)  # another recipe: recorded beside the first, not counted as done
    assert recorded(results, "roadmap_00_baseline", 0, other) is None
    trained = walk(networks[:1], [0], other, results_path, runs, dataset=data, progress=False)
    assert "recorded with another recipe or budget, not counted" in capsys.readouterr().out
    assert len(trained) == 1 and len(load_results(results_path)) == 3


def test_results_are_written_atomically(tmp_path, monkeypatch):
    """A failure while writing the results leaves the old file whole (checkpoint.write_text_atomically)."""
    path = tmp_path / "results.json"
    roadmap_walk.save_results(path, [{"network": "roadmap_00_baseline", "seed": 0}])
    before = path.read_text()

    def failing_write(target, write):
        with open(Path(target).parent / ".partial.tmp", "wb") as f:
            write(f)
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "write_atomically", failing_write)
    with pytest.raises(OSError):
        roadmap_walk.save_results(path, [])
    assert path.read_text() == before and load_results(path) == [
        {"network": "roadmap_00_baseline", "seed": 0}
    ]


def test_a_damaged_results_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="results.json is not a roadmap results file"):
        load_results(path)


# The statistics, on known numbers.


def test_mean_and_sample_standard_deviation():
    assert mean_and_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, sd = mean_and_sd([5.0])
    assert mean == 5.0 and math.isnan(sd)


@pytest.mark.parametrize("df, value", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_critical_values_match_the_table(df, value):
    assert t_critical(df) == pytest.approx(value, abs=1e-3)


def test_paired_interval_on_known_numbers():
    before, after = {0: 50.0, 1: 52.0, 2: 54.0}, {0: 52.0, 1: 54.5, 2: 57.0}  # differences 2, 2.5, 3
    interval = difference_interval(before, after)
    half = 4.3027 * 0.5 / math.sqrt(3)
    assert interval["paired"] and interval["n"] == 3 and interval["mean"] == pytest.approx(2.5)
    assert (interval["low"], interval["high"]) == pytest.approx((2.5 - half, 2.5 + half), abs=1e-3)
    assert verdict(interval) == "gain"
    assert verdict(difference_interval(after, before)) == "loss"


def test_unpaired_welch_interval_where_seeds_differ():
    before, after = {0: 50.0, 1: 52.0}, {5: 51.0, 6: 53.0}  # no seed in common: Welch, df = 2
    interval = difference_interval(before, after)
    half = 4.3027 * math.sqrt(2 / 2 + 2 / 2)
    assert not interval["paired"] and interval["mean"] == pytest.approx(1.0)
    assert (interval["low"], interval["high"]) == pytest.approx((1.0 - half, 1.0 + half), abs=1e-3)
    assert verdict(interval) == "not distinguishable"


def test_one_seed_gives_no_interval_and_no_verdict():
    interval = difference_interval({0: 50.0}, {0: 60.0})
    assert math.isnan(interval["low"]) and verdict(interval) == "not distinguishable"


@given(
    differences=st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=6),
    shift=st.floats(-3, 3, allow_nan=False),
)
def test_interval_holds_its_mean_and_a_verdict_excludes_zero(differences, shift):
    before = {seed: 50.0 for seed in range(len(differences))}
    after = {seed: 50.0 + d + shift for seed, d in enumerate(differences)}
    interval = difference_interval(before, after)
    assert interval["low"] <= interval["mean"] + 1e-9 and interval["mean"] <= interval["high"] + 1e-9
    label = verdict(interval)
    assert label == "gain" if interval["low"] > 0 else label == "loss" if interval["high"] < 0 else True
    assert interval["mean"] == pytest.approx(float(np.mean(differences)) + shift, abs=1e-9)


def test_report_lists_networks_changes_and_final_against_baseline():
    recipe = tiny_recipe()
    results = [
        dict(
            network=network,
            seed=seed,
            test_acc=(50 + 2 * i + seed) / 100,
            recipe=recipe,
            flops=1e6,
            params=1e5,
        )
        for i, (_, network) in enumerate(GROUPS[:3])
        for seed in range(3)
    ]
    results.append(dict(results[0], recipe=tiny_recipe(epochs=2)))
    text = report(results)
    assert "1 result(s) with another recipe or budget left out" in text
    assert "roadmap_00_baseline" in text and " 3   51.00 +-  1.00" in text
    assert "roadmap_00_baseline -> roadmap_02_patchify_stem" in text and "+2.00 points" in text
    assert "roadmap_00_baseline -> roadmap_04_wider   " in text and "+4.00 points" in text
    assert report([]) == "no results recorded yet"


# The command line.


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "--epochs: expected a whole number of at least 1, got '0'"),
        (["--seeds", "x"], "--seeds: expected a whole number of at least 0, got 'x'"),
        (
            ["--networks", "resnet50", "--epochs", "1"],
            "--networks 'resnet50': expected groups, all, or names",
        ),
        (["--budget-check", "-2"], "--budget-check: expected a whole number of at least 1"),
        (["--depths", "1,x"], "--depths: expected whole numbers of at least 1 by commas"),
        ([], "--epochs is required to train"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [*argv, "--results", str(tmp_path / "results.json"), "--runs", str(tmp_path / "runs")]
    try:
        status = cli.run_command(roadmap_walk.main, argv, prog="roadmap_walk")
    except SystemExit as exit:
        status = exit.code
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results.json").exists()


def test_report_of_a_results_file_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "results.json"
    recipe = tiny_recipe()
    rows = [
        dict(network="roadmap_00_baseline", seed=s, test_acc=0.5, recipe=recipe, flops=2e6, params=3e5)
        for s in (0, 1)
    ]
    path.write_text(json.dumps({"results": rows}))
    assert roadmap_walk.main(["--report", "--results", str(path)]) == 0
    assert "roadmap_00_baseline" in capsys.readouterr().out


def test_a_damaged_results_file_is_one_line_from_a_fresh_interpreter(tmp_path):
    (tmp_path / "results.json").write_text("[1, 2")
    command = [
        sys.executable,
        "-m",
        "tinyconvnext.roadmap_walk",
        "--report",
        "--results",
        str(tmp_path / "results.json"),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "TINYCONVNEXT_DEBUG": ""}
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("is not a roadmap results file: expected JSON with a 'results' list")


def test_budget_check_records_the_baseline_at_both_budgets(tmp_path, capsys):
    results_path = tmp_path / "results.json"
    gain = roadmap_walk.budget_check(
        1, lambda epochs: tiny_recipe(epochs), results_path, tmp_path / "runs", dataset=synthetic_cifar(),
        progress=False,
    )  # fmt: skip
    results = load_results(results_path)
    assert [(r["network"], r["seed"], r["epochs"]) for r in results] == [
        ("roadmap_00_baseline", 0, 1),
        ("roadmap_00_baseline", 0, 2),
    ]
    assert gain == pytest.approx(100 * (results[1]["test_acc"] - results[0]["test_acc"]))
    out = capsys.readouterr().out
    assert "baseline, seed 0: 1 epochs" in out and "2 epochs" in out and "by the 1-point rule" in out
