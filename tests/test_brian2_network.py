"""The whole learning machine in Brian2 (circuits/learning_network.py) against the PyTorch scheduled engine.

The property (docs/brian2_network.md): from the same initial W and R and the same examples in the same order,
the Brian2 network of rate units, W and R synapses, output error circuit, shutdown units and Hebbian slots
holds, after every example, the weights the scheduled engine (models/schedule.py) holds at batch size 1 with
the same event order and the circuit signals (circuits/modules.py), in float64; and an order that breaks
Remark 1 is refused before anything runs.
"""
import numpy as np
import pytest
import torch

from circuits.learning_network import LearningNetwork, ScheduleError, check_events, slot_table
from circuits.modules import OutputErrorCircuit, ShutdownGate
from models.losses import make_loss
from models.network import Network
from models.schedule import Event, ScheduledEngine, SequencingError, plain_network, synapse_values

M, EPS, K, LR = 10.0, 0.1, 100.0, 0.2


def _data(n, shape, classes, scale=4.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=g, dtype=torch.float64) * scale  # large inputs: saturated units
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


def _run_both(spec, rule="urfb", *, n=10, shape=(1, 8, 8), classes=4, order="paper", events=None,
              feedback_init="random", connectivity=1.0, cycles=None, **kw):
    """Per-example weight and output differences between the Brian2 network and the scheduled engine, and
    the engine's regime counts (so that a test can see that every regime of the output circuit occurred)."""
    mu = 1.0 / (classes - 1)
    net = Network(spec, shape, classes, rule=rule, seed=3, dtype=torch.float64, feedback_init=feedback_init,
                  connectivity=connectivity)
    plain = plain_network(net, order, events)
    ln = LearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"], n_examples=n,
                         M=M, mu=mu, eps=EPS, K=K, name="t", cycles=cycles, **kw)
    x, y = _data(n, shape, classes)
    s = -np.ones((n, classes))
    s[np.arange(n), y.numpy()] = 1.0
    res = ln.run(x.reshape(n, -1).numpy(), s, LR)
    engine = ScheduledEngine(net, order=order, mu=mu, error_signal=OutputErrorCircuit(M=M, mu=mu, eps=EPS, cycles=cycles,
                                                                         readout=kw.get("readout", "veto")),
                             gate=ShutdownGate(K=K), schedule=[Event(*e) for e in plain["events"]])
    loss_fn = make_loss(rule, mu)
    diffs, moved = [], 0.0
    start = synapse_values(net, plain)
    for k in range(n):
        _, h = engine(net, x[k:k + 1], y[k:k + 1], loss_fn, LR, 0.0)
        d = abs(res["output"][k] - h.numpy()[0]).max()
        for li, (w, r) in enumerate(synapse_values(net, plain)):
            d = max(d, abs(res["W"][li][k] - w).max(), abs(res["R"][li][k] - r).max())
            moved = max(moved, abs(w - start[li][0]).max())
        diffs.append(d)
    return np.array(diffs), moved, engine.epoch_metrics(), res, plain


@pytest.mark.parametrize("rule", ["urfb", "frfb"])
def test_weights_equal_the_scheduled_engine_after_every_example(brian, float64, rule):
    """Brian2's W and R after each example equal the scheduled engine's (order paper, circuit signals, batch 1)
    to 1e-12, while the weights move by far more, every regime of the output circuit occurs and the shutdown
    units close some feedback (saturated hidden units)."""
    diffs, moved, metrics, _, _ = _run_both("full 8; output", rule, n=12)
    net = Network("full 8; output", (1, 8, 8), 4, rule=rule, seed=3, dtype=torch.float64)
    saturated = float((net.layers[0](_data(12, (1, 8, 8), 4)[0]).abs() >= 1).double().mean())
    assert 0.1 < saturated < 0.9  # both branches of the shutdown gate are exercised
    assert diffs.max() < 1e-12, diffs
    assert moved > 0.05
    assert all(v > 0 for v in metrics["regime_fraction"].values()), metrics["regime_fraction"]


def test_veto_readout_over_an_odd_number_of_cycles(brian, float64):
    """With 3 cycles the last δ_c of a correct output is 1+ε or −μ−ε; the veto readout still gives 0 there
    (eq. 6), as the engine's circuit module does: weights equal after every example."""
    diffs, moved, metrics, _, _ = _run_both("full 8; output", "urfb", n=12, cycles=3)
    assert diffs.max() < 1e-12 and moved > 0.05
    assert metrics["regime_fraction"]["on-correct"] > 0 and metrics["regime_fraction"]["off-correct"] > 0


def test_symmetric_start_stays_symmetric(brian, float64):
    """URFB from R = Wᵀ (the symmetric control): every R synapse equals its W synapse after every example."""
    diffs, _, _, res, plain = _run_both("full 8; output", "urfb", n=6, feedback_init="symmetric")
    assert diffs.max() < 1e-12
    for li, lay in enumerate(plain["layers"]):
        assert np.array_equal(lay["W"]["index"], lay["R"]["index"])
        assert np.array_equal(res["W"][li], res["R"][li])


def test_gradient_order_is_followed_too(brian, float64):
    """With order gradient (send before update) the network follows the slots it is given: it equals the
    engine in that order, and differs from the paper order by O(η)."""
    diffs, _, _, res_g, _ = _run_both("full 8; output", "urfb", n=4, order="gradient")
    assert diffs.max() < 1e-12
    _, _, _, res_p, _ = _run_both("full 8; output", "urfb", n=4, order="paper")
    assert abs(res_g["W"][0][-1] - res_p["W"][0][-1]).max() > 1e-6


