"""Feedback through separate weights R (eq. 2, SPEC §2 and §4) as ``torch.autograd.Function``s.

Each Function computes the usual forward pass with ``W`` and, in ``backward``, calls PyTorch's own
back-propagation kernels (matmul, ``aten.convolution_backward``) with the feedback tensor ``B`` in place
of ``W`` for the signal sent down, and with ``W``'s own input for the weight gradient. So a step costs
what back-propagation costs, and with ``B = W`` the result *is* back-propagation.

Storage convention (used everywhere in the project): ``R`` is stored in ``W``'s shape. For a dense layer
the paper's feedback matrix is ``Rᵀ`` of what is stored, so "R = Wᵀ" (the paper's symmetric start) means the
stored tensors are equal, and URFB's ``ΔR = ΔWᵀ`` means the stored ``R`` receives exactly ``ΔW``. For a
convolution the feedback is the transposed convolution with kernel ``R`` (SPEC §4).

Sign convention: autograd carries ``∂L/∂h = -δ``; the weight "gradient" returned for ``W`` is
``-Σ_batch δ xᵀ`` (averaged by the loss), and the update ``W ← W - η·grad`` is the Hebbian ``ΔW = η δ xᵀ``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["linear", "conv2d", "satlin", "hinge_loss", "output_error"]

_aten = torch.ops.aten


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, B):
        ctx.save_for_backward(x, B)
        return F.linear(x, W)

    @staticmethod
    def backward(ctx, g):
        x, B = ctx.saved_tensors
        gx = g @ B if ctx.needs_input_grad[0] else None
        gW = g.t() @ x if ctx.needs_input_grad[1] else None
        return gx, gW, None


def linear(x: torch.Tensor, W: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``h = x Wᵀ``; the signal sent down is ``g B`` (B in W's shape: B = W is back-propagation)."""
    if B is W:
        return F.linear(x, W)
    return _Linear.apply(x, W, B)


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, B, padding):
        ctx.save_for_backward(x, W, B)
        ctx.padding = padding
        return F.conv2d(x, W, padding=padding)

    @staticmethod
    def backward(ctx, g):
        x, W, B = ctx.saved_tensors
        need_x, need_W = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        pad = ctx.padding
        gx = gW = None
        if need_x:  # transposed convolution of the output signal with kernel B
            gx = _aten.convolution_backward(g, x, B, None, (1, 1), pad, (1, 1), False, (0, 0), 1,
                                            (True, False, False))[0]
        if need_W:  # Σ_positions δ_i x_{i+k}: the same kernel as back-propagation's weight gradient
            gW = _aten.convolution_backward(g, x, W, None, (1, 1), pad, (1, 1), False, (0, 0), 1,
                                            (False, True, False))[1]
        return gx, gW, None, None


def conv2d(x: torch.Tensor, W: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Stride-1 'same' convolution with kernel W; feedback is the transposed convolution with kernel B."""
    k = W.shape[-1]
    if k % 2:
        padding = (k // 2, k // 2)
    else:  # even k: pad (k-1)//2 before and k//2 after, so the output keeps the input's size
        x = F.pad(x, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
        padding = (0, 0)
    if B is W:
        return F.conv2d(x, W, padding=padding)
    return _Conv2d.apply(x, W, B, padding)


class _SatLin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, slope):
        x = torch.clamp(h * slope, -1.0, 1.0)
        ctx.save_for_backward(x)
        ctx.slope = slope
        return x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # σ'(h) = a where |a h| < 1, strictly (eq. 3: a unit with |x| = 1 passes no feedback)
        return g * ((x.abs() < 1.0) * ctx.slope).to(g.dtype), None


def satlin(h: torch.Tensor, slope: float = 0.5) -> torch.Tensor:
    """Saturated linear σ(h) = clip(a·h, -1, 1) (SPEC §1) with the strict gate of eq. 3 in backward."""
    return _SatLin.apply(h, slope)


def output_error(out: torch.Tensor, y: torch.Tensor, mu: float) -> torch.Tensor:
    """The local output error of the multi-class hinge loss, eq. 6 (strict form, SPEC §3).

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
