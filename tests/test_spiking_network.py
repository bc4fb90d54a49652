"""The learning machine in spikes (circuits/spiking_network.py) against the rate network it approximates.

Properties (docs/spiking_network.md): built from the same plain data as the rate network, it refuses an order
that breaks Remark 1 before any Brian2 object exists; at a fixed seed it gives bit-identical spikes, outputs and
weights on numpy and cpp_standalone; its measured activities approach the rate network's as the populations grow
(the RMS error at 4N is clearly below that at N); and it learns.
"""
import numpy as np
import pytest
import torch

from circuits.learning_network import LearningNetwork, ScheduleError, slot_table
from circuits.spiking_network import SpikingLearningNetwork, phase_table
from models.network import Network
from models.schedule import plain_network

C = 4
MU = 1.0 / (C - 1)
CIRCUIT = dict(M=10.0, mu=MU, eps=0.5, K=100.0, margin=0.5)


def _plain(spec="full 8; output", shape=(1, 4, 4), rule="urfb", seed=3):
    net = Network(spec, shape, C, rule=rule, seed=seed, dtype=torch.float64)
    return net, plain_network(net)


def _examples(n, n_in, seed=0):
    g = np.random.default_rng(seed)
    x = g.random((n, n_in))
    y = np.arange(n) % C
    s = -np.ones((n, C))
    s[np.arange(n), y] = 1.0
    return x, y, s


def test_phases_are_the_rate_slots_with_each_cycle_split_in_two():
    """One description of the slots: the spiking phases are slot_table's slots, each error cycle a δ then a t
    phase (the sequential order of Fig. 14), every other slot one phase."""
    _, plain = _plain()
    slots = slot_table(plain["events"], 2)
    phases = phase_table(plain["events"], 2)
    assert len(phases) == len(slots) + 2
    assert [p for p in phases if not p[0].startswith("error")] == [s for s in slots if s[0] != "error"]
    assert [p[0] for p in phases if p[0].startswith("error")] == ["error-delta", "error-t"] * 2


def test_misordered_schedule_is_refused_before_any_brian2_object(monkeypatch):
    """An order in which the output's update comes after δ replaced the hidden x is refused with the data-flow
    error of the rate network, before the calibration runs or any Brian2 object is made."""
    import brian2

    import circuits.spiking as spiking

    _, plain = _plain()
    ev = list(plain["events"])
    upd_out = ev.index(("update", 1))
    bad = ev[:upd_out] + ev[upd_out + 1:] + [("update", 1)]

    def boom(*a, **k):
        raise AssertionError("a Brian2 object or the calibration was made before the schedule was checked")

    for name in ("NeuronGroup", "Synapses", "TimedArray", "Network", "Clock"):
        monkeypatch.setattr(brian2, name, boom)
    monkeypatch.setattr(spiking, "calibrate", boom)
    with pytest.raises(ScheduleError, match="update of output"):
        SpikingLearningNetwork(plain["n_in"], plain["layers"], bad, learn_R=True, n_examples=2, N=4, **CIRCUIT)


def _rms_vs_rate(N, plain, x, s, phase=0.03, dale=False):
    """RMS differences to the rate network (η = 0, same weights): the hidden h and x after the forward slot,
    the output h_L."""
    import brian2 as b2

    n = len(x)
    b2.start_scope()
    ln = LearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=True, n_examples=n,
                         record_activity=True, record_weights=False, name="rate", **CIRCUIT)
    rr = ln.run(x, s, 0.0)
    act = ln.activity()
    sn = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=True, n_examples=n, N=N,
                                phase=phase, seed=5, record_phases=True, record_weights=False, name=f"s{N}",
                                dale=dale, **CIRCUIT)
    rs = sn.run(x, s, 0.0)
    rec = sn.phase_record()
    P, ns = sn.n_phases, ln.n_slots
    f_sp = [k for k, p in enumerate(sn.phases) if p[:2] == ("forward", 0)][0]
    f_rt = [k for k, p in enumerate(ln.slots) if p[:2] == ("forward", 0)][0]
    x_sp = rec[("full1", "v")][:, f_sp + 1::P][:, :n]
    x_rt = act[("full1", "x")][:, f_rt::ns]
    h_sp = rec[("full1", "h")][:, f_sp + 1::P][:, :n]
    W = np.zeros((plain["layers"][0]["units"], plain["n_in"]))
    W[plain["layers"][0]["W"]["post"], plain["layers"][0]["W"]["pre"]] = plain["layers"][0]["W"]["w"]
    h_rt = W @ x.T  # the rate network's h = W x_0 (x_0 exact there)
    rms = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))  # noqa: E731
    return {"h": rms(h_sp, h_rt), "x": rms(x_sp, x_rt), "h_L": rms(rs["output"], rr["output"])}


