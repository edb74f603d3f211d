"""The roadmap walk (the paper's Figure 2, issue 34): every network of the walk trained with one recipe and
one budget over several seeds, each finished result recorded in a committed JSON file, then reported with
its uncertainty.

    python -m tinyconvnext.roadmap_walk --budget-check 10           # baseline, 10 and 20 epochs
    python -m tinyconvnext.roadmap_walk --epochs 20 --seeds 0 1 2   # the walk (the paper's groups)
    python -m tinyconvnext.roadmap_walk --epochs 20 --networks all  # all 13 steps
    python -m tinyconvnext.roadmap_walk --report                    # mean +- sd, changes, 95% intervals

The runner survives stops: it trains one network and seed at a time with ``tinyconvnext.train`` into
``--runs DIR/<network>_seed<seed>_<epochs>ep_<recipe digest>`` (resuming a run that a stop interrupted) and
appends each finished result to ``--results`` (atomically) before it goes on. A network and seed recorded
with this recipe and budget is skipped, so the walk can be spread over sittings, each committing what
finished. The recipe (``RECIPE``) is fixed here, chosen before any result, and written into every result;
a result recorded with another recipe or budget is not counted as done.

The report calls a step a gain or a loss only where the 95% t-interval of its change excludes 0. A change is
paired by seed (the mean of the per-seed differences) where both networks have at least two seeds in common;
otherwise it is Welch's difference of the two means.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from . import cli
from .build import build_model
from .checkpoint import write_text_atomically
from .config import TrainConfig
from .curves import read_metrics
from .flops import traced_macs
from .roadmap import ROADMAP_MODELS, roadmap_step

PROG = "python -m tinyconvnext.roadmap_walk"
REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPOSITORY / "docs" / "roadmap_results.json"

# The paper's Figure 2 groups: (label, the roadmap step that ends the group); the walk's default networks.
GROUPS = (
    ("baseline", "roadmap_00_baseline"),
    ("macro design", "roadmap_02_patchify_stem"),
    ("ResNeXt-ify", "roadmap_04_wider"),
    ("inverted bottleneck", "roadmap_05_inverted_bottleneck"),
    ("large kernel", "roadmap_07_kernel_7x7"),
    ("micro design", "roadmap_12_separate_downsampling"),
)
GROUP_OF = {network: label for label, network in GROUPS}

# One recipe for every network, chosen before any result, that suits both families: AdamW with one warmup
# epoch then cosine, label smoothing, the CIFAR random crop and flip for all. No stochastic depth and no layer
# scale (the roadmap's blocks have none); processes 0: one per core. The budget (epochs) comes from the
# command line, after --budget-check.
RECIPE = dict(
    dataset="cifar10",
    optimizer="adamw",
    batch_size=64,
    lr=2e-3,
    min_lr=1e-5,
    weight_decay=0.05,
    warmup_epochs=1.0,
    label_smoothing=0.1,
    drop_path=0.0,
    layer_scale=0.0,
    mixup=0.0,
    cutmix=0.0,
    rand_augment=0,
    random_erasing=0.0,
    ema_decay=0.0,
    grad_clip=0.0,
    flip="random",
    image_size=32,
    subset=0,
    eval_subset=0,
    tta=False,
    processes=0,
)


def recipe_for(epochs: int, width: int, depths: str = "", base: dict | None = None) -> dict:
    """The recipe (``base``, default ``RECIPE``) with the budget and the networks' size: ``width``, the
    baseline's stage-1 inner width, as ``--dims`` (one per stage), and ``depths`` ("" = the roadmap's)."""
    stages = len(depths.split(",")) if depths else 4
    dims = ",".join(str(width * 2**i) for i in range(stages))
    return {**(RECIPE if base is None else base), "epochs": epochs, "dims": dims, "depths": depths}


def network_names(choice: str) -> list[str]:
    """``--networks``: "groups" (the paper's groups, ``GROUPS``), "all" (the 13 steps), or names by commas."""
    if choice == "groups":
        return [network for _, network in GROUPS]
    if choice == "all":
        return list(ROADMAP_MODELS)
    names = [name.strip() for name in choice.split(",") if name.strip()]
    unknown = [name for name in names if name not in ROADMAP_MODELS]
    if unknown or not names:
        raise cli.UsageError(
            f"--networks {choice!r}: expected groups, all, or names from {', '.join(ROADMAP_MODELS)}"
        )
    return sorted(set(names), key=ROADMAP_MODELS.index)


# The results file.


def load_results(path) -> list[dict]:
    """The recorded results of ``path`` ([] when it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        results = json.loads(path.read_text(encoding="utf-8"))["results"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise ValueError(
            f"{path} is not a roadmap results file: expected JSON with a 'results' list"
        ) from None
    if not isinstance(results, list):
        raise ValueError(f"{path} is not a roadmap results file: its 'results' is not a list")
    return results


def save_results(path, results: list[dict]) -> None:
    """All results, written atomically: a stop while writing leaves the old file whole."""
    text = json.dumps({"results": results}, indent=1) + "\n"
    write_text_atomically(path, text)


def recorded(results: list[dict], network: str, seed: int, recipe: dict) -> dict | None:
    """The result of ``network`` and ``seed`` trained with exactly ``recipe``, or None."""
    for result in results:
        if result.get("network") == network and result.get("seed") == seed and result.get("recipe") == recipe:
            return result
    return None


# Training.


def train_one(network: str, seed: int, recipe: dict, runs, data=None, dataset=None, progress=True) -> dict:
    """Train (or resume) one network and seed with ``tinyconvnext.train``; its result, read from the run's
    records (so a run that finished before a stop, but was not recorded, is recorded now)."""
    from .train import train  # the trainer's heavy imports only where a network is trained

    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]  # one per recipe
    out = Path(runs) / f"{network}_seed{seed}_{recipe['epochs']}ep_{digest}"
    config = TrainConfig(
        **recipe, model=network, seed=seed, out=str(out), data=data, progress=progress,
        resume=(out / "checkpoint.npz").exists(),
    )  # fmt: skip
    train(config, dataset)
    last = read_metrics(out)[-1]
    if last["epoch"] < recipe["epochs"]:
        raise RuntimeError(f"{out} stopped at epoch {last['epoch']} of {recipe['epochs']}: not recorded")
    model = build_model(config, num_classes=10)
    return dict(
        network=network,
        step=roadmap_step(network)[0],
        group=GROUP_OF.get(network, ""),
        seed=seed,
        epochs=recipe["epochs"],
        test_acc=last["test_acc"],
        train_acc=last["train_acc"],
        params=model.num_parameters(),
        flops=traced_macs(model, config.image_size),
        seconds=round(last["elapsed_seconds"], 1),
        recipe=recipe,
        finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def walk(networks, seeds, recipe: dict, results_path, runs, data=None, dataset=None, progress=True) -> list:
    """Train every (network, seed) not yet recorded with ``recipe``, one at a time, appending each result to
    ``results_path`` as it finishes. Returns the results trained in this call."""
    trained = []
    for network in networks:
        for seed in seeds:
            results = load_results(results_path)  # another sitting may have recorded more meanwhile
            if recorded(results, network, seed, recipe):
                print(f"{network} seed {seed}: already recorded, skipped", flush=True)
                continue
            if any(r.get("network") == network and r.get("seed") == seed for r in results):
                print(
                    f"{network} seed {seed}: recorded with another recipe or budget, not counted", flush=True
                )
            print(f"{network} seed {seed}: training for {recipe['epochs']} epochs", flush=True)
            result = train_one(network, seed, recipe, runs, data, dataset, progress)
            save_results(results_path, [*load_results(results_path), result])
            print(
                f"{network} seed {seed}: test accuracy {100 * result['test_acc']:.2f}%, recorded", flush=True
            )
            trained.append(result)
    return trained


def budget_check(epochs: int, recipe_of, results_path, runs, data=None, dataset=None, progress=True) -> float:
    """The doubling test: the baseline (seed 0) for ``epochs`` and for twice as many (``recipe_of(epochs)``
    gives the recipe), both recorded; returns and prints the gain from doubling, in points."""
    accuracies = []
    for budget in (epochs, 2 * epochs):
        recipe = recipe_of(budget)
        walk([GROUPS[0][1]], [0], recipe, results_path, runs, data, dataset, progress)
        accuracies.append(recorded(load_results(results_path), GROUPS[0][1], 0, recipe)["test_acc"])
    gain = 100 * (accuracies[1] - accuracies[0])
    verdict = "long enough" if gain < 1 else "too short: try a longer budget"
    print(
        f"baseline, seed 0: {epochs} epochs {100 * accuracies[0]:.2f}%, {2 * epochs} epochs "
        f"{100 * accuracies[1]:.2f}%: doubling adds {gain:+.2f} points ({verdict} by the 1-point rule)"
    )
    return gain


# Statistics: small pure functions.


def mean_and_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the sd is nan for fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan


def t_critical(df: float, confidence: float = 0.95) -> float:
    """The two-sided critical value of Student's t with ``df`` degrees of freedom: the t with
    P(|T| < t) = ``confidence``, found by bisection on the integral of the density (Simpson's rule)."""
    if not df > 0:
        raise ValueError(f"t_critical needs degrees of freedom above 0, got {df}")
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def central_mass(t):  # P(|T| < t)
        x = np.linspace(0.0, t, 2001)
        density = np.exp(log_scale - (df + 1) / 2 * np.log1p(x * x / df))
        h = t / 2000
        return 2 * h / 3 * (density[0] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum() + density[-1])

    low, high = 0.0, 1.0
    while central_mass(high) < confidence:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if central_mass(middle) < confidence else (low, middle)
    return (low + high) / 2


def difference_interval(before: dict, after: dict, confidence: float = 0.95) -> dict:
    """The change ``after - before`` ({seed: accuracy} each) with its t-interval: paired by seed where at
    least two seeds are common to both, else Welch's unpaired difference. ``low``/``high`` are nan where
    there are too few values for an interval."""
    common = sorted(set(before) & set(after))
    if len(common) >= 2:
        differences = [after[seed] - before[seed] for seed in common]
        mean, sd = mean_and_sd(differences)
        n = len(differences)
        half = t_critical(n - 1, confidence) * sd / math.sqrt(n)
        return dict(mean=mean, low=mean - half, high=mean + half, n=n, paired=True)
    (mean_a, sd_a), (mean_b, sd_b) = mean_and_sd(list(after.values())), mean_and_sd(list(before.values()))
    n_a, n_b = len(after), len(before)
    mean = mean_a - mean_b
    if n_a < 2 or n_b < 2:
        return dict(mean=mean, low=math.nan, high=math.nan, n=min(n_a, n_b), paired=False)
    var_a, var_b = sd_a**2 / n_a, sd_b**2 / n_b
    se = math.sqrt(var_a + var_b)
    if se == 0:
        return dict(mean=mean, low=mean, high=mean, n=min(n_a, n_b), paired=False)
    df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))  # Welch-Satterthwaite
    half = t_critical(df, confidence) * se
    return dict(mean=mean, low=mean - half, high=mean + half, n=min(n_a, n_b), paired=False)


