"""docs/spec.md §1, §2, §4, §5: the notation, the layers, the rules' invariants on whole networks."""
import copy

import pytest
import torch
import torch.nn.functional as F

from models.losses import hinge_loss
from models.layers import MaxPool
from models.network import Network
from models.spec import PRESETS, SpecError, parse, resolve
from handcalc import eq6, full_chain_step, saturate, sigma_prime

SMALL = "conv 4 3x3; conv 4 3x3; sum; maxpool 3; drop .3; conv 3 2x2; full 12; drop .2; output"


def _batch(shape, n=6, classes=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=gen), torch.randint(0, classes, (n,), generator=gen)


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)], ids=["cifar", "fashion"])
def test_presets_build_and_train_one_step(name, shape):
    net = Network(name, shape, 10, rule="urfb", seed=1)
    x, y = _batch(shape, n=4)
    before = {k: (m.W.detach().clone(), m.R.clone()) for k, m in net.weight_layers().items()}
    out = net(x)
    assert out.shape == (4, 10)
    hinge_loss(out, y, 1 / 9).backward()
    net.apply_update(0.1)
    for k, m in net.weight_layers().items():
        dW = m.W.detach() - before[k][0]
        torch.testing.assert_close(m.R - before[k][1], dW)  # URFB: R gets W's increment
    assert any(float((m.W.detach() - before[k][0]).abs().max()) > 0 for k, m in net.weight_layers().items())


def test_presets_parse_to_the_paper_layer_counts():
    kinds = lambda n: [l.kind for l in parse(PRESETS[n])]  # noqa: E731
    assert kinds("simpnet") == ["conv", "maxpool", "drop", "full", "drop", "output"]
    assert kinds("deepnet").count("conv") == 5
    assert kinds("deepernet").count("sum") == 4 and kinds("deepernet").count("conv") == 8
    ps = [l for l in parse(PRESETS["deepnet_s"]) if l.kind == "maxpool"]
    assert [(p.kernel, p.stride) for p in ps] == [(3, 3), (2, 2), (2, 2)]
    assert parse("drop .8; output")[0].p == pytest.approx(0.8)


@pytest.mark.parametrize("text, fragment", [
    ("conv 32 5x5; maxpol 3; output", "layer 2 (character 13) 'maxpol 3': unknown layer type 'maxpol'"),
    ("conv 32; output", "layer 1 (character 0) 'conv 32': malformed 'conv' layer"),
    ("full 10; drop 1.5; output", "layer 2 (character 9) 'drop 1.5': dropout probability"),
    ("full 10", "no 'output' layer"),
    ("output; full 10; output", "layer 1 'output'"),
    ("conv 4 3x3; sum; output", "layer 2 'sum'"),
    ("full 10;; output", "layer 2 (character 8): empty layer"),
    ("conv 4 3x5; output", "square kernels"),
    ("", "empty network specification"),
])
def test_malformed_specs_name_the_token_and_position(text, fragment):
    with pytest.raises(SpecError) as e:
        parse(text)
    assert fragment in str(e.value)


def test_unknown_preset_is_rejected():
    with pytest.raises(SpecError, match="unknown network 'resnet'"):
        resolve("resnet")


def test_shape_errors_are_reported_with_the_layer():
    with pytest.raises(SpecError, match="layer 2 'conv 4 3x3'"):
        Network("full 10; conv 4 3x3; output", (1, 8, 8), 3)
    with pytest.raises(SpecError, match="different shapes"):
        Network("conv 4 3x3; conv 5 3x3; sum; output", (1, 8, 8), 3)


def test_maxpool_is_centred_zero_padded_stride_s():
    x = -torch.ones(1, 1, 5, 5)  # all negative: the zero padding wins at the border
    x[0, 0, 2, 2] = 3.0
    y = MaxPool(3, 2)(x)
    assert y.shape == (1, 1, 3, 3)  # ceil(5 / 2): windows centred on pixels 0, 2, 4
    assert float(y[0, 0, 1, 1]) == 3.0  # centred on (2, 2)
    assert float(y[0, 0, 0, 0]) == 0.0  # window centred on (0, 0) reaches the zero padding
    assert MaxPool(3, 3)(torch.rand(1, 1, 32, 32)).shape[-1] == 11
    assert MaxPool(2, 2)(torch.rand(1, 1, 11, 11)).shape[-1] == 6


