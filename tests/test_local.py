"""docs/spec.md §4 (locally connected layers, §4.1): tied = conv, exact back-propagation with B = W, each position's
own Hebbian product, URFB's ΔR = ΔW, masks, the untie conversion, the §4.1 protocol and filter similarity."""
import pytest
import torch
import torch.nn.functional as F

from models.losses import hinge_loss
from models.layers import Conv
from models.local import Local, filter_similarity, fold_patches, in_grid, local, patches, untied_spec
from models.protocol import untie, untie_protocol
from models.network import Network
from models.rules import get_rule

D = torch.float64


def _conv(c_in, c_out, k, rule="urfb", dtype=D, seed=0, connectivity=1.0):
    m = Conv(c_in, c_out, k, generator=torch.Generator().manual_seed(seed), dtype=dtype,
             connectivity=connectivity)
    m.rule = get_rule(rule)
    return m


def _x(shape, seed=1, dtype=D, grad=False):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)
    return x.requires_grad_(grad)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("rule", ["bp-h", "frfb", "urfb", "sign"])
def test_tied_local_reproduces_conv_forward_feedback_and_summed_update(k, rule):
    conv = _conv(3, 4, k, rule)
    loc = Local.from_conv(conv, (5, 6))
    x1, x2 = _x((2, 3, 5, 6), grad=True), _x((2, 3, 5, 6), grad=True)
    h1, h2 = conv(x1), loc(x2)
    torch.testing.assert_close(h2, h1, rtol=0, atol=1e-13)
    g = torch.randn(h1.shape, generator=torch.Generator().manual_seed(2), dtype=D)
    h1.backward(g)
    h2.backward(g)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=0, atol=1e-13)  # feedback through W, R or sign(W)
    # the conv's tied gradient is the sum over positions of the untied per-position gradients
    torch.testing.assert_close(loc.W.grad.sum(0).view_as(conv.W), conv.W.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_feedback_through_W_is_exact_backpropagation(k):
    x = _x((2, 2, 4, 5), grad=True)
    W = (torch.randn(20, 3, 2 * k * k, dtype=D, generator=torch.Generator().manual_seed(3))
         .mul_(in_grid((4, 5), 2, k).to(D)).requires_grad_(True))
    assert torch.autograd.gradcheck(lambda x, W: local(x, W, W, k), (x, W))


def test_forward_matches_a_direct_sum_over_offsets():
    k, (n, c, h, w), c_out = 2, (2, 2, 3, 4), 3
    W = torch.randn(h * w, c_out, c * k * k, dtype=D, generator=torch.Generator().manual_seed(4))
    x = _x((n, c, h, w))
    out = local(x, W, W, k)
    a = (k - 1) // 2
    ref = torch.zeros(n, c_out, h, w, dtype=D)
    W6 = W.view(h, w, c_out, c, k, k)
    for i in range(h):
        for j in range(w):
            for dy in range(k):
                for dx in range(k):
                    r, s = i + dy - a, j + dx - a
                    if 0 <= r < h and 0 <= s < w:
                        ref[:, :, i, j] += x[:, :, r, s] @ W6[i, j, :, :, dy, dx].T
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-13)


def test_patches_and_fold_are_adjoint():
    x = _x((2, 3, 4, 5))
    g = torch.randn(20, 3 * 9, 2, dtype=D, generator=torch.Generator().manual_seed(5))
    lhs = (patches(x, 3) * g).sum()
    rhs = (x * fold_patches(g, 3, x.shape)).sum()
    torch.testing.assert_close(lhs, rhs)