def verdict(interval: dict) -> str:
    """ "gain" or "loss" only where the interval excludes 0; otherwise "not distinguishable"."""
    if interval["low"] > 0:
        return "gain"
    if interval["high"] < 0:
        return "loss"
    return "not distinguishable"


# The report.


def main_recipe(results: list[dict]) -> dict | None:
    """The recipe most results were trained with (the report's), or None without results."""
    counts = Counter(json.dumps(r["recipe"], sort_keys=True) for r in results if "recipe" in r)
    return json.loads(counts.most_common(1)[0][0]) if counts else None


def accuracies_by_network(results: list[dict], recipe: dict) -> dict[str, dict[int, float]]:
    """{network: {seed: test accuracy in %}} of the results with ``recipe``, in the walk's order."""
    table = {}
    for result in results:
        if result.get("recipe") == recipe and result.get("network") in ROADMAP_MODELS:
            table.setdefault(result["network"], {})[result["seed"]] = 100 * result["test_acc"]
    return {name: table[name] for name in ROADMAP_MODELS if name in table}


def _change_line(label: str, before: dict, after: dict) -> str:
    interval = difference_interval(before, after)
    kind = "paired" if interval["paired"] else "unpaired"
    return (
        f"  {label:<68s} {interval['mean']:+6.2f} points, 95% [{interval['low']:+.2f}, "
        f"{interval['high']:+.2f}] ({kind}, n={interval['n']}): {verdict(interval)}"
    )


