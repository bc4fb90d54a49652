"""The losses of §3.2 (docs/spec.md §3) and the output error signals they define, in one place.

- ``hinge_loss``: the multi-class hinge loss of eq. 4, whose gradient is the output error of eq. 6;
- ``output_error``: eq. 6 itself (strict form); ``softmax_error``: δ_L of softmax cross-entropy (rule ``bp``);
- ``default_mu``: μ = 1/(C−1), the off-class weight when none is given;
- ``supervisory``: the ±1 signals s of the output error circuit (+1 at the presented class);
- ``make_loss``: the loss of a rule (softmax cross-entropy for ``bp``, the hinge loss otherwise).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .rules import get_rule

__all__ = ["default_mu", "supervisory", "output_error", "softmax_error", "hinge_loss", "make_loss"]


def default_mu(num_classes: int) -> float:
    """μ = 1/(C−1) (docs/spec.md §3: the authors' code divides the off-class factor 1 by C−1)."""
    if num_classes < 2:
        raise ValueError(f"the hinge loss needs at least 2 classes, got {num_classes}")
    return 1.0 / (num_classes - 1)


def supervisory(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The supervisory signals s, shaped and typed like ``like`` (batch, C): +1 at each label, -1 elsewhere."""
    return torch.full_like(like, -1.0).scatter_(1, y.unsqueeze(1), 1.0)


def softmax_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """δ_L = -∂L/∂h_L of softmax cross-entropy, per example: onehot(y) - softmax(h_L)."""
    return F.one_hot(y, out.shape[1]).to(out.dtype) - torch.softmax(out, 1)


def output_error(out: torch.Tensor, y: torch.Tensor, mu: float) -> torch.Tensor:
    """The local output error of the multi-class hinge loss, eq. 6 (strict form, docs/spec.md §3).

    ``δ_i = 1`` if ``i = c`` and ``x_i < 1``; ``-μ`` if ``i ≠ c`` and ``x_i > -1``; else 0.
    """
    target = F.one_hot(y, out.shape[1]).to(torch.bool)
    on = target & (out < 1.0)
    off = ~target & (out > -1.0)
    return on.to(out.dtype) - mu * off.to(out.dtype)


class _Hinge(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out, y, mu, error_fn):
        target = F.one_hot(y, out.shape[1]).to(torch.bool)
        per = torch.where(target, torch.relu(1.0 - out), mu * torch.relu(1.0 + out)).sum(1)
        delta = error_fn(out, y, mu) if error_fn is not None else output_error(out, y, mu)
        ctx.save_for_backward(delta)
        return per.mean()

    @staticmethod
    def backward(ctx, g):
        (delta,) = ctx.saved_tensors
        return -delta * (g / delta.shape[0]), None, None, None


def hinge_loss(out: torch.Tensor, y: torch.Tensor, mu: float, error_fn=None) -> torch.Tensor:
    """Multi-class hinge loss of eq. 4, mean over the batch; its gradient is ``-δ/batch`` with δ of eq. 6.

    ``error_fn(out, y, mu) -> δ`` replaces eq. 6 by another output error signal (e.g. a circuit's readout);
    the loss value stays eq. 4.
    """
    return _Hinge.apply(out, y, mu, error_fn)


def make_loss(rule_name: str, mu: float, error_fn=None):
    """Softmax cross-entropy for ``bp``; the hinge loss of eq. 4 (output error eq. 6 or ``error_fn``) otherwise."""
    rule = get_rule(rule_name)
    if rule.loss == "xent":
        return lambda out, y: F.cross_entropy(out, y)
    return lambda out, y: hinge_loss(out, y, mu, error_fn)
