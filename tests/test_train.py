"""The trainer (docs/spec.md §2, §3; issue: resume, reproducibility, bad input), on small generated data."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import Dataset
from models.train import DivergenceError, RunConfig, RunDirError, read_metrics, train

ROOT = Path(__file__).resolve().parents[1]
NET = "conv 4 3x3; conv 4 3x3; sum; maxpool 3; drop .3; full 16; drop .2; output"


def tiny_dataset(n=120, classes=4, shape=(1, 8, 8), seed=0, test=True):
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, *shape)).astype(np.float32)

    def draw(m):
        y = rng.integers(0, classes, m)
        x = np.clip(protos[y] + 0.3 * rng.standard_normal((m, *shape)), 0, 1).astype(np.float32)
        return x, y.astype(np.int64)

    xt, yt = draw(n)
    xv, yv = draw(40)
    xs, ys = draw(40) if test else (None, None)
    return Dataset("tiny", [str(c) for c in range(classes)], xt, yt, xv, yv, xs, ys)


def cfg(**kw):
    base = dict(net=NET, rule="urfb", data="tiny", epochs=3, batch_size=32, lr=0.1, seed=0)
    base.update(kw)
    return RunConfig(**base)


def strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_urfb_symmetric_start_matches_bp_h_metrics():
    ds = tiny_dataset()
    a = train(cfg(rule="urfb", feedback_init="symmetric", epochs=4), dataset=ds)
    b = train(cfg(rule="bp-h", feedback_init="symmetric", epochs=4), dataset=ds)
    for ra, rb in zip(a, b):
        for key in ("train_loss", "train_error", "val_error", "test_error", "val_loss"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-5), key
        assert all(v == pytest.approx(1.0) for v in ra["alignment"].values())  # R stays Wᵀ


def test_same_seed_gives_identical_runs_and_other_seed_differs():
    ds = tiny_dataset()
    a, b = train(cfg(), dataset=ds), train(cfg(), dataset=ds)
    assert strip(a) == strip(b)
    c = train(cfg(seed=1), dataset=ds)
    assert strip(a) != strip(c)


def test_run_directory_contents(tmp_path):
    rows = train(cfg(epochs=2), tmp_path / "run", dataset=tiny_dataset())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["net"] == NET and saved["rule"] == "urfb"
    metrics = read_metrics(tmp_path / "run")
    assert strip(metrics) == strip(rows) and len(metrics) == 2
    for key in ("epoch", "train_loss", "train_error", "val_error", "test_error", "alignment", "seconds"):
        assert key in metrics[0]
    assert set(metrics[0]["alignment"]) == {"conv1", "conv2", "full1", "output"}
    assert (tmp_path / "run" / "checkpoint.pt").exists()


class Killed(Exception):
    pass


def test_run_killed_mid_epoch_resumes_bit_exactly(tmp_path):
    ds = tiny_dataset()
    full = train(cfg(epochs=4), tmp_path / "full", dataset=ds)

    from models.train import _fast_step

    calls = {"n": 0}

    def dying_step(*args):
        calls["n"] += 1
        if calls["n"] == 10:  # epoch 3 (4 batches per epoch), mid-way
            raise Killed()
        return _fast_step(*args)

    with pytest.raises(Killed):
        train(cfg(epochs=4), tmp_path / "cut", dataset=ds, step=dying_step)
    assert len(read_metrics(tmp_path / "cut")) == 2  # two finished epochs were saved
    resumed = train(cfg(epochs=4), tmp_path / "cut", dataset=ds, resume=True)
    assert strip(resumed) == strip(full)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_stopped_between_checkpoint_and_metrics_row_gets_its_row_back_on_resume(tmp_path):
    """A stop after the checkpoint of the last epoch was written but before its metrics row was appended leaves
    metrics.jsonl one row short of a finished run; resuming it (nothing left to train) restores the row from
    the checkpoint, so no epoch's record is lost."""
    ds = tiny_dataset()
    rows = train(cfg(epochs=2), tmp_path / "r", dataset=ds)
    path = tmp_path / "r" / "metrics.jsonl"
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    again = train(cfg(epochs=2), tmp_path / "r", dataset=ds, resume=True)
    assert strip(again) == strip(rows) and strip(read_metrics(tmp_path / "r")) == strip(rows)


