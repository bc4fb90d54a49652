"""docs/spec.md §6: the timing scheduler's event graph, its sequencing errors, and its equivalences."""
import copy
import random

import networkx as nx
import pytest
import torch

from models.network import Network
from models.schedule import Event, ScheduledEngine, SequencingError, build_schedule, check_order
from models.spec import PRESETS
from models.train import CircuitConfig, RunConfig, _fast_step, make_loss, train
from handcalc import saturate
from test_train import strip, tiny_dataset

NET = "conv 4 3x3; conv 4 3x3; sum; maxpool 3; drop .3; conv 3 2x2; full 12; drop .2; output"


def _batches(n=3, shape=(1, 8, 8), classes=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(6, *shape, generator=g, dtype=dtype), torch.randint(0, classes, (6,), generator=g))
            for _ in range(n)]


def _weights(net):
    return [(m.W.detach().clone(), m.R.clone()) for m in net.weight_layers().values()]


def _run(net, stepper, rule, batches, lr=0.1):
    loss_fn = make_loss(rule, 0.25)
    for k, (x, y) in enumerate(batches):
        torch.manual_seed(k)
        stepper(net, x, y, loss_fn, lr, 0.0)
    return _weights(net)


@pytest.mark.parametrize("rule", ["bp", "bp-h", "frfb", "urfb", "sign"])
def test_gradient_order_equals_autograd_fast_engine(rule):
    a = Network(NET, (1, 8, 8), 5, rule=rule, seed=0, dtype=torch.float64)
    b = copy.deepcopy(a)
    engine = ScheduledEngine(b, order="gradient", mu=0.25)
    wa = _run(a, _fast_step, rule, _batches())
    wb = _run(b, engine, rule, _batches())
    for (Wa, Ra), (Wb, Rb) in zip(wa, wb):
        torch.testing.assert_close(Wa, Wb, rtol=0, atol=1e-12)
        torch.testing.assert_close(Ra, Rb, rtol=0, atol=1e-12)


def _saturated_pair(rule, batches, share=0.4):
    """A network in which about ``share`` of every hidden layer's units are saturated on the first batch
    (so the gate of eq. 3 shuts many of them off), and a copy of it."""
    a = Network(NET, (1, 8, 8), 5, rule=rule, seed=0, dtype=torch.float64)
    shares = saturate(a, batches[0][0], share)
    assert all(v >= 0.2 for v in shares.values()), shares  # the gate really has work to do
    assert all(v <= 0.8 for v in shares.values()), shares  # and some feedback still passes
    return a, copy.deepcopy(a)


@pytest.mark.parametrize("rule", ["bp", "bp-h", "frfb", "urfb", "sign"])
def test_gradient_order_equals_fast_engine_with_saturated_units(rule):
    """docs/spec.md §6 equivalence where eq. 3 matters: ≥ 20% of every hidden layer's units saturated."""
    batches = _batches()
    a, b = _saturated_pair(rule, batches)
    wa = _run(a, _fast_step, rule, batches)
    wb = _run(b, ScheduledEngine(b, order="gradient", mu=0.25), rule, batches)
    for (Wa, Ra), (Wb, Rb) in zip(wa, wb):
        torch.testing.assert_close(Wa, Wb, rtol=0, atol=1e-12)
        torch.testing.assert_close(Ra, Rb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ["paper", "gradient"])
