"""Reproduce Amit (2019) with one command: the training figures of §4 (Fig. 4–11), the linear theory of §5
(Fig. 12), the Appendix 1 transfer functions and circuits (Fig. 13–15), and a results page that says claim by
claim what holds, all regenerated from the run directories of an experiment matrix.

A budget is a TOML file in ``sims/experiments/`` (``smoke``, ``cpu``, ``paper``) or any file given with
``--matrix``: which networks, protocols, seeds, epochs and training subsets (see ``models/experiments.py``).
Runs live under ``--out``: a rerun skips finished runs, resumes interrupted ones from their checkpoints and
re-plots. Figures and ``results.md`` go to ``<out>/figures`` and ``<out>/results.md``; ``--publish`` writes
them to ``docs/figures`` and ``docs/results.md`` instead (never the default, so a quick try cannot overwrite
the published figures).

    python sims/reproduce.py --budget smoke --out runs/smoke                       # a few minutes, digits
    python sims/reproduce.py --budget cpu --source cifar10=cifar10-train-jpeg.tar.xz --workers 2 --out runs/cpu
    python sims/reproduce.py --budget cpu --out runs/cpu --dry-run                  # runs, state, time left
    python sims/reproduce.py --budget cpu --out runs/cpu --only fig10               # re-plot one figure
    python sims/reproduce.py --budget paper --scheduler tcp://HOST:8786 --device cuda --out runs/paper ...

``--workers N`` runs the matrix on a Dask ``LocalCluster`` of N single-threaded worker processes;
``--scheduler ADDRESS`` sends it to an existing Dask cluster (e.g. one from dask-jobqueue on SLURM). A worker
uses ``$ASYMHEBB_DEVICE`` if it has one, else ``--device``. Each run depends only on its own settings (seeded
weights, batches, dropout; a fixed thread count), so the results are the same however the runs are executed.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from models.data import DataError  # noqa: E402
from models.experiments import (DATASET_NAMES, MatrixError, execute, load_matrix, load_results,  # noqa: E402
                                run_state)
from models.spec import SpecError  # noqa: E402
from models.train import DivergenceError, RunDirError  # noqa: E402
from sims.cli import UsageError, writable  # noqa: E402

EXPERIMENTS = ROOT / "sims" / "experiments"
FIGURE_NAMES = ("fig04", "fig05", "fig06", "fig07", "fig08", "fig09", "fig10", "fig11", "fig12", "fig13",
                "circuits", "results")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="smoke",
                   help="a matrix in sims/experiments/: smoke, cpu or paper (default smoke)")
    p.add_argument("--matrix", default=None, help="a matrix file of your own (instead of --budget)")
    p.add_argument("--out", required=True, help="root folder of the runs, figures and results page")
    p.add_argument("--source", action="append", default=[], metavar="DATASET=PATH",
                   help=f"where a data set's files are ({', '.join(d for d in DATASET_NAMES if d != 'digits')}); "
                        "repeat for several")
    p.add_argument("--workers", type=int, default=0, help="run on a Dask LocalCluster of N workers (0: in this "
                                                          "process, one run after another)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler to run on")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: $ASYMHEBB_DEVICE or cpu)")
    p.add_argument("--dry-run", action="store_true", help="list the runs, their state and the time left; run nothing")
    p.add_argument("--only", default=None,
                   help=f"re-plot from existing runs only these (comma-separated: {', '.join(FIGURE_NAMES)}); "
                        "runs nothing")
    p.add_argument("--no-figures", action="store_true", help="run the matrix, plot nothing")
    p.add_argument("--publish", action="store_true",
                   help="write the figures to docs/figures and the page to docs/results.md")
    a = p.parse_args(argv)
    if a.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {a.workers}")
    if a.workers and a.scheduler:
        raise UsageError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    sources = {}
    for s in a.source:
        name, sep, path = s.partition("=")
        if not sep or name not in DATASET_NAMES or name == "digits" or not path:
            raise UsageError(f"--source {s!r}: write DATASET=PATH with DATASET one of "
                             f"{', '.join(d for d in DATASET_NAMES if d != 'digits')}")
        if not Path(path).expanduser().exists():
            raise UsageError(f"--source {name}={path}: {path} not found; pass the path of the archive or folder")
        sources[name] = str(Path(path).expanduser().resolve())
    a.sources = sources
    if a.only:
        a.only = [x.strip() for x in a.only.split(",") if x.strip()]
        bad = [x for x in a.only if x not in FIGURE_NAMES]
        if bad:
            raise UsageError(f"--only {','.join(bad)}: unknown; choose from {', '.join(FIGURE_NAMES)}")
    return a


def matrix_path(a) -> Path:
    if a.matrix:
        return Path(a.matrix)
    path = EXPERIMENTS / f"{a.budget}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS.glob("*.toml")))
        raise UsageError(f"unknown budget {a.budget!r}: choose one of {known}, or pass --matrix FILE")
    return path


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def plan(matrix, runs, root, sources):
    """[(run, state, epochs done, seconds left)] with state new/partial/done or 'no data'."""
    rows = []
    for r in runs:
        if r.dataset != "digits" and r.dataset not in sources:
            rows.append((r, "no data", 0, 0.0))
            continue
        state, done = run_state(r, root)
        full = r.estimate_seconds(matrix.costs)
        rows.append((r, state, done, full * (1 - done / max(r.config.epochs, 1))))
    return rows


def wall_time(seconds: list[float], workers: int) -> float:
    """The wall time of runs of these durations on ``workers`` workers that take the longest first (Dask's
    order here): each run goes to the worker that frees up first."""
    free = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        i = free.index(min(free))
        free[i] += s
    return max(free)


def print_plan(rows, out=sys.stdout, workers: int = 1):
    width = max(len(r.key) for r, *_ in rows)
    for r, state, done, left in rows:
        extra = f"{done}/{r.config.epochs} epochs" if state != "no data" else \
            f"no --source {r.dataset}=PATH"
        print(f"  {r.key:<{width}}  {state:<8} {extra:<16} ~{_fmt_seconds(left)}", file=out)
    todo = [x for x in rows if x[1] in ("new", "partial")]
    total = sum(x[3] for x in todo)
    counts = {s: sum(1 for x in rows if x[1] == s) for s in ("done", "partial", "new", "no data")}
    n = max(1, workers)
    print(f"{len(rows)} runs: {counts['done']} done, {counts['partial']} partial, {counts['new']} new, "
          f"{counts['no data']} without data; about {_fmt_seconds(total)} of worker time left: about "
          f"{_fmt_seconds(wall_time([x[3] for x in todo], n))} of wall time on {n} worker{'s' * (n > 1)} of an "
          "otherwise idle machine", file=out)


def run_matrix(matrix, todo, root, a, log=print):
    """Execute the runs of ``todo`` ([(run, seconds left)]) in this process or on a Dask cluster."""
    from tqdm import tqdm

    total = sum(left for _, left in todo)
    bar = tqdm(total=max(total, 1e-9), unit="s", desc=f"{matrix.name} matrix",
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} est. s [{elapsed}<{remaining}]",
               file=sys.stderr, disable=None)
    done = 0

    def finished(res, left):
        nonlocal done
        done += 1
        bar.update(left)
        fin = ", ".join(f"{k.split('_')[0]} {100 * v:.1f}%" for k, v in res.get("final", {}).items())
        bar.write(f"[{done}/{len(todo)}] {res['key']}: {res['state']} {res['epochs']} epochs in "
                  f"{res['seconds']:.0f} s" + (f" (error: {fin})" if fin else ""))

    rank = {row["name"]: i for i, row in enumerate(matrix.rows)}  # a §4.1 row comes after its tied row
    todo = sorted(todo, key=lambda x: rank[x[0].row])
    try:
        if not (a.workers or a.scheduler):
            for r, left in todo:
                finished(execute(r, root, a.sources, a.device, matrix.threads), left)
            return
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if a.workers:
            cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        else:
            client = Client(a.scheduler)
        try:
            futures, by_key = {}, {}
            # in the matrix's row order (a budget cut short has its first rows whole), longest first inside a
            # row; a §4.1 run waits for its tied run's future
            rank = {row["name"]: i for i, row in enumerate(matrix.rows)}
            ordered = sorted(todo, key=lambda x: (rank[x[0].row], -x[1]))
            for i, (r, left) in enumerate(ordered):
                f = client.submit(execute, r, str(root), a.sources, a.device, matrix.threads,
                                  by_key.get(r.tied_from), key=f"run-{r.key}", pure=False,
                                  priority=len(ordered) - i)
                futures[f] = left
                by_key[r.key] = f
            for f in as_completed(futures):
                finished(f.result(), futures[f])
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        bar.close()


def main(argv=None) -> int:
    a = parse_args(argv)
    matrix = load_matrix(matrix_path(a))
    root = Path(a.out).expanduser()
    runs = matrix.runs()
    rows = plan(matrix, runs, root, a.sources) if not a.only else []
    if a.dry_run:
        print(f"budget {matrix.name}: {matrix.description}")
        print_plan(rows, workers=a.workers or 1)
        return 0
    writable(root)

    t0 = time.perf_counter()
    if not a.only:
        todo = [(r, left) for r, state, _, left in rows if state in ("new", "partial")]
        skipped = sum(1 for _, s, *_ in rows if s == "done")
        missing = sum(1 for _, s, *_ in rows if s == "no data")
        print(f"budget {matrix.name}: {len(rows)} runs, {skipped} already done, {len(todo)} to run"
              + (f", {missing} without data (not run)" if missing else ""), flush=True)
        if todo:
            run_matrix(matrix, todo, root, a)
    if a.no_figures:
        print(f"done in {_fmt_seconds(time.perf_counter() - t0)}")
        return 0
    from sims.figures import make_all  # noqa: E402 - matplotlib only when plotting
    from sims.results_page import claim_rows, measure_filters, write_index, write_metrics, write_page

    if a.publish:  # docs/results/<budget>.md and its metrics; the budget's figures in docs/figures/<budget>/
        fig_dir, circuit_dir = ROOT / "docs" / "figures" / matrix.name, ROOT / "docs" / "figures"
        page = ROOT / "docs" / "results" / f"{matrix.name}.md"
        metrics, prefix = page.with_name(f"{matrix.name}-metrics.csv"), f"../figures/{matrix.name}/"
    else:
        fig_dir = circuit_dir = root / "figures"
        page, metrics, prefix = root / "results.md", root / "metrics.csv", "figures/"
    fig_dir.mkdir(parents=True, exist_ok=True)
    results = load_results(runs, root)
    command = "python sims/reproduce.py " + " ".join(
        x for x in (f"--budget {a.budget}" if not a.matrix else f"--matrix {a.matrix}",
                    " ".join(f"--source {k}=PATH" for k in sorted(a.sources)), "--out OUT",
                    "--publish" if a.publish else "") if x)
    written = make_all(matrix, runs, results, fig_dir, page, only=a.only, circuits=run_circuit_scripts,
                       root=root, command=command, circuit_dir=circuit_dir)
    if not a.only or "results" in a.only:
        filters = measure_filters(results, root, claim_rows(matrix).get("filters", []))
        written.append(write_metrics(results, metrics, filters))
        names = sorted(p.name for p in fig_dir.glob("fig*.png"))
        write_page(matrix, results, page, names, command, root, metrics.name, fig_prefix=prefix)
        written += [page, page.with_suffix(".json")]
        if a.publish:
            written.append(write_index(page.parent, ROOT / "docs" / "results.md"))
    for w in written:
        print(f"wrote {w}")
    print(f"done in {_fmt_seconds(time.perf_counter() - t0)}")
    return 0


def run_circuit_scripts(matrix, fig_dir: Path, only=None) -> list[Path]:
    """The figures that come from the Appendix 1 and §5 scripts (Fig. 12, 14, 15 and the circuits' regimes),
    each script run with the matrix's arguments (``[figures.circuits]``)."""
    written = []
    settings = matrix.figures.get("circuits", {})
    scripts = [s for s, tag in (("output_circuit", "circuits"), ("shutdown_circuit", "circuits"),
                                ("linear_theory", "fig12")) if only is None or tag in only]
    for script in scripts:
        args = [str(x) for x in settings.get(script, [])]
        before = {p: p.stat().st_mtime for p in fig_dir.glob("*.png")}
        cmd = [sys.executable, str(ROOT / "sims" / f"{script}.py"), *args, "--out", str(fig_dir)]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            raise RuntimeError(f"sims/{script}.py failed:\n{p.stderr[-2000:]}")
        written += [q for q in fig_dir.glob("*.png") if before.get(q) != q.stat().st_mtime]
    return written


def run() -> int:
    try:
        return main()
    except (UsageError, MatrixError, DataError, SpecError, RunDirError, DivergenceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs are saved; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
