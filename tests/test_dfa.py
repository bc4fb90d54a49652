"""docs/spec.md §2 peer rule DFA (direct feedback alignment, Nøkland 2016): every hidden layer l receives the output
error through its own fixed random D_l, δ_l = σ'(h_l) ⊙ (D_l δ_L), and ΔW_l = η δ_l x_{l-1}ᵀ."""
import copy

import pytest
import torch
import torch.nn.functional as F

from handcalc import eq6, full_chain_step, saturate, sigma_prime
from models.losses import hinge_loss
from models.network import Network
from models.train import RunConfig, train
from test_train import tiny_dataset

D64 = torch.float64


def _batch(shape, n=10, classes=5, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g, dtype=D64), torch.randint(0, classes, (n,), generator=g)


def _step(net, x, y, mu=0.25, lr=0.1, error_fn=None):
    before = [m.W.detach().clone() for m in net.weight_layers().values()]
    hinge_loss(net(x), y, mu, error_fn).backward()
    net.apply_update(lr)
    return [m.W.detach() - b for m, b in zip(net.weight_layers().values(), before)]


def test_hidden_delta_is_sigma_prime_times_D_delta_L_by_hand():
    """Dense chain with 40% of the hidden units saturated: every hidden δ is σ'(h_l) ⊙ (D_l δ_L), computed
    by hand from the output error alone; the output layer's update is the same as under every rule."""
    net = Network("full 16; full 8; output", (1, 4, 4), 5, rule="dfa", seed=0, dtype=D64)
    x, y = _batch((1, 4, 4))
    saturate(net, x, 0.4)
    layers = list(net.weight_layers().values())
    Ds = {0: layers[0].D.clone(), 1: layers[1].D.clone()}
    assert Ds[0].shape == (16, 5) and Ds[1].shape == (8, 5) and layers[2].D is None
    want, deltas, _ = full_chain_step([m.W.detach().clone() for m in layers], x, y, mu=0.25, lr=0.1, a=0.5,
                                      feedback=Ds)
    assert all(float((d == 0).double().mean()) >= 0.2 for d in deltas[:-1])  # the gate shuts units off
    for got, w in zip(_step(net, x, y), want):
        torch.testing.assert_close(got, w, rtol=0, atol=1e-13)


def test_conv_layers_get_D_reshaped_and_pool_and_sum_pass_nothing():
    """conv 3 3x3; conv 3 3x3; sum; maxpool; full; output: each conv layer's δ is σ'(h) ⊙ (D δ_L) reshaped to
    (C, H, W), D of shape C·H·W × C; nothing reaches it through the sum, the max-pool or the layers above."""
    net = Network("conv 3 3x3; conv 3 3x3; sum; maxpool 3; full 6; output", (2, 5, 5), 4, rule="dfa", seed=1,
                  dtype=D64)
    x, y = _batch((2, 5, 5), n=4, classes=4)
    c1, c2, f1, out = net.weight_layers().values()
    assert c1.D.shape == (3 * 5 * 5, 4) and c2.D.shape == (3 * 5 * 5, 4) and f1.D.shape == (6, 4)
    h1 = F.conv2d(x, c1.W.detach(), padding=1)
    x1 = torch.clamp(0.5 * h1, -1, 1)
    h2 = F.conv2d(x1, c2.W.detach(), padding=1)
    x2 = torch.clamp(0.5 * h2, -1, 1)
    p = F.max_pool2d(F.pad(x1 + x2, (1, 1, 1, 1)), 3, 2)
    h3 = p.flatten(1) @ f1.W.detach().t()
    d_out = eq6(torch.clamp(0.5 * h3, -1, 1) @ out.W.detach().t(), y, 0.25)
    d1 = sigma_prime(h1, 0.5) * (d_out @ c1.D.t()).view_as(h1)
    d2 = sigma_prime(h2, 0.5) * (d_out @ c2.D.t()).view_as(h2)
    want = [0.1 / 4 * torch.nn.grad.conv2d_weight(x, c1.W.shape, d1, padding=1),
            0.1 / 4 * torch.nn.grad.conv2d_weight(x1, c2.W.shape, d2, padding=1)]
    got = _step(net, x, y)
    for g, w in zip(got[:2], want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-13)


@pytest.mark.parametrize("rule, independent", [("dfa", True), ("bp-h", False), ("frfb", False)])
def test_an_upstream_update_does_not_depend_on_downstream_weights(rule, independent):
    """With the output error held fixed, changing the weights above layer 1 (W and R) leaves layer 1's
    update unchanged under DFA (its signal comes from δ_L directly); under BP-H and FRFB it changes."""
    x, y = _batch((1, 4, 4))
    a = Network("full 12; full 8; output", (1, 4, 4), 5, rule=rule, seed=0, dtype=D64)
    fixed = eq6(a(x).detach(), y, 0.25)
    error_fn = lambda out, y, mu: fixed  # noqa: E731
    b = copy.deepcopy(a)
    with torch.no_grad():
        for m in list(b.weight_layers().values())[1:]:
            m.W.mul_(-1.5)
            m.R.mul_(2.0)
    ga, gb = _step(a, x, y, error_fn=error_fn)[0], _step(b, x, y, error_fn=error_fn)[0]
    assert float(ga.abs().max()) > 0
    assert torch.equal(ga, gb) == independent


def test_D_and_R_never_change_and_D_is_fixed_by_the_seed():
    ds = tiny_dataset(n=60, classes=4)
    net = Network("conv 3 3x3; maxpool 3; full 10; output", (1, 8, 8), 4, rule="dfa", seed=5)
    D0 = {k: m.D.clone() for k, m in net.weight_layers().items() if m.D is not None}
    R0 = {k: m.R.clone() for k, m in net.weight_layers().items()}
    W0 = {k: m.W.detach().clone() for k, m in net.weight_layers().items()}
    rows = train(RunConfig(net=net.spec_text, rule="dfa", epochs=2, batch_size=20, seed=5), network=net, dataset=ds)
    assert set(D0) == {"conv1", "full1"}
    for k, m in net.weight_layers().items():
        assert not torch.equal(m.W.detach(), W0[k])
        assert torch.equal(m.R, R0[k])
        if k in D0:
            assert torch.equal(m.D, D0[k])
    again = Network("conv 3 3x3; maxpool 3; full 10; output", (1, 8, 8), 4, rule="dfa", seed=5)
    assert all(torch.equal(again.weight_layers()[k].D, D) for k, D in D0.items())
    # D is drawn after every W, R and mask: the other rules' initial weights are unchanged by it
    plain = Network("conv 3 3x3; maxpool 3; full 10; output", (1, 8, 8), 4, rule="urfb", seed=5)
    assert all(torch.equal(plain.weight_layers()[k].W, again.weight_layers()[k].W) for k in W0)
    assert all(v != v for v in rows[-1]["alignment"].values())  # no feedback matrix in W's shape: NaN


def test_dfa_trains_and_refuses_the_scheduled_engine():
    ds = tiny_dataset(n=200)
    rows = train(RunConfig(net="full 32; output", rule="dfa", epochs=15, batch_size=20, seed=0), dataset=ds)
    assert rows[-1]["val_error"] < 0.5 * rows[0]["val_error"] + 0.05
    with pytest.raises(ValueError, match="--rule dfa needs --engine fast"):
        RunConfig(rule="dfa", engine="scheduled").validate()
