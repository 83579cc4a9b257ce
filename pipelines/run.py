"""Run the augmentation experiment of the paper's Table VI for one portion and seed.

Stages: prepare data -> subsample -> train (or load) the PoNA generator -> synthesise the missing
images -> merge -> train re-ID on reduced and on augmented -> evaluate -> report. Stage outputs are
cached under out/cache by a fingerprint of their config and inputs: a rerun skips finished stages,
redoes those whose config changed, and resumes a stage that was interrupted.

Examples:
  python -m pipelines.run portion=0.2
  python -m pipelines.run preset=smoke
  python -m pipelines.run portion=0.4 seed=1 methods=none,pona,full
  python -m pipelines.run dataset=market1501 data.root=/data/Market-1501-v15.09.15 device=cuda
  python -m pipelines.run generator.checkpoint=runs/pona/checkpoint.pt
  python -m pipelines.run generator.checkpoint=released      # the committed releases/pona-synth (docs/releases.md)
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.cli import shorthand
from pipelines.config import PRESETS_DIR, PipelineConfig
from pipelines.graph import build_stages, checks, run_in_order
from pipelines.provenance import commit
from pipelines.report import STARTED_AT, format_run, run_results, write_run_report
from runtime.config import EXIT_BAD_INPUT, entry_point, error_line, parse_config

log = logging.getLogger("pipelines.run")


def run_pipeline(cfg: PipelineConfig, check: bool = True) -> dict[str, Any]:
    """Run (or finish, or just read back) one run; returns its results.json content, which it writes
    once, with the run's duration (``check=False``: the caller ran ``checks`` already)."""
    if check:
        checks(cfg)
    out = Path(cfg.out)
    t0 = time.perf_counter()
    if cfg.dask.scheduler != "inprocess":  # independent stages side by side, on the sweep's dask graph
        from pipelines.sweep import run_sweep

        report = run_sweep(cfg, [cfg.portion], [cfg.seed])["reports"][0]  # names its start commit
    else:
        started_at = commit()
        stages = build_stages(cfg)
        report = {**run_results(cfg, stages, run_in_order(stages, out / "cache", cfg.verify)), STARTED_AT: started_at}
    report["seconds"] = round(time.perf_counter() - t0, 2)
    path = write_run_report(out / cfg.run_name, report)
    report["results_path"] = str(path)
    return report


@entry_point("python -m pipelines.run")
def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = shorthand(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(PipelineConfig, args, prog="python -m pipelines.run", description=__doc__,
                       presets_dir=PRESETS_DIR, default_preset="default")
    try:
        checks(cfg)
    except (OSError, ValueError) as exc:  # bad input, found before any stage ran
        print(f"python -m pipelines.run: error: {error_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = run_pipeline(cfg, check=False)  # a failure in a stage: the entry point's one line, exit 1 (2 if bad input)
    print(format_run(report))
    print(f"\nresults: {report['results_path']} (stage outputs under {Path(cfg.out) / 'cache'}); "
          f"{report['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
