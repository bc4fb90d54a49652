"""Every script answers bad input with one line and exit status 2, before any work (issue 12).

Each case runs a script of sims/ or bench/ in a subprocess with one impossible setting (a circuit parameter
outside Appendix 1's range, a missing data set, an unwritable output folder, an unknown rule or network)
and asserts: status 2, stderr exactly one line starting with ``error:``, no traceback, nothing on stdout
that says work was done, and nothing written into docs/figures. A timeout of a few seconds per case holds
the "before any work" part: the bad input must be refused before any simulation or training starts.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
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
    ("sims/error_signals.py", ["--phase", "8"], "--phase"),
    ("sims/error_signals.py", ["--data", "digit"], "unknown data set"),
    ("sims/error_signals.py", ["--circuit-M", "0.5"], "M"),
    ("sims/error_signals.py", ["--epochs", "x"], "--epochs"),
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


# --- sims/train.py: every setting is checked before anything is written ------------------------------------

# arguments with one malformed or impossible value, and a word the one-line message must contain
TRAIN_BAD = [
    (["--data", "digit"], "unknown data set 'digit'"),
    (["--net", "simpnett"], "unknown network 'simpnett'"),
    (["--error-signal", "circuit", "--readout", "phase"], "readout 'phase'"),
    (["--lr", "abc"], "--lr"),
    (["--batch-size", "abc"], "--batch-size"),
    (["--epochs", "0"], "--epochs must be 1 or more"),
    (["--threads", "0"], "--threads must be 1 or more"),
    (["--device", "foo"], "--device"),
    (["--seed", "-1"], "seed"),
    (["--data", "fashion-mnist", "--data-dir", "no-such-folder"], "not found"),
]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("args,word", TRAIN_BAD, ids=[" ".join(a) for a, _ in TRAIN_BAD])
def test_train_bad_input_is_one_line_exit_2_and_leaves_runs_unchanged(args, word, tmp_path):
    """``sims/train.py`` with one bad setting and no --out (the default run directory under runs/): one line on
    stderr, status 2, nothing on stdout (no run: or config: line), and the listing of runs/ unchanged."""
    (tmp_path / "runs" / "earlier-run").mkdir(parents=True)
    (tmp_path / "runs" / "earlier-run" / "config.json").write_text("{}")
    before = listing(tmp_path)
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "train.py"), *args], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], p.stderr
    assert p.stdout == ""
    assert listing(tmp_path) == before


def test_train_batch_size_default_is_per_data_set_and_written_in_help():
    """The paper's batch 500 for the paper's data sets; 20 for the 1,137 training digits (3 steps an epoch at
    500 leave simpnet at chance after the default epochs); --help says both."""
    from sims import train as cli_train

    def batch(*argv):
        return cli_train.config_from_args(cli_train.parse_args(list(argv))).batch_size

    assert batch() == batch("--data", "digits") == 20
    assert batch("--data", "cifar10") == batch("--data", "fashion-mnist") == batch("--data", "cifar100") == 500
    assert batch("--data", "cifar10", "--batch-size", "64") == 64
    text = cli_train.build_parser().format_help()
    assert "20 for digits" in " ".join(text.split()) and "500 (the paper's)" in " ".join(text.split())


def test_train_restart_command_names_the_run_directory():
    from sims import train as cli_train

    cmd = shlex.split(cli_train.command(["--data", "digits", "--epochs", "3"], "runs/a b", resume=False))
    assert cmd[2:] == ["--data", "digits", "--epochs", "3", "--out", "runs/a b"]
    cmd = shlex.split(cli_train.command(["--out", "runs/x", "--lr", "0.05"], "runs/x", resume=True))
    assert cmd[2:] == ["--out", "runs/x", "--resume"]


def test_train_ctrl_c_prints_the_whole_resume_command_and_it_continues_the_run(tmp_path):
    """Ctrl-C after the first epoch: status 130 and one line whose command (with --out) resumes the run."""
    out = tmp_path / "run dir"  # a space: the command must quote it
    argv = [str(ROOT / "sims" / "train.py"), "--net", "full 16; output", "--train-subset", "200",
            "--epochs", "1000", "--batch-size", "50", "--threads", "1", "--no-progress", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, *argv], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    # metrics.jsonl is written just after checkpoint.pt at the end of an epoch: wait for both
    while time.time() < deadline and not (out / "metrics.jsonl").exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "continue with: " in lines[0], err
    cmd = shlex.split(lines[0].split("continue with: ", 1)[1])
    assert cmd[0] == "python" and cmd[1].endswith("train.py") and cmd[2:] == ["--out", str(out), "--resume"]
    done = len((out / "metrics.jsonl").read_text().splitlines())
    p = subprocess.run([sys.executable, *cmd[1:], "--epochs", str(done + 1)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == done + 1
