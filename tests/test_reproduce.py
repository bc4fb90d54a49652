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


def reproduce(*args, check=True):
    p = subprocess.run([*REPRODUCE, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
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


@pytest.mark.slow
def test_smoke_budget_writes_every_figure_and_the_page(tmp_path):
    out = tmp_path / "smoke"
    docs_before = {p: p.stat().st_mtime_ns for p in (ROOT / "docs").rglob("*") if p.is_file()}
    reproduce("--budget", "smoke", "--out", out, "--workers", "2")
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
    assert docs_before == {p: p.stat().st_mtime_ns for p in (ROOT / "docs").rglob("*") if p.is_file()}
    t1 = time.perf_counter()
    p = reproduce("--budget", "smoke", "--out", out, "--only", "fig04,results")
    assert time.perf_counter() - t1 < 60 and "fig04_error_curves_simpnet.png" in p.stdout


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
