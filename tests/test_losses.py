"""docs/spec.md §3: the hinge loss (eq. 4), its output error (eq. 6), the softmax error, the supervisory signals."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import losses


pytestmark = pytest.mark.usefixtures("float64")  # every test in float64 (tests/conftest.py)


def _eq6(out, y, mu):
    """Eq. 6 written out per element (strict form, docs/spec.md §3)."""
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
    loss = losses.hinge_loss(out, y, mu)
    assert float(loss.detach()) == pytest.approx(_eq4(out.detach(), y, mu), rel=1e-12)
    loss.backward()
    delta = -out.grad * out.shape[0]  # δ = -∂L/∂x per example
    np.testing.assert_allclose(delta.numpy(), _eq6(out.detach(), y, mu), atol=1e-12)
    np.testing.assert_allclose(losses.output_error(out.detach(), y, mu).numpy(), _eq6(out.detach(), y, mu))


def test_hinge_gradient_matches_autograd_of_eq4():
    gen = torch.Generator().manual_seed(7)
    out = (torch.rand(16, 5, generator=gen) * 4 - 2)
    y = torch.randint(0, 5, (16,), generator=gen)
    mu = 0.3
    a = out.clone().requires_grad_(True)
    losses.hinge_loss(a, y, mu).backward()
    b = out.clone().requires_grad_(True)
    target = F.one_hot(y, 5).bool()
    ref = torch.where(target, torch.relu(1 - b), mu * torch.relu(1 + b)).sum(1).mean()
    ref.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_hinge_error_fn_replaces_eq6():
    out = torch.zeros(3, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2])
    losses.hinge_loss(out, y, 0.5, error_fn=lambda o, y, mu: torch.full_like(o, 2.0)).backward()
    torch.testing.assert_close(out.grad, torch.full((3, 4), -2.0 / 3))


def test_softmax_error_is_minus_the_gradient_of_cross_entropy():
    gen = torch.Generator().manual_seed(5)
    out = torch.randn(7, 4, generator=gen, requires_grad=True)
    y = torch.randint(0, 4, (7,), generator=gen)
    F.cross_entropy(out, y, reduction="sum").backward()
    torch.testing.assert_close(losses.softmax_error(out.detach(), y), -out.grad)


def test_supervisory_is_plus_one_at_the_label_and_minus_one_elsewhere():
    s = losses.supervisory(torch.tensor([2, 0]), torch.zeros(2, 3, dtype=torch.float32))
    assert s.dtype == torch.float32
    assert s.tolist() == [[-1.0, -1.0, 1.0], [1.0, -1.0, -1.0]]


@pytest.mark.parametrize("classes, mu", [(10, 1 / 9), (3, 0.5), (2, 1.0)])
def test_default_mu(classes, mu):
    assert losses.default_mu(classes) == mu