def test_rms_error_shrinks_as_the_populations_grow(brian):
    """The spiking network's hidden h (W times the input populations' counts) and hidden x = σ(h) (the hidden
    populations' counts) approach the rate network's on the same weights: the RMS error at N = 32 is below
    0.7 × that at N = 8 (noise ∝ 1/√N predicts 0.5), and small at N = 32. (The output's h_L, 16 values read
    through a second stage, is too noisy at this size for a ratio: 0.134 → 0.114 in one run.)"""
    _, plain = _plain()
    x, _, s = _examples(4, plain["n_in"])
    small = _rms_vs_rate(8, plain, x, s)
    large = _rms_vs_rate(32, plain, x, s)
    for q in ("h", "x"):
        assert large[q] < 0.7 * small[q], (q, small, large)
    assert large["x"] < 0.1 and large["h"] < 0.15, large


def test_with_dales_law_every_neuron_acts_with_one_sign(brian):
    """ON/OFF coding makes every neuron act with both signs (it drives its targets' ON neurons one way and
    their OFF neurons the other); with dale=True no neuron of any group does, at the initial weights of both
    signs (spiking.dale_violations' property for the whole learning machine). Odd N is refused."""
    _, plain = _plain("full 6; output")
    kw = dict(learn_R=True, n_examples=1, N=4, record_weights=False, **CIRCUIT)
    w = plain["layers"][0]["W"]["w"]
    assert (w > 0).any() and (w < 0).any()
    plain_v = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], name="nd", **kw)
    dale = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], name="da", dale=True, **kw)
    before = plain_v.dale_violations()
    for g in ("nd_input_neurons", "nd_full1_neurons", "nd_output_neurons", "nd_detector_neurons"):
        assert before[g] > 0, before
    after = dale.dale_violations()
    assert set(after) == {g.replace("nd_", "da_") for g in before} and not any(after.values()), after
    with pytest.raises(ValueError, match="N must be even"):
        SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], name="odd", dale=True,
                               **dict(kw, N=5))


def test_with_dales_law_each_target_reads_the_route_of_its_sign(brian):
    """dale=True, measured at every phase of two examples: the hidden layer's drive of its ON neurons is
    Σ w·(route A of the input where w > 0, route B elsewhere), that of its OFF neurons the reverse, the same
    for R δ into the layer below, and for δ̂ into the output's ON/OFF neurons (dp, dm); each route is a count of
    its own (the routes differ) and the whole value is their mean."""
    _, plain = _plain("full 6; output")
    x, _, s = _examples(2, plain["n_in"])
    sn = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=True, n_examples=2, N=4,
                                phase=0.02, settle=0.005, seed=2, record_phases=True, record_weights=False,
                                dale=True, name="rt", **CIRCUIT)
    sn.run(x, s, 0.0)
    rec = sn.phase_record()

    def dense(syn, n_post, n_pre):
        A = np.zeros((n_post, n_pre))
        A[syn["post"], syn["pre"]] = syn["w"]
        return A

    def routed(A, vA, vB):
        return np.where(A > 0, A, 0) @ vA + np.where(A < 0, A, 0) @ vB

    W = dense(plain["layers"][0]["W"], 6, plain["n_in"])
    R = dense(plain["layers"][1]["R"], 6, C)  # output δ into the hidden layer
    vA, vB = rec[("input", "vA")], rec[("input", "vB")]
    assert np.allclose(rec[("full1", "h")], routed(W, vA, vB), atol=1e-12)
    assert np.allclose(rec[("full1", "hn")], routed(W, vB, vA), atol=1e-12)
    assert np.abs(rec[("full1", "h")] - W @ rec[("input", "v")]).max() > 0.05  # not the whole count
    P = sn.n_phases  # column k + e·P: the first step of phase k of example e, where its drives are set
    fb = [k + e * P for e in range(2) for k, p in enumerate(sn.phases) if p[:2] == ("send", 1)]
    oA, oB = rec[("output", "vA")][:, fb], rec[("output", "vB")][:, fb]
    assert np.allclose(rec[("full1", "fb")][:, fb], routed(R, oA, oB), atol=1e-12)
    assert np.allclose(rec[("full1", "fbn")][:, fb], routed(R, oB, oA), atol=1e-12)
    tph = [k + e * P for e in range(2) for k, p in enumerate(sn.phases) if p[0] == "error-t"]
    dA, dB = rec[("detectors", "vA")][:, tph], rec[("detectors", "vB")][:, tph]
    wk = np.asarray(sn.network["rt_detectors_to_delta"].c[:]).reshape(C, 4)
    dp = np.stack([routed(wk[u][None], dA[6 * u:6 * u + 4], dB[6 * u:6 * u + 4])[0] for u in range(C)])
    dm = np.stack([routed(wk[u][None], dB[6 * u:6 * u + 4], dA[6 * u:6 * u + 4])[0] for u in range(C)])
    assert np.allclose(rec[("output", "dp")][:, tph], dp, atol=1e-12)
    assert np.allclose(rec[("output", "dm")][:, tph], dm, atol=1e-12)
    for g in ("input", "full1", "output", "detectors"):
        a, b, v = rec[(g, "vA")], rec[(g, "vB")], rec[(g, "v")]
        assert np.allclose(v, (a + b) / 2, atol=1e-12) and np.abs(a - b).max() > 0.1, g
    # each unit's OFF neurons read its OFF estimate Xn, its ON neurons the ON one X
    g, ng = sn.groups["full1"], sn.neuron_groups["rt_full1"]
    g.X, g.Xn = np.arange(6) + 1.0, -np.arange(6) - 1.0
    row = np.repeat(np.arange(6), 8)
    assert np.array_equal(np.asarray(ng.Xn[:]), np.asarray(g.Xn[:])[row])
    assert np.array_equal(np.asarray(ng.X[:]), np.asarray(g.X[:])[row])


