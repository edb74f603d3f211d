"""``python -m autograd.kernels``: which op has which fast path, and which of them can run on this machine."""

from __future__ import annotations

import autograd.nn  # noqa: F401  (registers the ops of autograd.nn.functional)
from autograd import cupy_available, kernels
from autograd.function import Function
from autograd.kernels.cuda.emulator import compiler


def main() -> None:
    usable = {"cpu": kernels.NUMBA_AVAILABLE, "cuda": cupy_available()}
    print(
        "fast paths: "
        f"{'on' if kernels.enabled() else 'off (AUTOGRAD_KERNELS=reference or set_enabled(False))'}"
    )
    print(
        f"cpu: Numba {'found' if usable['cpu'] else 'not found'}; cuda: CuPy with a GPU "
        f"{'found' if usable['cuda'] else 'not found'}"
    )
    print(f"CUDA emulator (kernels.emulate_cuda()): C++ compiler {compiler() or 'not found'}\n")
    ops = sorted((name, dict(op.fast_paths)) for name, op in Function.registry.items() if op.fast_paths)
    rows = [(name.removeprefix("autograd."), paths) for name, paths in ops]
    rows.append(
        (
            "optim.adamw.AdamW.step",
            {"cpu": "autograd.kernels.cpu.adamw", "cuda": "autograd.kernels.cuda.adamw"},
        )
    )
    width = max(len(name) for name, _ in rows)
    print(f"{'op':<{width}}  {'on NumPy arrays (cpu)':<42}  on CuPy arrays (cuda)")
    for name, paths in rows:
        cells = []
        for device in ("cpu", "cuda"):
            module = paths.get(device)
            cell = "its own body" if module is None else module.removeprefix("autograd.kernels.")
            if module is not None and not (usable[device] and kernels.enabled()):
                cell += " (unused here)"
            cells.append(cell)
        print(f"{name:<{width}}  {cells[0]:<42}  {cells[1]}")
    print("\nEvery other op always runs its own body.")


if __name__ == "__main__":
    main()
