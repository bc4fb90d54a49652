"""Every script answers bad input with one line and exit status 2, before any work (issue 12).

Each case runs a script of sims/ or bench/ in a subprocess with one impossible setting (a circuit parameter
outside Appendix 1's range, a missing data set, an unwritable output folder, an unknown rule or network)
and asserts: status 2, stderr exactly one line starting with ``error:``, no traceback, nothing on stdout
that says work was done, and nothing written into docs/figures. A timeout of a few seconds per case holds
the "before any work" part: the bad input must be refused before any simulation or training starts.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# script, arguments with one bad input, a word the message must contain
CASES = [
    ("sims/train.py", ["--error-signal", "circuit", "--circuit-M", "0.5"], "M"),
    ("sims/train.py", ["--circuit-K", "5"], "--gate circuit"),
    ("sims/train.py", ["--engine", "scheduled", "--gate", "circuit", "--circuit-K", "0"], "K"),
    ("sims/scheduler_experiment.py", ["--circuit-eps", "0", "--data", "digits"], "eps"),
    ("sims/scheduler_experiment.py", ["--data", "images", "--data-dir", "{missing}"], "not found"),
    ("sims/untied.py", ["--data", "images", "--data-dir", "{missing}"], "not found"),
    ("sims/schedule_graph.py", ["--out", "{unwritable}"], "cannot write"),
    ("sims/output_circuit.py", ["--M", "0.5"], "M"),
    ("sims/shutdown_circuit.py", ["--K", "0"], "K"),
    ("sims/circuit_dynamics.py", ["--eps", "-0.1"], "eps"),
    ("sims/linear_theory.py", ["--out", "{unwritable}"], "cannot write"),
    ("bench/circuit_modules.py", ["--M", "0.5"], "M"),
    ("bench/scheduled_step.py", ["--nets", "nosuchnet"], "unknown network"),
    ("bench/step_time.py", ["--rules", "nosuchrule"], "unknown rule"),
    ("bench/local_layers.py", ["--batch", "0"], "--batch"),
    ("bench/circuit_targets.py", ["--cycles", "1"], "--cycles"),
    ("sims/circuit_targets.py", ["--targets", "cython", "numpy"], "numpy"),
    ("sims/circuit_dynamics.py", ["--dt-divisions", "2"], "--dt-divisions"),
    ("sims/brian2_network.py", ["--rule", "bp-h"], "--rule"),
    ("sims/brian2_network.py", ["--circuit-K", "0"], "K"),
    ("sims/brian2_network.py", ["--net", "conv 4 3x3; output"], "local"),
    ("bench/brian2_network.py", ["--examples", "0"], "--examples"),
]


def figures_state():
    return {p.name: p.stat().st_mtime_ns for p in (ROOT / "docs" / "figures").glob("*")}


@pytest.mark.parametrize("script,args,word", CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_bad_input_is_one_line_and_exit_2_before_any_work(script, args, word, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made below a file: unwritable for root too
    subs = {"{missing}": str(tmp_path / "no-such-data"), "{unwritable}": str(blocker / "out")}
    args = [subs.get(a, a) for a in args]
    before = figures_state()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(ROOT / script), *args, *(["--out", str(tmp_path / "o")]
                        if "--out" not in args and script.startswith("sims/") else [])],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr
    assert word in lines[0]
    assert not list(tmp_path.glob("o/*")), "work was done before the bad input was refused"
    assert figures_state() == before


def test_publish_and_out_together_are_refused_for_a_figure_script(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "schedule_graph.py"), "--publish", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--publish" in p.stderr


def test_scripts_write_under_runs_by_default_not_into_docs_figures(tmp_path):
    """A quick try from a fresh folder leaves the published figures alone (default --out runs/<script>)."""
    before = figures_state()
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "schedule_graph.py"), "--net", "full 4; output",
                        "--shape", "1,2,2"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert sorted(q.name for q in (tmp_path / "runs" / "schedule_graph").glob("*.png")) == [
        "schedule_custom_gradient.png", "schedule_custom_paper.png"]
    assert figures_state() == before


def test_every_flag_of_every_script_shows_its_default_in_help():
    """ArgumentDefaultsHelpFormatter everywhere: each script's --help names the default of a flag."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for script in sorted({c[0] for c in CASES}):
        p = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                           timeout=120, env=env)
        assert p.returncode == 0, (script, p.stderr)
        assert "(default: " in p.stdout, script
