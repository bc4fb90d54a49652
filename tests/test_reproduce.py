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

from models.claims import judge_all
from models.experiments import MatrixError, Run, load_matrix, parse_protocol, run_state
from models.train import RunConfig

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
])
def test_malformed_matrices_are_refused_in_one_line(tmp_path, body, message):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(MatrixError, match=message) as e:
        load_matrix(p)
    assert "\n" not in str(e.value)


def test_every_shipped_budget_parses_and_is_paper_settings_where_it_says():
    for name in ("smoke", "cpu", "paper"):
        m = load_matrix(ROOT / "sims" / "experiments" / f"{name}.toml")
        assert m.runs()
    paper = load_matrix(ROOT / "sims" / "experiments" / "paper.toml")
    assert len(paper.seeds) == 3
    for r in paper.runs():
        c = r.config
        assert (c.epochs, c.batch_size, c.lr, c.train_subset, c.val_size) == (1000, 500, 0.1, None, 5000)
    cpu = load_matrix(ROOT / "sims" / "experiments" / "cpu.toml")
    assert len(cpu.seeds) == 3 and all(r.config.batch_size == 500 for r in cpu.runs())


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
    for claim in range(1, 7):
        assert f"| {claim}. " in page
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


# --- the verdicts -------------------------------------------------------------------------------------------

def _fake(row, protocol, seed, errors, corr=None):
    rows = []
    for i, e in enumerate(errors):
        c = corr[i] if corr else 0.0
        rows.append({"epoch": i + 1, "train_error": e / 100, "val_error": e / 100,
                     "alignment": {"conv1": c, "full1": c, "output": c}})
    run = Run(row=row, protocol=protocol, seed=seed, dataset="cifar10", config=RunConfig(rule=protocol.split("-5")[0]))
    return {f"{row}/{protocol}-s{seed}": {"run": run, "metrics": rows, "config": {}}}


def _results(spec):
    out = {}
    for (row, protocol), (curve, corr) in spec.items():
        for seed, jitter in enumerate((0.0, 0.4, -0.3)):
            out.update(_fake(row, protocol, seed, [e + jitter for e in curve], corr))
    return out


CLAIMS = {"shallow": "s", "deep": ["d"], "untied": [["s", "su"]], "correlation": ["s"]}


def test_verdicts_follow_the_numbers():
    good = _results({("s", "bp"): ([60, 50, 40, 35], None), ("s", "bp-h"): ([61, 51, 41, 37], None),
                     ("s", "urfb"): ([70, 55, 45, 40], [0.0, 0.1, 0.2, 0.3]),
                     ("s", "frfb"): ([75, 65, 55, 50], [0.0, 0.0, 0.0, 0.0]),
                     ("su", "bp-h"): ([62, 52, 42, 38], None), ("su", "urfb"): ([71, 56, 46, 42], None),
                     ("su", "frfb"): ([76, 66, 56, 52], None),
                     ("d", "bp-h"): ([80, 60, 50, 45], None), ("d", "urfb"): ([85, 62, 52, 47], None),
                     ("d", "frfb"): ([90, 89, 85, 70], None)})
    v = {x.claim: x.verdict for x in judge_all(good, CLAIMS)}
    assert v == {1: "holds", 2: "holds", 3: "holds", 4: "holds", 5: "holds", 6: "holds"}
    # the same with FRFB ahead of URFB on the shallow net, and a deep row at chance
    bad = dict(good)
    bad.update(_results({("s", "frfb"): ([65, 50, 40, 36], [0.0, 0.0, 0.0, 0.0]),
                         ("d", "bp-h"): ([90, 90, 90, 90], None), ("d", "urfb"): ([90, 90, 90, 90], None),
                         ("d", "frfb"): ([90, 90, 90, 90], None)}))
    v = {x.claim: x for x in judge_all(bad, CLAIMS)}
    assert v[2].verdict == "fails" and "better than FRFB" in v[2].reason
    assert v[3].verdict == "undecided" and "chance" in v[3].reason
    # correlation that falls under URFB fails claim 5
    fall = dict(good)
    fall.update(_results({("s", "urfb"): ([70, 55, 45, 40], [0.3, 0.2, 0.1, 0.0])}))
    assert {x.claim: x.verdict for x in judge_all(fall, CLAIMS)}[5] == "fails"
