"""The regimes of the output error circuit and the range checks of every circuit (docs/spec.md §7): the bottom layer.

The four regimes of the output error circuit (Appendix 1, docs/spec.md §7.1 table), per class c with feed-forward
input ``h`` and supervisory signal ``s`` (+1 presented class, -1 otherwise), learning threshold ``S``:

====================  =================  ============================  ===========
name                  condition          circuit behaviour (from t=0)  eq. 6 value
====================  =================  ============================  ===========
``"on-update"``       s=+1, h ≤ S        δ constant 1                  1
``"on-correct"``      s=+1, h > S        δ oscillates 1+ε, 0           0
``"off-update"``      s=-1, h ≥ -S       δ constant -μ                 -μ
``"off-correct"``     s=-1, h < -S       δ oscillates -μ-ε, 0          0
====================  =================  ============================  ===========

``enforce_range`` implements the range checks of docs/spec.md §7 (|h| < M for the output circuit, |δ| < K for
the shutdown gate): ``on_range="report"`` counts, records and warns, ``"error"`` raises, ``"clip"``
clips into the open range. A violation is never silent.

Imports run one way inside ``circuits``: ``transfer`` and ``regimes`` (this module) at the bottom, then
``output_error`` and ``shutdown``, then ``check``, ``modules``, ``continuous``, ``spiking``, ``wiring``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["REGIMES", "regime", "regime_counts", "CircuitRangeWarning", "RangeReport", "ON_RANGE_MODES",
           "clip_bound", "enforce_range"]

REGIMES = ("on-update", "on-correct", "off-update", "off-correct")
ON_RANGE_MODES = ("report", "error", "clip")


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_s(s):
    """Raise unless every entry of ``s`` is +1 or -1."""
    bad = abs(s) != 1
    if bool(bad.any()):
        n_bad = int(bad.sum())
        raise ValueError(
            f"s must be +1 (presented class) or -1 (other classes); {n_bad} entries are neither. "
            "Build s from labels with circuits.modules.supervisory(labels, classes)."
        )


def _regime_masks(h, s, S):
    on = s > 0
    return {
        "on-update": on & (h <= S),
        "on-correct": on & (h > S),
        "off-update": ~on & (h >= -S),
        "off-correct": ~on & (h < -S),
    }


def regime(h, s, *, S: float = 1.0) -> np.ndarray:
    """Regime name of each input (one of ``REGIMES``), as a NumPy array of strings of h's shape."""
    h = np.asarray(h, dtype=np.float64)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), h.shape)
    _check_s(s)
    out = np.empty(h.shape, dtype=object)
    for name, mask in _regime_masks(h, s, S).items():
        out[mask] = name
    return out.astype(str)


def regime_counts(h, s, *, S: float = 1.0) -> dict:
    """Number of inputs in each regime; NumPy arrays or torch tensors (counts are Python ints)."""
    if _is_torch(h):
        import torch

        # index 0..3 in the order of REGIMES: 2·[s < 0] + [sufficiently correct]; one pass, one sync
        off = s < 0
        correct = torch.where(off, h < -S, h > S)
        counts = torch.bincount((2 * off + correct).flatten(), minlength=4).tolist()
        return dict(zip(REGIMES, counts))
    return {name: int(mask.sum()) for name, mask in _regime_masks(h, s, S).items()}


# --------------------------------------------------------------------------------------------------
# Range checks (docs/spec.md §7.1 "Out of range", §7.2)


class CircuitRangeWarning(UserWarning):
    """An input lies outside the range where a circuit computes its rule (|h| ≥ M or |δ| ≥ K)."""


@dataclass
class RangeReport:
    """Result of one range check: ``n_violations`` of ``n`` inputs had ``|name| ≥ bound``.

    ``mask`` marks the violating inputs (NumPy bool array or torch bool tensor, input's shape; for torch
    input it is None when there is no violation, which skips building it);
    ``mode`` is the ``on_range`` mode that handled them.
    """

    name: str
    bound: float
    mode: str
    n: int
    n_violations: int
    mask: object = field(repr=False, default=None)

    @property
    def ok(self) -> bool:
        return self.n_violations == 0


def clip_bound(bound: float, dtype) -> float:
    """Largest magnitude ``clip`` mode uses: ``bound·(1 - 16·eps_dtype)``.

    Clipping exactly to ``bound`` would stay out of range (the condition is strict); clipping to the
    next float below it is not enough either, because the circuit adds and removes 2M (or 2K), which
    rounds by up to half an ulp of 3M. Sixteen machine epsilons keeps the map exact in float64 and float32.
    """
    if type(dtype).__module__.split(".")[0] == "torch":
        import torch

        eps = torch.finfo(dtype).eps
    else:
        eps = np.finfo(dtype).eps
    return float(bound) * (1.0 - 16.0 * eps)


def enforce_range(x, *, bound: float, on_range: str, name: str, fix: str, warn: bool = True):
    """Check ``|x| < bound`` and handle violations by ``on_range``.

    A violation is ``|x| > clip_bound(bound, dtype)``, i.e. ``|x| ≥ bound`` up to 16 machine epsilons
    (relative): inputs that close to the bound are mapped wrongly by rounding in the circuit's sums.

    Returns ``(x, report)`` where ``x`` is unchanged (``"report"``, ``"error"``) or clipped into
    ``[-clip_bound, clip_bound]`` (``"clip"``). ``"report"`` warns with a ``CircuitRangeWarning`` naming
    the count (unless ``warn=False``: the caller warns itself); ``"error"`` raises ``ValueError``
    naming the count and ``fix``. Works on NumPy arrays and torch tensors.
    """
    if on_range not in ON_RANGE_MODES:
        raise ValueError(f"on_range must be one of {ON_RANGE_MODES}, got {on_range!r}.")
    if bound <= 0:
        raise ValueError(f"the bound for |{name}| must be positive, got {bound}.")
    if _is_torch(x):
        import torch

        n = x.numel()
        b = clip_bound(bound, x.dtype)
        if n and bool(x.abs().max() <= b):  # fast path: all in range (a NaN makes the max NaN and fails this)
            mask, n_bad = None, 0
        else:
            if bool(torch.isnan(x).any()):
                raise ValueError(f"{name} contains NaN; the circuit has no defined response to NaN.")
            mask = x.abs() > b
            n_bad = int(mask.sum())
    else:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        if np.isnan(x).any():
            raise ValueError(f"{name} contains NaN; the circuit has no defined response to NaN.")
        mask = np.abs(x) > clip_bound(bound, x.dtype)
        n_bad = int(mask.sum())
        n = x.size
    report = RangeReport(name=name, bound=float(bound), mode=on_range, n=n, n_violations=n_bad, mask=mask)
    if n_bad == 0:
        return x, report
    message = f"{n_bad} of {n} inputs have |{name}| ≥ {bound:g}, where the circuit does not compute its rule"
    if on_range == "error":
        raise ValueError(f"{message}. Fix: {fix}, or pass on_range='clip' or 'report'.")
    if on_range == "clip":
        b = clip_bound(bound, x.dtype)
        x = x.clamp(-b, b) if _is_torch(x) else np.clip(x, -b, b)
        return x, report
    if warn:
        warnings.warn(f"{message} (on_range='report': their values are not the rule's). Fix: {fix}.",
                      CircuitRangeWarning, stacklevel=3)
    return x, report