def _run_on(target, tmp_path, plain, x, s, eta, dale=False):
    import brian2 as b2

    from circuits.brian import use_exact_flags

    b2.set_device("runtime")
    b2.prefs.reset_to_defaults()
    b2.start_scope()
    use_exact_flags(b2)
    if target == "cpp_standalone":
        b2.set_device("cpp_standalone", build_on_run=False)
    else:
        b2.prefs.codegen.target = target
    try:
        sn = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=True,
                                    n_examples=len(x), N=6, phase=0.02, seed=11, record_spikes=True, name="bit",
                                    directory=str(tmp_path / "standalone"), dale=dale, **CIRCUIT)
        res = sn.run(x, s, eta)
        spikes = {k: (i.copy(), t.copy()) for k, (i, t) in sn.spikes().items()}
        return res, spikes
    finally:
        if target == "cpp_standalone":
            b2.device.reinit()
            b2.device.activate()
        b2.set_device("runtime")
        b2.prefs.reset_to_defaults()


@pytest.mark.slow
@pytest.mark.parametrize("dale", [False, True], ids=["on-off", "dale"])
def test_numpy_and_cpp_standalone_are_bit_identical(brian, tmp_path, dale):
    """With a fixed seed, the same spikes (every neuron, every time), the same measured outputs and the same
    weights after every example on numpy and on cpp_standalone (the exact compiler flags of circuits.brian),
    with and without Dale's law."""
    _, plain = _plain()
    x, _, s = _examples(3, plain["n_in"])
    a, sa = _run_on("numpy", tmp_path, plain, x, s, 0.2, dale)
    b, sb = _run_on("cpp_standalone", tmp_path, plain, x, s, 0.2, dale)
    assert sa.keys() == sb.keys() and sum(len(i) for i, _ in sa.values()) > 1000
    for k in sa:
        assert np.array_equal(sa[k][0], sb[k][0]) and np.array_equal(sa[k][1], sb[k][1]), k
    assert np.array_equal(a["output"], b["output"])
    for li in range(len(a["W"])):
        assert np.array_equal(a["W"][li], b["W"][li]) and np.array_equal(a["R"][li], b["R"][li])
    assert np.abs(a["W"][0][-1] - plain["layers"][0]["W"]["w"]).max() > 1e-3  # the weights did learn


@pytest.mark.slow
@pytest.mark.parametrize("dale", [False, True], ids=["on-off", "dale"])
def test_one_epoch_on_a_tiny_network_learns(brian, tmp_path, dale):
    """One epoch (batch 1) of URFB in spikes on 4 noisy prototypes: the test error falls from the untrained
    network's to far below chance (75%), with and without Dale's law."""
    import brian2 as b2

    from circuits.brian import use_exact_flags

    net, plain = _plain("full 8; output", seed=1)
    g = np.random.default_rng(2)
    protos = g.random((C, plain["n_in"]))
    n_tr, n_te = 200, 40
    y = g.integers(0, C, n_tr + n_te)
    x = np.clip(protos[y] + 0.1 * g.standard_normal((n_tr + n_te, plain["n_in"])), 0, 1)
    s = -np.ones((len(y), C))
    s[np.arange(len(y)), y] = 1.0
    use_exact_flags(b2)
    b2.set_device("cpp_standalone", build_on_run=False)
    try:
        sn = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=True,
                                    n_examples=n_tr + n_te, N=20, phase=0.03, seed=0, record_weights=False,
                                    name="tiny", directory=str(tmp_path / "tiny"), dale=dale, **CIRCUIT)
        before = sn.run(x, s, np.zeros(n_tr + n_te))["output"][n_tr:].argmax(1)
        res = sn.run(x, s, np.concatenate([np.full(n_tr, 0.05), np.zeros(n_te)]))
    finally:
        b2.device.reinit()
        b2.device.activate()
        b2.set_device("runtime")
    err_before = float((before != y[n_tr:]).mean())
    err = float((res["output"][n_tr:].argmax(1) != y[n_tr:]).mean())
    assert err < 0.3 and err < err_before - 0.2, (err_before, err)


