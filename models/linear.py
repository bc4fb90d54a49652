"""Linear networks trained by back-propagation or by updated random feedback: the ODEs of §5 and Appendix 2.

A depth-k linear network maps x ∈ R^{n_0} to W_k ⋯ W_1 x, with W_i ∈ R^{n_i × n_{i-1}}. With the quadratic
loss, whitened inputs (X Xᵀ = I) and T = Y Xᵀ ∈ R^{n_k × n_0} the learning dynamics are (eq. 7–9)

    E   = T - W_k ⋯ W_1
    Ẇ_i = R_{i+1} ⋯ R_k · E · (W_{i-1} ⋯ W_1)ᵀ          i = 1, …, k      (eq. 9)
    Ṙ_i = eps · Ẇ_iᵀ                                                       (eq. 7)

with feedback matrices R_i ∈ R^{n_{i-1} × n_i} (the shape of W_iᵀ). R_1 is never used as feedback; it is
carried (and updated) only so that corr(W_1, R_1ᵀ) can be reported per layer, as in Fig. 12.
eps = 0 is FRFB, eps = 1 URFB; back-propagation (BP) is R_i = W_iᵀ at all times, for which Ẇ_i = -∂L/∂W_i
with L = ½‖E‖_F² (the paper's C = ‖Y - W_k ⋯ W_1 X‖² is 2L, so the paper's ODE is gradient flow on L).
With W_i(0) = 0, R_i(t) = R_i(0) + eps W_i(t)ᵀ (eq. 8); the state (W, R) is nevertheless integrated as
eq. 7 so that this identity is a property of the integration, not an assumption of it.

The integration is explicit Euler with a fixed step ``dt``: one step is one gradient (BP) or URFB/FRFB
update with learning rate ``dt``, i.e. the paper's "iteration". The scalar systems of Appendix 2 (eq. 10,
k = 2; eq. 15, any k) decouple the matrix system along the singular directions of T when R_i(0) is
aligned with them; they are integrated with an adaptive Runge–Kutta method (scipy) to tight tolerances.

Error measure: ``relative_error`` = e / tr(TᵀT) with e = tr(EᵀE), the paper's error normalised by its
value at W = 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "make_target",
    "random_feedback",
    "aligned_feedback",
    "network_product",
    "error",
    "relative_error",
    "velocities",
    "LinearRun",
    "integrate",
    "weight_correlation",
    "time_to_threshold",
    "scalar_velocities",
    "scalar_rate",
    "scalar_invariant",
    "ScalarRun",
    "integrate_scalar",
    "monotonicity_violation",
    "CheckResult",
    "theorem_check",
]


# ----------------------------------------------------------------------------------------------------
# Setting up the §5.1 problem
# ----------------------------------------------------------------------------------------------------
def make_target(sizes, rng, sd=2.0, normalise=True):
    """T = A_k ⋯ A_1 with A_i ∈ R^{n_i × n_{i-1}} of N(0, sd²) entries (§5.1, X = I).

    The paper writes T = W*_1 W*_2 W*_3 with row-vector inputs; this is the same product in column
    convention. With ``normalise`` T is divided by its largest singular value, so that the singular values
    λ_T of T lie in (0, 1] as Appendix 2 assumes. This is a change of units only: T → cT together with
    W, R → c^{1/k} W, R and t → c^{-(2k-2)/k} t maps solutions of eq. 9 onto solutions.
    """
    sizes = _check_sizes(sizes)
    T = np.eye(sizes[0])
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        T = rng.normal(0.0, sd, size=(n_out, n_in)) @ T
    if normalise:
        T = T / np.linalg.norm(T, 2)
    return T


def random_feedback(sizes, rng, scale):
    """Random matrices R_i(0) ∈ R^{n_{i-1} × n_i}, i = 1..k, entries N(0, scale² / n_i).

    The 1/n_i variance gives each R_i a spectral norm of about scale·(1 + sqrt(n_{i-1}/n_i)), whatever the
    layer sizes. The transposes of these matrices (same law) serve as BP's random start W_i(0).
    """
    sizes = _check_sizes(sizes)
    if not scale >= 0:
        raise ValueError(f"scale must be >= 0, got {scale!r}")
    return [rng.normal(0.0, scale / np.sqrt(n_out), size=(n_in, n_out))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def aligned_feedback(T, sizes, lam_R, rng):
    """Appendix 2's restricted initial condition R_i(0) = U_i Λ_{R,i} U_{i+1}ᵀ, i = 2..k.

    T = U Λ_T Vᵀ (U_{k+1} = U, U_1 = V); U_i ∈ R^{n_{i-1} × n_k} for 2 ≤ i ≤ k has random orthonormal
    columns; ``lam_R`` has shape (k-1, n_k) with row i-2 the diagonal of Λ_{R,i}. Returns (R, Us, lam_T)
    with R the list of k feedback matrices (R_1 = 0, never used), Us = [U_1, …, U_{k+1}] and lam_T the
    singular values of T.
    """
    sizes = _check_sizes(sizes)
    k = len(sizes) - 1
    n_k = sizes[-1]
    if min(sizes) < n_k or T.shape != (n_k, sizes[0]):
        raise ValueError("aligned_feedback needs T of shape (n_k, n_0) and n_k <= every n_i "
                         f"(Appendix 2); got T {T.shape}, sizes {sizes}")
    lam_R = np.asarray(lam_R, dtype=float)
    if lam_R.shape != (k - 1, n_k):
        raise ValueError(f"lam_R must have shape (k-1, n_k) = {(k - 1, n_k)}, got {lam_R.shape}")
    U, lam_T, Vt = np.linalg.svd(T, full_matrices=False)
    Us = [Vt.T]
    for i in range(2, k + 1):
        Q, _ = np.linalg.qr(rng.normal(size=(sizes[i - 1], n_k)))
        Us.append(Q)
    Us.append(U)
    R = [np.zeros((sizes[0], sizes[1]))]
    for i in range(2, k + 1):
        R.append(Us[i - 1] @ np.diag(lam_R[i - 2]) @ Us[i].T)
    return R, Us, lam_T


# ----------------------------------------------------------------------------------------------------
# The matrix system, eq. 7–9
# ----------------------------------------------------------------------------------------------------
def network_product(W, n_0=None):
    """W_k ⋯ W_1 (the identity of size n_0 when W is empty)."""
    if not W:
        if n_0 is None:
            raise ValueError("network_product of an empty list needs n_0")
        return np.eye(n_0)
    P = W[0]
    for Wi in W[1:]:
        P = Wi @ P
    return P


def error(T, W):
    """E = T - W_k ⋯ W_1."""
    return T - network_product(W)


def relative_error(T, W):
    """e / tr(TᵀT) with e = tr(EᵀE) (§5)."""
    E = error(T, W)
    return float(np.sum(E * E) / np.sum(T * T))


def velocities(T, W, R):
    """Ẇ_i = R_{i+1} ⋯ R_k E (W_{i-1} ⋯ W_1)ᵀ for i = 1..k (eq. 9; eq. 7 for k = 2). Returns (Ẇ, E).

    ``R`` is a list of k matrices (R_1 is not used). Pass R = [Wᵢᵀ] for back-propagation.
    """
    k = len(W)
    P = [np.eye(W[0].shape[1])]          # P[i] = W_i ⋯ W_1, P[0] = I
    for Wi in W:
        P.append(Wi @ P[-1])
    E = T - P[-1]
    dW = [None] * k
    D = E                                 # D = R_{i+1} ⋯ R_k E, the feedback signal reaching layer i
    for i in range(k - 1, -1, -1):
        dW[i] = D @ P[i].T
        if i > 0:
            D = R[i] @ D
    return dW, E


def weight_correlation(Wi, Ri):
    """Pearson correlation of all entries of W_i and R_iᵀ (docs/spec.md §9); nan when either is constant."""
    a = Wi.ravel() - Wi.mean()
    b = Ri.T.ravel() - Ri.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


@dataclass
class LinearRun:
    """One integration of eq. 7–9: per recorded step the relative error and corr(W_i, R_iᵀ) per layer."""
    rule: str
    eps: float
    dt: float
    steps: np.ndarray            # iteration numbers of the records
    rel_error: np.ndarray        # (n_records,)
    corr: np.ndarray             # (n_records, k)
    W: list                      # final W_i
    R: list                      # final R_i
    history: list = field(default_factory=list)   # [(W, R)] per record when requested

    def time_to(self, threshold):
        """First recorded iteration with relative error <= threshold (inf if never)."""
        return time_to_threshold(self.steps, self.rel_error, threshold)


def integrate(T, W0, R0, eps=None, *, dt, n_steps, record_every=1, corr_every=1, keep_history=False):
    """Explicit Euler integration of eq. 7–9 for ``n_steps`` steps of size ``dt``.

    ``eps=None`` is back-propagation (R_i = W_iᵀ at all times; R0 is ignored). Otherwise R_i evolves by
    Ṙ_i = eps Ẇ_iᵀ from R0. W0 and R0 are lists of k matrices (copied). The error is recorded every
    ``record_every`` steps, the correlations at every ``corr_every``-th record (nan in between). Raises FloatingPointError when the
    integration blows up (the step is too large for the scale of T, W0 and R0).
    """
    k = len(W0)
    if k < 1:
        raise ValueError("W0 must hold at least one matrix")
    shapes_ok = all(W0[i].shape[0] == W0[i + 1].shape[1] for i in range(k - 1))
    if not shapes_ok or T.shape != (W0[-1].shape[0], W0[0].shape[1]):
        raise ValueError("W0 must chain: W_i of shape (n_i, n_{i-1}) and T of shape (n_k, n_0); got "
                         f"{[w.shape for w in W0]} and T {T.shape}")
    if not (dt > 0 and np.isfinite(dt)):
        raise ValueError(f"dt must be a positive finite step, got {dt!r}")
    if int(record_every) != record_every or record_every < 1 or int(corr_every) != corr_every or corr_every < 1:
        raise ValueError(f"record_every and corr_every must be positive integers, got {record_every!r}, "
                         f"{corr_every!r}")
    if int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    if eps is not None and not np.isfinite(eps):
        raise ValueError(f"eps must be a finite number or None (back-propagation), got {eps!r}")
    W = [np.array(w, dtype=float) for w in W0]
    bp = eps is None
    if bp:
        R = [w.T for w in W]
    else:
        if len(R0) != k or any(R0[i].shape != W0[i].T.shape for i in range(k)):
            raise ValueError("R0 must hold k matrices, R_i in the shape of W_iᵀ; got "
                             f"{[r.shape for r in R0]} for W shapes {[w.shape for w in W0]}")
        R = [np.array(r, dtype=float) for r in R0]
    norm_T = float(np.sum(T * T))

    recs, errs, cors, hist = [], [], [], []

    def record(step, E):
        recs.append(step)
        errs.append(float(np.sum(E * E)) / norm_T)
        if (len(recs) - 1) % corr_every == 0:
            cors.append([weight_correlation(W[i], R[i]) for i in range(k)])
        else:
            cors.append([float("nan")] * k)
        if keep_history:
            hist.append(([w.copy() for w in W], [r.copy() for r in R]))

    for step in range(int(n_steps) + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            dW, E = velocities(T, W, R)
            finite = np.isfinite(np.sum(E * E))
        if not finite:
            raise FloatingPointError(
                f"integration diverged at step {step} (dt = {dt}); lower dt or the scale of T, W0, R0")
        if step % record_every == 0 or step == n_steps:
            record(step, E)
        if step == n_steps:
            break
        for i in range(k):
            W[i] = W[i] + dt * dW[i]
        if bp:
            R = [w.T for w in W]
        elif eps != 0:
            for i in range(k):
                R[i] = R[i] + (eps * dt) * dW[i].T
    return LinearRun(rule="BP" if bp else f"eps={eps:g}", eps=float("nan") if bp else float(eps),
                     dt=float(dt), steps=np.asarray(recs), rel_error=np.asarray(errs),
                     corr=np.asarray(cors), W=W, R=R, history=hist)


def time_to_threshold(t, values, threshold):
    """The first t at which ``values`` <= threshold (inf if never)."""
    values = np.asarray(values)
    hit = np.flatnonzero(values <= threshold)
    return float(np.asarray(t)[hit[0]]) if hit.size else float("inf")


# ----------------------------------------------------------------------------------------------------
# The scalar systems of Appendix 2: eq. 10 (k = 2) and eq. 15 (any k)
# ----------------------------------------------------------------------------------------------------
def _scalar_terms(lam, lam_R, eps):
    """left[..., i] = λ_1 ⋯ λ_i (empty product 1), right[..., i] = Π_{j > i+1} (λ_{R,j} + eps λ_j), 0-based i."""
    shape = lam.shape[:-1] + (1,)
    ones = np.ones(shape)
    left = np.concatenate([ones, np.cumprod(lam[..., :-1], axis=-1)], axis=-1)
    f = lam_R + eps[..., None] * lam[..., 1:]            # λ_{R,j} + eps λ_j, j = 2..k
    right = np.concatenate([np.cumprod(f[..., ::-1], axis=-1)[..., ::-1], ones], axis=-1)
    return left, right


def scalar_velocities(lam, lam_T, lam_R, eps):
    """Right-hand side of eq. 15 (eq. 10 for k = 2), vectorised over leading axes.

    λ̇_i = (λ_{R,k} + eps λ_k) ⋯ (λ_{R,i+1} + eps λ_{i+1}) · e · λ_{i-1} ⋯ λ_1,  e = λ_T - λ_k ⋯ λ_1.
    ``lam``: (..., k); ``lam_T``, ``eps``: (...) or scalars; ``lam_R``: (..., k-1) = (λ_{R,2}, …, λ_{R,k}).
    Returns (λ̇, e).
    """
    lam = np.asarray(lam, dtype=float)
    eps = np.asarray(eps, dtype=float)
    e = lam_T - np.prod(lam, axis=-1)
    left, right = _scalar_terms(lam, np.asarray(lam_R, dtype=float), eps)
    return right * left * e[..., None], e


def scalar_rate(lam, lam_R, eps):
    """The instantaneous convergence rate r = -ė/e = Σ_i Π_{j<i} λ_j² Π_{j>i} λ_j (λ_{R,j} + eps λ_j).

    This is the middle form of eq. 17 (valid for any initial condition); with λ_i(0) = 0 it equals the last
    form of eq. 17 and, for k = 2, 3, the brackets of eq. 11 and eq. 18. d(e²)/dt = -2 r e².
    """
    lam = np.asarray(lam, dtype=float)
    lam_R = np.asarray(lam_R, dtype=float)
    eps = np.asarray(eps, dtype=float)
    left, _ = _scalar_terms(lam, lam_R, eps)
    g = lam[..., 1:] * (lam_R + eps[..., None] * lam[..., 1:])   # λ_j (λ_{R,j} + eps λ_j), j = 2..k
    ones = np.ones(lam.shape[:-1] + (1,))
    tail = np.concatenate([np.cumprod(g[..., ::-1], axis=-1)[..., ::-1], ones], axis=-1)
    return np.sum(left ** 2 * tail, axis=-1)


def scalar_invariant(lam, lam_R, eps):
    """q_i = λ_{R,i} λ_i + (eps/2) λ_i² - ½ λ_{i-1}², i = 2..k: constant in time, 0 when λ(0) = 0 (eq. 16)."""
    lam = np.asarray(lam, dtype=float)
    lam_R = np.asarray(lam_R, dtype=float)
    return lam_R * lam[..., 1:] + 0.5 * eps * lam[..., 1:] ** 2 - 0.5 * lam[..., :-1] ** 2


@dataclass
class ScalarRun:
    """Solutions of eq. 15 for a batch of parameter sets, sampled on a common time grid."""
    t: np.ndarray          # (n_t,)
    lam: np.ndarray        # (n_t, batch, k)
    e: np.ndarray          # (n_t, batch)
    rate: np.ndarray       # (n_t, batch)


def integrate_scalar(lam_T, lam_R, eps, lam0=None, *, tol=1e-8, t_max=1e7, n_t=4000, rtol=1e-10,
                     atol=1e-13):
    """Integrate eq. 15 for a batch of parameter sets (scipy's DOP853, adaptive step, one solve each).

    ``lam_T``, ``eps``: (batch,); ``lam_R``: (batch, k-1); ``lam0``: (batch, k), default 0 (the theorems'
    assumption). Each member runs until |e| <= tol·λ_T (or t_max); the batch is then sampled on ``n_t``
    common times in [0, t_end] (t_end the latest stop; half uniform, half log-spaced), a member that stopped
    earlier holding its final, converged state. Each member has its own step control, so its dense
    (interpolated) solution is as accurate as its steps.
    """
    from scipy.integrate import solve_ivp

    lam_T = np.atleast_1d(np.asarray(lam_T, dtype=float))
    batch = lam_T.shape[0]
    eps = np.broadcast_to(np.asarray(eps, dtype=float), (batch,)).copy()
    lam_R = np.atleast_2d(np.asarray(lam_R, dtype=float))
    if lam_R.shape[0] != batch:
        raise ValueError(f"lam_R must have one row per parameter set: {lam_R.shape} vs {lam_T.shape}")
    if np.any(lam_T <= 0):
        raise ValueError(f"lam_T must be positive (a singular value of T), got {lam_T}")
    k = lam_R.shape[1] + 1
    lam0 = np.zeros((batch, k)) if lam0 is None else np.asarray(lam0, dtype=float)
    if lam0.shape != (batch, k):
        raise ValueError(f"lam0 must have shape (batch, k) = {(batch, k)}, got {lam0.shape}")

    sols = []
    for b in range(batch):
        lt, lr, ep = lam_T[b], lam_R[b], eps[b]

        def rhs(_, y, lt=lt, lr=lr, ep=ep):
            return scalar_velocities(y, lt, lr, ep)[0]

        def done(_, y, lt=lt):
            return abs(lt - np.prod(y)) / lt - tol
        done.terminal = True
        done.direction = -1

        sol = solve_ivp(rhs, (0.0, t_max), lam0[b], method="DOP853", rtol=rtol, atol=atol,
                        dense_output=True, events=done)
        if sol.status < 0:
            raise RuntimeError(f"scalar integration failed for member {b}: {sol.message}")
        sols.append(sol)
    t_end = max(float(sol.t[-1]) for sol in sols)
    t = np.unique(np.concatenate([np.linspace(0.0, t_end, n_t // 2),
                                  np.geomspace(max(t_end, 1e-12) * 1e-6, t_end, n_t - n_t // 2)]))
    lam = np.empty((t.size, batch, k))
    for b, sol in enumerate(sols):
        lam[:, b] = sol.sol(np.minimum(t, sol.t[-1])).T
    e = lam_T - np.prod(lam, axis=-1)
    return ScalarRun(t=t, lam=lam, e=e, rate=scalar_rate(lam, lam_R, eps))


def monotonicity_violation(q, increasing=True):
    """The worst violation of monotonicity in eps of q (n_t, n_eps; eps ascending along axis 1).

    Returns (v, t_index, eps_index): v = min over t, j of ±(q[t, j+1] - q[t, j]) / max|q| (sign + for
    increasing), so v >= 0 means monotone everywhere and v < 0 is the largest relative step against the
    claimed direction, found between eps_index and eps_index + 1 at time index t_index.
    """
    q = np.asarray(q, dtype=float)
    scale = float(np.max(np.abs(q)))
    if q.shape[1] < 2 or scale == 0:
        return 0.0, 0, 0
    d = np.diff(q, axis=1) * (1.0 if increasing else -1.0) / scale
    ti, ei = np.unravel_index(np.argmin(d), d.shape)
    return float(d[ti, ei]), int(ti), int(ei)


@dataclass
class CheckResult:
    """One claim of Theorem 1/2 checked on one parameter set over a grid of eps."""
    claim: str
    holds: bool
    worst: float           # see monotonicity_violation
    t: float               # time of the worst violation
    eps_pair: tuple        # the two eps values where it occurs


def theorem_check(lam_T, lam_R, eps_grid, lam0=None, *, rel_tol=1e-6, threshold=1e-3, n_t=3000):
    """Check the conclusions of Theorems 1 and 2 for one (λ_T, λ_R, λ(0)) over ``eps_grid`` (ascending).

    Integrates eq. 15 for every eps and checks, at every sampled time, that: |e| is non-increasing in eps;
    the rate r (``scalar_rate``) is non-decreasing in eps; each λ_i is non-decreasing in eps; eps·λ_k² is
    non-decreasing in eps; and the time for |e| to reach ``threshold``·λ_T is non-increasing in eps. A claim
    "holds" when its worst relative violation is above -rel_tol (integration error is ~1e-9 relative).
    Returns (list of CheckResult, ScalarRun, times to threshold per eps).
    """
    eps_grid = np.asarray(eps_grid, dtype=float)
    if eps_grid.ndim != 1 or np.any(np.diff(eps_grid) <= 0):
        raise ValueError(f"eps_grid must be a strictly ascending 1-d grid, got {eps_grid}")
    lam_R = np.asarray(lam_R, dtype=float).ravel()
    n = eps_grid.size
    k = lam_R.size + 1
    if lam0 is not None:
        lam0 = np.broadcast_to(np.asarray(lam0, dtype=float), (n, k))
    run = integrate_scalar(np.full(n, float(lam_T)), np.tile(lam_R, (n, 1)), eps_grid, lam0, n_t=n_t)
    # |e| below 1e-6 λ_T counts as converged (the runs stop at 1e-8 λ_T): equal, not ordered.
    quantities = [("|e| decreasing in eps", np.maximum(np.abs(run.e), 1e-6 * lam_T), False),
                  ("rate r increasing in eps", run.rate, True)]
    quantities += [(f"lambda_{i + 1} increasing in eps", run.lam[:, :, i], True) for i in range(k)]
    quantities += [(f"eps*lambda_{k}^2 increasing in eps", eps_grid * run.lam[:, :, -1] ** 2, True)]
    results = []
    for claim, q, inc in quantities:
        v, ti, ei = monotonicity_violation(q, inc)
        results.append(CheckResult(claim, v >= -rel_tol, v, float(run.t[ti]),
                                   (float(eps_grid[ei]), float(eps_grid[ei + 1]))))
    t_hit = np.array([time_to_threshold(run.t, np.abs(run.e[:, j]) / lam_T, threshold) for j in range(n)])
    dt_grid = float(np.max(np.diff(run.t)))
    bad = np.flatnonzero(np.diff(t_hit) > dt_grid)
    results.append(CheckResult(f"time to |e| <= {threshold:g} lambda_T decreasing in eps", bad.size == 0,
                               float(np.max(np.diff(t_hit)) / np.max(t_hit)) * -1.0 if bad.size else 0.0,
                               float(t_hit[bad[0] + 1]) if bad.size else float("nan"),
                               (float(eps_grid[bad[0]]), float(eps_grid[bad[0] + 1])) if bad.size
                               else (float("nan"), float("nan"))))
    return results, run, t_hit


def _check_sizes(sizes):
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive layer widths (n_0, …, n_k), got {sizes}")
    return sizes
