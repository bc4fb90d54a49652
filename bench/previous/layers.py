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

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import feedback as fb
from models.rules import Rule

__all__ = ["WeightLayer", "Full", "Conv", "MaxPool", "Drop", "Sum", "glorot_uniform"]


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

    def forward(self, x):
        h = self._forward(x, self.feedback_tensor())
        return fb.satlin(h, self.slope) if self.act else h


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
        gW = g if self.mask_W is None else g * self.mask_W
        if self.rule is not None and self.rule.learn_R:
            gR = gW if self.mask_R is self.mask_W else g * self.mask_R
            if kp:
                self.R.mul_(1.0 - lr * decay)
            self.R.sub_(gR, alpha=lr)
        if kp:
            self.W.mul_(1.0 - lr * decay)
        self.W.sub_(gW, alpha=lr)


class Full(WeightLayer):
    """Dense layer ``h = W x`` (input flattened), ``W`` of shape ``(n_out, n_in)``."""

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

    Output size ``ceil(n / s)``. Feedback goes to the arg-max position (PyTorch's max-pool backward).
    """

    def __init__(self, k: int, stride: int):
        super().__init__()
        self.k, self.stride = k, stride
        self.pad = ((k - 1) // 2, k - 1 - (k - 1) // 2)

    def forward(self, x):
        a, b = self.pad
        return F.max_pool2d(F.pad(x, (a, b, a, b)), self.k, self.stride)


class Drop(nn.Module):
    """Inverted dropout: each unit zeroed with probability p in training, survivors scaled by 1/(1-p)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training) if self.p > 0 else x


class Sum(nn.Module):
    """Residual SUM (docs/spec.md §4): the outputs of the two previous layers added; no parameters, no σ."""

    def forward(self, a, b):
        return a + b