def test_existing_run_directory_needs_resume(tmp_path):
    ds = tiny_dataset()
    train(cfg(epochs=1), tmp_path / "r", dataset=ds)
    with pytest.raises(RunDirError, match="--resume"):
        train(cfg(epochs=1), tmp_path / "r", dataset=ds)
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(cfg(epochs=1), tmp_path / "empty", dataset=ds, resume=True)


def test_divergence_is_reported():
    with pytest.raises(DivergenceError, match="lower --lr"):
        train(cfg(lr=1e38, epochs=5, rule="bp-h"), dataset=tiny_dataset())


def test_training_lowers_the_error_under_every_rule():
    ds = tiny_dataset(n=200)
    for rule in ("bp", "bp-h", "frfb", "urfb"):
        rows = train(cfg(rule=rule, net="full 32; output", epochs=15, batch_size=20), dataset=ds)
        assert rows[-1]["val_error"] < 0.5 * rows[0]["val_error"] + 0.05, rule


@pytest.mark.parametrize("bad", [
    ["--rule", "hebb"],
    ["--net", "resnet"],
    ["--net", "conv 3 3x3; maxpol 3; output"],
    ["--data", "mnist"],
    ["--data", "fashion-mnist", "--data-dir", "no-such-folder"],
    ["--lr", "-1"],
    ["--rule", "kp"],  # kp with the default decay 0 would be URFB under another name
    ["--rule", "dfa", "--engine", "scheduled"],
])
def test_cli_bad_input_is_one_line_and_nonzero(bad, tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "train.py"), "--out", str(tmp_path / "r"),
                        "--epochs", "1", *bad], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr


def test_cli_corrupt_idx_file(tmp_path):
    d = tmp_path / "fm"
    d.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (d / name).write_bytes(b"\x00\x00\x08\x03garbage")
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "train.py"), "--data", "fashion-mnist",
                        "--data-dir", str(d), "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=120, env={"ASYMHEBB_CACHE": str(tmp_path / "c"),
                                                                          "PATH": "/usr/bin:/bin"})
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "idx" in p.stderr.lower(), p.stderr


