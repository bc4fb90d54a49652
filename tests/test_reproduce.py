"""The reproduction pipeline: matrices as data, runs skipped / resumed / killed and restarted with the same
results, a Dask LocalCluster giving the same results as one process, the claims' verdicts, and evaluate.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.experiments import MatrixError, load_matrix, parse_protocol, run_state

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = [sys.executable, str(ROOT / "sims" / "reproduce.py")]

TINY = """
[budget]
name = "tiny"
description = "two rows on digits"
seeds = [0, 1]
threads = 1

[defaults]
dataset = "digits"
epochs = {epochs}
batch_size = {batch}
train_subset = 200
val_size = 100

[[rows]]
name = "simpnet"
net = "conv 4 3x3; maxpool 3; full 16; output"
protocols = ["bp-h", "urfb", "frfb-50"]
figures = ["fig04", "fig05", "fig10"]

[[rows]]
name = "deep"
net = "conv 4 3x3; conv 4 3x3; maxpool 3; full 16; output"
slope = 1.0
protocols = ["urfb"]
figures = ["fig06"]
"""


def tiny(tmp_path, epochs=2, batch=50) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY.format(epochs=epochs, batch=batch))
    return p


def metrics_of(root: Path) -> dict:
    """Every run's metrics without the wall-clock seconds (the only field that may differ)."""
    out = {}
    for f in sorted((root / "runs").glob("*/*/metrics.jsonl")):
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        for r in rows:
            r.pop("seconds")
        out[str(f.parent.relative_to(root))] = rows
    return out


