"""Transfer functions and one step of the Appendix 1 control circuits (docs/spec.md §7), as pure functions.

This module is the single definition of the circuits' equations. The Brian2 networks, the PyTorch
equivalent-behaviour modules and the checkers all call these functions (or are tested equal to them).
Every function works elementwise on NumPy arrays and on PyTorch tensors alike and returns the same
kind (and dtype) it was given.

Output error circuit (Fig. 13, 14), per output class c:

    H_c = h_c + 2M s_c - 2M t_c          (input to the error unit)
    δ_c = σ_out(H_c)                     (error unit)
    t_c = σ_ctl(δ_c)                     (control unit)

    σ_out(H) =  1+ε    if H > 2M+S
                1      if M ≤ H ≤ 2M+S
                0      if -M < H < M
                -μ     if -2M-S ≤ H ≤ -M
                -μ-ε   if H < -2M-S

The paper's intervals overlap at H = ±M; the project takes the outer value there (1 at +M, -μ at -M),
so the silent band ``|H| < M`` is open.

    σ_ctl(δ) =  1   if δ > 1 + m·ε
                0   if -μ - m·ε ≤ δ ≤ 1 + m·ε
                -1  if δ < -μ - m·ε

``m`` is the ``margin`` (fraction of ε): 0 is the paper's circuit, whose thresholds sit exactly on the
settled values 1 and -μ; 0.5 puts them half way to the oscillation values (docs/spec.md §7.1 "zero margins"),
which changes nothing on the ideal map and tolerates noise of up to ε/2.

Shutdown circuit (Fig. 15, eq. 3), per hidden unit:

    u = 1[x ≥ 1],   v = -1[x ≤ -1]
    δ̃ = σ_gate(δ - 2K u + 2K v),   σ_gate(z) = z if z ≥ -K else 0

which equals eq. 3 (δ̃ = 0 where |x| = 1, else δ) whenever |δ| < K.
"""
from __future__ import annotations

import re

import numpy as np

__all__ = [
    "Step",
    "SIGMA_OUT",
    "SIGMA_CTL",
    "SIGMA_U",
    "SIGMA_V",
    "GATE_OPEN",
    "brian2_expressions",
    "identify_brian2",
    "sigma_out",
    "sigma_ctl",
    "sigma_gate",
    "error_input",
    "cycle_sequential",
    "cycle_simultaneous",
    "sigma_u",
    "sigma_v",
    "control_units",
    "gate",
]


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _where(cond, value, other):
    """``value`` where ``cond`` else ``other``; ``value`` is a number or an array/tensor like ``other``."""
    if _is_torch(other):
        import torch

        if not isinstance(value, (int, float)):
            value = torch.as_tensor(value, dtype=other.dtype, device=other.device)
        return torch.where(cond, value, other)
    return np.where(cond, np.asarray(value, dtype=other.dtype), other)


def _full_like(x, value):
    if _is_torch(x):
        import torch

        return torch.full_like(x, value)
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return np.full(x.shape, value, dtype=dtype)


def _as_float(x):
    if _is_torch(x):
        return x if x.is_floating_point() else x.double()
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


class Step:
    """A piecewise-constant transfer function given by its breakpoint table: the one definition from which
    both the NumPy/PyTorch function (``__call__``) and the Brian2 expression (``brian2``) are made.

    ``levels[0]`` holds below the first threshold; crossing threshold i (an expression in the parameters)
    switches to ``levels[i + 1]``. ``closed`` says whether the threshold value itself belongs to the upper
    piece (x ≥ θ) or the lower one (x > θ). Levels and thresholds are arithmetic expressions in the
    function's parameters, written once and read by Python and by Brian2 alike.
    """

    def __init__(self, levels, thresholds):
        if len(levels) != len(thresholds) + 1:
            raise ValueError("a step function needs one more level than thresholds")
        self.levels = tuple(levels)
        self.thresholds = tuple(thresholds)  # ((expression, closed), ...)
        self._code = {e: compile(e, "<transfer>", "eval") for e in (*self.levels, *(t for t, _ in thresholds))}

    def _value(self, expr, params) -> float:
        return float(eval(self._code[expr], {"__builtins__": {}}, params))  # noqa: S307 - fixed table entries

    def __call__(self, x, **params):
        x = _as_float(x)
        out = _full_like(x, self._value(self.levels[0], params))
        for (theta, closed), level in zip(self.thresholds, self.levels[1:]):
            t = self._value(theta, params)
            out = _where(x >= t if closed else x > t, self._value(level, params), out)
        return out

    def brian2(self, x: str) -> str:
        """The function of the expression ``x`` in Brian2's expression language: a sum of ``level·int(piece)``
        terms whose pieces are disjoint, so that exactly one term is non-zero and the value is exact."""
        above = [f"({x}) {'>=' if closed else '>'} ({theta})" for theta, closed in self.thresholds]
        terms = []
        for i, level in enumerate(self.levels):
            piece = ([above[i - 1]] if i > 0 else []) + ([f"not ({above[i]})"] if i < len(above) else [])
            terms.append(f"({level})*int({' and '.join(piece)})")
        return " + ".join(terms)


# The breakpoint tables of Fig. 13 (docs/spec.md §7.1) and Fig. 15 (§7.2).
SIGMA_OUT = Step(levels=("-mu - eps", "-mu", "0.0", "1.0", "1.0 + eps"),
                 thresholds=(("-2*M - S", True), ("-M", False), ("M", True), ("2*M + S", False)))
