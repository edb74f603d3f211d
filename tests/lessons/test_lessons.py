"""Every numbered lesson runs on its own in --quick mode, exits 0 and writes the figures it promises.

Each lesson runs in a fresh interpreter (sys.executable), from a temporary working directory, with its
figures sent to a temporary folder. The figures each lesson must draw are listed here, so a lesson
that stops drawing one (or starts drawing an unlisted one) fails. A new lesson needs an entry.

Lessons 11, 12 and 14 train on real CIFAR-10 when they find it ($TINYCONVNEXT_DATA, else ../shared/data
beside the repository, else the download cache); without it a lesson says so, exits 0 and draws only the
figures that need no data. Which of the two is expected is decided here, from the same search. Every
lesson parses its options before any heavy work: a bad value is refused in one line with exit status 2, no
traceback.
"""

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_data_dir
from PIL import Image

LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"
LESSONS = sorted(path.name for path in LESSONS_DIR.glob("[0-9][0-9]_*.py"))

EXPECTED_FIGURES = {
    "01_arrays_and_broadcasting.py": ["strides.png", "broadcasting.png"],
    "02_scalar_autograd.py": ["moons.png"],
    "03_tensor_and_graph.py": ["graph.png"],
    "04_gradient_checking.py": ["eps_sweep.png"],
    "05_convolution_im2col.py": ["im2col.png", "patchify.png"],
    "06_depthwise_convolution.py": [],
    "07_norms_and_activations.py": ["norms.png", "gelu_vs_relu.png"],
    "08_convnext_block_and_model.py": ["architecture.png"],
    "09_official_weights.py": ["prediction.png"],
    "10_modules_optimisers_and_the_loop.py": ["optimisers.png"],
    "11_training_cifar10.py": ["lr_schedule.png", "curves.png"],
    "12_modernisation_roadmap.py": ["roadmap_costs.png", "roadmap.png"],
    "13_the_gpu.py": ["step_profile.png"],
    "14_what_the_network_learned.py": ["stem_filters.png", "depthwise_kernels.png", "erf.png"],
}

# Figures drawn only when the lesson finds CIFAR-10; without it, the lesson must print SKIP_MESSAGE.
NEEDS_CIFAR10 = {
    "11_training_cifar10.py": ["curves.png"],
    "12_modernisation_roadmap.py": ["roadmap.png"],
    "14_what_the_network_learned.py": ["stem_filters.png", "depthwise_kernels.png", "erf.png"],
}
SKIP_MESSAGE = "CIFAR-10 not found"


def cifar10_found():
    """Whether a lesson looking in $TINYCONVNEXT_DATA, else ../shared/data, then the cache, finds CIFAR-10."""
    from tinyconvnext.data import find_cifar10

    return find_cifar10(shared_data_dir()) is not None


# A hung lesson fails instead of blocking the suite. In --quick mode a lesson takes seconds (the
# first run after a fresh checkout also compiles the Numba kernels it uses: lesson 6 every step of its
# kernel chapter); lesson 11 trains for three short epochs, under a minute on two shared cores.
TIMEOUT_SECONDS = 300
MIN_SIDE = 100  # pixels: a real figure, not a placeholder


def test_every_lesson_has_an_entry():
    assert LESSONS, f"no lessons found in {LESSONS_DIR}"
    assert sorted(EXPECTED_FIGURES) == LESSONS, (
        "EXPECTED_FIGURES must list exactly the lessons in lessons/: "
        f"missing entries {sorted(set(LESSONS) - set(EXPECTED_FIGURES))}, "
        f"entries without a lesson {sorted(set(EXPECTED_FIGURES) - set(LESSONS))}"
    )


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_quick_and_draws_its_figures(lesson, tmp_path):
    out = tmp_path / "figures"
    env = dict(os.environ, MPLBACKEND="Agg")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(LESSONS_DIR / lesson), "--quick", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    seconds = time.perf_counter() - start
    print(f"{lesson}: {seconds:.1f} s")
    assert result.returncode == 0, (
        f"{lesson} exited with {result.returncode}\n--- stdout (end) ---\n{result.stdout[-3000:]}"
        f"\n--- stderr (end) ---\n{result.stderr[-3000:]}"
    )
    expected = EXPECTED_FIGURES.get(lesson, [])
    if lesson in NEEDS_CIFAR10 and not cifar10_found():
        assert SKIP_MESSAGE in result.stdout, f"{lesson} found no CIFAR-10 but did not say so"
        expected = [name for name in expected if name not in NEEDS_CIFAR10[lesson]]
    written = sorted(path.name for path in out.glob("*.png"))
    assert written == sorted(expected), f"{lesson} wrote {written}, expected {sorted(expected)}"
    for name in expected:
        with Image.open(out / name) as image:
            assert image.format == "PNG", f"{name} is a {image.format}, not a PNG"
            image.load()  # decodes the whole file: a truncated PNG fails here
            assert min(image.size) > MIN_SIDE, f"{name} is only {image.size[0]}x{image.size[1]} pixels"
            extrema = image.convert("L").getextrema()
            assert extrema[0] != extrema[1], f"{name} is a single flat colour"


