"""Run the experiment over a grid of portions and seeds, as one dask graph, and write the paper's
Table VI for it: mAP of re-ID trained on the reduced set (none), on reduced + PoNA-generated images
(pona), on reduced + PATN-generated images (patn, when asked for), on the control that copies the
condition images instead of generating (copy), on the missing images re-rendered by SynthMarket's
renderer (oracle, when asked for: pona's ceiling) and on the full set (full), mean and spread over
seeds, as CSV, Markdown and a plot. The gains (pona - none, patn - none, copy - none, pona - patn,
pona - copy, full - none, and with the oracle oracle - none, oracle - pona, oracle - copy, full - oracle)
are differences taken within each seed, with their spread over seeds.

Stages shared between runs (the dataset, the full-data re-ID model of a seed, a generator trained
on the full set) have one fingerprint and run once. The graph runs on the same scheduler choices as
synthesis: ``dask.scheduler=inprocess`` (default, one stage at a time), ``local`` (a local cluster
of ``dask.workers`` processes running independent stages in parallel) or a scheduler address.

Examples:
  python -m pipelines.sweep portions=0.2,0.4,0.6,0.8,1.0 seeds=0,1,2
  python -m pipelines.sweep preset=smoke portions=0.25,0.5 seeds=0 dask.scheduler=local dask.workers=2
  python -m pipelines.sweep portions=0.2,0.5 seeds=0,1,2 budgets=epochs,iterations generator.seed=0
``budgets``: the re-ID step budgets to run (``reid.budget``: epochs, the paper's same epochs for every
training set; iterations, every method the full set's number of steps); the tables say which.
Every other key is a pipeline key (python -m pipelines.run --help).

The tables land in ``out/sweep-p<portions>-seeds<seeds>``, whose ``sweep.yaml`` records the grid and
configuration that claimed it. A sweep of another configuration (other methods, another generator)
never rewrites them: it takes ``...-2``, ``-3`` and so on, and says so before any stage runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from augment.scheduler import dask_client
from pipelines import methods
from pipelines.cli import shorthand
from pipelines.config import PRESETS_DIR, PipelineConfig
from pipelines.graph import Stage, build_stages, checks, execute
from pipelines.provenance import commit
from pipelines.report import STARTED_AT, run_results, write_run_report
from runtime.atomic import atomic_path, atomic_write_text
from runtime.config import EXIT_BAD_INPUT, entry_point, error_line, help_text, resolve, to_dict
from runtime.errors import ConfigError

log = logging.getLogger("pipelines.sweep")


def _task(stage: Stage, cache_root: str, check: str, dep_names: tuple[str, ...], *dep_results: Any) -> Any:
    return execute(stage, cache_root, {n: r.result for n, r in zip(dep_names, dep_results)}, check)


def sweep_graph(configs: list[PipelineConfig], cache_root: Path) -> tuple[dict, list[dict[str, str]], list]:
    """One dask graph for all runs: a task per distinct stage fingerprint. Returns the graph, for
    each run the mapping of its stage names to task keys, and each run's stages."""
    graph: dict[str, Any] = {}
    run_keys, run_stages = [], []
    for cfg in configs:
        stages = build_stages(cfg)
        keys = {name: f"{s.kind}-{s.key}" for name, s in stages.items()}
        for name, s in stages.items():
            graph.setdefault(keys[name], (_task, s, str(cache_root), cfg.verify, s.deps, *[keys[d] for d in s.deps]))
        run_keys.append(keys)
        run_stages.append(stages)
    return graph, run_keys, run_stages


