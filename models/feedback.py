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

__all__ = ["linear", "conv2d", "conv2d_send", "conv2d_weight_grad", "same_padding", "satlin", "satlin_",
           "channels_last"]

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
    x = channels_last(x)
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

    Values and gradient are those of PyTorch's ``hardtanh(a·h)``, whose backward is the strict gate of eq. 3:
    σ'(h) = a where |a·h| < 1 and 0 where the unit is saturated, boundary included (tested). One Function
    (``_Satlin``): the scaling and the clip are one temporary, and only the output x = σ(h) is kept for the
    backward (|x| < 1 exactly where |a·h| < 1), not h and a·h as well.
    """
    return _Satlin.apply(h, slope, False)


def satlin_(h: torch.Tensor, slope: float = 0.5) -> torch.Tensor:
    """``satlin`` computed in h's own memory (h is overwritten by σ(h) and returned).

    For a pre-activation nothing else holds: the output of a layer's convolution or matrix product (their
    backward keeps the input and the weights, not h). Saves the allocation and a pass over the largest
    tensors of the step; values and gradient are ``satlin``'s bit for bit.
    """
    return _Satlin.apply(h, slope, True)


class _Satlin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, slope, inplace):
        if inplace:
            x = h.mul_(slope).clamp_(-1.0, 1.0)
            ctx.mark_dirty(h)
        else:
            x = h.mul(slope).clamp_(-1.0, 1.0)
        ctx.save_for_backward(x)
        ctx.slope = slope
        return x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # hardtanh's own backward on x = clip(a·h): passes g where -1 < x < 1, i.e. where -1 < a·h < 1
        return _aten.hardtanh_backward(g, x, -1.0, 1.0).mul_(ctx.slope), None, None


CHANNELS_LAST = True  # False: every layer computes in the input's own memory order (bench/step_time.py --nchw)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """x in channels-last memory order where that is the faster layout (4-d CPU tensors), else x itself.

    Measured on the CPU (oneDNN convolution, PyTorch's max-pool; docs/training.md, Speed): the same
    results in a different memory order, convolutions up to 2.5× and the max-pool 5× faster than in NCHW
    order. Values are unchanged; a convolution's sums may be accumulated in another order (float rounding).
    """
    if CHANNELS_LAST and x.dim() == 4 and x.device.type == "cpu" and \
            not x.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x