# --- sims/spiking_network.py learn: checkpoints and resume ---------------------------------------------------

_LEARN = ["learn", "--net", "full 8; output", "--N", "4", "--phase", "0.02", "--settle", "0.005",
          "--train-subset", "20"]


def _learn(out, epochs, timeout=900):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, str(root / "sims" / "spiking_network.py"), *_LEARN, "--epochs",
                           str(epochs), "--out", str(out)], capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})


def test_learn_refuses_a_checkpoint_written_with_other_settings(tmp_path):
    """A checkpoint of other settings (here N = 5 where 4 is asked) is refused in one line, exit 2, before
    any Brian2 object is built, and is left as it was."""
    out = tmp_path / "o"
    out.mkdir()
    ck = out / "learn_urfb_seed0.ckpt"
    torch.save({"settings": {"N": 5}, "rows": []}, ck)
    before = ck.read_bytes()
    p = _learn(out, 1, timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
    assert "N 5 (asked 4)" in lines[0]
    assert ck.read_bytes() == before and sorted(x.name for x in out.iterdir()) == [ck.name]


@pytest.mark.slow
def test_learn_resumed_after_an_epoch_equals_the_uninterrupted_run(tmp_path):
    """cpp_standalone: 2 epochs in one go, and 1 epoch then a rerun asking for 2 (resumed from the epoch-1
    checkpoint), give the same rows: test and training errors of both networks and the weights' correlations,
    exactly. Every block starts the neurons from the built state, reseeded, with the current weights, so the
    checkpoint's weights are all a resumed run needs."""
    import json

    rows = []
    for out, steps in ((tmp_path / "a", (2,)), (tmp_path / "b", (1, 2))):
        for epochs in steps:
            p = _learn(out, epochs)
            assert p.returncode == 0, p.stderr[-3000:]
        rows.append(json.loads((out / "learn_urfb_seed0.json").read_text())["epochs"])
    assert "resuming after epoch 1 of 2" in p.stdout
    # each run builds in a folder of its own (rule and seed), so seeds run side by side into one --out
    assert [d.name for d in (tmp_path / "a").glob("standalone_*") if d.is_dir()] == ["standalone_urfb_seed0_N4"]
    keys = ("test_error_spiking", "train_error_spiking", "test_error_rate", "weight_correlation")
    assert [[r[k] for k in keys] for r in rows[0]] == [[r[k] for k in keys] for r in rows[1]]
    assert len(rows[0]) == 2


# --- sims/spiking_network.py agree: rows accumulate in one agreement.json --------------------------------------

_AGREE = {"net": "full 3; output", "seed": 0, "examples": 1, "pretrain_epochs": 0, "settle": 0.01, "lr": 0.03,
          "eps": 0.5}


def _agree(out, *extra, timeout=300):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, str(root / "sims" / "spiking_network.py"), "agree", "--net",
                           _AGREE["net"], "--examples", "1", "--pretrain", "0", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})


def _agreement_file(out, **changed):
    import json

    row = {"N": 2, "phase": 0.04, "window": 0.03, "neurons": 440,
           "quantities": {"x_0 (input)": {"rms": 0.1, "corr": 0.9, "slope": 1.0}}}
    path = out / "agreement.json"
    path.write_text(json.dumps(dict(_AGREE, **changed, rows=[row])))
    return path


def test_agree_skips_the_pairs_already_in_its_agreement_file(tmp_path):
    """A sweep into a folder that already holds (N, phase) rows of the same settings measures only what is
    missing: here nothing, so no Brian2 network is built and the file is left as it was."""
    path = _agreement_file(tmp_path)
    before = path.read_bytes()
    p = _agree(tmp_path, "--N", "2", "--phase", "0.04")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "N=2 phase=40 ms: already in" in p.stdout
    assert path.read_bytes() == before and not list(tmp_path.glob("standalone_*"))


def test_agree_refuses_an_agreement_file_of_other_settings(tmp_path):
    """Rows measured with other settings (here 3 examples where 1 is asked) are refused in one line, exit 2,
    and the file is kept: one agreement.json holds one experiment."""
    path = _agreement_file(tmp_path, examples=3)
    before = path.read_bytes()
    p = _agree(tmp_path, "--N", "2,4", timeout=120)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), p.stderr[-2000:]
    assert "examples 3 (asked 1)" in lines[0]
    assert path.read_bytes() == before