def run_sweep(base: PipelineConfig, portions: Sequence[float], seeds: Sequence[int],
              budgets: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every (budget, seed, portion) of ``base`` as one dask graph; returns each run's results.json
    content (``reports``), unwritten, and the sweep's counts. The caller has run ``checks`` on the base
    config and writes the reports (``write_runs``; ``run_pipeline`` for a single run on a cluster)."""
    nested = base.dask.scheduler != "inprocess"
    configs = []
    for budget, seed, portion in itertools.product(budgets or [base.reid.budget], seeds, portions):
        reid = dataclasses.replace(base.reid, budget=budget)
        cfg = dataclasses.replace(base, portion=float(portion), seed=int(seed), reid=reid)
        if nested:  # the graph is already parallel: stages must not start clusters of their own
            cfg = dataclasses.replace(cfg, dask=dataclasses.replace(cfg.dask, scheduler="inprocess"))
        configs.append(cfg)
    cache = Path(base.out) / "cache"
    graph, run_keys, run_stages = sweep_graph(configs, cache)
    n_total = sum(len(s) for s in run_stages)
    log.info("sweep: %d runs, %d stages, %d distinct (shared stages run once)", len(configs), n_total, len(graph))
    t0 = time.perf_counter()
    started_at = commit()
    wanted = sorted(graph)
    with dask_client(base.dask.scheduler, base.dask.workers) as client:
        if client is None:
            import dask

            values = dask.get(graph, wanted)
        else:
            values = client.get(graph, wanted)
    done = dict(zip(wanted, values))
    reports = [{**run_results(cfg, stages, {name: done[key] for name, key in keys.items()}), STARTED_AT: started_at}
               for cfg, keys, stages in zip(configs, run_keys, run_stages)]
    return {"configs": configs, "reports": reports, "seconds": time.perf_counter() - t0, "n_stages": n_total,
            "n_distinct": len(graph)}


def write_runs(sweep: dict[str, Any]) -> None:
    """Each run's results.json, in its run folder as ``python -m pipelines.run`` writes it."""
    for cfg, report in zip(sweep["configs"], sweep["reports"]):
        write_run_report(Path(cfg.out) / cfg.run_name, report)


def results_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"budget": r.get("reid_budget", "epochs"), "portion": r["portion"], "seed": r["seed"], "method": m,
             "mAP": v["mAP"], "rank1": v["rank1"], "optimizer_steps": v.get("optimizer_steps")}
            for r in reports for m, v in r["methods"].items()]
    return pd.DataFrame(rows)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of mAP and rank-1, per method and portion (and
    re-ID step budget, where the results have one)."""
    g = results.groupby([*_budget(results), "method", "portion"])
    out = g.agg(mAP_mean=("mAP", "mean"), mAP_std=("mAP", "std"), rank1_mean=("rank1", "mean"),
                rank1_std=("rank1", "std"), n_seeds=("seed", "nunique")).reset_index()
    return out.fillna({"mAP_std": 0.0, "rank1_std": 0.0})


def paired_gains(results: pd.DataFrame) -> pd.DataFrame:
    """mAP differences between two methods taken within each (portion, seed), then mean and sample
    std over seeds: the seed moves both methods' numbers together (same kept set, same re-ID
    initialisation), so the paired spread is the one a gain has to beat."""
    budget = _budget(results)
    wide = results.pivot_table(index=[*budget, "portion", "seed"], columns="method", values="mAP")
    rows = []
    for a, b in methods.gains():
        if a not in wide or b not in wide:
            continue
        diff = (wide[a] - wide[b]).dropna()
        for group, d in diff.groupby(level=[*budget, "portion"]):
            std = d.std() if len(d) > 1 else 0.0
            keys = dict(zip([*budget, "portion"], group if isinstance(group, tuple) else (group,)))
            rows.append({**keys, "gain": f"{a} - {b}", "mAP_mean": d.mean(), "mAP_std": std,
                         "n_seeds": len(d), "beats_spread": bool(d.mean() > std)})
    return pd.DataFrame(rows, columns=[*budget, "gain", "portion", "mAP_mean", "mAP_std", "n_seeds", "beats_spread"])


def _budget(results: pd.DataFrame) -> list[str]:
    """``["budget"]`` where the results carry the re-ID step budget, else nothing."""
    return ["budget"] if "budget" in results else []


def by_budget(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The frame split by re-ID step budget (one part named '' where it has no budget column)."""
    if "budget" not in frame or frame.empty:
        return [("", frame)]
    return [(str(b), part) for b, part in frame.groupby("budget", sort=False)]


def _mean_std(row: pd.DataFrame, fmt: str) -> str:
    """'mean ± std', or the mean alone for one seed (a spread of one value is not 0, it is unknown)."""
    mean = fmt.format(row["mAP_mean"].iloc[0])
    return mean if int(row["n_seeds"].iloc[0]) < 2 else f"{mean} ± {row['mAP_std'].iloc[0]:.1f}"