def reproduce(*args, check=True, env=None):
    p = subprocess.run([*REPRODUCE, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env)
    if check and p.returncode != 0:
        raise AssertionError(p.stderr[-3000:])
    return p


# --- the matrix as data ------------------------------------------------------------------------------------

def test_protocols_name_a_rule_and_a_connectivity():
    assert parse_protocol("urfb-50") == ("urfb", 0.5)
    assert parse_protocol("bp-h") == ("bp-h", 1.0)
    assert parse_protocol("FRFB") == ("frfb", 1.0)
    for bad in ("hebb", "urfb-0", "urfb-150", "urfb-x"):
        with pytest.raises(MatrixError, match="unknown protocol"):
            parse_protocol(bad)


def test_matrix_expands_rows_protocols_and_seeds(tmp_path):
    m = load_matrix(tiny(tmp_path))
    runs = m.runs()
    assert len(runs) == (3 + 1) * 2
    r = next(r for r in runs if r.key == "simpnet/frfb-50-s1")
    assert (r.config.rule, r.config.connectivity, r.config.seed, r.config.slope) == ("frfb", 0.5, 1, 0.5)
    assert next(r for r in runs if r.row == "deep").config.slope == 1.0
    assert r.path(tmp_path) == tmp_path / "runs" / "simpnet" / "frfb-50-s1"


def test_untied_rows_replace_conv_by_local(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text('[[rows]]\nname = "u"\nnet = "simpnet"\nuntied = true\nprotocols = ["urfb"]\n')
    cfg = load_matrix(p).runs()[0].config
    assert cfg.net.startswith("local 32 5x5") and "conv" not in cfg.net


@pytest.mark.parametrize("body, message", [
    ('[[rows]]\nname = "a"\nprotocols = ["hebb"]\n', "unknown protocol 'hebb'"),
    ('[[rows]]\nname = "a"\nprotocols = ["bp"]\n[[rows]]\nname = "a"\nprotocols = ["bp"]\n', "two rows are named"),
    ('[[rows]]\nname = "a"\nprotocols = ["bp"]\nlearning_rate = 3\n', "unknown settings \\['learning_rate'\\]"),
    ('[[rows]]\nname = "a"\nprotocols = ["bp"]\nrule = "bp"\n', "sets 'rule'"),
    ('[[rows]]\nname = "a"\nprotocols = ["bp"]\ndataset = "mnist"\n', "unknown dataset 'mnist'"),
    ('[[rows]]\nname = "a"\nprotocols = ["bp"]\nnet = "conv 3 3x3; maxpol 3; output"\n', "maxpol"),
    ('[[rows]]\nname = "a"\nprotocols = ["bp"]\nlr = -1\n', "learning rate must be a positive"),
    ('[[rows]]\nname = "a"\n', "needs protocols"),
    ('[budget]\nseeds = []\n[[rows]]\nname = "a"\nprotocols = ["bp"]\n', "seeds must be"),
    ('rows = 3 4', "not valid TOML"),
    ('', "no \\[\\[rows\\]\\]"),
    ('[[rows]]\nname = "u"\nnet = "deepnet_s"\nuntie_from = "t"\nprotocols = ["urfb"]\n', "names no earlier row"),
    ('[[rows]]\nname = "t"\nnet = "deepnet_s"\nprotocols = ["urfb"]\n[[rows]]\nname = "u"\nnet = "deepnet"\n'
     'untie_from = "t"\nprotocols = ["urfb"]\n', "must be a tied row of the same net"),
    ('[[rows]]\nname = "t"\nnet = "deepnet_s"\nprotocols = ["urfb"]\n[[rows]]\nname = "u"\nnet = "deepnet_s"\n'
     'untie_from = "t"\nprotocols = ["frfb"]\n', "has no \\['frfb'\\] runs"),
])
def test_malformed_matrices_are_refused_in_one_line(tmp_path, body, message):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(MatrixError, match=message) as e:
        load_matrix(p)
    assert "\n" not in str(e.value)


def test_every_shipped_budget_parses_and_is_paper_settings_where_it_says():
    for name in ("smoke", "cpu", "long", "paper"):
        m = load_matrix(ROOT / "sims" / "experiments" / f"{name}.toml")
        assert m.runs()
    paper = load_matrix(ROOT / "sims" / "experiments" / "paper.toml")
    assert len(paper.seeds) == 3
    for r in paper.runs():
        c = r.config
        assert (c.epochs, c.batch_size, c.lr, c.train_subset, c.val_size) == (1000, 500, 0.1, None, 5000)
    for name in ("cpu", "long"):  # the paper's split and step on the full training split
        m = load_matrix(ROOT / "sims" / "experiments" / f"{name}.toml")
        assert len(m.seeds) == 3
        for r in m.runs():
            c = r.config
            assert (c.batch_size, c.lr, c.train_subset, c.val_size, c.mu) == (500, 0.1, None, 5000, None)
    cpu = {r.key: r for r in load_matrix(ROOT / "sims" / "experiments" / "cpu.toml").runs()}
    long = {r.key: r for r in load_matrix(ROOT / "sims" / "experiments" / "long.toml").runs()}
    assert set(cpu) < set(long)  # the long budget reuses the cpu budget's runs in the same --out
    assert all(cpu[k].config == long[k].config for k in cpu)


def test_wall_time_packs_the_longest_runs_first():
    from sims.reproduce import wall_time

    assert wall_time([10, 10, 10, 10], 2) == 20
    assert wall_time([30, 10, 10, 10], 2) == 30
    assert wall_time([5, 7], 1) == 12


TIED41 = """
[budget]
name = "t41"
seeds = [0]
[defaults]
dataset = "digits"
epochs = 2
batch_size = 50
train_subset = 200
val_size = 100
[[rows]]
name = "tied"
net = "conv 4 3x3; conv 4 3x3; maxpool 3; full 16; output"
slope = 1.0
protocols = ["urfb"]
[[rows]]
name = "tied-untied41"
net = "conv 4 3x3; conv 4 3x3; maxpool 3; full 16; output"
slope = 1.0
untie_from = "tied"
protocols = ["urfb"]
"""


def test_a_41_run_freezes_the_tied_runs_trained_first_layer_under_an_untied_rest(tmp_path):
    import torch

    p = tmp_path / "t41.toml"
    p.write_text(TIED41)
    m = load_matrix(p)
    u = next(r for r in m.runs() if r.row == "tied-untied41")
    assert u.tied_from == "tied/urfb-s0" and u.config.net.startswith("conv 4 3x3; local 4 3x3")
    reproduce("--matrix", p, "--out", tmp_path / "o", "--no-figures")
    tied = torch.load(tmp_path / "o" / "runs" / "tied" / "urfb-s0" / "checkpoint.pt", weights_only=False)
    untied = torch.load(tmp_path / "o" / "runs" / "tied-untied41" / "urfb-s0" / "checkpoint.pt", weights_only=False)
    for name in ("W", "R"):  # the trained first layer, unchanged by the second stage
        assert torch.equal(untied["model"][f"layers.0.{name}"], tied["model"][f"layers.0.{name}"])
    from models.network import Network

    fresh = Network(u.config.net, (1, 8, 8), 10, rule="urfb", slope=1.0, seed=0)
    assert not torch.equal(fresh.layers[0].W, tied["model"]["layers.0.W"])  # it did train in the tied stage
    assert any(k.startswith("layers.1.") for k in untied["model"])
    assert untied["model"]["layers.1.W"].numel() > tied["model"]["layers.1.W"].numel()  # layer 2 untied


def test_a_run_directory_of_other_settings_is_refused(tmp_path):
    m = load_matrix(tiny(tmp_path))
    run = m.runs()[0]
    d = run.path(tmp_path)
    d.mkdir(parents=True)
    from dataclasses import asdict, replace

    (d / "config.json").write_text(json.dumps(asdict(replace(run.config, lr=0.05))))
    with pytest.raises(MatrixError, match=r"other settings \(lr: 0.05 there, 0.1 now\)"):
        run_state(run, tmp_path)


# --- running, skipping, resuming, distributing --------------------------------------------------------------

def test_rerun_skips_and_dask_gives_the_same_results(tmp_path):
    matrix = tiny(tmp_path)
    seq, dask = tmp_path / "seq", tmp_path / "dask"
    reproduce("--matrix", matrix, "--out", seq, "--no-figures")
    before = {f: f.stat().st_mtime_ns for f in seq.glob("runs/*/*/checkpoint.pt")}
    assert len(before) == 8
    p = reproduce("--matrix", matrix, "--out", seq, "--no-figures")
    assert "8 already done, 0 to run" in p.stdout
    assert before == {f: f.stat().st_mtime_ns for f in seq.glob("runs/*/*/checkpoint.pt")}
    reproduce("--matrix", matrix, "--out", dask, "--no-figures", "--workers", "2")
    assert metrics_of(seq) == metrics_of(dask) and len(metrics_of(seq)) == 8
    dry = reproduce("--matrix", matrix, "--out", dask, "--dry-run").stdout
    assert "8 runs: 8 done, 0 partial, 0 new" in dry


def test_an_existing_dask_cluster_gives_the_same_results(tmp_path):
    """--scheduler ADDRESS: the runs go to a cluster started elsewhere (here a LocalCluster of 1 worker)."""
    from dask.distributed import LocalCluster

    matrix = tiny(tmp_path)
    reproduce("--matrix", matrix, "--out", tmp_path / "seq", "--no-figures")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        reproduce("--matrix", matrix, "--out", tmp_path / "remote", "--no-figures", "--scheduler",
                  cluster.scheduler_address)
    assert metrics_of(tmp_path / "remote") == metrics_of(tmp_path / "seq")


def test_a_killed_matrix_restarts_and_ends_as_an_uninterrupted_one(tmp_path):
    matrix = tiny(tmp_path, epochs=4, batch=10)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reproduce("--matrix", matrix, "--out", whole, "--no-figures")
    proc = subprocess.Popen([*REPRODUCE, "--matrix", str(matrix), "--out", str(killed), "--no-figures"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:  # kill once some run is part-way through
            lens = [len(f.read_text().splitlines()) for f in killed.glob("runs/*/*/metrics.jsonl")]
            if any(0 < n < 4 for n in lens) and len(lens) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the matrix finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    m = load_matrix(matrix)
    states = [run_state(r, killed)[0] for r in m.runs()]
    assert "partial" in states
    p = reproduce("--matrix", matrix, "--out", killed, "--no-figures")
    assert f"{states.count('done')} already done" in p.stdout
    assert p.stdout.count(": resumed ") == states.count("partial")  # from the checkpoints, not from scratch
    assert metrics_of(killed) == metrics_of(whole)


def docs_state():
    return {p: p.stat().st_mtime_ns for p in (ROOT / "docs").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One run of the smoke budget for the tests below, with every figure it saves recorded as it is saved
    (tests/figure_audit: per axes, the artists that draw data)."""
    root = tmp_path_factory.mktemp("smoke")
    out, audit = root / "smoke", root / "figures.jsonl"
    env = {**os.environ, "ASYMHEBB_FIGURE_AUDIT": str(audit),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "figure_audit"), str(ROOT)]
                                         + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    docs_before = docs_state()
    reproduce("--budget", "smoke", "--out", out, "--workers", "2", env=env)
    return {"out": out, "audit": audit, "docs_before": docs_before}


@pytest.mark.slow
def test_smoke_budget_writes_every_figure_and_the_page(smoke):
    out = smoke["out"]
    figs = {p.name for p in (out / "figures").glob("*.png")}
    for prefix in ("fig04_", "fig05_", "fig06_", "fig07_", "fig08_", "fig09_", "fig10_", "fig11_", "fig12_",
                   "fig13_", "fig14_", "fig15_"):
        assert any(f.startswith(prefix) for f in figs), (prefix, sorted(figs))
    page = (out / "results.md").read_text()
    for claim in range(1, 10):
        assert f"| {claim}. " in page
    assert "metrics.csv" in page
    import csv

    records = list(csv.DictReader((out / "metrics.csv").open()))
    kinds = {r["kind"] for r in records}
    assert kinds == {"initial", "probe", "epoch"}
    first = next(r for r in records if r["kind"] == "initial")
    assert first["step"] == "0" and float(first["val_error"]) > 0 and "corr_output" in first
    assert smoke["docs_before"] == docs_state()
    t1 = time.perf_counter()
    p = reproduce("--budget", "smoke", "--out", out, "--only", "fig04,results")
    assert time.perf_counter() - t1 < 60 and "fig04_error_curves_simpnet.png" in p.stdout


@pytest.mark.slow
def test_no_figure_of_the_smoke_budget_has_an_empty_panel(smoke):
    """Every visible axes of every figure the smoke budget writes draws data: at least one line, bar, band,
    scatter or image with a finite point in data coordinates (not only reference lines, shading or text such
    as 'not run'). Each figure was recorded as it was saved, in whichever process drew it."""
    figures = smoke["out"] / "figures"
    records = {}
    for line in smoke["audit"].read_text().splitlines():
        r = json.loads(line)
        if Path(r["file"]).parent == figures:
            records[Path(r["file"]).name] = r  # the last save of a file is the one on disk
    pngs = sorted(p.name for p in figures.glob("*.png"))
    assert pngs and set(pngs) <= set(records), sorted(set(pngs) - set(records))
    empty = [f"{name}: panel {i} {a['title']!r}" for name in pngs for i, a in enumerate(records[name]["axes"])
             if a["visible"] and a["data"] == 0]
    assert not empty, "panels that draw no data:\n" + "\n".join(empty)


def test_smoke_never_writes_the_published_docs(tmp_path):
    """Without --publish, figures and the page go under --out (the tiny matrix, figures only)."""
    matrix = tiny(tmp_path)
    docs_before = {p: p.stat().st_mtime_ns for p in (ROOT / "docs").rglob("*") if p.is_file()}
    reproduce("--matrix", matrix, "--out", tmp_path / "o", "--only", "fig04,fig05,fig13,results")
    reproduce("--matrix", matrix, "--out", tmp_path / "o")
    assert (tmp_path / "o" / "figures" / "fig04_error_curves_simpnet.png").exists()
    assert (tmp_path / "o" / "results.md").exists()
    assert docs_before == {p: p.stat().st_mtime_ns for p in (ROOT / "docs").rglob("*") if p.is_file()}


def test_bad_command_lines_exit_2_in_one_line(tmp_path):
    for args, message in ((["--budget", "huge"], "unknown budget 'huge'"),
                          (["--source", "mnist=/x"], "write DATASET=PATH"),
                          (["--source", "cifar10=/nonexistent"], "not found"),
                          (["--workers", "2", "--scheduler", "tcp://x:1"], "not both"),
                          (["--only", "fig99"], "unknown")):
        p = reproduce(*args, "--out", tmp_path / "x", check=False)
        assert p.returncode == 2 and message in p.stderr and p.stderr.count("\n") == 1, (args, p.stderr)


# --- evaluate.py --------------------------------------------------------------------------------------------

def test_evaluate_prints_what_the_run_recorded(tmp_path):
    matrix = tiny(tmp_path)
    reproduce("--matrix", matrix, "--out", tmp_path / "o", "--no-figures")
    run_dir = tmp_path / "o" / "runs" / "simpnet" / "urfb-s0"
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "evaluate.py"), str(run_dir), "--json",
                        str(tmp_path / "e.json")], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    got = json.loads((tmp_path / "e.json").read_text())["splits"]
    for split in ("val", "test"):
        assert got[split]["error"] == last[f"{split}_error"]
        assert got[split]["loss"] == pytest.approx(last[f"{split}_loss"], rel=1e-6)
        assert f"{100 * last[f'{split}_error']:6.2f}%" in p.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "sims" / "evaluate.py"), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "not a run directory" in bad.stderr


# --- the training figures (Fig. 4–11), on synthetic results -----------------------------------------------------

SYNTHETIC = """
[budget]
name = "synthetic"
description = "a budget's generic text: training subsets of 2,000–5,000 images"
seeds = [0, 1, 2]
threads = 1

[defaults]
dataset = "cifar10"
epochs = {epochs}
batch_size = 500
val_size = 5000
probe_every = {probe_every}

[[rows]]
name = "simpnet"
net = "simpnet"
protocols = ["bp", "bp-h", "urfb", "frfb"]
figures = ["fig04", "fig05", "fig10"]

[[rows]]
name = "deepnet"
net = "deepnet"
slope = 1.0
train_subset = 20000
protocols = ["bp-h", "urfb", "frfb"]
figures = ["fig06"]
{extra}"""

SYNTHETIC_EXTRA = """
[[rows]]
name = "deepnet-slope05"
net = "deepnet"
protocols = ["bp-h", "urfb", "frfb"]
figures = ["fig06"]

[[rows]]
name = "deepernet"
net = "deepernet"
slope = 1.0
protocols = ["bp", "bp-h", "urfb", "frfb"]
figures = ["fig06", "fig07"]

[[rows]]
name = "cifar100"
net = "simpnet"
dataset = "cifar100"
protocols = ["bp-h", "urfb", "frfb"]
figures = ["fig05"]

[[rows]]
name = "deepnet_s"
net = "deepnet_s"
slope = 1.0
protocols = ["bp-h", "urfb", "frfb"]
figures = ["fig09", "fig11"]

[[rows]]
name = "deepnet_s-untied41"
net = "deepnet_s"
slope = 1.0
untied = true
protocols = ["bp-h", "urfb", "frfb"]
figures = ["fig09"]

[[rows]]
name = "deepnet_s-untied"
net = "deepnet_s"
slope = 1.0
untied = true
protocols = ["bp-h", "urfb", "frfb"]
figures = ["fig09"]
"""

# made-up final errors (%) of the synthetic results, by (row, protocol); the rest end at 60%
SYNTHETIC_FINAL = {("simpnet", "bp"): 58, ("simpnet", "bp-h"): 60, ("simpnet", "urfb"): 64, ("simpnet", "frfb"): 67,
                   ("deepnet", "bp-h"): 50, ("deepnet", "urfb"): 55, ("deepnet", "frfb"): 75,
                   ("deepnet-slope05", "bp-h"): 70, ("deepnet-slope05", "urfb"): 89.5,
                   ("deepnet-slope05", "frfb"): 90, ("deepernet", "frfb"): 89.8, ("cifar100", "bp-h"): 80,
                   ("cifar100", "urfb"): 84, ("cifar100", "frfb"): 88}


def synthetic_matrix(tmp_path, epochs=3, probe_every=10, extra=False):
    p = tmp_path / "synthetic.toml"
    p.write_text(SYNTHETIC.format(epochs=epochs, probe_every=probe_every, extra=SYNTHETIC_EXTRA if extra else ""))
    return load_matrix(p)


def synthetic_results(matrix, final=None, skip=()):
    """Results of every run of ``matrix`` (but the rows in ``skip``) as ``models.experiments.load_results``
    returns them, with made-up metrics of the shape ``models.train`` records: epoch 0 (``initial``), the first
    epoch's probes, a ``step`` per epoch, per-layer alignment. Errors fall from chance to ``final[(row,
    protocol)]`` (%), URFB's correlations grow faster than FRFB's. For drawing the figures, never for docs."""
    import math
    from dataclasses import asdict

    import numpy as np

    from models.experiments import TRAIN_SPLIT_SIZE
    from models.spec import resolve

    final = {**SYNTHETIC_FINAL, **(final or {})}
    out = {}
    for run in matrix.runs():
        if run.row in skip:
            continue
        rng = np.random.default_rng(abs(hash(run.key)) % 2 ** 32)
        cfg = run.config
        n = cfg.train_subset or TRAIN_SPLIT_SIZE[run.dataset] - cfg.val_size
        spe = -(-n // cfg.batch_size)
        chance = 99.0 if run.dataset == "cifar100" else 90.0
        target = final.get((run.row, run.protocol), 60.0) + rng.normal(0, 0.7)
        tau = 1.5 if run.protocol.startswith("bp") else 2.5

        def err(t, noise=0.4):
            return min(chance + 2, chance - (chance - target) * (1 - math.exp(-t / tau)) + rng.normal(0, noise)) / 100

        layers = []
        for spec in resolve(cfg.net)[1]:
            if spec.kind in ("conv", "local", "full", "output"):
                k = sum(1 for x in layers if x.rstrip("0123456789") == spec.kind) + 1
                layers.append("output" if spec.kind == "output" else f"{spec.kind}{k}")
        rate = {"urfb": 0.5, "frfb": 0.05}.get(run.protocol, 1.0)

        def align(t):
            return {name: float(rng.normal(0, 0.003) + rate * (0.2 + 0.8 * (i == len(layers) - 1)) *
                                (1 - math.exp(-t / 4)) * (0.1 if i == 0 else 1.0)) for i, name in enumerate(layers)}

        initial = {"epoch": 0, "step": 0, "train_error": err(0), "train_loss": 2.0, "val_error": err(0),
                   "val_loss": 2.0, "alignment": align(0)}
        probes = [{"step": s, "val_error": err(s / spe, 0.8), "val_loss": 1.9, "alignment": align(s / spe)}
                  for s in range(cfg.probe_every, spe, cfg.probe_every)] if cfg.probe_every else []
        rows = [{"epoch": e, "step": e * spe, "train_error": err(e - 0.5) + 0.02, "train_loss": 1.5,
                 "val_error": err(e), "val_loss": 1.5, "alignment": align(e), "seconds": 1.0}
                for e in range(1, cfg.epochs + 1)]
        rows[0].update(initial=initial, probes=probes)
        out[run.key] = {"run": run, "metrics": rows, "config": asdict(cfg)}
    return out


@pytest.fixture
def kept_figures(monkeypatch):
    """The figures the figure functions draw, kept open (they close them after saving) for inspection."""
    import matplotlib.pyplot as plt

    from sims import figures

    plt.close("all")
    monkeypatch.setattr(figures.plt, "close", lambda *a, **k: None)
    yield lambda: [plt.figure(n) for n in plt.get_fignums()]
    plt.close("all")


def _caption(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts).replace("\n", " ")


def _has_data(ax) -> bool:
    return bool(ax.lines or ax.patches or ax.images or ax.collections)


def _draw(name, matrix, results, out):
    from sims import figures

    calls = {"fig04": lambda: figures.fig_curves(matrix, results, out, "fig04", 4, "simpnet"),
             "fig05": lambda: figures.fig_protocols(matrix, results, out, "fig05", 5, "simpnet"),
             "fig06": lambda: figures.fig_protocols(matrix, results, out, "fig06", 6, "deepnets"),
             "fig07": lambda: figures.fig_curves(matrix, results, out, "fig07", 7, "deepernet"),
             "fig09": lambda: figures.fig_tied_untied(matrix, results, out),
             "fig10": lambda: figures.fig_correlation(matrix, results, out, "fig10", 10),
             "fig11": lambda: figures.fig_correlation(matrix, results, out, "fig11", 11)}
    return calls[name]()


@pytest.mark.parametrize("name", ["fig04", "fig05", "fig06", "fig07", "fig09", "fig10", "fig11"])
def test_training_figure_captions_name_each_rows_images_epochs_steps_and_seeds(tmp_path, kept_figures, name):
    """Every caption names the training images, epochs, SGD steps and seeds of the runs it shows (from the runs:
    45,000 = 50,000 − 5,000 held out, or the row's subset; 90 steps an epoch at batch 500), not the budget's text."""
    matrix = synthetic_matrix(tmp_path, extra=True)
    assert _draw(name, matrix, synthetic_results(matrix), tmp_path)
    (fig,) = kept_figures()
    text = _caption(fig)
    assert "generic text" not in text
    expect = {"fig04": ["simpnet: 45,000"], "fig05": ["simpnet: 45,000", "cifar100: 45,000"],
              "fig06": ["deepnet: 20,000 training images, 3 epochs = 120 SGD steps", "deepernet: 45,000"],
              "fig07": ["deepernet: 45,000"], "fig09": ["deepnet_s: 45,000", "deepnet_s-untied41: 45,000"],
              "fig10": ["simpnet: 45,000"], "fig11": ["deepnet_s: 45,000"]}[name]
    for e in expect:
        assert e in text, (e, text)
    if name != "fig06":
        assert "training images, 3 epochs = 270 SGD steps of batch 500, seeds 0, 1, 2" in text, text
    assert all(_has_data(ax) for ax in fig.axes), [ax.get_title() for ax in fig.axes if not _has_data(ax)]


def _chance_lines(ax) -> list:
    return [ln.get_ydata()[0] for ln in ax.lines if ln.get_linestyle() == "--" and len(set(ln.get_ydata())) == 1]


def test_error_curves_start_at_epoch_0_show_the_probes_and_the_chance_line(tmp_path, kept_figures):
    matrix = synthetic_matrix(tmp_path, epochs=3, probe_every=10)
    results = synthetic_results(matrix)
    _draw("fig04", matrix, results, tmp_path)
    (fig,) = kept_figures()
    per_epoch, first_epoch = fig.axes[0], fig.axes[1]
    for ax in (per_epoch, first_epoch):
        assert _chance_lines(ax) == [90.0]
    data = [ln for ln in per_epoch.lines if ln.get_linestyle() != "--"]
    assert len(data) == 8  # BP, BP-H, URFB, FRFB × training, validation
    assert all(list(ln.get_xdata()) == [0, 1, 2, 3] for ln in data)
    bp_h = results["simpnet/bp-h-s0"]["metrics"]
    assert any(ln.get_color() == "#8cc43f" for ln in data)  # BP-H beside BP
    probes = [ln for ln in first_epoch.lines if ln.get_linestyle() != "--"]
    assert len(probes) == 4
    assert list(probes[0].get_xdata()) == [0] + [p["step"] for p in bp_h[0]["probes"]] + [90]
    assert list(probes[0].get_xdata())[1:-1] == list(range(10, 90, 10))


def test_without_probes_the_curves_have_no_first_epoch_panel(tmp_path, kept_figures):
    """A panel titled for the first epoch's probes is drawn only where runs recorded probes."""
    matrix = synthetic_matrix(tmp_path, probe_every=0)
    _draw("fig04", matrix, synthetic_results(matrix), tmp_path)
    (fig,) = kept_figures()
    assert len(fig.axes) == 1 and "first epoch" not in fig.axes[0].get_title()
    assert "No evaluation inside the first epoch was recorded" in _caption(fig)


def test_a_data_set_panel_is_drawn_only_where_the_budget_has_its_runs(tmp_path, kept_figures):
    """Fig. 5 without CIFAR-100 rows has one panel; with them two; a row with no finished runs is named in the
    caption, not drawn as an empty panel."""
    matrix = synthetic_matrix(tmp_path, extra=True)
    _draw("fig05", matrix, synthetic_results(matrix, skip=("cifar100",)), tmp_path)
    _draw("fig05", matrix, synthetic_results(matrix), tmp_path)
    one, two = kept_figures()
    assert len(one.axes) == 1 and "CIFAR-100" not in one.axes[0].get_title()
    assert "Not drawn (no finished runs at this budget): cifar100" in _caption(one)
    assert len(two.axes) == 2 and "CIFAR-100" in two.axes[1].get_title()


def test_fig5_axis_shows_point_differences(tmp_path, kept_figures):
    """The error axis fits the values (not 0–100), so a 2–9 point difference spans a visible part of it; the
    difference to BP-H is written under each protocol."""
    matrix = synthetic_matrix(tmp_path)
    _draw("fig05", matrix, synthetic_results(matrix), tmp_path)
    (fig,) = kept_figures()
    lo, hi = fig.axes[0].get_ylim()
    assert hi - lo < 45 and lo > 40
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0].startswith("BP\n") and ticks[1] == "BP-H\n(hinge)" and ticks[2].startswith("URFB\n+")


def test_fig6_panels_are_networks_with_a_chance_line_and_no_legend(tmp_path, kept_figures):
    matrix = synthetic_matrix(tmp_path, extra=True)
    _draw("fig06", matrix, synthetic_results(matrix), tmp_path)
    (fig,) = kept_figures()
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(",")[0] for t in titles] == ["deepnet", "deepernet", "deepnet"]
    assert "slope 0.5" in titles[2] and "deepnet-slope05" in titles[2]
    for ax in fig.axes:
        assert ax.get_legend() is None  # protocols are named on the axis: no legend entry without its bar
    assert _chance_lines(fig.axes[1]) == [90.0] and _chance_lines(fig.axes[2]) == [90.0]


@pytest.mark.parametrize("rows, kinds", [
    (("deepnet_s-untied41",), ["tied (convolutional)", "untied from scratch"]),
    ((), ["tied (convolutional)", "untied, §4.1 protocol (layer 1 trained tied, frozen)", "untied from scratch"]),
])
def test_fig9_is_tied_blue_untied_red_and_names_the_protocol_of_each_untied_row(tmp_path, kept_figures, rows, kinds):
    import matplotlib.colors as mc

    matrix = synthetic_matrix(tmp_path, extra=True)
    _draw("fig09", matrix, synthetic_results(matrix, skip=rows), tmp_path)
    (fig,) = kept_figures()
    legend = fig.axes[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == kinds
    colours = [mc.to_hex(h.get_facecolor()) for h in legend.legend_handles]
    assert colours[0] == "#2166ac" and set(colours[1:]) == {"#d7301f"}
    assert ("§4.1 protocol" in _caption(fig)) and ("deepnet_s-untied41" in _caption(fig)) == (not rows)


def test_correlation_figures_give_each_layer_a_panel_of_its_own_scale_from_epoch_0(tmp_path, kept_figures):
    """Fig. 11: 8 weight layers of deepnet_s, each its own panel and colour; curves start at step 0 and
    include the probes; an output-layer correlation of 0.5 does not squash a hidden layer's 0.01."""
    import matplotlib.colors as mc

    matrix = synthetic_matrix(tmp_path, extra=True)
    results = synthetic_results(matrix)
    _draw("fig11", matrix, results, tmp_path)
    (fig,) = kept_figures()
    urfb, frfb, *layers = [ax for ax in fig.axes if _has_data(ax)]
    names = list(results["deepnet_s/urfb-s0"]["metrics"][0]["alignment"])
    assert len(names) == 8 and len(layers) == 8
    assert [ax.get_title().split(" ")[0] for ax in layers] == names
    colours = {mc.to_hex(ln.get_color()) for ln in urfb.lines if ln.get_label() in names}
    assert len(colours) == 8
    for ln in urfb.lines:
        if ln.get_label() in names:
            assert ln.get_xdata()[0] == 0 and 10 in ln.get_xdata()
    hidden = layers[3]
    lo, hi = hidden.get_ylim()
    top = max(max(ln.get_ydata()) for ln in hidden.lines)
    assert hi < 0.5 and top > 0.3 * (hi - lo)


def _untied_checkpoint(root, matrix, increments):
    """A finished run of the untied simpnet on digits whose first layer is W(0) + the given increments
    ({position index (row-major): value added to every weight of channel 0 there}); returns its results."""
    from dataclasses import asdict

    import torch

    from models.train import build_network

    run = next(r for r in matrix.runs() if r.row == "untied" and r.seed == 0)
    net = build_network(run.config, (1, 8, 8), 10)
    first = next(m for m in net.layers if hasattr(m, "W"))
    with torch.no_grad():
        for p, v in increments.items():
            first.W[p, 0] += v
    d = run.path(root)
    d.mkdir(parents=True)
    torch.save({"model": net.state_dict(), "config": asdict(run.config)}, d / "checkpoint.pt")
    rows = [{"epoch": 1, "step": 16, "train_error": 0.5, "val_error": 0.5}]
    return {run.key: {"run": run, "metrics": rows, "config": asdict(run.config)}}


def test_fig8_draws_every_filter_on_one_shared_scale(tmp_path, kept_figures):
    """A filter that learning left unchanged is flat mid-grey and a tiny increment stays tiny beside a large one
    (no per-filter stretching); each block's colour bar spans ± the block's largest value."""
    import numpy as np

    from sims import figures

    p = tmp_path / "m.toml"
    p.write_text('[budget]\nseeds = [0]\n[defaults]\ntrain_subset = 800\nepochs = 1\nbatch_size = 50\n'
                 '[[rows]]\nname = "untied"\nnet = "simpnet"\nuntied = true\nprotocols = ["urfb"]\n'
                 'figures = ["fig08"]\n')
    matrix = load_matrix(p)
    # positions drawn: (2, 2), (2, 5), (5, 2), (4, 4) of the 8×8 grid
    results = _untied_checkpoint(tmp_path, matrix, {2 * 8 + 2: 1e-6, 2 * 8 + 5: 0.1})
    assert figures.fig_filters(matrix, results, tmp_path, tmp_path)
    (fig,) = kept_figures()
    by_title = {}
    for ax in fig.axes:
        if ax.images and ax.get_title():
            by_title[ax.get_title()] = ax.images[0].get_array()
    tiny, large, untouched = (by_title[f"W − W(0)\nat {pos}"] for pos in ("(2, 2)", "(2, 5)", "(5, 2)"))
    assert np.allclose(untouched, 0.5, atol=1e-12)
    assert np.abs(np.asarray(tiny) - 0.5).max() < 1e-4
    assert np.isclose(np.asarray(large).max(), 1.0)
    bars = [ax for ax in fig.axes if ax.collections and not ax.images]  # the colour bars
    assert len(bars) == 2
    scales = [ax.get_ylim() for ax in bars]
    assert all(np.isclose(lo, -hi) for lo, hi in scales) and np.isclose(scales[1][1], 0.1)