def test_dropout_zeroes_fraction_p_and_is_off_in_eval():
    net = Network("full 2000; drop .8; output", (1, 1, 1), 2, seed=0)
    drop = net.layers[1]
    x = torch.ones(1, 20000)
    torch.manual_seed(0)
    y = drop(x)
    assert float((y == 0).float().mean()) == pytest.approx(0.8, abs=0.01)
    assert float(y.max()) == pytest.approx(1 / 0.2)
    net.eval()
    assert torch.equal(drop(x), x)


def test_glorot_uniform_bounds_and_independent_R():
    net = Network("conv 8 5x5; full 30; output", (3, 6, 6), 4, seed=0)
    conv = net.weight_layers()["conv1"]
    b = (6 / (25 * 3 + 25 * 8)) ** 0.5
    W = conv.W.detach()
    assert float(W.abs().max()) <= b and float(W.abs().max()) > 0.9 * b
    assert float(conv.R.abs().max()) <= b
    assert abs(net.alignment()["conv1"]["correlation"]) < 0.3  # drawn independently


def test_same_seed_same_network_and_rule_independent_start():
    a = Network(SMALL, (1, 8, 8), 5, rule="bp", seed=3)
    b = Network(SMALL, (1, 8, 8), 5, rule="urfb", seed=3)
    for (ka, ma), (kb, mb) in zip(a.weight_layers().items(), b.weight_layers().items()):
        assert torch.equal(ma.W, mb.W) and torch.equal(ma.R, mb.R)


def _train_steps(net, rule, steps=4, lr=0.1, seed=0):
    net.set_rule(rule)
    torch.manual_seed(seed)
    for i in range(steps):
        x, y = _batch(net.in_shape, n=8, classes=net.num_classes, seed=100 + i)
        out = net(x.to(next(net.parameters()).dtype))
        loss = F.cross_entropy(out, y) if rule == "bp" else hinge_loss(out, y, 0.25)
        loss.backward()
        net.apply_update(lr)
    return net


def test_frfb_leaves_R_bit_identical():
    net = Network(SMALL, (1, 8, 8), 5, rule="frfb", seed=0)
    R0 = {k: m.R.clone() for k, m in net.weight_layers().items()}
    W0 = {k: m.W.detach().clone() for k, m in net.weight_layers().items()}
    _train_steps(net, "frfb")
    for k, m in net.weight_layers().items():
        assert torch.equal(m.R, R0[k])
        assert not torch.equal(m.W.detach(), W0[k])


def test_urfb_R_increment_equals_W_increment():
    net = Network(SMALL, (1, 8, 8), 5, rule="urfb", seed=0)
    W0 = {k: m.W.detach().clone() for k, m in net.weight_layers().items()}
    R0 = {k: m.R.clone() for k, m in net.weight_layers().items()}
    _train_steps(net, "urfb")
    for k, m in net.weight_layers().items():
        torch.testing.assert_close(m.R - R0[k], m.W.detach() - W0[k], rtol=0, atol=1e-6)


def test_urfb_from_symmetric_start_is_bp_h_and_stays_symmetric():
    a = Network(SMALL, (1, 8, 8), 5, feedback_init="symmetric", seed=2, dtype=torch.float64)
    b = copy.deepcopy(a)
    _train_steps(a, "urfb", steps=6)
    _train_steps(b, "bp-h", steps=6)
    for (k, ma), mb in zip(a.weight_layers().items(), b.weight_layers().values()):
        assert torch.equal(ma.W, ma.R), k  # W and R stay transposes (equal in W's shape)
        torch.testing.assert_close(ma.W, mb.W, rtol=0, atol=1e-12)
    assert all(v["correlation"] == pytest.approx(1.0) for v in a.alignment().values())