def test_local_layer_with_random_connectivity(brian, float64):
    """An untied local layer (§4.1) with random connectivity: synapses exist only inside the grid and where the
    masks keep them (drawn independently for W and R), and the weights still equal the engine's."""
    diffs, moved, _, _, plain = _run_both("local 2 3x3; output", "urfb", n=6, shape=(1, 5, 5), connectivity=0.7)
    assert diffs.max() < 1e-12 and moved > 0.01
    lay = plain["layers"][0]
    inside = 2 * (9 * 9 + 4 * 3 * 6 + 4 * 4)  # 3x3 windows inside a 5x5 grid: interior, edges, corners
    assert len(lay["W"]["w"]) < inside and len(lay["R"]["w"]) < inside
    assert not np.array_equal(lay["W"]["index"], lay["R"]["index"])


def test_two_hidden_layers_and_the_phase_readout(brian, float64):
    """Two hidden layers (two top-down steps) with the output circuit read out by phase 2."""
    diffs, _, _, _, _ = _run_both("full 6; full 5; output", "urfb", n=5, readout="phase 2")
    assert diffs.max() < 1e-12


def test_misordered_schedule_is_refused_before_anything_runs(brian, float64):
    """An order that breaks Remark 1 is refused by the exporter (models' SequencingError, from the event graph)
    and, as plain data, by the Brian2 builder itself (ScheduleError), before any Brian2 object is made."""
    net = Network("full 8; output", (1, 8, 8), 4, rule="urfb", seed=3, dtype=torch.float64)
    good = plain_network(net)["events"]
    bad = [e for e in good if e != ("update", 1)]
    bad.insert(bad.index(("replace", 0)) + 1, ("update", 1))  # W_1 updated after δ_0 replaced x_0 (and sent)
    with pytest.raises(SequencingError, match="send of layer output is scheduled before update of layer output"):
        plain_network(net, "paper", bad)
    layers = plain_network(net)["layers"]
    with pytest.raises(ScheduleError, match="update of output reads the activity x of full1"):
        LearningNetwork(64, layers, bad, learn_R=True, n_examples=1, M=M, mu=1 / 3, eps=EPS, K=K)
    for broken, msg in ((good[:-1], "update of full1 is missing"), (good + [good[0]], "runs twice"),
                        ([e for e in good if e[0] != "gate"], "shutdown units")):
        with pytest.raises(ScheduleError, match=msg):
            check_events(layers, broken)


def test_slots_of_one_example_follow_the_events():
    """Slot 0 presents the example, the error event has one slot per circuit cycle, every other event one."""
    events = [("forward", 0), ("forward", 1), ("error", 1), ("update", 1), ("send", 1), ("gate", 0),
              ("replace", 0), ("update", 0)]
    table = slot_table(events, 2)
    assert [k for k, _, _ in table] == ["present", "forward", "forward", "error", "error", "update", "send",
                                        "gate", "replace", "update"]


def test_units_change_only_in_their_slots(brian, float64):
    """Remark 1 in simulated time: a hidden unit's x changes only in its forward and replace slots (where δ
    replaces x), the output units' only in their forward and readout slots, the shutdown units only at gate."""
    net = Network("full 8; output", (1, 8, 8), 4, rule="urfb", seed=3, dtype=torch.float64)
    plain = plain_network(net)
    ln = LearningNetwork(64, plain["layers"], plain["events"], learn_R=True, n_examples=3, M=M, mu=1 / 3,
                         eps=EPS, K=K, record_activity=True, record_weights=False, name="a")
    x, y = _data(3, (1, 8, 8), 4)
    s = -np.ones((3, 4))
    s[np.arange(3), y.numpy()] = 1.0
    ln.run(x.reshape(3, -1).numpy(), s, LR)
    act = ln.activity()
    slots = [f"{k} {l}" for k, l, _ in ln.slots]
    n = ln.n_slots

    def changing(key):
        v = act[key]
        moved = np.flatnonzero(np.abs(np.diff(v, axis=1)).max(0) > 0) + 1
        return {slots[k % n] for k in moved}

    assert changing(("full1", "x")) == {"forward 0", "replace 0"}
    assert changing(("output", "x")) == {"forward 1", "error 1"}
    assert changing(("full1_u", "u")) <= {"gate 0"} and changing(("full1_v", "v")) <= {"gate 0"}
    assert changing(("full1", "fb")) == {"send 1"}


@pytest.mark.slow
def test_cpp_standalone_builds_once_and_equals_numpy(brian, float64, tmp_path):
    """On cpp_standalone the project is built once; two runs (weights carried over through run_args) give
    the numpy target's weights after every example."""
    net = Network("full 8; output", (1, 8, 8), 4, rule="urfb", seed=3, dtype=torch.float64)
    plain = plain_network(net)
    x, y = _data(8, (1, 8, 8), 4)
    s = -np.ones((8, 4))
    s[np.arange(8), y.numpy()] = 1.0
    xs = x.reshape(8, -1).numpy()

    def two_runs():
        ln = LearningNetwork(64, plain["layers"], plain["events"], learn_R=True, n_examples=4, M=M, mu=1 / 3,
                             eps=EPS, K=K, name="c", directory=str(tmp_path / "standalone"))
        a = ln.run(xs[:4], s[:4], LR)
        b = ln.run(xs[4:], s[4:], LR)
        return [np.concatenate([a[k][0], b[k][0]]) for k in ("W", "R")] + [np.concatenate([a["output"],
                                                                                           b["output"]])]

    ref = two_runs()
    brian.start_scope()
    brian.set_device("cpp_standalone", build_on_run=False)
    try:
        got = two_runs()
        assert brian.device.has_been_run
    finally:
        brian.device.reinit()
        brian.device.activate()
        brian.set_device("runtime")
    for a, b in zip(ref, got):
        assert abs(a - b).max() < 1e-12