def gains_markdown(gains: pd.DataFrame) -> str:
    portions = sorted(gains["portion"].unique())
    lines = ["| mAP gain, paired by seed | " + " | ".join(f"p = {p:g}" for p in portions) + " |",
             "|---|" + "---|" * len(portions)]
    for gain, rows in gains.groupby("gain", sort=False):
        cells = []
        for p in portions:
            row = rows[rows["portion"] == p]
            cells.append("" if row.empty else _mean_std(row, "{:+.1f}"))
        lines.append(f"| {gain} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(summary: pd.DataFrame) -> str:
    """Table VI's shape: one row per method, one column per portion, 'mean ± std' mAP (%)."""
    portions = sorted(summary["portion"].unique())
    order = [m for m in methods.TABLE if m in set(summary["method"])]
    lines = ["| method | " + " | ".join(f"p = {p:g}" for p in portions) + " |",
             "|---|" + "---|" * len(portions)]
    for method in order:
        cells = []
        for p in portions:
            row = summary[(summary["method"] == method) & (summary["portion"] == p)]
            cells.append("" if row.empty else _mean_std(row, "{:.1f}"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for method in methods.TABLE.values():
        rows = summary[summary["method"] == method.name].sort_values("portion")
        if rows.empty:
            continue
        if method.full:  # the same at every portion: a line
            mean, std = rows["mAP_mean"].mean(), rows["mAP_std"].mean()
            ax.axhline(mean, color="grey", linestyle="--", label=method.label)
            ax.axhspan(mean - std, mean + std, color="grey", alpha=0.15)
            continue
        ax.errorbar(rows["portion"], rows["mAP_mean"], yerr=rows["mAP_std"], marker="o", capsize=3,
                    label=method.label)
    ax.set_xlabel("portion p of real training images kept")
    ax.set_ylabel("mAP (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_sweep(folder: Path, sweep: dict[str, Any]) -> dict[str, Path]:
    return write_tables(folder, results_table(sweep["reports"]))


def write_tables(folder: Path, results: pd.DataFrame) -> dict[str, Path]:
    """results.csv, table.csv, gains.csv, table.md and the plot(s) of one results frame (one row per
    budget, portion, seed and method), each written atomically."""
    summary = summary_table(results)
    gains = paired_gains(results)
    paths = {"results": folder / "results.csv", "table": folder / "table.csv", "gains": folder / "gains.csv",
             "markdown": folder / "table.md", "plot": folder / "map_vs_portion.png"}
    for key, frame in (("results", results), ("table", summary), ("gains", gains)):
        with atomic_path(paths[key]) as tmp:
            frame.to_csv(tmp, index=False)
    parts = []
    gains_of = dict(by_budget(gains))
    for budget, part in by_budget(summary):
        title = f"reid.budget={budget}: " + BUDGET_MEANING.get(budget, "") + "\n\n" if budget else ""
        gain = gains_of.get(budget, pd.DataFrame())
        parts.append(title + markdown_table(part) + ("\n\n" + gains_markdown(gain) if not gain.empty else ""))
        if budget and summary["budget"].nunique() > 1:
            paths[f"plot_{budget}"] = folder / f"map_vs_portion_{budget}.png"
            plot(part, paths[f"plot_{budget}"])
    atomic_write_text(paths["markdown"], "\n\n".join(parts) + "\n")
    plot(by_budget(summary)[0][1], paths["plot"])  # the first budget's (the only one, usually)
    return paths


BUDGET_MEANING = {"epochs": "every training set the same epochs (the paper's protocol; larger sets get more steps)",
                  "iterations": "every method the full set's number of optimiser steps"}


SWEEP_RECORD = "sweep.yaml"  # in a sweep's folder: the grid and configuration whose tables it holds
_NOT_RECORDED = ("portion", "seed", "out", "verify", "dask")  # the grid's, the folder's, or how it runs


def sweep_record(base: PipelineConfig, portions: Sequence[float], seeds: Sequence[int],
                 budgets: Sequence[str]) -> dict[str, Any]:
    """What makes two sweeps the same: the grid and every setting but the scheduler and the cache
    check (which change how a sweep runs, not its numbers), as YAML would read it back."""
    config = {k: v for k, v in to_dict(base).items() if k not in _NOT_RECORDED}
    record = {"portions": list(portions), "seeds": list(seeds), "budgets": list(budgets), "config": config}
    return yaml.safe_load(yaml.safe_dump(record, sort_keys=True))


def default_folder(out: str | Path, portions: Sequence[float], seeds: Sequence[int], budgets: Sequence[str]) -> Path:
    return Path(out) / "sweep-p{}-seeds{}{}".format("_".join(f"{p:g}" for p in portions), "_".join(map(str, seeds)),
                                                    "" if list(budgets) == ["epochs"] else "-" + "_".join(budgets))


def claim_folder(default: Path, record: dict[str, Any]) -> Path:
    """The folder for this sweep's tables: ``default`` when it is new, empty or holds this same sweep
    (a rerun rewrites its own tables), else the first free ``default-2``, ``-3``...: the tables of
    another sweep, or files no sweep wrote, are never overwritten. The claim (``sweep.yaml``) is
    written at once, before any stage runs."""
    for n in itertools.count(1):
        folder = default if n == 1 else default.with_name(f"{default.name}-{n}")
        marker = folder / SWEEP_RECORD
        if folder.is_dir() and marker.is_file():
            with contextlib.suppress(yaml.YAMLError, OSError):
                if yaml.safe_load(marker.read_text(encoding="utf-8")) == record:
                    return folder
            continue
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(marker, yaml.safe_dump(record, sort_keys=True))
        return folder
    raise AssertionError("unreachable")


def _numbers(key: str, value: str, kind: type, what: str) -> list:
    """``0.2,0.5`` or ``[0.2, 0.5]`` as a non-empty list of ``kind``; anything else names the key."""
    try:
        items = yaml.safe_load(f"[{value.strip('[]')}]")
        numbers = [kind(v) for v in items]
        if not numbers or any(isinstance(v, bool) or (kind is int and v != int(v)) for v in items):
            raise ValueError
    except (ValueError, TypeError, yaml.YAMLError):
        raise ConfigError(f"{key}: expected a comma-separated list of {what}, got {value!r}") from None
    return numbers


def parse(argv: Sequence[str]) -> tuple[PipelineConfig, list[float], list[int], list[str]]:
    portions, seeds, budgets, rest = [0.2, 0.4, 0.6, 0.8, 1.0], [0, 1, 2], [], []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "budgets":
            budgets = [b.strip() for b in value.strip("[]").split(",") if b.strip()]
            if not budgets or any(b not in BUDGET_MEANING for b in budgets):
                raise ConfigError(f"budgets: expected a comma-separated list of epochs, iterations, got {value!r}")
        elif key == "portions":
            portions = _numbers(key, value, float, "portions in (0, 1] like 0.2,0.5,1.0")
        elif key == "seeds":
            seeds = _numbers(key, value, int, "non-negative integers like 0,1,2")
            if any(s < 0 for s in seeds):
                raise ConfigError(f"seeds: expected non-negative integers like 0,1,2, got {value!r}")
        else:
            rest.append(arg)
    base = resolve(PipelineConfig, shorthand(rest), PRESETS_DIR, default_preset="default")
    if "methods" not in {a.split("=", 1)[0] for a in rest} and "full" not in base.methods:
        # the preset's methods (the regime's oracle included), plus the ceiling every sweep table needs
        base = dataclasses.replace(base, methods=[*base.methods, "full"])
    return base, portions, seeds, budgets or [base.reid.budget]


@entry_point("python -m pipelines.sweep")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(__doc__)
        print("sweep keys:\n  portions=0.2,0.4,0.6,0.8,1.0  portions p to run\n  seeds=0,1,2  seeds to run\n"
              "  budgets=epochs,iterations  re-ID step budgets to run (default: reid.budget)\n"
              "  (methods: the preset's, with full added when it lacks it)\n")
        print(help_text(PipelineConfig, "python -m pipelines.sweep", "", PRESETS_DIR, "default"))
        return 0
    print_only = "--print-config" in args
    try:
        base, portions, seeds, budgets = parse([a for a in args if a != "--print-config"])
        runs = [dataclasses.replace(base, portion=p) for p in portions]  # each portion validated
        checks(runs[0])  # device, sizes, seeds, every configured file: before anything runs
    except (OSError, ValueError) as exc:  # ConfigError included: bad input
        print(f"python -m pipelines.sweep: error: {error_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if print_only:
        print(yaml.safe_dump({"portions": portions, "seeds": seeds, "budgets": budgets, **to_dict(base)},
                             sort_keys=False), end="")
        return 0
    default = default_folder(base.out, portions, seeds, budgets)
    folder = claim_folder(default, sweep_record(base, portions, seeds, budgets))
    if folder != default:
        log.info("the tables go to %s: %s holds another sweep's (its %s differs), left as it is",
                 folder, default, SWEEP_RECORD)
    sweep = run_sweep(base, portions, seeds, budgets)  # a failure in a stage: the entry point's one line
    write_runs(sweep)
    paths = write_sweep(folder, sweep)
    print(paths["markdown"].read_text())
    print(f"\n{len(sweep['reports'])} runs, {sweep['n_distinct']} distinct of {sweep['n_stages']} stages, "
          f"{sweep['seconds'] / 60:.1f} min; wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
