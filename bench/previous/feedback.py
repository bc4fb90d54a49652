"""Feedback through separate weights R (eq. 2, docs/spec.md §2 and §4) as ``torch.autograd.Function``s.

Each Function computes the usual forward pass with ``W`` and, in ``backward``, calls PyTorch's own
back-propagation kernels (matmul, ``aten.convolution_backward``) with the feedback tensor ``B`` in place
of ``W`` for the signal sent down, and with ``W``'s own input for the weight gradient. So a step costs
what back-propagation costs, and with ``B = W`` the result *is* back-propagation.

Storage convention (used everywhere in the project): ``R`` is stored in ``W``'s shape. For a dense layer
the paper's feedback matrix is ``Rᵀ`` of what is stored, so "R = Wᵀ" (the paper's symmetric start) means the
stored tensors are equal, and URFB's ``ΔR = ΔWᵀ`` means the stored ``R`` receives exactly ``ΔW``. For a
convolution the feedback is the transposed convolution with kernel ``R`` (docs/spec.md §4).

Sign convention: autograd carries ``∂L/∂h = -δ``; the weight "gradient" returned for ``W`` is
``-Σ_batch δ xᵀ`` (averaged by the loss), and the update ``W ← W - η·grad`` is the Hebbian ``ΔW = η δ xᵀ``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["linear", "conv2d", "conv2d_send", "conv2d_weight_grad", "same_padding", "satlin"]

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


def same_padding(k: int):
    """'same' padding of a stride-1 k×k convolution: (explicit pre-pad or None, padding of the conv).

    Odd k pads k//2 on every side; even k pads (k-1)//2 before and k//2 after (as PyTorch's ``'same'``).
    """
    if k % 2:
        return None, (k // 2, k // 2)
    return ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), (0, 0)


def conv2d(x: torch.Tensor, W: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Stride-1 'same' convolution with kernel W; feedback is the transposed convolution with kernel B."""
    pre, padding = same_padding(W.shape[-1])
    if pre is not None:
        x = F.pad(x, pre)
    if B is W:
        return F.conv2d(x, W, padding=padding)
    return _Conv2d.apply(x, W, B, padding)


def conv2d_send(g: torch.Tensor, B: torch.Tensor, in_shape) -> torch.Tensor:
    """The signal a 'same' convolution sends down: transposed convolution of ``g`` with kernel ``B``.

    Needs only the input's shape, not its values (used by the scheduled engine after x is replaced).
    """
    pre, padding = same_padding(B.shape[-1])
    n, c, h, w = in_shape
    if pre is not None:
        h, w = h + pre[2] + pre[3], w + pre[0] + pre[1]
    gx = torch.nn.grad.conv2d_input((n, c, h, w), B, g, padding=padding)
    if pre is not None:
        gx = gx[..., pre[2]:h - pre[3], pre[0]:w - pre[1]]
    return gx


def conv2d_weight_grad(x: torch.Tensor, W: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Σ_positions g_i x_{i+k}: the weight gradient of a 'same' convolution (the Hebbian product of §4)."""
    pre, padding = same_padding(W.shape[-1])
    if pre is not None:
        x = F.pad(x, pre)
    return _aten.convolution_backward(g, x, W, None, (1, 1), padding, (1, 1), False, (0, 0), 1,
                                      (False, True, False))[1]


def satlin(h: torch.Tensor, slope: float = 0.5) -> torch.Tensor:
    """Saturated linear σ(h) = clip(a·h, -1, 1) (docs/spec.md §1).

    Written as PyTorch's ``hardtanh`` of ``a·h`` because its backward is the strict gate of eq. 3:
    σ'(h) = a where |a·h| < 1 and 0 where the unit is saturated, boundary included (tested), at the cost of
    native autograd.
    """
    return F.hardtanh(h * slope)