def test_circuit_gate_equals_ideal_gate_with_saturated_units(order):
    """docs/spec.md §7.2: the shutdown circuit computes eq. 3 (δ̃ = 0 where |x| = 1) for |δ| < K, here where it
    shuts off a large share of the units."""
    from circuits.modules import ShutdownGate

    batches = _batches()
    a, b = _saturated_pair("urfb", batches)
    gate = ShutdownGate(K=1e3)
    gated = []
    gate.register_forward_hook(lambda mod, inp, out: gated.append(mod.last_info["n_gated"] / mod.last_info["n"]))
    wa = _run(a, ScheduledEngine(a, order=order, mu=0.25), "urfb", batches)
    wb = _run(b, ScheduledEngine(b, order=order, mu=0.25, gate=gate), "urfb", batches)
    assert min(gated[:4]) >= 0.2  # the first batch: every hidden layer has ≥ 20% of its units shut off
    for (Wa, Ra), (Wb, Rb) in zip(wa, wb):
        torch.testing.assert_close(Wa, Wb, rtol=0, atol=1e-12)
        torch.testing.assert_close(Ra, Rb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("rule", ["bp", "bp-h", "frfb", "urfb"])
def test_scheduled_gradient_order_metrics_equal_fast_engine_on_presets(preset, rule):
    ds = tiny_dataset(n=8, classes=3, shape=(3, 12, 12))
    cfg = RunConfig(net=preset, rule=rule, epochs=2, batch_size=4, seed=0)
    fast = train(cfg, dataset=ds)
    sched = train(RunConfig(**{**cfg.__dict__, "engine": "scheduled", "order": "gradient"}), dataset=ds)
    for a, b in zip(fast, sched):
        for key in ("train_loss", "train_error", "val_error", "val_loss", "test_error"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), key
        for name in a["alignment"]:
            assert a["alignment"][name] == pytest.approx(b["alignment"][name], abs=1e-4)


def test_executed_order_is_a_topological_order_and_any_order_gives_the_same_result():
    net = Network(NET, (1, 8, 8), 5, rule="urfb", seed=0, dtype=torch.float64)
    other = copy.deepcopy(net)
    engine = ScheduledEngine(net, order="paper", mu=0.25)
    _run(net, engine, "urfb", _batches(1))
    check_order(engine.graph, engine.executed)  # raises if not a valid topological order
    pos = {e: k for k, e in enumerate(engine.executed)}
    assert all(pos[u] < pos[v] for u, v in engine.graph.edges)
    # another valid order: a random topological sort
    G = engine.graph
    rng = random.Random(3)
    indeg = {v: G.in_degree(v) for v in G}
    ready, order = [v for v in G if indeg[v] == 0], []
    while ready:
        v = ready.pop(rng.randrange(len(ready)))
        order.append(v)
        for w in G.successors(v):
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    assert order != engine.executed
    wb = _run(other, ScheduledEngine(other, order="paper", mu=0.25, schedule=order), "urfb", _batches(1))
    for (Wa, Ra), (Wb, Rb) in zip(_weights(net), wb):
        assert torch.equal(Wa, Wb) and torch.equal(Ra, Rb)


def test_paper_order_updates_before_sending_and_gradient_order_after():
    net = Network("full 8; output", (1, 2, 2), 3)
    for order, first in (("paper", "update"), ("gradient", "send")):
        G = build_schedule(net, order)
        out = 1
        a, b = Event("update", out), Event("send", out)
        assert nx.has_path(G, a, b) if first == "update" else nx.has_path(G, b, a)
        # in both orders the output layer's update reads x of full1 before it is replaced
        assert nx.has_path(G, Event("update", out), Event("replace", 0))
        assert nx.has_path(G, Event("gate", 0), Event("replace", 0))


def _misordered(engine, move, before):
    events = list(engine.events)
    events.remove(move)
    events.insert(events.index(before), move)
    return events


def _bad_schedules(net):
    names = net.names
    base = ScheduledEngine(net, order="paper")
    grad = ScheduledEngine(net, order="gradient")  # here send precedes update, so δ can arrive first
    out, full, drop2 = len(names) - 1, names.index("full1"), names.index("drop2")
    return [
        # replace x of drop2 (the output layer's input) before the output layer's update has read it
        ("gradient", _misordered(grad, Event("replace", drop2), Event("update", out)),
         r"replace of layer drop2 is scheduled before update of layer output, but update of layer output reads "
         r"the activity x of layer drop2 before its feedback δ replaces it"),
        # replace x of drop2 before the output layer has sent its signal down
        ("paper", _misordered(base, Event("replace", drop2), Event("send", out)),
         r"the feedback δ of layer drop2 needs the signal sent down by layer output"),
        # update full1 before its δ exists
        ("paper", _misordered(base, Event("update", full), Event("error", out)),
         r"update of layer full1 is scheduled before replace of layer full1, but update of layer full1 needs the "
         r"feedback δ of layer full1"),
        # the forward pass of full1 after the output error
        ("paper", _misordered(base, Event("error", out), Event("forward", full)),
         r"error of layer output is scheduled before forward of layer output"),
        # skip the gate of full1 (its shutdown units never read x)
        ("paper", [e for e in base.events if e != Event("gate", full)],
         r"step gate of layer full1 is skipped, but the shutdown units of layer full1 read x before"),
        # skip the first layer's update entirely
        ("paper", [e for e in base.events if e != Event("update", 0)], "step update of layer conv1 is skipped"),
        # run an event twice
        ("paper", list(base.events) + [Event("update", 0)], "update of layer conv1 runs twice"),
        # an event of another network
        ("paper", list(base.events) + [Event("update", 99)], "not an event of this network's graph"),
    ]


def test_misordered_schedule_is_rejected_before_anything_runs():
    """docs/spec.md §6: a schedule that breaks Remark 1's order raises SequencingError naming the step and the
    constraint, when it is given, so that W and R are untouched."""
    net = Network(NET, (1, 8, 8), 5, rule="urfb", seed=0, dtype=torch.float64)
    before = _weights(net)
    for order, bad, message in _bad_schedules(net):
        with pytest.raises(SequencingError, match=message):
            ScheduledEngine(net, order=order, schedule=bad)
        engine = ScheduledEngine(net, order=order, mu=0.25)
        with pytest.raises(SequencingError, match=message):
            engine.events = bad  # replacing the schedule of a working engine is checked the same way
        for (W0, R0), (W1, R1) in zip(before, _weights(net)):
            assert torch.equal(W0, W1) and torch.equal(R0, R1)
    _run(net, engine, "urfb", _batches(1))  # the engine still runs its own valid order
    assert not torch.equal(before[0][0], _weights(net)[0][0])


def test_layer_state_refuses_out_of_order_access():
    """The second line behind the schedule check: a layer's state holds x, then δ, and says which is missing."""
    from models.schedule import LayerState

    st = LayerState("full1", None, expected_signals=1, gated=True)
    with pytest.raises(SequencingError, match="reads the activity x of layer full1 before its forward pass"):
        st.read_x("update of layer output")
    st.set_x(torch.zeros(2), "forward of layer full1")
    with pytest.raises(SequencingError, match="runs twice"):
        st.set_x(torch.zeros(2), "forward of layer full1")
    with pytest.raises(SequencingError, match="needs the feedback δ of layer full1, which does not exist yet"):
        st.read_delta("send of layer full1")
    with pytest.raises(SequencingError, match="has 0 of its 1 feedback signals"):
        st.signal("replace of layer full1")
    st.add_signal(torch.ones(2), "send of layer output")
    with pytest.raises(SequencingError, match="shutdown units of layer full1 have not read x"):
        st.signal("replace of layer full1")
    st.control = st.read_x("gate of layer full1")
    st.replace(st.signal("replace of layer full1"), "replace of layer full1")
    with pytest.raises(SequencingError, match="already replaced by its feedback δ"):
        st.read_x("update of layer output")


def test_forward_events_run_the_layers_own_forward():
    """The scheduled engine's forward events call each layer's forward: h_L equals Network.forward's
    (dropout included, from the same RNG state), and a schedule without forward events is refused."""
    net = Network(NET, (1, 8, 8), 5, rule="urfb", seed=0, dtype=torch.float64)
    x, y = _batches(1)[0]
    torch.manual_seed(4)
    want = net(x).detach()
    calls = []
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: calls.append(k)) for k, m in enumerate(net.layers)]
    torch.manual_seed(4)
    _, h = ScheduledEngine(net, order="paper", mu=0.25)(net, x, y, make_loss("urfb", 0.25), 0.1, 0.0)
    for hk in hooks:
        hk.remove()
    assert calls == list(range(len(net.layers)))
    assert torch.equal(h, want)
    with pytest.raises(SequencingError, match="step forward of layer output is skipped"):
        ScheduledEngine(net, schedule=[e for e in ScheduledEngine(net).events if e.kind != "forward"])


