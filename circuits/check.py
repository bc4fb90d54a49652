"""Agreement of a circuit with its abstract rule: regimes, range checks, grid and random-draw checker (docs/spec.md §7).

The reference value is eq. 6 in its printed (closed, ``≤``/``≥``) form, i.e.
``circuits.output_error.rule(..., boundary="closed")``: that is the form the circuit computes (the
closed intervals of σ_out put h = S in the update regime) and the form the regime names state. The
strict form of docs/spec.md §3 (the project's default for training) differs from it only at h = ±S exactly,
where the hinge loss is flat and both values are subgradients; ``check_rule`` counts those points.

The regimes and the range checks (``regime``, ``regime_counts``, ``enforce_range``, ``CircuitRangeWarning``,
...) live in ``circuits.regimes``, below the circuits, and are re-exported here.

``check_rule`` is the checker of issue item 7: it runs any simulate-like callable ``fn(h, s) -> values``
over a grid (0, ±S, ±M and values within 1e-9 of them) and random draws, and reports agreement per
regime. It is used for the rate network, its PyTorch module, and the continuous and spiking versions.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from circuits.output_error import rule
from circuits.regimes import (ON_RANGE_MODES, REGIMES, CircuitRangeWarning, RangeReport, _check_s,  # noqa: F401
                              _regime_masks, clip_bound, enforce_range, regime, regime_counts)

__all__ = [
    "REGIMES",
    "regime",
    "regime_counts",
    "agreement_by_regime",
    "CircuitRangeWarning",
    "RangeReport",
    "ON_RANGE_MODES",
    "clip_bound",
    "enforce_range",
    "boundary_grid",
    "random_draws",
    "CheckReport",
    "check_rule",
]


def agreement_by_regime(values, h, s, *, mu: float, S: float = 1.0, atol: float = 1e-12) -> dict:
    """Compare ``values`` with eq. 6 per regime: ``{name: (n, n_agree)}`` for every name in ``REGIMES``.

    ``values``, ``h``, ``s`` are arrays of one shape (s = ±1). A value agrees when it is within ``atol``
    of eq. 6 (closed form, see the module docstring). NaN never agrees.
    """
    h = np.asarray(h, dtype=np.float64)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), h.shape)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != h.shape:
        raise ValueError(f"values has shape {values.shape} but h has shape {h.shape}; pass one value per input.")
    _check_s(s)
    agree = np.abs(values - rule(h, s, mu=mu, S=S, boundary="closed")) <= atol
    return {name: (int(mask.sum()), int((agree & mask).sum())) for name, mask in _regime_masks(h, s, S).items()}


# --------------------------------------------------------------------------------------------------
# The grid / random-draw checker (issue item 7)


def boundary_grid(*, M: float, S: float = 1.0, near: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(h, s)`` on the edges of the regimes, for s = +1 and s = -1.

    h takes 0, ±S, ±S ± ``near``, and ±(M - ``near``) (the in-range values within ``near`` of ±M;
    |h| = M itself is out of range, see ``check_rule(out_of_range=True)``).
    """
    if not 0 < S < M:
        raise ValueError(f"need 0 < S < M for the four regimes to exist; got S={S}, M={M}.")
    hs = [0.0, M - near, -(M - near)]
    for edge in (S, -S):
        hs += [edge, edge - near, edge + near]
    h = np.array(sorted(set(hs)), dtype=np.float64)
    return np.concatenate([h, h]), np.concatenate([np.ones_like(h), -np.ones_like(h)])


def random_draws(n: int, *, M: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws of h uniform on the open interval (-M, M) and s = ±1 with probability 1/2 each."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(-M, M, size=n)
    h = np.where(np.abs(h) >= M, 0.0, h)  # uniform is half-open; keep the interval open
    s = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    return h, s


@dataclass
class CheckReport:
    """Agreement of a circuit with eq. 6. ``by_regime``: name -> (n, n_agree) over grid + random draws.

    ``disagreements``: rows (h, s, value, eq. 6) of the inputs that disagree (at most 20 kept).
    ``strict_differs``: number of inputs (all at h = ±S exactly) where eq. 6's strict form would differ.
    ``out_of_range``: (n, n_agree) at |h| = M when requested, else None.
    """

    by_regime: dict
    n_grid: int
    n_random: int
    disagreements: list
    strict_differs: int
    out_of_range: tuple | None = None

    @property
    def n(self) -> int:
        return sum(n for n, _ in self.by_regime.values())

    @property
    def n_agree(self) -> int:
        return sum(a for _, a in self.by_regime.values())

    @property
    def all_agree(self) -> bool:
        return self.n_agree == self.n

    def table(self) -> str:
        """The per-regime agreement as a small text table."""
        lines = [f"{'regime':<12} {'n':>7} {'agree':>7} {'%':>7}"]
        for name, (n, a) in self.by_regime.items():
            pct = 100.0 * a / n if n else float("nan")
            lines.append(f"{name:<12} {n:>7d} {a:>7d} {pct:>7.2f}")
        lines.append(f"{'all':<12} {self.n:>7d} {self.n_agree:>7d} {100.0 * self.n_agree / max(self.n, 1):>7.2f}")
        return "\n".join(lines)


def check_rule(fn, *, M: float, S: float = 1.0, mu: float, n_random: int = 10_000, seed: int = 0,
               near: float = 1e-9, atol: float = 1e-12, out_of_range: bool = False) -> CheckReport:
    """Run ``fn(h, s) -> values`` (one value per input, NumPy) over the boundary grid and ``n_random``
    random draws with |h| < M, and compare with eq. 6 per regime.

    ``fn`` is any simulate-like callable with its circuit parameters bound, e.g.
    ``lambda h, s: output_error.simulate(h, s, M=M, S=S, mu=mu, eps=eps, cycles=2)``. All inputs are
    passed in one call. With ``out_of_range=True`` it also evaluates h = ±M (both s) in a second call and
    reports their agreement separately (the circuit is not expected to agree there, docs/spec.md §7.1).
    """
    hg, sg = boundary_grid(M=M, S=S, near=near)
    hr, sr = random_draws(n_random, M=M, seed=seed)
    h = np.concatenate([hg, hr])
    s = np.concatenate([sg, sr])
    values = np.asarray(fn(h, s), dtype=np.float64)
    if values.shape != h.shape:
        raise ValueError(f"fn returned shape {values.shape} for {h.shape} inputs; it must return one value per input.")
    by_regime = agreement_by_regime(values, h, s, mu=mu, S=S, atol=atol)
    expected = rule(h, s, mu=mu, S=S, boundary="closed")
    bad = np.flatnonzero(~(np.abs(values - expected) <= atol))
    rows = [(float(h[i]), float(s[i]), float(values[i]), float(expected[i])) for i in bad[:20]]
    strict_differs = int((rule(h, s, mu=mu, S=S, boundary="strict") != expected).sum())
    oor = None
    if out_of_range:
        ho = np.array([M, -M, M, -M], dtype=np.float64)
        so = np.array([1.0, 1.0, -1.0, -1.0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CircuitRangeWarning)
            vo = np.asarray(fn(ho, so), dtype=np.float64)
        ok = np.abs(vo - rule(ho, so, mu=mu, S=S, boundary="closed")) <= atol
        oor = (ho.size, int(ok.sum()))
    return CheckReport(by_regime=by_regime, n_grid=hg.size, n_random=n_random, disagreements=rows,
                       strict_differs=strict_differs, out_of_range=oor)
