"""The Brian2 learning network over time (circuits/learning_network.py, docs/brian2_network.md).

Properties: across several ``run`` blocks in a row (one block per epoch, the training examples in a new order
every epoch, test examples interleaved), with η changing from example to example (a decaying schedule, test
examples at η = 0), the network reads each example and its supervisory signals at the right instant of every
block: after every example its W, R and output h_L equal the scheduled engine's (models/schedule.py) fed the
same examples with the same η, and an example at η = 0 leaves every weight bit for bit as it was. This holds
on the numpy target and on cpp_standalone (one build, rerun per block with new inputs, η and the carried
weights). The output circuit's other settings (simultaneous order, phase readout, a learning threshold S ≠ 1)
are the engine's too; inputs of the wrong shape or supervisory signals other than ±1 are refused before anything
runs.
"""
import numpy as np
import pytest
import torch

from circuits.learning_network import LearningNetwork
from circuits.modules import OutputErrorCircuit, ShutdownGate
from models.losses import make_loss
from models.network import Network
from models.schedule import Event, ScheduledEngine, plain_network, synapse_values
from models.train import epoch_order

M, EPS, K, LR = 10.0, 0.1, 100.0, 0.2
SPEC, SHAPE, CLASSES = "full 8; output", (1, 8, 8), 4
N_TRAIN, N_TEST, EPOCHS = 4, 2, 3
# positions of the test examples inside each block (the training examples fill the others, in epoch order)
TEST_AT = (1, 4)


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *SHAPE), generator=g, dtype=torch.float64) * 4.0  # large inputs: saturated units
    y = torch.randint(0, CLASSES, (n,), generator=g)
    return x, y


def _supervisory(y):
    s = -np.ones((len(y), CLASSES))
    s[np.arange(len(y)), np.asarray(y)] = 1.0
    return s


def _blocks(seed=0):
    """Per epoch: the examples of the block (training ones in that epoch's order, test ones at TEST_AT) and the
    η of each (a decaying schedule η_j = LR / (1 + j/2) over the training steps j of the whole run; 0 for test
    examples)."""
    x_tr, y_tr = _data(N_TRAIN, 1)
    x_te, y_te = _data(N_TEST, 2)
    blocks, j = [], 0
    for epoch in range(EPOCHS):
        order = iter(epoch_order(N_TRAIN, seed, epoch).tolist())
        tests = iter(range(N_TEST))
        xs, ys, etas = [], [], []
        for pos in range(N_TRAIN + N_TEST):
            if pos in TEST_AT:
                k = next(tests)
                xs.append(x_te[k])
                ys.append(int(y_te[k]))
                etas.append(0.0)
            else:
                k = next(order)
                xs.append(x_tr[k])
                ys.append(int(y_tr[k]))
                etas.append(LR / (1 + j / 2))
                j += 1
        blocks.append((torch.stack(xs), torch.tensor(ys), np.array(etas)))
    return blocks


def _engine_run(blocks, *, order="sequential", S=1.0, readout="veto", cycles=None):
    """The scheduled engine through the same examples and η: per block, (weights, output) after each example."""
    mu = 1.0 / (CLASSES - 1)
    net = Network(SPEC, SHAPE, CLASSES, rule="urfb", seed=3, dtype=torch.float64)
    plain = plain_network(net, "paper")
    engine = ScheduledEngine(net, order="paper", mu=mu, gate=ShutdownGate(K=K),
                             error_signal=OutputErrorCircuit(M=M, S=S, mu=mu, eps=EPS, order=order, readout=readout,
                                                             cycles=cycles),
                             schedule=[Event(*e) for e in plain["events"]])
    loss_fn = make_loss("urfb", mu)
    out = []
    for x, y, eta in blocks:
        ws, hs = [], []
        for k in range(len(y)):
            _, h = engine(net, x[k:k + 1], y[k:k + 1], loss_fn, float(eta[k]), 0.0)
            ws.append(synapse_values(net, plain))
            hs.append(h.detach().numpy()[0])
        out.append((ws, np.array(hs)))
    return plain, out, engine.epoch_metrics()


def _network(plain, n, *, name, directory=None, **kw):
    return LearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"], n_examples=n,
                           M=M, mu=1.0 / (CLASSES - 1), eps=EPS, K=K, name=name, directory=directory, **kw)


def _brian_run(ln, blocks):
    return [ln.run(x.reshape(len(y), -1).numpy(), _supervisory(y), eta) for x, y, eta in blocks]


def _assert_equal_after_every_example(got, want, blocks):
    """W, R and h_L after every example of every block within 1e-12 of the engine's; η = 0 examples leave the
    weights bit for bit; and the weights keep moving in the last block (so it is compared while learning)."""
    for b, (res, (ws, hs), (_, _, eta)) in enumerate(zip(got, want, blocks)):
        np.testing.assert_allclose(res["output"], hs, rtol=0, atol=1e-12, err_msg=f"h_L, block {b}")
        for k in range(len(eta)):
            for li, (w, r) in enumerate(ws[k]):
                np.testing.assert_allclose(res["W"][li][k], w, rtol=0, atol=1e-12,
                                           err_msg=f"W of layer {li} after example {k} of block {b}")
                np.testing.assert_allclose(res["R"][li][k], r, rtol=0, atol=1e-12,
                                           err_msg=f"R of layer {li} after example {k} of block {b}")
                if eta[k] == 0 and k > 0:
                    assert np.array_equal(res["W"][li][k], res["W"][li][k - 1]), (b, k)
                    assert np.array_equal(res["R"][li][k], res["R"][li][k - 1]), (b, k)
    last = got[-1]
    assert max(abs(last["W"][li][-1] - last["W"][li][0]).max() for li in range(len(last["W"]))) > 1e-3