def test_paper_order_differs_from_gradient_by_order_eta():
    dists = {}
    for lr in (0.1, 0.01):
        net = Network(NET, (1, 8, 8), 5, rule="urfb", seed=0, dtype=torch.float64)
        engine = ScheduledEngine(net, order="paper", mu=0.25, compare_every=1)
        _run(net, engine, "urfb", _batches(2), lr=lr)
        dists[lr] = engine.epoch_metrics()["order_distance"]
    assert 0 < dists[0.01] < dists[0.1]
    assert dists[0.1] / dists[0.01] == pytest.approx(10, rel=0.5)  # O(η)


def test_paper_order_with_bp_is_not_exact_gradient():
    a = Network(NET, (1, 8, 8), 5, rule="bp-h", seed=0, dtype=torch.float64)
    b = copy.deepcopy(a)
    wa = _run(a, _fast_step, "bp-h", _batches(2))
    wb = _run(b, ScheduledEngine(b, order="paper", mu=0.25), "bp-h", _batches(2))
    diffs = [float((Wa - Wb).abs().max()) for (Wa, _), (Wb, _) in zip(wa, wb)]
    assert 0 < max(diffs) < 1e-2


def test_circuit_signals_train_identically_to_ideal_signals():
    ds = tiny_dataset(n=60, classes=4)
    base = dict(net=NET, rule="urfb", epochs=3, batch_size=20, seed=0, engine="scheduled", order="paper",
                dtype="float64")
    ideal = train(RunConfig(**base), dataset=ds)
    circ = train(RunConfig(**base, circuit=CircuitConfig(error_signal="circuit", gate="circuit", readout="veto",
                                                         M=50.0, K=1000.0)), dataset=ds)
    assert strip(ideal) == strip(circ) or all(
        a[k] == pytest.approx(b[k], abs=1e-12) for a, b in zip(ideal, circ)
        for k in ("train_loss", "train_error", "val_error", "test_error"))
    for row in circ:
        assert row["range_violations"] == {"output_M": 0, "gate_K": 0}
        assert sum(row["regime_fraction"].values()) == pytest.approx(1.0)