def report(results: list[dict], recipe: dict | None = None) -> str:
    """The walk's report: per network n, mean +- sd, FLOPs and parameters; each step's change from the
    network before it; the final network against the baseline."""
    recipe = recipe or main_recipe(results)
    if recipe is None:
        return "no results recorded yet"
    table = accuracies_by_network(results, recipe)
    costs = {r["network"]: (r["flops"], r["params"]) for r in results if r.get("recipe") == recipe}
    left_out = sum(1 for r in results if r.get("recipe") != recipe)
    lines = [f"recipe: {json.dumps(recipe, sort_keys=True)}"]
    if left_out:
        lines.append(f"({left_out} result(s) with another recipe or budget left out)")
    lines.append(
        f"  {'network':<34s} {'group':<20s} {'n':>2s} {'test acc %':>15s} {'MFLOPs':>8s} {'params':>8s}"
    )
    for network, by_seed in table.items():
        mean, sd = mean_and_sd(list(by_seed.values()))
        flops, params = costs[network]
        lines.append(
            f"  {network:<34s} {GROUP_OF.get(network, ''):<20s} {len(by_seed):>2d} {mean:7.2f} +- {sd:5.2f} "
            f"{flops / 1e6:8.1f} {params / 1e6:7.2f}M"
        )
    names = list(table)
    if len(names) > 1:
        lines.append("each step's change from the network before it:")
        for before, after in zip(names, names[1:], strict=False):
            lines.append(_change_line(f"{before} -> {after}", table[before], table[after]))
        lines.append("the final network against the baseline:")
        lines.append(_change_line(f"{names[0]} -> {names[-1]}", table[names[0]], table[names[-1]]))
    return "\n".join(lines)


