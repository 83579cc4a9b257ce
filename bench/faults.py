"""The fault matrix: does the staged pipeline survive what happens to real runs, and say so?

Runs the smoke preset (methods none,pona,copy,oracle,full; one CPU thread, so the numbers are
deterministic; a re-ID checkpoint every step, so kills land mid-epoch) once uninterrupted as the reference, then trials of each fault, one at a time, each in
its own run folder: SIGKILL and SIGINT of the whole run at a random moment inside a chosen stage (the
earlier stages copied from the reference, recorded done), a moved run folder, 2 and 3 concurrent runs
on one folder, a truncated or bit-flipped output of each stage kind (under the default verify=full),
a full disk (ENOSPC from the k-th file landed, via bench/fault_shim), and a truncated and an altered
copy of each released checkpoint the run loads (releases/pose-synth, PCKh's estimator; a generator
release when there is one), pointed at by PONA_RELEASES, then the rerun with the file restored.
Each trial is classified:

- recovered exactly: the run (rerun after the fault) exits 0 with results.json metrics bit-equal to the
  reference's;
- clear error: a run stopped with exit != 0 and a last stderr line naming a path and a way out;
- silent wrong result: a run exited 0 with other metrics, or with a damaged output still in place;
- lost finished stage: a stage recorded done before the fault, with intact outputs, computed again.

Writes DIR/faults.csv (one row per trial) and DIR/faults.md (the table), and prints the table.

The README's table comes from the full matrix, the issue's counts (SIGKILL 30, SIGINT 10, moved 3,
concurrent 10, corrupted 10 + 3 bit flips, ENOSPC 3, releases 2 each): 71 trials of one or two runs
each, an estimated 40 min to 1 h on 2 cores (a clean smoke run is about 30 s; the tiny run's trials
took 8-70 s each):

  OMP_NUM_THREADS=1 python bench/faults.py --out /tmp/fm/matrix --seed 0

Every row end to end with one trial each (two for a release: truncated, altered), 6 min on 2 busy cores:

  OMP_NUM_THREADS=1 python bench/faults.py --out /tmp/fm/tiny --trials-scale 0 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fault_runs as fr  # bench/ is not a package

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")  # what verify=size hashes too
FIELDS = ("fault", "trial", "detail", "landed_in", "fault_rc", "fault_last_line", "final_rc", "recovered_exactly",
          "clear_error", "silent_wrong", "lost_stages", "recomputed", "tmp_left", "seconds")


class Matrix:
    """The reference run and what every trial needs from it: stage order, names, durations, metrics."""

    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.rows: list[dict[str, Any]] = []
        self.kill_stages: tuple[str, ...] = ()  # signal only inside stages whose names start so (empty: all)
        self.ref = work / "ref" / "out"
        self.ref.parent.mkdir(parents=True, exist_ok=True)
        count_file = work / "ref" / "replace_calls.tsv"
        count_file.unlink(missing_ok=True)
        t0 = time.perf_counter()
        run = fr.run_once(self.ref, env={"FAULT_COUNT_FILE": str(count_file)})
        if run.returncode != 0:
            raise SystemExit(f"the reference run failed (exit {run.returncode}): {run.last_line()}")
        self.run_seconds = time.perf_counter() - t0
        report = fr.results(self.ref)
        assert report is not None
        self.metrics = fr.metrics(report)
        self.names = {fr.ident(s["folder"]): name for name, s in report["stages"].items()}
        self.order = [self.names[i] for i in run.started()]  # stage names in the order they ran
        self.ids = {name: i for i, name in self.names.items()}
        self.seconds = fr.stage_seconds(report)
        self.replace_calls = [line.split("\t", 1) for line in count_file.read_text().splitlines()]
        print(f"reference: {self.run_seconds:.1f} s, {len(self.order)} stages, metrics {json.dumps(self.metrics)[:160]}...",
              flush=True)

    # ---- helpers -------------------------------------------------------------------------------
    def trial_out(self, fault: str, i: int) -> Path:
        folder = self.work / f"{fault}-{i}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder / "out"

    def copy_stages(self, out: Path, stages: list[str]) -> None:
        """The reference's folders of ``stages`` (recorded done) into a new run folder's cache."""
        (out / "cache").mkdir(parents=True)
        for name in stages:
            shutil.copytree(self.ref / "cache" / self.ids[name], out / "cache" / self.ids[name], symlinks=True)

    def judge(self, out: Path, final: fr.Run, done_before: set[str], damaged: set[str] = frozenset()) -> dict[str, Any]:
        """Classify the final run of a trial against the reference."""
        got = fr.metrics(fr.results(out)) if final.returncode == 0 else None
        recomputed = set(final.started())
        lost = sorted(self.names.get(i, i) for i in (done_before & recomputed) - damaged - set(final.redone_for_damage()))
        return {"final_rc": final.returncode, "recovered_exactly": final.returncode == 0 and got == self.metrics,
                "silent_wrong": final.returncode == 0 and got != self.metrics, "lost_stages": ";".join(lost),
                "recomputed": ";".join(sorted(self.names.get(i, i) for i in recomputed)),
                "tmp_left": sum(1 for p in out.rglob(".*.tmp") if p.is_file())}

    def record(self, row: dict[str, Any], t0: float, keep: Path | None = None, *runs: fr.Run) -> None:
        if keep is not None:
            for k, run in enumerate(runs):
                (keep.parent / f"run{k}.log").write_text("\n".join(run.lines) + "\n", encoding="utf-8")
        row["seconds"] = round(time.perf_counter() - t0, 1)
        self.rows.append(row)
        verdict = ("SILENT WRONG" if row["silent_wrong"] else "LOST STAGE" if row["lost_stages"]
                   else "recovered" if row["recovered_exactly"] else "clear error" if row["clear_error"] else "OTHER")
        print(f"  {row['fault']} #{row['trial']}: {row['detail']} | landed in {row['landed_in']} | "
              f"fault rc {row['fault_rc']} -> final rc {row['final_rc']}: {verdict} ({row['seconds']} s)", flush=True)
        if keep is not None and not (row["silent_wrong"] or row["lost_stages"] or verdict == "OTHER"):
            shutil.rmtree(keep, ignore_errors=True)  # failures are kept for a look; the logs always

    # ---- faults --------------------------------------------------------------------------------
    def kill_targets(self, n: int, offset: int) -> list[str]:
        """``n`` stages to signal inside: every stage in run order, then the long ones again (re-ID
        training, synthesis, the generator), starting ``offset`` into that list."""
        order = [s for s in self.order if not self.kill_stages or s.startswith(self.kill_stages)]
        long = [s for s in order if self.seconds[s] >= 0.3]
        cycle = order + long * 4
        return [cycle[(offset + k) % len(cycle)] for k in range(n)]

    def signal_trials(self, fault: str, sig: int, n: int, offset: int) -> None:
        for i, stage in enumerate(self.kill_targets(n, offset)):
            t0 = time.perf_counter()
            out = self.trial_out(fault, i)
            before = self.order[: self.order.index(stage)]
            self.copy_stages(out, before)
            delay = self.rng.uniform(0, max(self.seconds[stage], 0.02))
            hit = fr.run_with_signal(out, self.ids[stage], delay, sig, self.names)
            final = fr.run_once(out)
            row = {"fault": fault, "trial": i, "detail": f"{stage} +{delay:.2f}s", "landed_in": hit.signalled_in or
                   "(run had finished)", "fault_rc": hit.returncode, "fault_last_line": hit.last_line()[-300:],
                   "clear_error": hit.clear_error()}
            row.update(self.judge(out, final, {self.ids[s] for s in before} | set(hit.done())))
            self.record(row, t0, out, hit, final)

    def moved_trials(self, n: int) -> None:
        for i in range(n):
            t0 = time.perf_counter()
            out = self.trial_out("moved", i)
            first = out.parent / "disk1" / "runs"
            shutil.copytree(self.ref, first, symlinks=True)
            out.parent.joinpath("disk2", "elsewhere").mkdir(parents=True)
            moved = out.parent / "disk2" / "elsewhere" / "runs"
            os.rename(first, moved)  # the original is gone
            final = fr.run_once(moved)
            row = {"fault": "moved run folder", "trial": i, "detail": "copied, moved to another path, rerun",
                   "landed_in": "-", "fault_rc": "-", "fault_last_line": "", "clear_error": final.clear_error()}
            row.update(self.judge(moved, final, set(self.names)))
            self.record(row, t0, out.parent / "disk2", final)

    def concurrent_trials(self, n: int) -> None:
        for i in range(n):
            t0 = time.perf_counter()
            k = 2 if i % 2 == 0 else 3
            out = self.trial_out("concurrent", i)
            procs = []
            for _ in range(k):
                procs.append(fr.start(out))
                time.sleep(self.rng.uniform(0, 0.5))
            runs = [fr.finish(p, r) for p, r in procs]
            computed = [i for r in runs for i in r.started()]
            twice = sorted({self.names.get(s, s) for s in computed if computed.count(s) > 1})
            worst = next((r for r in runs if r.returncode != 0), runs[-1])
            row = {"fault": "concurrent runs", "trial": i, "detail": f"{k} runs on one out=" +
                   (f"; computed twice: {','.join(twice)}" if twice else ""), "landed_in": "-",
                   "fault_rc": ",".join(str(r.returncode) for r in runs), "fault_last_line": worst.last_line()[-300:],
                   "clear_error": worst.clear_error()}
            row.update(self.judge(out, worst, set()))
            if any(r.returncode != 0 for r in runs):
                row["recovered_exactly"] = False
            self.record(row, t0, out, *runs)

    def corrupt_trials(self, n: int, mode_of: Callable[[int, int], str], label: str) -> None:
        """Damage one recorded output of a stage of each kind in turn (``mode_of(i, kinds)``: truncate,
        flip, flip-other), then rerun with the default settings: the damage must be named and redone."""
        kinds = sorted({i.split("/")[0] for i in self.names})
        for i in range(n):
            t0 = time.perf_counter()
            kind, mode = kinds[i % len(kinds)], mode_of(i, len(kinds))
            out = self.trial_out(label.split(" (")[0].replace(" ", "-"), i)
            shutil.copytree(self.ref, out, symlinks=True)
            stage_id = self.rng.choice(sorted(s for s in self.names if s.startswith(kind + "/")))
            folder = out / "cache" / stage_id
            files = json.loads((folder / "done.json").read_text())["files"]
            regular = sorted(f for f in files if (folder / f).is_file() and not (folder / f).is_symlink()
                             and (folder / f).stat().st_size > 0)
            others = [f for f in regular if not f.endswith(CHECKPOINT_SUFFIXES)]
            # flip-other: a file whose size stays and that is no checkpoint, which only a content hash sees
            name = self.rng.choice(others or regular) if mode == "flip-other" else self.rng.choice(regular)
            path = folder / name
            original = hashlib.sha256(path.read_bytes()).hexdigest()
            damage(path, "truncate" if mode == "truncate" else "flip")
            final = fr.run_once(out)
            row = {"fault": label, "trial": i, "detail": f"{mode} {self.names[stage_id]}:{name}",
                   "landed_in": self.names[stage_id], "fault_rc": "-", "fault_last_line": "",
                   "clear_error": final.clear_error()}
            row.update(self.judge(out, final, set(self.names), damaged={stage_id}))
            restored = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == original
            if final.returncode == 0 and not restored and stage_id not in final.redone_for_damage():
                row["silent_wrong"], row["recovered_exactly"] = True, False  # the damaged file was used
                row["detail"] += " (damaged file used)"
            elif final.returncode == 0 and not restored:
                row["detail"] += " (redone, other bytes)"
            self.record(row, t0, out, final)

    def enospc_trials(self, n: int) -> None:
        """The k-th file landed, and every one after it, fails with ENOSPC; k drawn inside n stage kinds."""
        by_kind: dict[str, list[int]] = {}
        for number, dst in self.replace_calls:
            parts = Path(dst).parts
            if "cache" in parts and parts.index("cache") + 1 < len(parts) and Path(dst).name != "file_hashes.json":
                by_kind.setdefault(parts[parts.index("cache") + 1], []).append(int(number))
        kinds = sorted(by_kind, key=lambda k: min(by_kind[k]))
        self.rng.shuffle(kinds)
        for i in range(n):
            t0 = time.perf_counter()
            kind = kinds[i % len(kinds)]
            k = self.rng.choice(by_kind[kind])
            out = self.trial_out("enospc", i)
            out.mkdir()
            hit = fr.run_once(out, env={"FAULT_ENOSPC_AT": str(k)})
            final = fr.run_once(out)
            row = {"fault": "ENOSPC", "trial": i, "detail": f"file #{k} on ({kind}) and after", "landed_in":
                   hit.running_stage(self.names), "fault_rc": hit.returncode, "fault_last_line": hit.last_line()[-300:],
                   "clear_error": hit.clear_error()}
            row.update(self.judge(out, final, set(hit.done())))
            self.record(row, t0, out, hit, final)


    def release_trials(self, n: int) -> None:
        """A truncated or altered copy of each release the run loads, in a releases folder that
        PONA_RELEASES names: the run must stop before any stage in one line naming the file and the fix;
        then, with the file restored, the rerun must finish with the reference's metrics. The finished
        stages are copied from the reference, all but the one that loads the release."""
        targets = release_targets()
        for i in range(n):
            t0 = time.perf_counter()
            name, extra, loader = targets[(i // 2) % len(targets)]
            mode = "truncate" if i % 2 == 0 else "flip"
            out = self.trial_out("release", i)
            releases = out.parent / "releases"
            shutil.copytree(fr.REPO / "releases" / name, releases / name)
            weights = releases / name / json.loads((releases / name / "release.json").read_text())["file"]
            kept = [s for s in self.order if loader is None or not s.startswith(loader)]
            self.copy_stages(out, kept if not extra else [])
            damage(weights, mode)
            env = {"PONA_RELEASES": str(releases)}
            hit = fr.run_once(out, extra, env=env)
            row = {"fault": "released checkpoint truncated / altered", "trial": i,
                   "detail": f"{'truncated' if mode == 'truncate' else 'altered'} {name}/{weights.name}"
                             + (f" ({' '.join(extra)})" if extra else ""),
                   "landed_in": hit.running_stage(self.names) if hit.started() else "before any stage",
                   "fault_rc": hit.returncode, "fault_last_line": hit.last_line()[-300:],
                   "clear_error": hit.clear_error()}
            shutil.copy2(fr.REPO / "releases" / name / weights.name, weights)  # restored
            if extra:  # another generator than the reference's: only the error is judged
                row.update({"final_rc": "-", "recovered_exactly": False, "silent_wrong": hit.returncode == 0,
                            "lost_stages": "", "recomputed": ";".join(hit.started()), "tmp_left": 0})
                self.record(row, t0, out, hit)
                continue
            final = fr.run_once(out, env=env)
            row.update(self.judge(out, final, {self.ids[s] for s in kept} | set(hit.done())))
            self.record(row, t0, out, hit, final)


def release_targets() -> list[tuple[str, tuple[str, ...], str | None]]:
    """(release, extra run arguments, the stage that loads it) for each release the trials damage: the
    synth pose estimator (evaluate_generator loads it on SynthMarket) and a generator release, if any,
    run as ``generator.checkpoint=released:NAME``."""
    targets: list[tuple[str, tuple[str, ...], str | None]] = []
    if (fr.REPO / "releases" / "pose-synth" / "release.json").is_file():
        targets.append(("pose-synth", (), "evaluate_generator"))
    release = generator_release()
    if release is not None:
        targets.append((release.parent.name, (f"generator.checkpoint=released:{release.parent.name}",), None))
    return targets


def damage(path: Path, mode: str) -> None:
    """Truncate to half, or flip one bit in the middle (same size)."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        if mode == "truncate":
            handle.truncate(size // 2)
            return
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 1]))