def test_phase_readout_changes_the_update_where_outputs_are_correct():
    """phase 1 reads δ = 1+ε / -μ-ε in the oscillating regimes where eq. 6 (and veto) give 0."""
    from circuits.modules import OutputErrorCircuit

    updates = {}
    for readout, cycles in (("veto", 2), ("phase 1", 1), ("phase 2", 2)):
        net = Network("full 16; output", (1, 8, 8), 5, rule="urfb", seed=0, dtype=torch.float64)
        with torch.no_grad():
            net.weight_layers()["output"].W.mul_(30.0)  # outputs far beyond ±S: every regime occurs
        W0 = net.weight_layers()["output"].W.detach().clone()
        circuit = OutputErrorCircuit(M=1e3, mu=0.25, eps=0.1, readout=readout, cycles=cycles)
        engine = ScheduledEngine(net, order="paper", mu=0.25, error_signal=circuit)
        _run(net, engine, "urfb", _batches(1))
        regimes = engine.epoch_metrics()["regime_fraction"]
        assert regimes["on-correct"] > 0 and regimes["off-correct"] > 0
        updates[readout] = net.weight_layers()["output"].W.detach() - W0
    torch.testing.assert_close(updates["veto"], updates["phase 2"], rtol=0, atol=1e-12)
    assert float((updates["veto"] - updates["phase 1"]).abs().max()) > 1e-3


def test_out_of_range_outputs_are_counted():
    from circuits.check import CircuitRangeWarning

    ds = tiny_dataset(n=40, classes=4)
    with pytest.warns(CircuitRangeWarning, match=r"\|h\| ≥ M = 1.5"):
        rows = train(RunConfig(net="full 16; output", rule="urfb", epochs=2, batch_size=20, lr=5.0, seed=0,
                               engine="scheduled", circuit=CircuitConfig(error_signal="circuit", M=1.5)), dataset=ds)
    assert sum(r["range_violations"]["output_M"] for r in rows) > 0


