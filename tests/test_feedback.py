"""SPEC §1–§4: feedback through R, the strict σ gate, the hinge loss's output error (eq. 4–6)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import feedback as fb


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _grads(fn, x, W):
    x = x.clone().requires_grad_(True)
    W = W.clone().requires_grad_(True)
    out = fn(x, W)
    g = torch.randn_like(out, generator=torch.Generator().manual_seed(3))
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


def _eq6(out, y, mu):
    """Eq. 6 written out per element (strict form, SPEC §3)."""
    out = np.asarray(out)
    delta = np.zeros_like(out)
    for n in range(out.shape[0]):
        for i in range(out.shape[1]):
            if i == y[n]:
                delta[n, i] = 1.0 if out[n, i] < 1 else 0.0
            else:
                delta[n, i] = -mu if out[n, i] > -1 else 0.0
    return delta


def _eq4(out, y, mu):
    out = np.asarray(out)
    total = 0.0
    for n in range(out.shape[0]):
        for i in range(out.shape[1]):
            total += max(1 - out[n, i], 0) if i == y[n] else mu * max(1 + out[n, i], 0)
    return total / out.shape[0]


@pytest.mark.parametrize("mu", [1 / 9, 0.25, 1.0])
def test_hinge_output_error_is_eq6(mu):
    gen = torch.Generator().manual_seed(int(mu * 100))
    out = (torch.rand(64, 10, generator=gen) * 6 - 3).requires_grad_(True)
    y = torch.randint(0, 10, (64,), generator=gen)
    loss = fb.hinge_loss(out, y, mu)
    assert float(loss.detach()) == pytest.approx(_eq4(out.detach(), y, mu), rel=1e-12)
    loss.backward()
    delta = -out.grad * out.shape[0]  # δ = -∂L/∂x per example
    np.testing.assert_allclose(delta.numpy(), _eq6(out.detach(), y, mu), atol=1e-12)
    np.testing.assert_allclose(fb.output_error(out.detach(), y, mu).numpy(), _eq6(out.detach(), y, mu))


def test_hinge_gradient_matches_autograd_of_eq4():
    gen = torch.Generator().manual_seed(7)
    out = (torch.rand(16, 5, generator=gen) * 4 - 2)
    y = torch.randint(0, 5, (16,), generator=gen)
    mu = 0.3
    a = out.clone().requires_grad_(True)
    fb.hinge_loss(a, y, mu).backward()
    b = out.clone().requires_grad_(True)
    target = F.one_hot(y, 5).bool()
    ref = torch.where(target, torch.relu(1 - b), mu * torch.relu(1 + b)).sum(1).mean()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_hinge_error_fn_replaces_eq6():
    out = torch.zeros(3, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2])
    fb.hinge_loss(out, y, 0.5, error_fn=lambda o, y, mu: torch.full_like(o, 2.0)).backward()
    torch.testing.assert_close(out.grad, torch.full((3, 4), -2.0 / 3))
