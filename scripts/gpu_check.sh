#!/usr/bin/env bash
# Check the CuPy backend on a machine with an NVIDIA GPU, in one go:
#
#   scripts/gpu_check.sh [OUT]          # OUT defaults to gpu_check_out/
#   PYTHON=/path/to/python TINYCONVNEXT_DATA=/data scripts/gpu_check.sh /tmp/gpu_check
#
# 1. the machine: nvidia-smi, Python, NumPy, CuPy and PyTorch versions  -> OUT/environment.txt
# 2. the test suite, whose "cuda" cases run only where a GPU is seen   -> OUT/tests.txt
# 3. short CIFAR-10 runs of train_cifar.py --backend cupy: one epoch as
#    documented, then a run with EMA, mixup/cutmix and gradient clipping
#    that stops after one epoch and resumes from its checkpoint          -> OUT/train_smoke*.txt, OUT/train_smoke*/
# 4. the GPU benchmarks, CuPy against PyTorch CUDA on the same GPU      -> OUT/bench_model.txt, OUT/bench_ops.txt
#
# It installs nothing. The Python it uses ($PYTHON, else python, else python3) needs:
#   CuPy built for the machine's CUDA:   pip install cupy-cuda12x     (cupy-cuda11x for CUDA 11)
#   a CUDA build of PyTorch (the benchmarks compare with it), and this project's requirements.
# CIFAR-10 is looked for in $TINYCONVNEXT_DATA, else ../shared/data beside the repository.
# Without CuPy and a GPU it stops at once, before running anything. Otherwise every step runs even when
# an earlier one failed; the summary (OUT/summary.txt) names the failed steps and the exit status is 1.
set -euo pipefail