@pytest.mark.slow
def test_brian2_audit_reports_no_mismatch(brian):
    ds = tiny_dataset(n=40, classes=4)
    rows = train(RunConfig(net="full 16; output", rule="urfb", epochs=2, batch_size=20, seed=0,
                           engine="scheduled", circuit=CircuitConfig(error_signal="circuit", audit_every=1, M=20.0)),
                 dataset=ds)
    for r in rows:
        assert r["audit"]["batches"] == 2 and r["audit"]["mismatches"] == 0


@pytest.mark.slow
def test_the_audit_on_a_compiled_build_reruns_it_and_finds_what_a_fresh_network_finds(brian):
    """``--audit-target cpp_standalone``: one C++ build for the largest batch, rerun for every audited batch
    (the last, smaller batch padded); its readouts are eq. 6's, so it counts no mismatch with the module, and a
    module that disagrees is caught just as by the numpy audit. Brian2 is back in runtime mode after each."""
    import numpy as np
    import torch

    from circuits.modules import OutputErrorCircuit
    from models.schedule import brian2_audit

    circuit = OutputErrorCircuit(M=20.0, S=1.0, mu=1 / 3, eps=0.1)
    rng = np.random.default_rng(0)
    audits = {t: brian2_audit(circuit, target=t) for t in ("numpy", "cpp_standalone")}
    try:
        for n in (30, 30, 12):  # two full batches and a smaller last one
            h = torch.from_numpy(rng.uniform(-19, 19, (n, 4)))
            s = torch.where(torch.rand(n, 4, dtype=torch.float64) < 0.25, 1.0, -1.0)
            delta = circuit(h, s)
            wrong = delta.clone()
            wrong[0, 0] += 0.5
            for target, audit in audits.items():
                assert audit(h, s, delta) == 0, target
                assert audit(h, s, wrong) == 1, target
                assert type(brian.get_device()).__name__ == "RuntimeDevice"
    finally:
        audits["cpp_standalone"].close()
    ds = tiny_dataset(n=40, classes=4)
    rows = train(RunConfig(net="full 16; output", rule="urfb", epochs=1, batch_size=15, seed=0,
                           engine="scheduled", circuit=CircuitConfig(error_signal="circuit", audit_every=1, M=20.0,
                                                                     audit_target="cpp_standalone")), dataset=ds)
    assert rows[0]["audit"]["batches"] == 3 and rows[0]["audit"]["mismatches"] == 0


def test_config_rejects_circuit_gate_on_fast_engine():
    with pytest.raises(ValueError, match="--gate circuit needs --engine scheduled"):
        RunConfig(circuit=CircuitConfig(gate="circuit")).validate()
    with pytest.raises(ValueError, match="--order must be one of"):
        RunConfig(order="random").validate()


@pytest.mark.parametrize("rule", ["bp-h", "frfb", "urfb"])
def test_scheduled_engine_supports_local_layers(rule):
    net_spec = "local 3 3x3; local 3 2x2; sum; maxpool 3; full 10; output"
    a = Network(net_spec, (2, 6, 6), 4, rule=rule, seed=0, dtype=torch.float64, connectivity=0.7)
    b = copy.deepcopy(a)
    wa = _run(a, _fast_step, rule, _batches(shape=(2, 6, 6), classes=4))
    wb = _run(b, ScheduledEngine(b, order="gradient", mu=0.25), rule, _batches(shape=(2, 6, 6), classes=4))
    for (Wa, Ra), (Wb, Rb) in zip(wa, wb):
        torch.testing.assert_close(Wa, Wb, rtol=0, atol=1e-12)
        torch.testing.assert_close(Ra, Rb, rtol=0, atol=1e-12)


def test_alignment_leaves_out_entries_outside_a_local_layers_grid():
    net = Network("local 2 3x3; output", (1, 4, 4), 3, feedback_init="symmetric", seed=0)
    layer = net.weight_layers()["local1"]
    assert float((layer.W == 0).float().mean()) > 0.1  # the border positions have out-of-grid entries
    assert int(layer.present().sum()) == int((layer.W != 0).sum())
    assert net.alignment()["local1"]["correlation"] == pytest.approx(1.0)