def test_blocks_epochs_and_a_decaying_eta_equal_the_engine_after_every_example(brian, float64):
    """Three blocks in a row on numpy (one per epoch, the training examples in each epoch's order, two test
    examples at η = 0 interleaved, η decaying from example to example): W, R and h_L after every example equal
    the scheduled engine's, every regime of the output circuit occurs, and the blocks are really different
    (another epoch order, other η)."""
    blocks = _blocks()
    plain, want, metrics = _engine_run(blocks)
    assert all(v > 0 for v in metrics["regime_fraction"].values()), metrics["regime_fraction"]
    assert not np.array_equal(blocks[0][1].numpy(), blocks[1][1].numpy())  # another order of the labels
    assert len({float(e) for _, _, eta in blocks for e in eta}) == N_TRAIN * EPOCHS + 1  # every η its own, and 0
    ln = _network(plain, N_TRAIN + N_TEST, name="tb")
    got = _brian_run(ln, blocks)
    assert ln.runs == EPOCHS
    _assert_equal_after_every_example(got, want, blocks)


def test_output_circuit_settings_are_the_engines(brian, float64):
    """The output error circuit run simultaneously (period 4: δ = 1+ε, 1+ε, 0, 0 in a correct regime, where the
    sequential order gives 1+ε, 0) and read out at phase 2, with a learning threshold S = 0.5 ≠ 1 (which moves
    its outer thresholds to ±(2M + S)): the network follows these settings, as the engine's circuit module
    does, after every example of two blocks. (σ_ctl's margin, a fraction of ε below 1, changes nothing on the
    discrete map, whose δ takes only the values 1+ε, 1, 0, -μ, -μ-ε: there is nothing of it to test here.)"""
    blocks = _blocks()[:2]
    kw = dict(order="simultaneous", readout="phase 2", S=0.5)
    plain, want, metrics = _engine_run(blocks, **kw)
    assert all(v > 0 for v in metrics["regime_fraction"].values()), metrics["regime_fraction"]
    ln = _network(plain, N_TRAIN + N_TEST, name="ts", **kw)
    _assert_equal_after_every_example(_brian_run(ln, blocks), want, blocks)


def test_bad_inputs_are_refused_before_anything_runs(brian, float64):
    """x or s of the wrong shape, or s other than ±1, are one-line errors naming the fix; the network has not
    moved (t = 0, weights as given)."""
    net = Network(SPEC, SHAPE, CLASSES, rule="urfb", seed=3, dtype=torch.float64)
    plain = plain_network(net)
    ln = _network(plain, 2, name="tx")
    x, y = _data(2, 0)
    xs, s = x.reshape(2, -1).numpy(), _supervisory(y)
    for args, msg in (((xs[:1], s, 0.1), r"x must be \(2, 64\) and s \(2, 4\)"),
                      ((xs, s[:, :3], 0.1), r"x must be \(2, 64\) and s \(2, 4\)"),
                      ((xs, 0.5 * s, 0.1), "s must hold the supervisory signals"),
                      ((xs, s, [0.1, 0.2, 0.3]), r"eta must be one learning rate or one per example \(2\)"),
                      ((xs, s, [0.1, -0.2]), "each ≥ 0 and finite"), ((xs, s, np.nan), "each ≥ 0 and finite")):
        with pytest.raises(ValueError, match=msg) as e:
            ln.run(*args)
        assert "\n" not in str(e.value)
    assert ln.network.t_ == 0.0 and ln.runs == 0
    for (w, r), lay in zip(ln.weights(), plain["layers"]):
        assert np.array_equal(w, lay["W"]["w"]) and np.array_equal(r, lay["R"]["w"])


@pytest.mark.slow
def test_cpp_standalone_blocks_equal_the_engine_after_every_example(brian, float64, tmp_path):
    """On cpp_standalone: one build at the first block, each later block a rerun of that binary with the new
    examples, supervisory signals, η and the weights the previous block left; after every example of every
    block the weights and outputs equal the engine's (as on numpy)."""
    blocks = _blocks()
    plain, want, _ = _engine_run(blocks)
    brian.set_device("cpp_standalone", build_on_run=False)
    try:
        ln = _network(plain, N_TRAIN + N_TEST, name="tc", directory=str(tmp_path / "standalone"))
        got = _brian_run(ln, blocks)
        assert brian.device.has_been_run and ln.runs == EPOCHS
    finally:
        brian.device.reinit()
        brian.device.activate()
        brian.set_device("runtime")
    _assert_equal_after_every_example(got, want, blocks)
