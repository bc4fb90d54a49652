"""Layers with separate feedback weights (docs/spec.md §1, §2, §4).

A weight layer holds the feed-forward weights ``W`` (a Parameter), the feedback weights ``R`` (a buffer, in
``W``'s shape, see ``models.feedback``) and, under random connectivity (§3.1), fixed Bernoulli(p) masks
``mask_W`` and ``mask_R`` drawn independently. Masked entries are zero at the start and stay exactly zero
because every update is masked. No biases anywhere.

The rule decides the feedback: back-propagation rules send the signal down through ``W`` itself (so
autograd computes exact back-propagation), FRFB/URFB through ``R``, sign-symmetry through ``sign(W)``;
under DFA a hidden layer sends nothing down and receives ``D δ_L`` from the output directly (``D``, a
buffer set by ``models.network.Network``).
The update ``W ← W - η·grad`` is the Hebbian ``ΔW = η δ xᵀ`` averaged over the batch; under URFB (and KP)
``R`` receives the same increment (``ΔR = ΔWᵀ`` in the paper's orientation), masked by ``mask_R``.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import feedback as fb
from .rules import Rule

_aten = torch.ops.aten

__all__ = ["WeightLayer", "Full", "Conv", "MaxPool", "Drop", "Sum", "glorot_uniform", "dropout_mask"]


def glorot_uniform(shape, fan_in: int, fan_out: int, generator: torch.Generator, dtype) -> torch.Tensor:
    """U[-b, b] with b = sqrt(6 / (fan_in + fan_out)) (docs/spec.md §1), drawn on the CPU from ``generator``."""
    b = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0).mul_(b).to(dtype)


class WeightLayer(nn.Module):
    """Common state and update of the layers that carry W and R.

    Subclasses implement three methods:

    - ``_forward(x, B)``: the pre-activation h, with the feedback tensor ``B`` used by autograd's backward;
    - ``weight_grad(x, g)``: the gradient for W from the input activity x and the output signal g = ∂L/∂h
      (the Hebbian product, batch-summed);
    - ``send(g, B, in_shape)``: the signal sent down through ``B``, which needs only the input's shape.

    The last two are the two halves of the backward pass for engines that run them one at a time
    (``models.schedule``).
    Initialisation draws, in this order and from ``generator``: W, R, mask_W, mask_R (masks only when
    ``connectivity < 1``), so that every rule of a run starts from the same weights.
    """

    def __init__(self, shape, fan_in, fan_out, *, generator, dtype, connectivity=1.0, masked=True,
                 feedback_init="random", act=True, slope=0.5):
        super().__init__()
        if feedback_init not in ("random", "symmetric"):
            raise ValueError(f"feedback_init must be 'random' or 'symmetric', got {feedback_init!r}")
        if not 0.0 < connectivity <= 1.0:
            raise ValueError(f"connectivity must be in (0, 1], got {connectivity}")
        W = glorot_uniform(shape, fan_in, fan_out, generator, dtype)
        R = glorot_uniform(shape, fan_in, fan_out, generator, dtype)
        mask_W = mask_R = None
        if connectivity < 1.0 and masked:
            mask_W = (torch.rand(shape, generator=generator, dtype=torch.float64) < connectivity).to(dtype)
            mask_R = (torch.rand(shape, generator=generator, dtype=torch.float64) < connectivity).to(dtype)
        if feedback_init == "symmetric":  # the Zipser–Rumelhart control: R = Wᵀ (same connectivity)
            R = W.clone()
            mask_R = mask_W
        if mask_W is not None:
            W = W * mask_W
            R = R * mask_R
        self.W = nn.Parameter(W)
        self.register_buffer("R", R)
        self.register_buffer("mask_W", mask_W)
        self.register_buffer("mask_R", mask_R)
        self.register_buffer("D", None)  # DFA's direct feedback matrix (n_out units × C), set by the Network
        self.act = act
        self.slope = slope
        self.rule: Rule | None = None
        self.frozen = False  # a frozen layer keeps W and R (the §4.1 protocol freezes the first layer)

    def feedback_tensor(self) -> torch.Tensor:
        """The tensor whose (transposed) product carries the signal down: W, R or sign(W).

        Under DFA nothing is sent down through a layer (its input is detached, see ``Network``), so W is
        returned only to select the plain kernels."""
        if self.rule is None or self.rule.feedback in ("W", "D"):
            return self.W
        if self.rule.feedback == "R":
            return self.R
        if self.rule.feedback == "signW":
            return torch.sign(self.W.detach())
        raise ValueError(f"unknown feedback kind {self.rule.feedback!r}")

    def present(self):
        """Boolean mask of the entries that exist in both W and R (None: all of them)."""
        if self.mask_W is None:
            return None
        return (self.mask_W > 0) & (self.mask_R > 0)

    # True where ``_forward`` returns a fresh tensor that nothing else holds (a convolution's or matrix
    # product's output), so σ may overwrite it (``feedback.satlin_``)
    _fresh_h = False

    def forward(self, x):
        h = self._forward(x, self.feedback_tensor())
        if not self.act:
            return h
        return fb.satlin_(h, self.slope) if self._fresh_h else fb.satlin(h, self.slope)

    @torch.no_grad()
    def apply_update(self, lr: float, decay: float = 0.0) -> None:
        """W ← W - η·M_W⊙grad; under URFB/KP also R ← R - η·M_R⊙grad (ΔR = ΔWᵀ).

        KP adds equal weight decay λ = ``decay`` on the weights the step starts from:
        W ← (1 - ηλ)W + ΔW and R ← (1 - ηλ)R + ΔR, so R - W shrinks by exactly (1 - ηλ) per step.
        """
        g = self.W.grad
        self.W.grad = None
        if g is None or self.frozen:
            return
        kp = self.rule is not None and self.rule.decay
        if kp and not decay > 0:
            raise ValueError(f"rule {self.rule.name} needs a weight decay > 0, got {decay}; with no decay it is "
                             "URFB (use rule urfb)")
        # g is this update's own tensor (taken from W.grad above): the masks multiply it in place
        if self.rule is not None and self.rule.learn_R:
            gR = g if self.mask_R is self.mask_W else g * self.mask_R  # before g is masked by M_W
        if self.mask_W is not None:
            g.mul_(self.mask_W)
        if self.rule is not None and self.rule.learn_R:
            if kp:
                self.R.mul_(1.0 - lr * decay)
            self.R.sub_(gR, alpha=lr)
        if kp:
            self.W.mul_(1.0 - lr * decay)
        self.W.sub_(g, alpha=lr)


class Full(WeightLayer):
    """Dense layer ``h = W x`` (input flattened), ``W`` of shape ``(n_out, n_in)``."""

    _fresh_h = True

    def __init__(self, n_in: int, n_out: int, **kw):
        super().__init__((n_out, n_in), n_in, n_out, **kw)

    def _forward(self, x, B):
        return fb.linear(x.flatten(1), self.W, B)

    def weight_grad(self, x, g):
        return g.t() @ x.flatten(1)

    def send(self, g, B, in_shape):
        return (g @ B).view(in_shape)


class Conv(WeightLayer):
    """k×k convolution, stride 1, 'same' zero padding, tied weights ``W`` of shape ``(C_out, C_in, k, k)``."""

    _fresh_h = True

    def __init__(self, c_in: int, c_out: int, k: int, **kw):
        super().__init__((c_out, c_in, k, k), k * k * c_in, k * k * c_out, **kw)

    def _forward(self, x, B):
        return fb.conv2d(x, self.W, B)

    def weight_grad(self, x, g):
        return fb.conv2d_weight_grad(x, self.W, g)

    def send(self, g, B, in_shape):
        return fb.conv2d_send(g, B, in_shape)


class MaxPool(nn.Module):
    """k×k window centred on each pixel, zero padding outside the grid, every s-th pixel (docs/spec.md §4).

    Output size ``ceil(n / s)``. Feedback goes to the arg-max position, the first maximum in row-major order
    of the zero-padded window (PyTorch's max-pool on the padded tensor). The padding is a real zero: at the
    border it wins over negative values (the output is 0 and no feedback goes into the grid).

    Odd k: ``_MaxPool`` pools with PyTorch's own padding (which never wins) and corrects the border windows,
    where a zero would compete, so no padded copy of the input is made; on the CPU in channels-last order
    (``feedback.channels_last``). Even k (asymmetric padding): the padded copy, as the definition reads.
    """

    def __init__(self, k: int, stride: int):
        super().__init__()
        self.k, self.stride = k, stride
        self.pad = ((k - 1) // 2, k - 1 - (k - 1) // 2)

    def forward(self, x):
        a, b = self.pad
        if a != b:
            return F.max_pool2d(F.pad(x, (a, b, a, b)), self.k, self.stride)
        return _MaxPool.apply(fb.channels_last(x), self.k, self.stride)[0]


@functools.lru_cache(maxsize=64)
def _border_windows(h: int, w: int, k: int, s: int, channels_last: bool):
    """The output rows and columns whose zero-padded k×k windows (k odd) reach outside an h×w grid.

    Returns a list of (index, top, left, first) for the pooled output seen as (N, Ho, Wo, C) when
    ``channels_last`` (so the selected entries lie in runs of C) and as (N, C, Ho, Wo) otherwise: ``index``
    selects one border row (all columns) or one border column (the rows not already listed); ``top`` and
    ``left`` are the grid row and column of the selected windows' top-left corners and ``first`` the
    row-major place, within the window, of its first padding entry (the padding's turn in the scan that
    picks the first maximum): ints, or tensors along the selected positions shaped to broadcast.
    """
    a = (k - 1) // 2
    ho, wo = -(-h // s), -(-w // s)
    r0 = [i * s - a for i in range(ho)]  # first row (column) of each window, may be negative
    c0 = [j * s - a for j in range(wo)]
    rows = [i for i in range(ho) if r0[i] < 0 or r0[i] + k > h]
    cols = [j for j in range(wo) if c0[j] < 0 or c0[j] + k > w]
    inner = [i for i in range(ho) if i not in rows]
    none = k * k  # no padding after the top-left corner in this direction

    def first(top, left):  # a padded top row or left column comes first; else row 0's right padding,
        if top < 0 or left < 0:  # else the first padded row at the bottom
            return 0
        return min(w - left if left + k > w else none, (h - top) * k if top + k > h else none)

    def along(values):  # a vector along the selected positions, shaped to broadcast over the channels
        t = torch.tensor(values)
        return t[:, None] if channels_last else t

    all_ = slice(None)
    parts = []
    for i in rows:
        index = (all_, i) if channels_last else (all_, all_, i)
        parts.append((index, r0[i], along(c0), along([first(r0[i], c) for c in c0])))
    if inner:
        lo, hi = inner[0], inner[-1] + 1  # the border rows are a prefix and a suffix of the rows
        for j in cols:
            index = (all_, slice(lo, hi), j) if channels_last else (all_, all_, slice(lo, hi), j)
            parts.append((index, along(r0[lo:hi]), c0[j], along([first(r, c0[j]) for r in r0[lo:hi]])))
    return parts


def _spatial_view(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return t.permute(0, 2, 3, 1) if channels_last else t


class _MaxPool(torch.autograd.Function):
    """Max-pool with zero padding, odd k: PyTorch's pool with padding (where the padding never wins), then
    the border windows corrected where the zero padding wins: a negative maximum, or a zero maximum whose
    first occurrence comes after the window's first padding entry in row-major order."""

    @staticmethod
    def forward(ctx, x, k, s):
        a = (k - 1) // 2
        out, idx = _aten.max_pool2d_with_indices(x, [k, k], [s, s], [a, a], [1, 1], False)
        h, w = x.shape[-2:]
        cl = out.dim() == 4 and out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
        ov, iv = _spatial_view(out, cl), _spatial_view(idx, cl)
        dropped = []  # (index, where the padding won) of the border windows the feedback must not pass
        for index, top, left, first in _border_windows(h, w, k, s, cl):
            m = ov[index]
            pad_wins = m < 0
            zero = m == 0
            if bool(zero.any()):  # a tie with the padding: the earlier of the two in the scan wins
                i = iv[index]
                place = (i // w - top) * k + (i % w - left)  # the arg-max's row-major place in its window
                pad_wins |= zero & (first < place)
            if bool(pad_wins.any()):
                m.masked_fill_(pad_wins, 0.0)
                dropped.append((index, pad_wins))
        ctx.dropped, ctx.cl = dropped, cl
        ctx.geometry = (k, s, a)
        ctx.save_for_backward(x, idx)
        ctx.mark_non_differentiable(idx)
        return out, idx

    @staticmethod
    def backward(ctx, g, _):
        x, idx = ctx.saved_tensors
        k, s, a = ctx.geometry
        fmt = torch.channels_last if ctx.cl else torch.contiguous_format
        g = g.contiguous(memory_format=fmt) if not ctx.dropped else g.clone(memory_format=fmt)
        gv = _spatial_view(g, ctx.cl)
        for index, pad_wins in ctx.dropped:  # where the padding won, the feedback stops
            gv[index].masked_fill_(pad_wins, 0.0)
        return _aten.max_pool2d_with_indices_backward(g, x, [k, k], [s, s], [a, a], [1, 1], False, idx), None, None


class Drop(nn.Module):
    """Inverted dropout: each unit zeroed with probability p in training, survivors scaled by 1/(1-p).

    On the CPU (float32/float64) the mask comes from ``dropout_mask``: drawn by NumPy's PCG64 from a seed
    taken from PyTorch's global generator, so ``torch.manual_seed`` and ``torch.get_rng_state`` fix and
    save it (the checkpoint's RNG state resumes it bit for bit); elsewhere ``F.dropout``.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not (self.training and self.p > 0):
            return x
        if x.device.type != "cpu" or x.dtype not in _NUMPY_DTYPE or self.p >= 1:
            return F.dropout(x, self.p, True)
        return _Dropout.apply(x, self.p)


_NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


def dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """The inverted-dropout mask for x: 1/(1-p) with probability 1-p, else 0, in x's shape and memory order.

    One 64-bit seed is drawn from PyTorch's global CPU generator; NumPy's PCG64 stream from it gives one
    32-bit integer per unit, kept where it is below round((1-p)·2³²) (so P(keep) = 1-p to within 2⁻³²).
    The value 1/(1-p) is computed as ``F.dropout`` does (in x's dtype). Three passes, against the serial
    Bernoulli draw of ``F.dropout`` on this CPU.
    """
    seed = int(torch.randint(0, 2 ** 62, (), dtype=torch.int64))
    n = x.numel()
    u = np.random.PCG64(seed).random_raw((n + 1) // 2).view(np.uint32)[:n]
    threshold = np.uint32(min(round((1.0 - p) * 2.0 ** 32), 2 ** 32 - 1))
    scale = float(torch.ones((), dtype=x.dtype).div_(1.0 - p))
    mask = torch.from_numpy(np.multiply(u < threshold, _NUMPY_DTYPE[x.dtype](scale), dtype=_NUMPY_DTYPE[x.dtype]))
    if x.is_contiguous():
        return mask.view(x.shape)
    n_, c, h, w = x.shape  # channels-last (the only other layout the layers produce)
    return mask.view(n_, h, w, c).permute(0, 3, 1, 2)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        if not (x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))):
            x = x.contiguous()
        mask = dropout_mask(x, p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None


class Sum(nn.Module):
    """Residual SUM (docs/spec.md §4): the outputs of the two previous layers added; no parameters, no σ."""

    def forward(self, a, b):
        return a + b