def test_connectivity_masks_keep_entries_zero():
    net = Network(SMALL, (1, 8, 8), 5, rule="urfb", connectivity=0.5, seed=0)
    for m in net.weight_layers().values():
        assert m.mask_W is not None and not torch.equal(m.mask_W, m.mask_R)  # drawn independently
        assert 0.35 < float(m.mask_W.mean()) < 0.65
    _train_steps(net, "urfb", steps=5)
    for k, m in net.weight_layers().items():
        assert torch.all(m.W.detach()[m.mask_W == 0] == 0), k
        assert torch.all(m.R[m.mask_R == 0] == 0), k
        assert float((m.W.detach()[m.mask_W == 1] != 0).float().mean()) == 1.0


def test_output_layer_unmasked_on_request():
    net = Network("full 20; output", (1, 4, 4), 3, connectivity=0.5, mask_output=False, seed=0)
    assert net.weight_layers()["output"].mask_W is None
    assert net.weight_layers()["full1"].mask_W is not None


def test_bp_rule_is_autograd_of_the_plain_network():
    """BP through the Functions equals autograd through F.conv2d / F.linear with σ = clamp."""
    net = Network("conv 3 3x3; maxpool 3; full 7; output", (2, 6, 6), 4, rule="bp", seed=0,
                  dtype=torch.float64, slope=1.0)
    x, y = _batch((2, 6, 6), n=5, classes=4)
    x = x.double()
    F.cross_entropy(net(x), y).backward()
    Ws = [m.W.detach().clone().requires_grad_(True) for m in net.weight_layers().values()]
    h = torch.clamp(F.conv2d(x, Ws[0], padding=1), -1, 1)
    h = F.max_pool2d(F.pad(h, (1, 1, 1, 1)), 3, 2)
    h = torch.clamp(F.linear(h.flatten(1), Ws[1]), -1, 1)
    F.cross_entropy(F.linear(h, Ws[2]), y).backward()
    for m, W in zip(net.weight_layers().values(), Ws):
        torch.testing.assert_close(m.W.grad, W.grad)


def test_sign_symmetry_feeds_back_sign_of_W():
    net = Network("full 6; output", (1, 2, 2), 3, rule="sign", seed=0, dtype=torch.float64)
    al = net.alignment()["output"]["correlation"]
    W = net.weight_layers()["output"].W.detach().flatten()
    ref = torch.corrcoef(torch.stack([W, torch.sign(W)]))[0, 1]
    assert al == pytest.approx(float(ref))


def _full_chain(rule, share=None, seed=0):
    """``full 16; full 8; output`` on 4×4 inputs in float64, with (optionally) a share of saturated units."""
    net = Network("full 16; full 8; output", (1, 4, 4), 5, rule=rule, seed=seed, dtype=torch.float64)
    x, y = _batch((1, 4, 4), n=12, classes=5, seed=seed + 7)
    x = x.double()
    if share is not None:
        shares = saturate(net, x, share)
        assert all(0.2 <= v <= 0.8 for v in shares.values()), shares
    return net, x, y


def _one_fast_step(net, x, y, mu=0.25, lr=0.1, decay=0.0):
    before = [m.W.detach().clone() for m in net.weight_layers().values()]
    hinge_loss(net(x), y, mu).backward()
    net.apply_update(lr, decay)
    return [m.W.detach() - b for m, b in zip(net.weight_layers().values(), before)]


FEEDBACK = {"bp-h": lambda m: m.W.detach(), "frfb": lambda m: m.R, "urfb": lambda m: m.R,
            "sign": lambda m: torch.sign(m.W.detach())}


@pytest.mark.parametrize("rule", ["bp-h", "frfb", "urfb", "sign"])
def test_one_step_is_eq2_by_hand_with_saturated_units(rule):
    """δ_l = σ'(h_l) ⊙ (B_{l+1} δ_{l+1}) with σ' = 0 on saturated units (eq. 2, eq. 3) and ΔW = η δ xᵀ,
    on a network where 40% of every hidden layer's units are saturated."""
    net, x, y = _full_chain(rule, share=0.4)
    layers = list(net.weight_layers().values())
    Ws = [m.W.detach().clone() for m in layers]
    Bs = [FEEDBACK[rule](m).clone() for m in layers]
    want, deltas, _ = full_chain_step(Ws, x, y, mu=0.25, lr=0.1, a=0.5, feedback=lambda l, W: Bs[l])
    assert all(float((d == 0).double().mean()) >= 0.2 for d in deltas[:-1])  # the gate shut units off
    got = _one_fast_step(net, x, y)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-13)