def generator_release() -> Path | None:
    """A released generator (``releases/*/release.json`` of a generator), if the repository has one."""
    for manifest in sorted((fr.REPO / "releases").glob("*/release.json")):
        kind = json.loads(manifest.read_text()).get("kind", "")
        if "generator" in kind.lower() or manifest.parent.name.startswith("pona"):
            return manifest
    return None


def table(rows: list[dict[str, Any]], planned: dict[str, int]) -> str:
    lines = ["| fault | trials | recovered exactly | clear error | silent wrong result | lost finished stage | other |",
             "|---|---|---|---|---|---|---|"]
    for fault, want in planned.items():
        mine = [r for r in rows if r["fault"] == fault]
        rec = sum(bool(r["recovered_exactly"]) for r in mine)
        clear = sum(bool(r["clear_error"]) for r in mine)
        silent = sum(bool(r["silent_wrong"]) for r in mine)
        lost = sum(bool(r["lost_stages"]) for r in mine)
        other = sum(not (r["recovered_exactly"] or r["clear_error"] or r["silent_wrong"]) for r in mine)
        tried = f"{len(mine)}" + (f" (of {want} asked)" if len(mine) != want else "")
        lines.append(f"| {fault} | {tried} | {rec} | {clear} | {silent} | {lost} | {other} |")
    absorbed = [r for r in rows if r["fault"] in ("SIGKILL", "SIGINT") and str(r["fault_rc"]) == "0"]
    if generator_release() is None:
        lines.append("| released generator checkpoint truncated / altered | - | not applicable: no generator "
                     "release in releases/ yet | | | | |")
    if absorbed:
        lines.append(f"\n{len(absorbed)} signal trials ended with the faulted run itself exiting 0 (the signal came "
                     "after its last stage, or was absorbed): " + ", ".join(f"{r['fault']} #{r['trial']} in "
                                                                           f"{r['landed_in']}" for r in absorbed))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="a folder for the runs and the CSV / table")
    parser.add_argument("--trials-scale", type=float, default=1.0,
                        help="every fault's trials x this, at least 1 each (2 for the releases: truncated and "
                             "altered); 1.0 gives the issue's counts, 0 checks every row end to end")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill delays, damaged files, ENOSPC points")
    parser.add_argument("--only", default="", help="comma-separated faults (or their first words) to run (default: all)")
    parser.add_argument("--kill-stages", default="",
                        help="comma-separated stage name prefixes the SIGKILL / SIGINT trials aim at (default: every "
                             "stage in run order, then the long ones again)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    work = args.out.absolute()
    work.mkdir(parents=True, exist_ok=True)

    def scaled(n: int) -> int:
        return max(1, round(n * args.trials_scale))

    m = Matrix(work, args.seed)
    m.kill_stages = tuple(s.strip() for s in args.kill_stages.split(",") if s.strip())
    plan: list[tuple[str, int, Callable[[int], None]]] = [
        ("SIGKILL", scaled(30), lambda n: m.signal_trials("SIGKILL", signal.SIGKILL, n, 0)),
        ("SIGINT", scaled(10), lambda n: m.signal_trials("SIGINT", signal.SIGINT, n, 7)),
        ("moved run folder", scaled(3), m.moved_trials),
        ("concurrent runs", scaled(10), m.concurrent_trials),
        ("corrupted output", scaled(10),  # truncated or bit-flipped, each kind both ways over the trials
         lambda n: m.corrupt_trials(n, lambda i, k: "truncate" if (i + i // k) % 2 == 0 else "flip",
                                    "corrupted output")),
        ("bit flip in a non-checkpoint output (default verify=full)", scaled(3),
         lambda n: m.corrupt_trials(n, lambda i, k: "flip-other",
                                    "bit flip in a non-checkpoint output (default verify=full)")),
        ("ENOSPC", scaled(3), m.enospc_trials),
    ]
    if release_targets():  # one truncated and one altered trial per release (x the scale, at least that)
        plan.append(("released checkpoint truncated / altered", 2 * len(release_targets()) * scaled(1),
                     m.release_trials))
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    planned = {}
    for fault, n, go in plan:
        if only and not any(fault.startswith(o) for o in only):  # a prefix will do: names hold commas
            continue
        planned[fault] = n
        print(f"{fault}: {n} trials", flush=True)
        go(n)
    with open(work / "faults.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(m.rows)
    text = table(m.rows, planned)
    wall = time.perf_counter() - t0
    note = (f"\nsmoke preset, methods {fr.METHODS}, one thread; reference run {m.run_seconds:.0f} s; "
            f"matrix {wall / 60:.1f} min; --trials-scale {args.trials_scale} --seed {args.seed}\n")
    (work / "faults.md").write_text(text + "\n" + note, encoding="utf-8")
    print("\n" + text + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
