"""A short training run on 2,000 real CIFAR-10 images, through the command users run (train_cifar.py).

Needs the real data ($TINYCONVNEXT_DATA, else ../shared/data beside the repository); skipped otherwise.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_data_dir

REPO = Path(__file__).resolve().parents[2]
DATA = shared_data_dir()
pytestmark = pytest.mark.skipif(
    DATA is None or not (DATA / "cifar-10-binary.tar.xz").exists(),
    reason="CIFAR-10 not found: set TINYCONVNEXT_DATA (or ../shared/data)",
)


def test_train_cifar_on_a_subset_beats_chance_by_far(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "TINYCONVNEXT_CACHE": str(tmp_path / "cache")}
    command = [
        sys.executable,
        str(REPO / "train_cifar.py"),
        "--data",
        str(DATA),
        "--out",
        str(out),
        "--subset",
        "2000",
        "--eval-subset",
        "1000",
        "--epochs",
        "4",
        "--batch-size",
        "64",
        "--lr",
        "4e-3",
        "--depths",
        "1,2,1",
        "--dims",
        "32,64,128",
        "--drop-path",
        "0.0",
        "--warmup-epochs",
        "0.5",
        "--progressive-epochs",
        "2",
        "--no-progress",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    # 1,000 held-out test images, 10 classes: chance is 10%.
    assert rows[-1]["test_acc"] >= 0.30, rows[-1]
    assert (
        rows[-1]["test_acc_tta"] >= 0.30 and "test_acc_tta" not in rows[0]
    )  # the defaults' --tta, last epoch only
    assert [r["image_size"] for r in rows] == [
        24,
        24,
        32,
        32,
    ]  # the defaults' progressive resizing from 24x24
    assert (out / "curves.png").stat().st_size > 10_000 and (out / "checkpoint.npz").exists()


def test_train_cifar_help_lists_the_options():
    result = subprocess.run(
        [sys.executable, str(REPO / "train_cifar.py"), "--help"], capture_output=True, text=True, check=True
    )
    for option in (
        "--backend",
        "--model",
        "--epochs",
        "--batch-size",
        "--lr",
        "--data",
        "--out",
        "--resume",
        "--seed",
        "--time-budget",
        "--progressive-size",
        "--progressive-epochs",
    ):
        assert option in result.stdout