@pytest.mark.parametrize("rule", ["urfb", "frfb"])
def test_each_position_is_updated_by_its_own_hebbian_product(rule):
    k, (n, c, h, w), c_out, lr = 3, (3, 2, 4, 3), 2, 0.1
    m = Local(c, c_out, k, (h, w), generator=torch.Generator().manual_seed(6), dtype=D, act=False)
    m.rule = get_rule(rule)
    W0, R0 = m.W.detach().clone(), m.R.clone()
    x = _x((n, c, h, w))
    delta = torch.randn(n, c_out, h, w, dtype=D, generator=torch.Generator().manual_seed(7))
    m(x).backward(-delta)  # autograd carries -δ
    m.apply_update(lr)
    a = (k - 1) // 2
    xp = F.pad(x, (a, k // 2, a, k // 2))
    expect = torch.zeros(h, w, c_out, c, k, k, dtype=D)
    for i in range(h):
        for j in range(w):
            for o in range(c_out):
                for ci in range(c):
                    for dy in range(k):
                        for dx in range(k):  # ΔW = η δ_{l,i} x_{l-1,i+k}, summed over the batch only
                            expect[i, j, o, ci, dy, dx] = lr * (delta[:, o, i, j] * xp[:, ci, i + dy, j + dx]).sum()
    dW = (m.W.detach() - W0).view(h, w, c_out, c, k, k)
    torch.testing.assert_close(dW, expect, rtol=0, atol=1e-14)
    if rule == "urfb":
        torch.testing.assert_close(m.R - R0, m.W.detach() - W0, rtol=0, atol=1e-15)  # ΔR = ΔW entry by entry
    else:
        assert torch.equal(m.R, R0)


def test_masked_and_out_of_grid_entries_stay_zero():
    net = Network("local 4 3x3; local 3 2x2; full 6; output", (2, 5, 4), 3, rule="urfb", connectivity=0.5,
                  seed=2, dtype=D)
    x = _x((8, 2, 5, 4))
    y = torch.arange(8) % 3
    for _ in range(3):
        hinge_loss(net(x), y, 0.5).backward()
        net.apply_update(0.5)
    for name in ("local1", "local2"):
        m = net.weight_layers()[name]
        assert float(m.mask_W.mean()) < 0.7 and m.W.abs().sum() > 0
        assert torch.all(m.W.detach()[m.mask_W == 0] == 0)
        assert torch.all(m.R[m.mask_R == 0] == 0)
        outside = ~in_grid(m.hw, m.c_in, m.k).expand_as(m.W)
        assert torch.all(m.W.detach()[outside] == 0) and torch.all(m.R[outside] == 0)


def test_out_of_grid_entries_stay_zero_without_masks():
    m = Local(2, 3, 4, (3, 5), generator=torch.Generator().manual_seed(8), dtype=D)
    m.rule = get_rule("urfb")
    outside = ~in_grid((3, 5), 2, 4).expand_as(m.W)
    assert m.mask_W is None and outside.any()
    m(_x((4, 2, 3, 5))).sum().backward()
    m.apply_update(1.0)
    assert torch.all(m.W.detach()[outside] == 0) and torch.all(m.R[outside] == 0)


def test_float32_matches_float64():
    conv = _conv(3, 5, 3)
    loc64 = Local.from_conv(conv, (6, 6))
    loc32 = Local.from_conv(_conv(3, 5, 3, dtype=torch.float32), (6, 6))
    x = _x((2, 3, 6, 6))
    out32 = loc32(x.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), loc64(x), rtol=1e-5, atol=1e-6)


def test_untie_copies_each_kernel_everywhere_and_keeps_the_outputs():
    spec = "conv 4 3x3; conv 4 2x2; sum; maxpool 2 stride 2; conv 3 3x3; full 7; output"
    tied = Network(spec, (2, 6, 5), 5, rule="urfb", seed=3, dtype=D, connectivity=0.7)
    untied = untie(tied)
    assert untied.names[:2] == ["local1", "local2"] and untied.names[4] == "local3"
    assert untied.spec_text.startswith("local 4 3x3; local 4 2x2; sum")
    for i in (0, 1, 4):
        conv, loc = tied.layers[i], untied.layers[i]
        inside = in_grid(loc.hw, loc.c_in, loc.k).expand_as(loc.W)
        kernel = conv.W.detach().reshape(1, *loc.W.shape[1:]).expand_as(loc.W)
        assert torch.equal(loc.W.detach()[inside], kernel[inside])
        assert torch.equal(loc.R[inside], conv.R.reshape(1, *loc.W.shape[1:]).expand_as(loc.W)[inside])
        assert torch.equal(loc.mask_W[inside], conv.mask_W.reshape(1, *loc.W.shape[1:]).expand_as(loc.W)[inside])
    tied.eval(), untied.eval()
    x = _x((3, 2, 6, 5))
    torch.testing.assert_close(untied(x), tied(x), rtol=0, atol=1e-13)
    y = torch.tensor([0, 3, 4])
    hinge_loss(tied(x), y, 0.25).backward()
    hinge_loss(untied(x), y, 0.25).backward()
    for i in (0, 1, 4):  # same feedback everywhere: the tied gradient is the untied ones summed over space
        torch.testing.assert_close(untied.layers[i].W.grad.sum(0).view_as(tied.layers[i].W),
                                   tied.layers[i].W.grad, rtol=0, atol=1e-12)
    before = tied.layers[0].W.detach().clone()
    untied.apply_update(0.1)  # the copy owns its weights: updating it leaves the tied network untouched
    assert torch.equal(tied.layers[0].W.detach(), before) and isinstance(tied.layers[0], Conv)


def test_untie_rejects_a_layer_that_is_not_a_conv():
    tied = Network("conv 2 3x3; full 4; output", (1, 4, 4), 3, seed=0)
    with pytest.raises(ValueError, match="not a conv layer"):
        untie(tied, ["full1"])
    assert untied_spec("simpnet").startswith("local 32 5x5; maxpool 3")
    assert untied_spec("conv 2 3x3; conv 2 3x3; sum; output", keep_first=True) == \
        "conv 2 3x3; local 2 3x3; sum; output"


def test_wrong_input_shape_raises_a_clear_error():
    m = Local(2, 3, 3, (4, 4), generator=torch.Generator(), dtype=D)
    with pytest.raises(ValueError, match="tied to its input grid"):
        m(torch.zeros(1, 2, 5, 4, dtype=D))


def test_filter_similarity_is_one_when_tied_and_near_zero_at_random():
    tied = Local.from_conv(_conv(3, 6, 3), (7, 7))
    s = filter_similarity(tied)
    assert s["same"] == pytest.approx(1.0) and s["positions"] == 25
    assert abs(s["shuffled"]) < 0.5  # different channels of one random kernel
    rnd = Local(3, 6, 3, (7, 7), generator=torch.Generator().manual_seed(9), dtype=D)
    r = filter_similarity(rnd)
    assert abs(r["same"]) < 0.05 and abs(r["shuffled"]) < 0.05
    # a shared component of strength 1 on top of unit noise: same-channel correlation ≈ 1/2
    base = torch.randn(1, 6, 27, dtype=D, generator=torch.Generator().manual_seed(10))
    noise = torch.randn(49, 6, 27, dtype=D, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        rnd.W.copy_(base + noise)
    assert 0.35 < filter_similarity(rnd)["same"] < 0.65


@pytest.mark.slow
def test_untie_protocol_freezes_the_first_layer_and_unties_the_rest(tmp_path):
    from models.train import RunConfig

    cfg = RunConfig(net="conv 4 3x3; conv 4 3x3; sum; maxpool 2 stride 2; full 16; output", rule="urfb",
                    data="digits", epochs=1, batch_size=100, val_size=200, train_subset=400)
    tied_rows, untied_rows, net = untie_protocol(cfg, out_dir=tmp_path)
    assert len(tied_rows) == 1 and len(untied_rows) == 1
    assert isinstance(net.layers[0], Conv) and isinstance(net.layers[1], Local)
    assert net.names[:2] == ["conv1", "local1"]
    tied_ckpt = torch.load(tmp_path / "tied" / "checkpoint.pt", weights_only=False)["model"]
    assert torch.equal(net.layers[0].W.detach(), tied_ckpt["layers.0.W"])  # trained and left unchanged
    assert torch.equal(net.layers[0].R, tied_ckpt["layers.0.R"])
    assert untied_rows[0]["train_error"] < 0.9


def test_reused_buffers_give_the_same_result_step_after_step():
    conv = _conv(2, 3, 3, "urfb")
    loc = Local.from_conv(conv, (4, 5))
    for step in range(3):  # the patches buffer is refilled each step; results must track the conv exactly
        x1, x2 = _x((2, 2, 4, 5), seed=step, grad=True), _x((2, 2, 4, 5), seed=step, grad=True)
        hinge_loss(conv(x1).flatten(1), torch.tensor([0, 5]), 0.1).backward()
        hinge_loss(loc(x2).flatten(1), torch.tensor([0, 5]), 0.1).backward()
        torch.testing.assert_close(loc.W.grad.sum(0).view_as(conv.W), conv.W.grad, rtol=0, atol=1e-12)
        torch.testing.assert_close(x2.grad, x1.grad, rtol=0, atol=1e-13)
        # one shared tied update keeps the untied copy equal to the conv at every in-grid entry
        with torch.no_grad():
            conv.W.grad.copy_(loc.W.grad.sum(0).view_as(conv.W))
        conv.apply_update(0.1)
        loc.W.grad = None
        with torch.no_grad():
            fresh = Local.from_conv(conv, (4, 5))
            loc.W.copy_(fresh.W)
            loc.R.copy_(fresh.R)


def test_a_second_forward_before_backward_is_caught_not_silently_wrong():
    m = Local(2, 3, 3, (4, 4), generator=torch.Generator().manual_seed(0), dtype=D)
    m.rule = get_rule("urfb")
    out1 = m(_x((2, 2, 4, 4), seed=1))
    m(_x((2, 2, 4, 4), seed=2))  # overwrites the reused patches buffer saved by the first call
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out1.sum().backward()


def test_filter_similarity_of_increments_ignores_the_initial_values():
    m = Local(2, 4, 3, (6, 6), generator=torch.Generator().manual_seed(12), dtype=D)
    W0 = m.W.detach().clone()
    shared = torch.randn(1, 4, 18, dtype=D, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        m.W.add_(1e-3 * shared)  # a tiny, identical increment at every position
    assert abs(filter_similarity(m)["same"]) < 0.05  # drowned by the independent initial values
    assert filter_similarity(m, reference=W0)["same"] == pytest.approx(1.0)


def test_filter_similarity_leaves_out_constant_filters():
    m = Local(2, 3, 3, (5, 5), generator=torch.Generator().manual_seed(14), dtype=D)
    ref = filter_similarity(m)
    with torch.no_grad():
        m.W.view(5, 5, 3, 18)[2, 2, 1] = 0.0  # one filter without variance
    s = filter_similarity(m)
    assert s["constant_filters"] == 1 and ref["constant_filters"] == 0
    with torch.no_grad():  # brute force on the remaining filters
        f = m.filters().reshape(25, 3, 18)[[6, 7, 8, 11, 12, 13, 16, 17, 18]]
        z = f - f.mean(2, keepdim=True)
        z = z / z.norm(dim=2, keepdim=True)
    pairs = [float(z[p, c] @ z[q, c]) for c in range(3) for p in range(9) for q in range(9)
             if p != q and not (c == 1 and 4 in (p, q))]
    assert s["same"] == pytest.approx(sum(pairs) / len(pairs))
    cross = [float(z[p, c] @ z[q, d]) for c in range(3) for d in range(3) for p in range(9) for q in range(9)
             if p != q and c != d and not (c == 1 and p == 4) and not (d == 1 and q == 4)]
    assert s["shuffled"] == pytest.approx(sum(cross) / len(cross))


@pytest.mark.parametrize("k, c_in, c_out, hw", [(3, 3, 4, (6, 6)), (5, 2, 8, (7, 5)), (2, 4, 3, (4, 4))])
def test_initial_weight_range_is_glorot_of_the_conv_fans(k, c_in, c_out, hw):
    """docs/spec.md §1/§4: U[-b, b], b = sqrt(6 / (k²·C_in + k²·C_out)), the same law as the tied conv (the grid size
    plays no part), for W and the independently drawn R; out-of-grid entries are 0."""
    m = Local(c_in, c_out, k, hw, generator=torch.Generator().manual_seed(0), dtype=D)
    b = (6 / (k * k * c_in + k * k * c_out)) ** 0.5
    inside = in_grid(hw, c_in, k).expand_as(m.W)
    for t in (m.W.detach(), m.R):
        v = t[inside]
        assert float(v.abs().max()) <= b
        assert float(v.abs().max()) > 0.97 * b  # thousands of draws reach the edge of U[-b, b]
        assert float(v.abs().mean()) == pytest.approx(b / 2, rel=0.06)  # E|U[-b, b]| = b/2
        assert torch.all(t[~inside] == 0)
    assert abs(float(torch.corrcoef(torch.stack([m.W.detach()[inside], m.R[inside]]))[0, 1])) < 0.1