# The command line.


def make_walk_parser():
    parser = cli.make_parser(PROG, __doc__)
    parser.add_argument("--seeds", type=cli.non_negative_int, nargs="+", default=[0, 1, 2], help="seeds")
    parser.add_argument(
        "--networks",
        default="groups",
        help="groups (the paper's Figure 2 groups), all (13), or names by commas",
    )
    parser.add_argument(
        "--epochs", type=cli.positive_int, help="the budget: epochs per network (required to train)"
    )
    parser.add_argument(
        "--width", type=cli.positive_int, default=16, help="the baseline's stage-1 inner width"
    )
    parser.add_argument(
        "--depths", default="", help="blocks per stage of every network (default: the roadmap's)"
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="the results file (JSON)")
    parser.add_argument("--runs", type=Path, default=Path("runs/roadmap"), help="folder of the run folders")
    parser.add_argument("--data", help="folder holding CIFAR-10 (default: as tinyconvnext.train finds it)")
    parser.add_argument("--budget-check", type=cli.positive_int, metavar="EPOCHS", help="the doubling test")
    parser.add_argument("--report", action="store_true", help="print the report of the results file and stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv=None) -> int:
    args = make_walk_parser().parse_args(argv)
    if args.depths and not all(part.isdigit() and int(part) >= 1 for part in args.depths.split(",")):
        raise cli.UsageError(f"--depths: expected whole numbers of at least 1 by commas, got {args.depths!r}")
    if args.report:
        print(report(load_results(args.results), None))
        return 0
    load_results(args.results)  # a damaged results file is refused before any training
    if args.budget_check:
        budget_check(
            args.budget_check, lambda epochs: recipe_for(epochs, args.width, args.depths), args.results,
            args.runs, args.data, progress=not args.no_progress,
        )  # fmt: skip
        return 0
    networks = network_names(args.networks)
    if args.epochs is None:
        raise cli.UsageError("--epochs is required to train: the budget (choose it with --budget-check)")
    recipe = recipe_for(args.epochs, args.width, args.depths)
    walk(networks, args.seeds, recipe, args.results, args.runs, args.data, progress=not args.no_progress)
    print(report(load_results(args.results), recipe))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main, prog=PROG))
