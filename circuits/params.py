"""The one check of the Appendix 1 circuits' parameters (docs/spec.md §7), wherever they enter.

``check_params`` is called by the Brian2 networks (``output_error``, ``shutdown``, ``continuous``,
``spiking``), the PyTorch modules (``modules``), ``models.train.RunConfig.validate`` and the scripts in
``sims/`` and ``bench/``, so that an impossible setting is refused once, before any work, with the same
one-line message everywhere. Only the parameters passed are checked. Imports nothing (cheap to call from a
script before its heavy imports).
"""
from __future__ import annotations

import math

__all__ = ["CircuitParamError", "check_params"]


class CircuitParamError(ValueError):
    """A circuit parameter outside the range where Appendix 1's circuits compute eq. 6 / eq. 3."""


def _number(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CircuitParamError(f"{name} must be a number, got {value!r}.") from None
    if math.isnan(v):
        raise CircuitParamError(f"{name} must be a number, got NaN.")
    return v


def check_params(*, M=None, S=None, mu=None, eps=None, K=None, margin=None, cycles=None) -> None:
    """Raise ``CircuitParamError`` (a ``ValueError``, one line) unless every given parameter is usable.

    M: the bound on |h|, M > S (M > 1 when S is not given: the trainer's S). S: the learning threshold,
    S ≥ 0. mu: the off-class error value, 0 < μ ≤ 1 (Appendix 1 assumes μ ≤ 1). eps: the oscillation
    increment, ε > 0. K: the bound on |δ| of the shutdown gate, K > 0. margin: σ_ctl's margin, a fraction
    of ε in [0, 1). cycles: a positive integer.
    """
    if S is not None and not _number("S", S) >= 0:
        raise CircuitParamError(f"S (the learning threshold) must be ≥ 0, got {S}.")
    if M is not None:
        s = 1.0 if S is None else float(S)
        if not (_number("M", M) > s and math.isfinite(float(M))):
            raise CircuitParamError(f"M (the bound on |h|) must be a finite number greater than S = {s:g} for the "
                                    f"four regimes of the output circuit to exist, got M = {M}; raise M")
    if mu is not None and not 0 < _number("mu", mu) <= 1:
        raise CircuitParamError(f"mu (the off-class error value μ) must satisfy 0 < μ ≤ 1 (Appendix 1), got {mu}.")
    if eps is not None and not 0 < _number("eps", eps) < math.inf:
        raise CircuitParamError(f"eps must be positive: with ε ≤ 0 the correct regimes do not oscillate; got {eps}.")
    if K is not None and not 0 < _number("K", K) < math.inf:
        raise CircuitParamError(f"K (the bound on |δ| of the shutdown gate) must be a positive number, got {K}.")
    if margin is not None and not 0 <= _number("margin", margin) < 1:
        raise CircuitParamError(f"margin must be in [0, 1) (a fraction of ε), got {margin}.")
    if cycles is not None and (isinstance(cycles, bool) or not math.isfinite(_number("cycles", cycles))
                               or float(cycles) != int(float(cycles)) or float(cycles) < 1):
        raise CircuitParamError(f"cycles must be a positive integer, got {cycles}.")