SIGMA_CTL = Step(levels=("-1.0", "0.0", "1.0"),
                 thresholds=(("-mu - margin*eps", True), ("1.0 + margin*eps", False)))
SIGMA_U = Step(levels=("0.0", "1.0"), thresholds=(("1.0", True),))
SIGMA_V = Step(levels=("-1.0", "0.0"), thresholds=(("-1.0", False),))
GATE_OPEN = Step(levels=("0.0", "1.0"), thresholds=(("-K", True),))  # σ_gate(z) = z · GATE_OPEN(z)


def brian2_expressions(**x) -> dict:
    """Brian2 expression strings of the circuits' transfer functions applied to the given argument
    expressions, e.g. ``brian2_expressions(sigma_out="h + I_s + I_t")["sigma_out"]``. The parameters
    (``M``, ``S``, ``mu``, ``eps``, ``margin``, ``K``) are names the network's namespace must hold."""
    make = {"sigma_out": SIGMA_OUT.brian2, "sigma_ctl": SIGMA_CTL.brian2, "sigma_u": SIGMA_U.brian2,
            "sigma_v": SIGMA_V.brian2, "sigma_gate": lambda z: f"({z})*({GATE_OPEN.brian2(z)})"}
    unknown = set(x) - set(make)
    if unknown:
        raise KeyError(f"no Brian2 expression for {sorted(unknown)}; known: {', '.join(make)}")
    return {name: make[name](arg) for name, arg in x.items()}


def identify_brian2(expression: str):
    """``(function name, argument expression)`` if ``expression`` is one of ``brian2_expressions``'s strings
    (how ``circuits.wiring`` names the transfer function a Brian2 group runs), else None."""
    m = re.search(r"int\(not \(\((.*?)\) >=? ", expression)
    if m is None:
        return None
    arg = m.group(1)
    for name in ("sigma_out", "sigma_ctl", "sigma_u", "sigma_v", "sigma_gate"):
        if brian2_expressions(**{name: arg})[name] == expression.strip():
            return name, arg
    return None


def sigma_out(H, *, M: float, S: float = 1.0, mu: float, eps: float):
    """Transfer function of the output error unit δ_c (docs/spec.md §7.1); H = ±M maps to the outer value."""
    return SIGMA_OUT(H, M=M, S=S, mu=mu, eps=eps)


def sigma_ctl(delta, *, mu: float, eps: float = 0.0, margin: float = 0.0):
    """Transfer function of the control unit t_c (docs/spec.md §7.1); ``margin`` in units of ε (0 = paper)."""
    return SIGMA_CTL(delta, mu=mu, eps=eps, margin=margin)


def error_input(h, s, t, *, M: float):
    """H_c = h_c + 2M s_c - 2M t_c, the summed input of the error unit."""
    return h + 2 * M * s - 2 * M * t


def cycle_sequential(h, s, t, *, M: float, S: float = 1.0, mu: float, eps: float, margin: float = 0.0):
    """One δ → t cycle in the paper's order: δ reads the old t, then t reads the new δ.

    Returns ``(delta, t_new)``. From t = 0 the four regimes of docs/spec.md §7.1 appear: δ constant 1 or -μ
    (eq. 6 asks for an update), or period-2 oscillation 1+ε ↔ 0 / -μ-ε ↔ 0 (eq. 6 gives 0).
    """
    delta = sigma_out(error_input(h, s, t, M=M), M=M, S=S, mu=mu, eps=eps)
    return delta, sigma_ctl(delta, mu=mu, eps=eps, margin=margin)


def cycle_simultaneous(h, s, t, delta, *, M: float, S: float = 1.0, mu: float, eps: float,
                       margin: float = 0.0):
    """One synchronous update: δ and t both read the previous state (gives period 4: 1+ε, 1+ε, 0, 0)."""
    new_delta = sigma_out(error_input(h, s, t, M=M), M=M, S=S, mu=mu, eps=eps)
    new_t = sigma_ctl(delta, mu=mu, eps=eps, margin=margin)
    return new_delta, new_t


def sigma_u(x):
    """Transfer function of the shutdown control unit u (Fig. 15): ``u = 1[x ≥ 1]``."""
    return SIGMA_U(x)


def sigma_v(x):
    """Transfer function of the shutdown control unit v (Fig. 15): ``v = -1[x ≤ -1]``."""
    return SIGMA_V(x)


def control_units(x):
    """Shutdown control units of Fig. 15: ``u = 1[x ≥ 1]``, ``v = -1[x ≤ -1]``."""
    return sigma_u(x), sigma_v(x)


def sigma_gate(z, *, K: float):
    """σ_gate(z) = z if z ≥ -K else 0 (the gated feedback unit of Fig. 15)."""
    z = _as_float(z)
    if _is_torch(z):
        import torch

        return torch.where(z >= -K, z, 0.0)
    return np.where(z >= -K, z, np.zeros((), dtype=z.dtype))


def gate(x, delta, *, K: float):
    """δ̃ = σ_gate(δ - 2K u + 2K v): feedback passes unless the unit is saturated (|x| = 1); eq. 3 for |δ| < K."""
    u, v = control_units(x)
    return sigma_gate(delta - 2 * K * u + 2 * K * v, K=K)
