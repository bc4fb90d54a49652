"""docs/spec.md §1, §2, §4: feedback through R, the strict σ gate of eq. 3."""
import pytest
import torch
import torch.nn.functional as F

from models import feedback as fb


pytestmark = pytest.mark.usefixtures("float64")  # every test in float64 (tests/conftest.py)


def _grads(fn, x, W):
    x = x.clone().requires_grad_(True)
    W = W.clone().requires_grad_(True)
    out = fn(x, W)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))  # by shape, not memory order
    out.backward(g)
    return out.detach(), x.grad, W.grad


@pytest.mark.parametrize("shape", [(5, 7), (1, 3)])
def test_linear_feedback_with_R_equal_W_is_autograd(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, shape[1], generator=gen)
    W = torch.randn(*shape, generator=gen)
    ref = _grads(lambda x, W: F.linear(x, W), x, W)
    got = _grads(lambda x, W: fb._Linear.apply(x, W, W.detach().clone()), x, W)
    for a, b in zip(ref, got):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_conv_feedback_with_R_equal_W_is_autograd(k):
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(2, 3, 7, 6, generator=gen)
    W = torch.randn(4, 3, k, k, generator=gen)
    same = lambda x, W: F.conv2d(x, W, padding="same")  # noqa: E731  PyTorch's own convolution
    ref = _grads(same, x, W)
    got = _grads(lambda x, W: fb.conv2d(x, W, W.detach().clone()), x, W)
    assert ref[0].shape == (2, 4, 7, 6)
    for a, b in zip(ref, got):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_feedback_functions_pass_gradcheck_when_R_is_W():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, generator=gen, requires_grad=True)
    W = torch.randn(3, 5, generator=gen, requires_grad=True)
    # With B = W passed as the same live tensor, the Function's backward is the exact derivative.
    assert torch.autograd.gradcheck(lambda x, W: fb._Linear.apply(x, W, W), (x, W))
    xc = torch.randn(1, 2, 5, 5, generator=gen, requires_grad=True)
    Wc = torch.randn(3, 2, 3, 3, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, W: fb._Conv2d.apply(x, W, W, (1, 1)), (xc, Wc))


def test_feedback_sends_down_through_R_not_W():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 6, generator=gen, requires_grad=True)
    W = torch.randn(3, 6, generator=gen, requires_grad=True)
    R = torch.randn(3, 6, generator=gen)
    g = torch.randn(4, 3, generator=gen)
    fb.linear(x, W, R).backward(g)
    torch.testing.assert_close(x.grad, g @ R)  # δ_l = R δ_{l+1} in the paper's orientation
    torch.testing.assert_close(W.grad, g.t() @ x.detach())  # the weight gradient still uses x
    xc = torch.randn(2, 2, 5, 5, generator=gen, requires_grad=True)
    Wc = torch.randn(3, 2, 3, 3, generator=gen, requires_grad=True)
    Rc = torch.randn(3, 2, 3, 3, generator=gen)
    gc = torch.randn(2, 3, 5, 5, generator=gen)
    fb.conv2d(xc, Wc, Rc).backward(gc)
    ref = torch.nn.grad.conv2d_input(xc.shape, Rc, gc, padding=1)  # transposed convolution with kernel R
    torch.testing.assert_close(xc.grad, ref)
    torch.testing.assert_close(Wc.grad, torch.nn.grad.conv2d_weight(xc.detach(), Wc.shape, gc, padding=1))


@pytest.mark.parametrize("slope", [0.5, 1.0])
def test_satlin_value_and_strict_gate(slope):
    h = torch.tensor([-3.0, -1 / slope, -0.5, 0.0, 0.7, 1 / slope, 4.0], requires_grad=True)
    x = fb.satlin(h, slope)
    torch.testing.assert_close(x, torch.clamp(slope * h.detach(), -1, 1))
    x.sum().backward()
    # σ'(h) = a where |a h| < 1 strictly; a unit at |x| = 1 passes no feedback (eq. 3)
    expected = torch.where((slope * h.detach()).abs() < 1, slope, 0.0)
    torch.testing.assert_close(h.grad, expected)