# The lessons teach the engine through its public face only.
PUBLIC_AUTOGRAD_MODULES = {
    "autograd",
    "autograd.graph",
    "autograd.kernels",  # the switch, and emulate_cuda
    "autograd.nn",
    "autograd.nn.functional",
    "autograd.optim",
}
# From lesson 8 on, the model package is public API too (torch is not: lessons never need PyTorch).
PUBLIC_TINYCONVNEXT_MODULES = {
    "tinyconvnext",
    "tinyconvnext.flops",
    "tinyconvnext.weights",
    "tinyconvnext.images",
    "tinyconvnext.imagenet",
    "tinyconvnext.predict",
    "tinyconvnext.train",
    "tinyconvnext.data",
    "tinyconvnext.roadmap",
    "tinyconvnext.engine",  # lesson 11 prints the training loop's own source
    "tinyconvnext.parallel",  # lesson 13's data-parallel step
    "tinyconvnext.cli",  # the checked option types
}
THIRD_PARTY = {"numpy", "matplotlib", "PIL", "cupy"}  # cupy: lesson 13, only when a GPU is there
LESSON_HELPERS = {"common"}  # lessons/common.py: the options, section headings and figures


def _import_problems(path):
    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [(node.module or "", [alias.name for alias in node.names])]
        else:
            continue
        for module, names in modules:
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in THIRD_PARTY or module in PUBLIC_AUTOGRAD_MODULES:
                continue
            if module in PUBLIC_TINYCONVNEXT_MODULES:
                continue
            if module in LESSON_HELPERS:
                continue
            if module == "autograd.kernels.cuda":  # lesson 13 reads and runs a CUDA kernel
                continue
            if module.startswith("autograd.kernels.cpu") and names and set(names) <= {"STEPS"}:
                continue  # lesson 6 times the kernel chapter's steps
            if module == "autograd.nn.functional.conv" and set(names) <= {"DepthwiseConv2d"}:
                continue  # lesson 6 reads the op's own body
            problems.append(f"line {node.lineno}: {module} {names or ''}")
    return problems


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_ends_with_try_this(lesson):
    """Every lesson closes with two or three "Try this" prompts: change one thing, predict, run."""
    text = (LESSONS_DIR / lesson).read_text(encoding="utf-8")
    assert 'section("Try this")' in text, f"{lesson} has no Try this section"
    prompts = re.findall(r"^# ([1-9])\. ", text[text.rindex('section("Try this")') :], flags=re.MULTILINE)
    assert 2 <= len(prompts) <= 3, f"{lesson} has {len(prompts)} Try this prompts, expected 2 or 3"


# Any lesson refuses a bad option in one line and exit status 2, before any heavy work. One fresh
# interpreter per lesson costs an import of the lesson's first lines only; the bad value is an --out that
# names a file, which every lesson's shared options (lessons/common.py) check.
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_refuses_a_bad_option_in_one_line(lesson, tmp_path):
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")
    result = subprocess.run(
        [sys.executable, str(LESSONS_DIR / lesson), "--quick", "--out", str(not_a_folder)],
        cwd=tmp_path,
        env=dict(os.environ, MPLBACKEND="Agg"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, f"{lesson} exited with {result.returncode}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, f"{lesson} printed a traceback:\n{result.stderr[-2000:]}"
    assert "--out must be a folder" in result.stderr, result.stderr[-2000:]
    assert not result.stdout.strip(), f"{lesson} did work before checking its options:\n{result.stdout[:500]}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_imports_only_the_public_api(lesson):
    problems = _import_problems(LESSONS_DIR / lesson)
    assert not problems, f"{lesson} imports outside the public API: {problems}"
