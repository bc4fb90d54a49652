"""The fast step computes what the plain definitions compute (docs/spec.md §1, §4; docs/training.md, Speed).

Each faster piece is checked against a simple reference written here from the definition: the max-pool
against pooling the zero-padded tensor (forward and backward bit for bit, sign of zero and ties included),
σ in place against ``hardtanh(a·h)``, the dropout mask against its distribution and its seed, and a whole
step of the presets against the previous implementation (``bench/previous``, kept verbatim).
"""
import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import feedback as fb
from models.layers import Drop, MaxPool, dropout_mask
from models.losses import hinge_loss
from models.network import Network

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.previous.network import Network as PreviousNetwork  # noqa: E402


def pool_reference(x, k, s):
    """The definition: k×k window centred on each pixel of the zero-padded input, every s-th pixel, feedback
    to the first maximum in row-major order (PyTorch's pool of the padded copy)."""
    a = (k - 1) // 2
    return F.max_pool2d(F.pad(x, (a, k - 1 - a, a, k - 1 - a)), k, s)


def bits(t):
    return t.detach().contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def _pool_both(x, k, s, g=None):
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = MaxPool(k, s)(xa), pool_reference(xb, k, s)
    if g is None:
        g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    ya.backward(g)
    yb.backward(g)
    return ya, yb, xa.grad, xb.grad


@pytest.mark.parametrize("k, s", [(1, 1), (2, 2), (3, 1), (3, 2), (3, 3), (5, 2)])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_maxpool_equals_pooling_the_zero_padded_input_bit_for_bit_with_ties(k, s, layout, dtype):
    """Forward (values and the sign of zero) and backward (where the feedback goes) equal the definition,
    on inputs drawn from {-1, -0.5, -0, 0, 0.5, 1}, so most windows hold ties, zeros tie with the padding and
    negative border windows lose to it; odd and even grid sizes, both memory layouts."""
    vals = torch.tensor([-1.0, -0.5, -0.0, 0.0, 0.5, 1.0], dtype=dtype)
    gen = torch.Generator().manual_seed(k * 10 + s)
    for h, w in [(5, 5), (6, 8), (7, 32), (32, 32)]:
        x = vals[torch.randint(0, 6, (3, 4, h, w), generator=gen)]
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        ya, yb, ga, gb = _pool_both(x, k, s)
        assert ya.shape == yb.shape == (3, 4, -(-h // s), -(-w // s))
        assert torch.equal(bits(ya), bits(yb)), (h, w)
        assert torch.equal(bits(ga), bits(gb)), (h, w)


def test_maxpool_border_ties_with_the_padding_follow_row_major_order():
    """A zero maximum ties with the zero padding and the first of the two in row-major order wins. 3×3 grid
    of -1, 3×3 windows, stride 2: the window centred on (2, 2) scans (1,1) (1,2) then padding (1,3), so a zero
    at (1, 2) wins it (and receives its feedback), a zero at (2, 2) loses to the padding (receives nothing);
    the window centred on (0, 2) starts with a padded row, so the padding wins it in both cases."""
    g = torch.ones(1, 1, 2, 2)
    for pixel, wins in [((1, 2), True), ((2, 2), False)]:
        x = -torch.ones(1, 1, 3, 3)
        x[(0, 0) + pixel] = 0.0
        ya, yb, ga, gb = _pool_both(x, 3, 2, g=g)
        assert torch.equal(bits(ya), bits(yb)) and torch.equal(ga, gb)
        assert float(ya.detach()[0, 0, 1, 1]) == 0.0 and float(ya.detach()[0, 0, 0, 1]) == 0.0
        assert float(ga[(0, 0) + pixel]) == (1.0 if wins else 0.0)


@pytest.mark.parametrize("slope", [0.5, 1.0, 0.3])
def test_satlin_in_place_equals_hardtanh_of_a_h_bit_for_bit(slope):
    """σ computed in the pre-activation's memory returns clip(a·h) and the gradient of hardtanh(a·h) (the
    strict gate of eq. 3, zero at |a·h| = 1) bit for bit, and writes into h itself."""
    h = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 3
    h.view(-1)[:3] = torch.tensor([1 / slope, -1 / slope, 0.0])
    g = torch.randn(h.shape, generator=torch.Generator().manual_seed(1))
    ref_in = h.clone().requires_grad_(True)
    ref = F.hardtanh(ref_in * slope)
    ref.backward(g)
    base = h.clone().requires_grad_(True)
    pre = base * 1.0  # a fresh non-leaf tensor, as a layer's product is
    out = fb.satlin_(pre, slope)
    assert out.data_ptr() == pre.data_ptr()
    out.backward(g)
    assert torch.equal(bits(out), bits(ref)) and torch.equal(bits(base.grad), bits(ref_in.grad))


def test_dropout_mask_values_rate_and_seed():
    """Units are kept with probability 1-p and scaled by 1/(1-p) (the value F.dropout uses); the mask is a
    function of PyTorch's global generator state (torch.manual_seed and get/set_rng_state fix it) and
    changes with it."""
    x = torch.ones(400, 50, 10)
    for p in (0.3, 0.8):
        torch.manual_seed(5)
        m = dropout_mask(x, p)
        scale = float(torch.ones(()).div_(1 - p))
        assert set(torch.unique(m).tolist()) == {0.0, scale}
        assert float((m == 0).double().mean()) == pytest.approx(p, abs=0.005)
        torch.manual_seed(5)
        assert torch.equal(dropout_mask(x, p), m)
        state = torch.get_rng_state()
        a = dropout_mask(x, p)
        assert not torch.equal(a, m)  # the next draw differs
        torch.set_rng_state(state)
        assert torch.equal(dropout_mask(x, p), a)  # a saved state replays it (resume)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_dropout_backward_uses_the_forward_mask(layout):
    """Inverted dropout: out = x ⊙ m and ∂L/∂x = g ⊙ m with the same mask m, in either memory layout."""
    x = torch.rand(8, 6, 5, 5) + 0.5
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    drop = Drop(0.5)
    out = drop(x)
    m = out.detach() / x.detach()
    assert set(torch.unique(m).tolist()) == {0.0, 2.0}
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    out.backward(g)
    assert torch.equal(x.grad, g * m)
    drop.eval()
    assert drop(x) is x


def _steps(net, batches, rule):
    loss = (lambda o, y: F.cross_entropy(o, y)) if rule == "bp" else (lambda o, y: hinge_loss(o, y, 0.25))
    for x, y in batches:
        loss(net(x), y).backward()
        net.apply_update(0.1, 0.01 if rule == "kp" else 0.0)
    return [(m.W.detach(), m.R) for m in net.weight_layers().values()]


def _batches(shape, dtype, n=2):
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(6, *shape, generator=g, dtype=dtype), torch.randint(0, 5, (6,), generator=g))
            for _ in range(n)]