def test_cli_trains_with_rule_dfa_and_kp(tmp_path):
    for extra in (["--rule", "dfa"], ["--rule", "kp", "--kp-decay", "0.01"]):
        out = tmp_path / extra[1]
        p = subprocess.run([sys.executable, str(ROOT / "sims" / "train.py"), "--data", "digits", "--net", "full 16; output",
                            "--epochs", "1", "--batch-size", "50", "--train-subset", "300", "--out", str(out),
                            "--threads", "1", *extra], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert json.loads((out / "config.json").read_text())["rule"] == extra[1]
        assert len(read_metrics(out)) == 1


@pytest.mark.slow
def test_cli_digits_end_to_end_and_resume(tmp_path):
    run = [sys.executable, str(ROOT / "sims" / "train.py"), "--data", "digits", "--net",
           "conv 4 3x3; maxpool 3; full 32; output", "--batch-size", "50", "--out", str(tmp_path / "r"),
           "--threads", "1"]
    p = subprocess.run(run + ["--epochs", "2"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(run + ["--epochs", "3", "--resume"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = read_metrics(tmp_path / "r")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["test_error"] < 0.9


@pytest.mark.parametrize("engine", ["fast", "scheduled"])
@pytest.mark.parametrize("classes", [10, 3])
def test_default_mu_is_one_over_C_minus_1_in_loss_and_output_error(classes, engine):
    """docs/spec.md §3: with ``mu`` unset, the hinge loss (eq. 4) and its output error (eq. 6) use μ = 1/(C−1),
    C the number of classes of the data. One batch through a single linear layer: the reported training
    loss is eq. 4 at the initial weights, the update is η/B Σ δ xᵀ with δ of eq. 6, and the reported
    validation loss is eq. 4 at the updated weights."""
    from handcalc import eq4, eq6
    from models.network import Network

    mu = 1.0 / (classes - 1)
    ds = tiny_dataset(n=30, classes=classes, shape=(1, 3, 3), seed=classes)
    net = Network("output", (1, 3, 3), classes, rule="urfb", seed=0, dtype=torch.float64)
    W0 = net.layers[0].W.detach().clone()
    x = torch.as_tensor(ds.x_train, dtype=torch.float64).flatten(1)
    y = torch.as_tensor(ds.y_train)
    out0 = x @ W0.t()
    assert (eq6(out0, y, mu) != eq6(out0, y, 0.5 if classes == 10 else 1 / 9)).any()  # μ is visible here
    rows = train(cfg(net="output", epochs=1, batch_size=len(y), dtype="float64", engine=engine), network=net,
                 dataset=ds)
    assert rows[0]["train_loss"] == pytest.approx(eq4(out0, y, mu), rel=1e-12)
    torch.testing.assert_close(net.layers[0].W.detach() - W0, 0.1 / len(y) * eq6(out0, y, mu).t() @ x,
                               rtol=0, atol=1e-14)
    xv = torch.as_tensor(ds.x_val, dtype=torch.float64).flatten(1)
    out_v = xv @ net.layers[0].W.detach().t()
    assert rows[0]["val_loss"] == pytest.approx(eq4(out_v, torch.as_tensor(ds.y_val), mu), rel=1e-12)


OLD_STYLE = {  # a config.json written before the circuit fields were grouped (flat, as the old RunConfig)
    "net": NET, "rule": "urfb", "data": "tiny", "data_dir": None, "epochs": 2, "batch_size": 32, "lr": 0.1,
    "seed": 0, "connectivity": 1.0, "mask_output": True, "feedback_init": "random", "slope": 0.5, "mu": None,
    "kp_decay": 0.0, "train_subset": None, "val_size": None, "device": "cpu", "dtype": "float32",
    "eval_batch_size": 1000, "engine": "scheduled", "order": "paper", "error_signal": "circuit",
    "readout": "veto", "gate": "circuit", "circuit_M": 50.0, "circuit_eps": 0.2, "circuit_cycles": 4,
    "circuit_order": "sequential", "circuit_margin": 0.25, "circuit_K": 1000.0, "on_range": "error",
    "audit_every": 0, "compare_every": 0}


def test_old_flat_config_loads_into_the_grouped_circuit_fields_and_resumes(tmp_path):
    from models.train import CircuitConfig, load_config

    c = RunConfig.from_dict(OLD_STYLE)
    assert c.circuit == CircuitConfig(error_signal="circuit", readout="veto", gate="circuit", M=50.0, eps=0.2,
                                      cycles=4, order="sequential", margin=0.25, K=1000.0, on_range="error")
    assert c.engine == "scheduled" and c.order == "paper" and c.net == NET
    assert RunConfig.from_dict(json.loads(json.dumps(__import__("dataclasses").asdict(c)))) == c  # new form
    with pytest.raises(ValueError, match="unknown fields.*circuit.Q"):
        RunConfig.from_dict({**OLD_STYLE, "circuit": {"Q": 1}})
    # a run whose config.json is old-style resumes from its checkpoint and continues as a fresh run does
    ds = tiny_dataset()
    full = train(c, tmp_path / "full", dataset=ds)
    one = RunConfig.from_dict({**OLD_STYLE, "epochs": 1})
    train(one, tmp_path / "cut", dataset=ds)
    (tmp_path / "cut" / "config.json").write_text(json.dumps({**OLD_STYLE, "epochs": 1}))
    resumed_cfg = load_config(tmp_path / "cut")
    resumed_cfg.epochs = 2
    resumed = train(resumed_cfg, tmp_path / "cut", dataset=ds, resume=True)
    assert strip(resumed) == strip(full)


def test_resume_refuses_settings_that_differ_from_the_saved_ones_and_names_them(tmp_path):
    """Issue 12: a run directory remembers its configuration. Resuming (or starting anew) with other settings
    is refused with one line naming each differing setting; more epochs continue; fewer than done are
    refused; resuming a finished run trains nothing and returns its metrics."""
    ds = tiny_dataset()
    d = tmp_path / "r"
    rows = train(cfg(epochs=1), d, dataset=ds)
    with pytest.raises(RunDirError, match=r"lr 0.1 -> 0.05") as e:
        train(cfg(epochs=2, lr=0.05), d, dataset=ds, resume=True)
    assert "\n" not in str(e.value) and "another --out" in str(e.value)
    changed = cfg(epochs=1, circuit=__import__("models.train", fromlist=["CircuitConfig"]).CircuitConfig(M=5.0))
    with pytest.raises(RunDirError, match=r"circuit.M 10.0 -> 5.0"):
        train(changed, d, dataset=ds, resume=True)
    with pytest.raises(RunDirError, match=r"circuit.M 10.0 -> 5.0.*another --out"):
        train(changed, d, dataset=ds)  # a new run over an old one with other settings
    assert len(read_metrics(d)) == 1  # nothing was trained by the refused calls
    lines = []
    assert strip(train(cfg(epochs=1), d, dataset=ds, resume=True, log=lines.append)) == strip(rows)
    assert any("finished (1 of 1 epochs)" in line for line in lines)
    assert len(train(cfg(epochs=2), d, dataset=ds, resume=True)) == 2  # more epochs: sound, continued
    assert json.loads((d / "config.json").read_text())["epochs"] == 2  # the run's own count is now 2
    with pytest.raises(RunDirError, match="already trained 2 epochs"):
        train(cfg(epochs=1), d, dataset=ds, resume=True)


def test_cli_resume_without_epochs_continues_to_the_runs_own_count_and_names_changed_flags(tmp_path):
    """``--resume`` without ``--epochs`` keeps the run's count (not the flag's default, 10); a flag that
    differs from the saved settings (--lr) is refused in one line with status 2."""
    run = [sys.executable, str(ROOT / "sims" / "train.py"), "--data", "digits", "--net", "full 8; output",
           "--train-subset", "100", "--batch-size", "50", "--out", str(tmp_path / "r"), "--threads", "1",
           "--no-progress"]
    p = subprocess.run(run + ["--epochs", "2"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "train err" in p.stdout and "val err" in p.stdout  # error rates say they are errors
    p = subprocess.run(run + ["--resume"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "finished (2 of 2 epochs)" in p.stdout
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [1, 2]
    p = subprocess.run(run + ["--resume", "--lr", "0.05"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "lr 0.1 -> 0.05" in p.stderr, p.stderr
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [1, 2]


@pytest.mark.parametrize("kw", [dict(engine="fast"), dict(engine="scheduled")])
def test_circuit_signals_print_a_regime_line_per_epoch(kw):
    """Under error_signal=circuit each epoch logs a second line with the output units' regime fractions (which
    sum to 100%) and the range violations; under the ideal signals no such line."""
    from models.train import CircuitConfig

    ds = tiny_dataset()
    lines = []
    rows = train(cfg(epochs=2, **kw, circuit=CircuitConfig(error_signal="circuit")), dataset=ds, log=lines.append)
    circ = [line for line in lines if line.lstrip().startswith("circuits:")]
    assert len(circ) == 2 and "out of range |h|>=M 0" in circ[0]
    for r in rows:
        assert sum(r["regime_fraction"].values()) == pytest.approx(1.0)
        assert r["range_violations"]["output_M"] == 0
    for name, frac in rows[-1]["regime_fraction"].items():
        assert f"{name} {100 * frac:.1f}%" in circ[-1]
    lines = []
    train(cfg(epochs=1, **kw), dataset=ds, log=lines.append)
    assert not [line for line in lines if "circuits:" in line]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_run_files_get_the_mode_of_an_ordinary_new_file(tmp_path, umask, mode):
    """config.json, metrics.jsonl and checkpoint.pt are written through a temporary file (mode 0600) and a
    rename; each ends with 0666 less the umask, as a file opened for writing would: readable by the group of
    a shared run folder under the usual umask 022."""
    import os

    old = os.umask(umask)
    try:
        train(cfg(epochs=1), tmp_path / "r", dataset=tiny_dataset())
    finally:
        os.umask(old)
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == mode, name


@pytest.mark.slow
def test_the_defaults_learn_on_the_default_data_set(tmp_path):
    """``python sims/train.py`` with no flag (simpnet, URFB, digits, 10 epochs, the digits batch size) ends far
    below chance (90%): with the paper's batch of 500 the 1,137 training digits give 3 steps an epoch and the
    run ends at chance."""
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "train.py"), "--out", str(tmp_path / "r"),
                        "--no-progress", "--threads", "2"], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr
    rows = read_metrics(tmp_path / "r")
    assert len(rows) == 10 and rows[-1]["test_error"] < 0.2, [r["test_error"] for r in rows]