def test_sign_symmetry_sends_delta_down_through_sign_of_W():
    """Sign-symmetry (docs/spec.md §2 peer): B = sign(W)ᵀ in dense and conv layers; R plays no part."""
    net, x, y = _full_chain("sign", share=0.3)
    with torch.no_grad():
        for m in net.weight_layers().values():
            m.R.normal_()  # R is not the feedback: scrambling it changes nothing
    Ws = [m.W.detach().clone() for m in net.weight_layers().values()]
    want, _, _ = full_chain_step(Ws, x, y, mu=0.25, lr=0.1, a=0.5, feedback=lambda l, W: torch.sign(W))
    for g, w in zip(_one_fast_step(net, x, y), want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-13)
    # conv: the signal reaching conv1 is the transposed convolution of conv2's δ with kernel sign(W2)
    net = Network("conv 3 3x3; conv 2 3x3; output", (2, 5, 5), 4, rule="sign", seed=1, dtype=torch.float64)
    xc, yc = _batch((2, 5, 5), n=3, classes=4, seed=2)
    xc = xc.double()
    c1, c2, out = net.weight_layers().values()
    h1 = F.conv2d(xc, c1.W.detach(), padding=1)
    x1 = torch.clamp(0.5 * h1, -1, 1)
    h2 = F.conv2d(x1, c2.W.detach(), padding=1)
    x2 = torch.clamp(0.5 * h2, -1, 1)
    d_out = eq6(x2.flatten(1) @ out.W.detach().t(), yc, 0.25)
    d2 = sigma_prime(h2, 0.5) * (d_out @ torch.sign(out.W.detach())).view_as(h2)
    d1 = sigma_prime(h1, 0.5) * torch.nn.grad.conv2d_input(x1.shape, torch.sign(c2.W.detach()), d2, padding=1)
    want1 = 0.1 / 3 * torch.nn.grad.conv2d_weight(xc, c1.W.shape, d1, padding=1)
    got = _one_fast_step(net, xc, yc)
    torch.testing.assert_close(got[0], want1, rtol=0, atol=1e-13)


def test_kp_decay_shrinks_W_and_R_by_the_same_factor_as_a_hand_step():
    """KP (docs/spec.md §2 peer): URFB's increment plus equal weight decay, W ← (1 − ηλ)W + ΔW, R ← (1 − ηλ)R + ΔW,
    so R − W shrinks by exactly (1 − ηλ) per step."""
    lr, lam = 0.1, 0.5
    kp, x, y = _full_chain("kp")
    urfb = copy.deepcopy(kp)
    urfb.set_rule("urfb")
    W0 = [m.W.detach().clone() for m in kp.weight_layers().values()]
    R0 = [m.R.clone() for m in kp.weight_layers().values()]
    hebb = _one_fast_step(urfb, x, y, lr=lr)  # ΔW = η δ xᵀ from the same state
    _one_fast_step(kp, x, y, lr=lr, decay=lam)
    for m, w0, r0, d in zip(kp.weight_layers().values(), W0, R0, hebb):
        torch.testing.assert_close(m.W.detach(), (1 - lr * lam) * w0 + d, rtol=0, atol=1e-14)
        torch.testing.assert_close(m.R, (1 - lr * lam) * r0 + d, rtol=0, atol=1e-14)
    for _ in range(3):
        _one_fast_step(kp, x, y, lr=lr, decay=lam)
    for m, w0, r0 in zip(kp.weight_layers().values(), W0, R0):
        torch.testing.assert_close(m.R - m.W.detach(), (1 - lr * lam) ** 4 * (r0 - w0), rtol=0, atol=1e-13)


def test_kp_without_decay_is_refused():
    """``kp`` with decay 0 would be URFB under another name."""
    from models.train import RunConfig

    with pytest.raises(ValueError, match=r"--rule kp needs --kp-decay > 0"):
        RunConfig(rule="kp", kp_decay=0.0).validate()
    net, x, y = _full_chain("kp")
    with pytest.raises(ValueError, match=r"rule kp needs a weight decay > 0"):
        _one_fast_step(net, x, y, decay=0.0)