@pytest.mark.parametrize("spec", ["simpnet", "deepnet", "deepernet", "deepnet_s"])
@pytest.mark.parametrize("rule", ["bp", "bp-h", "frfb", "urfb", "kp", "sign", "dfa"])
def test_two_steps_equal_the_previous_implementation(spec, rule):
    """Outputs and updated W, R after two steps equal the previous implementation's in float64, to 1e-12
    of the size of the updates (only the convolutions' summation order changed with the memory layout;
    sign-symmetry's updates are large), dropout off so both see the same units."""
    shape = (3, 12, 12)
    a = Network(spec, shape, 5, rule=rule, seed=0, dtype=torch.float64)
    b = PreviousNetwork(spec, shape, 5, rule=rule, seed=0, dtype=torch.float64)
    a.eval(), b.eval()
    start = [(m.W.detach().clone(), m.R.clone()) for m in b.weight_layers().values()]
    batches = _batches(shape, torch.float64)
    torch.testing.assert_close(a(batches[0][0]), b(batches[0][0]), rtol=0, atol=1e-12)
    for (Wa, Ra), (Wb, Rb), (W0, R0) in zip(_steps(a, batches, rule), _steps(b, batches, rule), start):
        scale = max(1.0, float((Wb - W0).abs().max()), float((Rb - R0).abs().max()))
        torch.testing.assert_close(Wa, Wb, rtol=0, atol=1e-12 * scale)
        torch.testing.assert_close(Ra, Rb, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("rule", ["bp-h", "urfb", "kp"])
@pytest.mark.parametrize("connectivity", [1.0, 0.5])
def test_dense_steps_equal_the_previous_implementation_bit_for_bit(rule, connectivity):
    """Where no operation changed order (dense layers: σ fused, masks applied in place, update in place),
    float32 outputs and W, R after two steps are bit-identical to the previous implementation's."""
    spec = "full 30; full 20; output"
    a = Network(spec, (2, 4, 4), 5, rule=rule, seed=0, connectivity=connectivity)
    b = PreviousNetwork(spec, (2, 4, 4), 5, rule=rule, seed=0, connectivity=connectivity)
    batches = _batches((2, 4, 4), torch.float32)
    assert torch.equal(a(batches[0][0]), b(batches[0][0]))
    for (Wa, Ra), (Wb, Rb) in zip(_steps(a, batches, rule), _steps(b, batches, rule)):
        assert torch.equal(Wa, Wb) and torch.equal(Ra, Rb)


def test_network_output_does_not_depend_on_the_input_layout():
    """Channels-last is a memory order, not a value: the same batch in NCHW or channels-last order gives the
    same outputs (float64, to rounding) and dropout-free gradients."""
    net = Network("conv 4 3x3; maxpool 3; conv 4 3x3; full 8; output", (3, 9, 9), 5, seed=0, dtype=torch.float64)
    x = _batches((3, 9, 9), torch.float64)[0][0]
    other = copy.deepcopy(net)
    torch.testing.assert_close(net(x), other(x.contiguous(memory_format=torch.channels_last)), rtol=0, atol=1e-14)