OUT="${1:-gpu_check_out}"
[[ "$OUT" == /* ]] || OUT="$PWD/$OUT"  # relative to where the script is called from
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# It installs nothing, so every step, and every Python they start (the lessons' test runs each lesson
# from a temporary folder), imports this checkout's packages through PYTHONPATH.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-$(command -v python || command -v python3 || true)}"

die() {
    echo "gpu_check: error: $*" >&2
    exit 1
}

[[ -n "$PYTHON" ]] || die "no python found: set PYTHON=/path/to/python"
"$PYTHON" -c "import autograd" || die "$PYTHON cannot import this project (its error is above)"

# -- the gate: CuPy must see a GPU, or nothing else is worth running -----------------------------------
if ! "$PYTHON" -c "import autograd; assert autograd.cupy_available()" 2>/dev/null; then
    reason="$("$PYTHON" - <<'EOF' 2>&1 || true
try:
    import cupy
except Exception as error:
    print(f"CuPy does not import ({type(error).__name__}: {error}); install it with: pip install cupy-cuda12x")
else:
    try:
        print(f"CuPy {cupy.__version__} sees {cupy.cuda.runtime.getDeviceCount()} GPU(s)")
    except Exception as error:
        print(f"CuPy {cupy.__version__} finds no usable GPU ({type(error).__name__}: {error})")
EOF
)"
    die "this check needs CuPy and an NVIDIA GPU, and $PYTHON has none: ${reason}
Nothing was run. On a GPU machine: pip install cupy-cuda12x (for CUDA 12), then run this script again."
fi

DATA="${TINYCONVNEXT_DATA:-$REPO/../shared/data}"
mkdir -p "$OUT"
failed=()
notes=()

# run NAME LOG COMMAND...: run a step, its output shown and kept in OUT/LOG; a failure is recorded, not fatal.
run() {
    local name="$1" log="$OUT/$2"
    shift 2
    echo
    echo "=== $name: $* ($(date '+%H:%M:%S'))" | tee "$log"
    local start=$SECONDS
    if "$@" 2>&1 | tee -a "$log"; then
        echo "=== $name: passed in $((SECONDS - start)) s" | tee -a "$log"
    else
        echo "=== $name: FAILED after $((SECONDS - start)) s (see $log)" | tee -a "$log"
        failed+=("$name")
    fi
}

environment() {
    date
    if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "nvidia-smi: not found"; fi
    "$PYTHON" - <<'EOF'
import platform

import cupy
import numpy
import torch

print(f"python {platform.python_version()} ({platform.python_implementation()}), numpy {numpy.__version__}")
print(f"cupy {cupy.__version__}, GPUs seen: {cupy.cuda.runtime.getDeviceCount()}")
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuda available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"torch GPU: {torch.cuda.get_device_name()}")
cupy.show_config()
EOF
}

run "environment" environment.txt environment

torch_cuda=yes
"$PYTHON" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || torch_cuda=no
if [[ -d "$DATA" ]]; then
    export TINYCONVNEXT_DATA="$DATA"  # for the tests on real data too
fi

run "tests" tests.txt "$PYTHON" -m pytest tests -q -rs

# -- training: the documented smoke run, then EMA + mixup/cutmix + clipping, stopped and resumed ----------
if "$PYTHON" -c "import sys; from tinyconvnext.data.cifar import find_cifar10; sys.exit(find_cifar10(sys.argv[1]) is None)" "$DATA" 2>/dev/null; then
    rm -rf "$OUT/train_smoke" "$OUT/train_smoke_resume"  # runs of an earlier check would refuse to start again
    run "train smoke" train_smoke.txt "$PYTHON" train_cifar.py --backend cupy --epochs 1 --subset 5000 \
        --data "$DATA" --out "$OUT/train_smoke" --no-progress
    resume_flags=(--backend cupy --epochs 2 --subset 1000 --eval-subset 500 --ema-decay 0.99 --mixup 0.8
                  --cutmix 1.0 --grad-clip 1.0 --data "$DATA" --out "$OUT/train_smoke_resume" --no-progress)
    run "train first epoch" train_smoke_resume.txt "$PYTHON" train_cifar.py "${resume_flags[@]}" --stop-after 1
    run "train resumed" train_smoke_resumed.txt "$PYTHON" train_cifar.py "${resume_flags[@]}" --resume
    run "train records" train_records.txt "$PYTHON" - "$OUT" <<'EOF'
import json
import math
import sys
from pathlib import Path

out = Path(sys.argv[1])
for run, epochs, keys in (("train_smoke", 1, ["test_acc"]), ("train_smoke_resume", 2, ["test_acc", "test_acc_ema"])):
    rows = [json.loads(line) for line in (out / run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1)), (run, rows)
    for key in keys:
        assert math.isfinite(rows[-1][key]), (run, key, rows[-1])
    assert (out / run / "checkpoint.npz").exists(), run
    print(run, {k: round(v, 4) for k, v in rows[-1].items() if isinstance(v, float)})
EOF
else
    echo "CIFAR-10 not found in $DATA (set TINYCONVNEXT_DATA): no training runs" | tee "$OUT/train_smoke.txt"
    failed+=("train (no CIFAR-10 in $DATA)")
fi

# -- benchmarks: CuPy against PyTorch CUDA eager on this GPU -------------------------------------------
if [[ "$torch_cuda" == yes ]]; then
    run "bench model" bench_model.txt "$PYTHON" bench/model.py --device cuda
    run "bench ops" bench_ops.txt "$PYTHON" bench/ops.py --device cuda
else
    notes+=("PyTorch here has no CUDA: the benchmarks, which compare with PyTorch CUDA, did not run")
    failed+=("benchmarks (no CUDA PyTorch)")
fi

{
    echo
    echo "=== summary ($(date '+%H:%M:%S')), outputs in $OUT/"
    for note in "${notes[@]+"${notes[@]}"}"; do echo "note: $note"; done
    if ((${#failed[@]})); then
        printf 'FAILED: %s\n' "${failed[@]}"
    else
        echo "all steps passed"
    fi
} | tee "$OUT/summary.txt"
((${#failed[@]} == 0))
