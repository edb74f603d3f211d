"""python -m tinyconvnext.compare_runs: two runs' metrics.jsonl side by side, epoch by epoch."""

import json

import pytest

from tinyconvnext.compare_runs import compare_runs, format_report, load_run, main
from tinyconvnext.curves import append_metrics


def _write_run(folder, accuracies, sizes=None):
    folder.mkdir()
    for epoch, acc in enumerate(accuracies, 1):
        row = {"epoch": epoch, "test_acc": acc, "train_acc": acc + 0.1}
        if sizes:
            row["image_size"] = sizes[epoch - 1]
        append_metrics(folder, row)
    return folder


def test_compares_common_epochs_per_image_size_phase(tmp_path):
    a = _write_run(tmp_path / "a", [0.30, 0.50, 0.70, 0.80], sizes=[24, 24, 32, 32])
    b = _write_run(tmp_path / "b", [0.32, 0.49, 0.73, 0.84, 0.85], sizes=[24, 24, 32, 32, 32])
    result = compare_runs(load_run(a), load_run(b))
    assert [row["epoch"] for row in result["epochs"]] == [1, 2, 3, 4]  # B's epoch 5 has no partner
    assert result["b_ahead"] == 3 and result["a_ahead"] == 1
    assert result["mean_b_minus_a"][24] == pytest.approx((0.02 - 0.01) / 2)
    assert result["mean_b_minus_a"][32] == pytest.approx((0.03 + 0.04) / 2)
    assert result["last"]["epoch"] == 4 and result["last"]["b_minus_a"] == pytest.approx(0.04)
    text = format_report(result, "a", "b", markdown=True)
    assert "| 3 | 32 | 70.00 | 73.00 | +3.00 |" in text
    assert "B higher at 3 of 4 common epochs" in text and "32 px: +3.50" in text


def test_reads_a_metrics_file_as_well_as_a_folder_and_any_key(tmp_path, capsys):
    a = _write_run(tmp_path / "a", [0.5, 0.6])
    b = _write_run(tmp_path / "b", [0.6, 0.5])
    assert main([str(a / "metrics.jsonl"), str(b), "--key", "train_acc"]) == 0
    out = capsys.readouterr().out
    assert "train_acc: B higher at 1 of 2 common epochs, A higher at 1" in out
    assert "70.00 -> 60.00 (-10.00)" in out


def test_clear_errors(tmp_path):
    a = _write_run(tmp_path / "a", [0.5])
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        load_run(tmp_path / "nowhere")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": 1, "test_acc": 0.5}\nnot json\n')
    with pytest.raises(ValueError, match="line 2: not a JSON record"):
        load_run(bad)
    bad.write_text(json.dumps({"test_acc": 0.5}) + "\n")
    with pytest.raises(ValueError, match="integer 'epoch'"):
        load_run(bad)
    later = tmp_path / "later.jsonl"
    later.write_text(json.dumps({"epoch": 7, "test_acc": 0.5}) + "\n")
    with pytest.raises(ValueError, match="no epoch in common"):
        compare_runs(load_run(a), load_run(later))
    with pytest.raises(ValueError, match="no 'test_acc_ema'.*records hold"):
        compare_runs(load_run(a), load_run(a), key="test_acc_ema")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        main([str(a), str(tmp_path / "nowhere")])
