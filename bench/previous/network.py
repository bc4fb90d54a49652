"""A network built from the paper's notation (docs/spec.md §5): forward pass, update, and W–R alignment.

``Network(spec, in_shape, num_classes, rule=...)`` turns each token of ``models.spec`` into a layer of
``models.layers`` (``local`` into ``models.local.Local``); ``conv``/``local``/``full`` layers apply σ,
``output`` is linear. ``forward`` keeps nothing but what autograd needs.

Under DFA (rule ``dfa``, docs/spec.md §2) every weight layer's input is detached, so no signal goes down through
any layer, max-pool or sum, and the output error δ_L reaches each hidden layer l directly through its own
fixed random matrix ``D_l`` (n_l × C): autograd delivers ``-D_l δ_L / B`` as ∂L/∂x_l, so the layer's σ
gives ``δ_l = σ'(h_l) ⊙ (D_l δ_L)`` and its update is ``ΔW_l = η δ_l x_{l-1}ᵀ`` as under every rule.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .layers import Conv, Drop, Full, MaxPool, Sum, WeightLayer, glorot_uniform
from models.local import Local
from models.rules import Rule, get_rule
from models.spec import LayerSpec, SpecError, resolve

__all__ = ["Network", "build_layers"]


def build_layers(layers: list[LayerSpec], in_shape, num_classes: int, *, generator, dtype=torch.float32,
                 slope=0.5, connectivity=1.0, mask_output=True, feedback_init="random"):
    """Instantiate layer specs for inputs of shape ``in_shape = (C, H, W)``; returns (modules, names, shapes)."""
    shape = tuple(in_shape)
    modules, names, shapes = [], [], []
    counts: dict[str, int] = {}
    common = dict(generator=generator, dtype=dtype, connectivity=connectivity,
                  feedback_init=feedback_init, slope=slope)
    for i, spec in enumerate(layers):
        where = f"layer {i + 1} '{spec}'"
        if spec.kind in ("conv", "local"):
            if len(shape) != 3:
                raise SpecError(f"{where}: needs an image-shaped input (C, H, W), got a flat vector of "
                                f"{shape[0]}; put convolutions before 'full' layers")
            c, h, w = shape
            if spec.kind == "conv":
                m = Conv(c, spec.units, spec.kernel, **common)
            else:  # the locally connected layer of §4.1
                m = Local(c, spec.units, spec.kernel, (h, w), **common)
            shape = (spec.units, h, w)
        elif spec.kind in ("full", "output"):
            n_in = math.prod(shape)
            n_out = spec.units if spec.kind == "full" else num_classes
            kw = dict(common)
            if spec.kind == "output":
                kw.update(act=False, connectivity=connectivity if mask_output else 1.0)
            m = Full(n_in, n_out, **kw)
            shape = (n_out,)
        elif spec.kind == "maxpool":
            if len(shape) != 3:
                raise SpecError(f"{where}: max-pooling needs an image-shaped input, got a flat vector")
            c, h, w = shape
            m = MaxPool(spec.kernel, spec.stride)
            shape = (c, -(-h // spec.stride), -(-w // spec.stride))
        elif spec.kind == "drop":
            m = Drop(spec.p)
        elif spec.kind == "sum":
            if shapes[-1] != shapes[-2]:
                raise SpecError(f"{where}: the two previous layers have different shapes {shapes[-2]} and "
                                f"{shapes[-1]}; give them the same number of channels")
            m = Sum()
        else:  # pragma: no cover - the parser admits no other kinds
            raise SpecError(f"{where}: unknown layer kind {spec.kind!r}")
        counts[spec.kind] = counts.get(spec.kind, 0) + 1
        names.append(spec.kind if spec.kind == "output" else f"{spec.kind}{counts[spec.kind]}")
        modules.append(m)
        shapes.append(shape)
    return modules, names, shapes


class Network(nn.Module):
    """A feed-forward network of the paper with separate feedback weights in every weight layer.

    Parameters
    ----------
    spec : a preset name (simpnet, deepnet, deepernet, deepnet_s) or a specification in the notation.
    in_shape : (C, H, W) of one input.
    num_classes : number of output units.
    rule : ``bp``, ``bp-h``, ``frfb``, ``urfb`` (or a peer, see ``models.rules``).
    slope : a of σ(h) = clip(a·h, -1, 1) (docs/spec.md §1: default 0.5, the authors' code; the paper's text has 1).
    connectivity : p of the fixed Bernoulli masks on W and R (§3.1; 1 = full connectivity).
    mask_output : mask the output layer too (docs/spec.md §2 default; the authors' code did not).
    feedback_init : ``random`` (R drawn independently) or ``symmetric`` (R = Wᵀ).
    seed : draws all weights and masks on the CPU, so a seed gives the same network on every device. DFA's
        matrices D_l are drawn when the rule is first set to ``dfa``, from the same stream continued after
        every W, R and mask, so they change no other rule's initial weights.
    """

    def __init__(self, spec: str, in_shape, num_classes: int, *, rule: str | Rule = "urfb", slope=0.5,
                 connectivity=1.0, mask_output=True, feedback_init="random", seed=0, dtype=torch.float32):
        super().__init__()
        self.spec_text, specs = resolve(spec)
        self.specs = specs
        gen = torch.Generator().manual_seed(seed)
        modules, names, shapes = build_layers(
            specs, in_shape, num_classes, generator=gen, dtype=dtype, slope=slope,
            connectivity=connectivity, mask_output=mask_output, feedback_init=feedback_init)
        self._stream_after_build = gen.get_state()  # where DFA's D matrices are drawn from
        self.layers = nn.ModuleList(modules)
        self.names = names
        self.shapes = shapes
        self.in_shape = tuple(in_shape)
        self.num_classes = num_classes
        self.set_rule(rule)

    def set_rule(self, rule: str | Rule) -> None:
        self.rule = get_rule(rule) if isinstance(rule, str) else rule
        for m in self.weight_layers().values():
            m.rule = self.rule
        if self.rule.feedback == "D":
            self._draw_direct_feedback()

    @torch.no_grad()
    def _draw_direct_feedback(self) -> None:
        """DFA's fixed D_l for every hidden weight layer (n_l × C, n_l = C_l·H_l·W_l for an image layer),
        Glorot-uniform with fans n_l and C, drawn once (a layer that has one keeps it)."""
        gen = torch.Generator()
        gen.set_state(self._stream_after_build)
        for m, shape in zip(self.layers, self.shapes):
            if isinstance(m, WeightLayer) and m.act and m.D is None:
                n = math.prod(shape)
                m.D = glorot_uniform((n, self.num_classes), n, self.num_classes, gen, m.W.dtype).to(m.W.device)

    def weight_layers(self) -> dict[str, WeightLayer]:
        return {n: m for n, m in zip(self.names, self.layers) if isinstance(m, WeightLayer)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        direct = self.rule.feedback == "D"
        taps = []  # DFA: the hidden weight layers' outputs x_l and their D_l
        prev = prev2 = None
        for m in self.layers:
            if isinstance(m, Sum):
                y = m(prev2, prev)
            elif direct and isinstance(m, WeightLayer):
                y = m(x.detach())  # nothing is sent down through a layer under DFA
                if m.act and y.requires_grad:
                    taps.append((y, m.D))
            else:
                y = m(x)
            prev2, prev, x = prev, y, y
        if taps:
            x = _DirectFeedback.apply(x, [D for _, D in taps], *[t for t, _ in taps])
        return x

    @torch.no_grad()
    def apply_update(self, lr: float, decay: float = 0.0) -> None:
        for m in self.weight_layers().values():
            m.apply_update(lr, decay)

    @torch.no_grad()
    def alignment(self) -> dict[str, dict[str, float]]:
        """Per weight layer: Pearson correlation over all entries of W and the feedback in use (R in W's
        shape; W itself under back-propagation, sign(W) under sign-symmetry), and the angle in degrees.
        Entries that do not exist (masked out, or outside a local layer's input grid) are left out."""
        result = {}
        for name, m in self.weight_layers().items():
            if self.rule.feedback == "D":  # no feedback matrix in W's shape: nothing to compare
                result[name] = {"correlation": float("nan"), "angle": float("nan")}
                continue
            a = m.W.detach().flatten().double()
            b = m.feedback_tensor().detach().flatten().double()
            keep = m.present()  # compare only entries that exist in both (masks; a local layer's grid)
            if keep is not None:
                keep = keep.flatten()
                a, b = a[keep], b[keep]
            ac, bc = a - a.mean(), b - b.mean()
            denom = ac.norm() * bc.norm()
            corr = float((ac @ bc) / denom) if denom > 0 else float("nan")
            cos = float((a @ b) / (a.norm() * b.norm())) if a.norm() * b.norm() > 0 else float("nan")
            angle = math.degrees(math.acos(max(-1.0, min(1.0, cos)))) if cos == cos else float("nan")
            result[name] = {"correlation": corr, "angle": angle}
        return result


class _DirectFeedback(torch.autograd.Function):
    """Identity on the output h_L; its backward hands each hidden layer output x_l the signal D_l δ_L
    (as autograd's ∂L/∂x_l = (∂L/∂h_L) D_lᵀ, i.e. -D_l δ_L / B), reshaped to x_l's shape (DFA)."""

    @staticmethod
    def forward(ctx, out, Ds, *taps):
        ctx.Ds = Ds
        ctx.shapes = [t.shape for t in taps]
        return out.clone()

    @staticmethod
    def backward(ctx, g):
        return (g, None, *[(g @ D.t()).view(shape) for D, shape in zip(ctx.Ds, ctx.shapes)])
