"""Agreement of a circuit with its abstract rule: regimes, range checks, grid and random-draw checker (SPEC §7).

The four regimes of the output error circuit (Appendix 1, SPEC §7.1 table), per class c with feed-forward
input ``h`` and supervisory signal ``s`` (+1 presented class, -1 otherwise), learning threshold ``S``:

====================  =================  ============================  ===========
name                  condition          circuit behaviour (from t=0)  eq. 6 value
====================  =================  ============================  ===========
``"on-update"``       s=+1, h ≤ S        δ constant 1                  1
``"on-correct"``      s=+1, h > S        δ oscillates 1+ε, 0           0
``"off-update"``      s=-1, h ≥ -S       δ constant -μ                 -μ
``"off-correct"``     s=-1, h < -S       δ oscillates -μ-ε, 0          0
====================  =================  ============================  ===========

The reference value is eq. 6 in its printed (closed, ``≤``/``≥``) form, i.e.
``circuits.output_error.rule(..., boundary="closed")``: that is the form the circuit computes (the
closed intervals of σ_out put h = S in the update regime) and the form the regime names state. The
strict form of SPEC §3 (the project's default for training) differs from it only at h = ±S exactly,
where the hinge loss is flat and both values are subgradients; ``check_rule`` counts those points.

``enforce_range`` implements the range checks of SPEC §7 (|h| < M for the output circuit, |δ| < K for
the shutdown gate): ``on_range="report"`` counts, records and warns, ``"error"`` raises, ``"clip"``
clips into the open range. A violation is never silent.

``check_rule`` is the checker of issue item 7: it runs any simulate-like callable ``fn(h, s) -> values``
over a grid (0, ±S, ±M and values within 1e-9 of them) and random draws, and reports agreement per
regime. It is used for the rate network, its PyTorch module, and the continuous and spiking versions.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

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


def agreement_by_regime(values, h, s, *, mu: float, S: float = 1.0, atol: float = 1e-12) -> dict:
    """Compare ``values`` with eq. 6 per regime: ``{name: (n, n_agree)}`` for every name in ``REGIMES``.

    ``values``, ``h``, ``s`` are arrays of one shape (s = ±1). A value agrees when it is within ``atol``
    of eq. 6 (closed form, see the module docstring). NaN never agrees.
    """
    from circuits.output_error import rule

    h = np.asarray(h, dtype=np.float64)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), h.shape)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != h.shape:
        raise ValueError(f"values has shape {values.shape} but h has shape {h.shape}; pass one value per input.")
    _check_s(s)
    agree = np.abs(values - rule(h, s, mu=mu, S=S, boundary="closed")) <= atol
    return {name: (int(mask.sum()), int((agree & mask).sum())) for name, mask in _regime_masks(h, s, S).items()}


# --------------------------------------------------------------------------------------------------
# Range checks (SPEC §7.1 "Out of range", §7.2)


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
    reports their agreement separately (the circuit is not expected to agree there, SPEC §7.1).
    """
    from circuits.output_error import rule

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
