"""The exercises stay exercises: every stub in ``exercises/`` raises NotImplementedError, naming its
exercise, and has a reference solution in ``exercises/solutions/`` with the same names, signatures and
docstrings, a test file here, and a row in ``exercises/README.md``. Skipped when a learner tests their own
files."""

import inspect
import os
import re
from pathlib import Path

import numpy as np
import pytest

import autograd as ag

ROOT = Path(__file__).resolve().parents[2]
STUBS = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.py"))
SOLUTIONS = sorted((ROOT / "exercises" / "solutions").glob("[0-9][0-9]_*.py"))

# How to call each exercise with valid arguments; a stub must answer NotImplementedError.
x4 = np.ones((1, 2, 4, 4))
CALLS = {
    "01_unbroadcast": lambda m: m.unbroadcast(np.ones((2, 3)), (3,)),
    "02_softplus_function": lambda m: m.softplus(ag.tensor([1.0], requires_grad=True)).backward(),
    "03_numerical_gradient": lambda m: m.numerical_gradient(np.sum, np.ones(3)),
    "04_cross_entropy_backward": lambda m: m.cross_entropy_backward(np.zeros((2, 3)), np.array([0, 2])),
    "05_im2col_3x3": lambda m: m.im2col_3x3(x4),
    "06_col2im_stride2": lambda m: m.col2im_stride2(np.ones((1, 2, 2, 2, 2, 2)), x4.shape),
    "07_depthwise_conv_loops": lambda m: m.depthwise_conv2d(x4, np.ones((2, 1, 3, 3)), None, 1),
    "08_layer_norm_backward": lambda m: m.layer_norm_backward(np.eye(3), np.ones(3), np.ones((3, 3))),
    "09_drop_path": lambda m: m.drop_path(x4, 0.5, np.random.default_rng(0)),
    "10_sgd_momentum_step": lambda m: m.sgd_momentum_step(np.ones(2), np.ones(2), {}, lr=0.1),
    "11_adamw_step": lambda m: m.adamw_step(np.ones(2), np.ones(2), {}, lr=0.1),
    "12_warmup_cosine_schedule": lambda m: m.warmup_cosine_lr(3, 10, 2, 0.1),
}

pytestmark = pytest.mark.skipif(
    os.environ.get("TINYCONVNEXT_EXERCISES", "solutions") != "solutions",
    reason="a learner is testing their own files (TINYCONVNEXT_EXERCISES is set)",
)


def test_every_exercise_has_a_solution_a_test_and_a_row_in_the_readme():
    stems = [path.stem for path in STUBS]
    assert len(stems) >= 8 and stems == sorted(CALLS)
    assert stems == [path.stem for path in SOLUTIONS]
    readme = (ROOT / "exercises" / "README.md").read_text(encoding="utf-8")
    for stem in stems:
        assert (Path(__file__).parent / f"test_{stem}.py").is_file(), f"no tests/exercises/test_{stem}.py"
        assert f"[{stem}.py]" in readme, f"exercises/README.md has no row for {stem}.py"
    for link in re.findall(r"\]\((\.\./lessons/[^)]+)\)", readme):
        assert (ROOT / "exercises" / link).resolve().is_file(), (
            f"exercises/README.md links to a missing {link}"
        )


@pytest.mark.parametrize("stem", sorted(CALLS))
def test_the_stub_raises_not_implemented(exercise_file, stem):
    stub = exercise_file(ROOT / "exercises" / f"{stem}.py")
    with pytest.raises(NotImplementedError, match=f"^exercise {stem[:2]}: "):
        CALLS[stem](stub)


def _public_api(module):
    """name -> (signature, docstring) of the module's own functions and classes, and of their methods."""
    api = {}
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        api[name] = (str(inspect.signature(value)) if callable(value) else None, inspect.getdoc(value))
        if inspect.isclass(value):
            for method, body in vars(value).items():
                if inspect.isfunction(body):
                    api[f"{name}.{method}"] = (str(inspect.signature(body)), inspect.getdoc(body))
    return api


@pytest.mark.parametrize("stem", sorted(CALLS))
def test_the_stub_and_its_solution_agree_on_names_signatures_and_docstrings(exercise_file, stem):
    stub = exercise_file(ROOT / "exercises" / f"{stem}.py")
    solution = exercise_file(ROOT / "exercises" / "solutions" / f"{stem}.py")
    assert _public_api(stub) == _public_api(solution)
    lesson = re.match(rf"Exercise {stem[:2]}, after lesson (\d\d) ", stub.__doc__)
    assert lesson, f"{stem}.py must open with 'Exercise {stem[:2]}, after lesson NN (...)'"
    assert list((ROOT / "lessons").glob(f"{lesson.group(1)}_*.py")), f"{stem}.py names a missing lesson"
