"""Properties of the linear theory (docs/spec.md §8; paper §5 and Appendix 2) as implemented in models.linear."""
import numpy as np
import pytest

from models.linear import (aligned_feedback, integrate, make_target, random_feedback, scalar_invariant,
                           scalar_rate, scalar_velocities, theorem_check, integrate_scalar,
                           weight_correlation)

SIZES = [6, 10, 10, 3]


def _problem(seed, sizes=SIZES, scale=0.3):
    rng = np.random.default_rng(seed)
    T = make_target(sizes, rng)
    R0 = random_feedback(sizes, rng, scale)
    W0 = [R.T.copy() for R in random_feedback(sizes, rng, scale)]
    return T, R0, W0


@pytest.mark.parametrize("eps", [0.0, 0.25, 1.0])
def test_R_minus_eps_WT_stays_R0_when_W0_is_zero(eps):
    """Eq. 7 integrated as its own ODE keeps R_i(t) - eps W_i(t)ᵀ = R_i(0) (eq. 8) to float precision."""
    T, R0, _ = _problem(0)
    Z = [np.zeros_like(R.T) for R in R0]
    run = integrate(T, Z, R0, eps, dt=0.1, n_steps=400, record_every=20, keep_history=True)
    assert run.rel_error[-1] < 0.1 * run.rel_error[0]           # the weights did move
    for W, R in run.history:
        for Wi, Ri, R0i in zip(W, R, R0):
            assert np.max(np.abs(Ri - eps * Wi.T - R0i)) <= 1e-13 * max(1.0, np.max(np.abs(Ri)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_time_to_error_decreases_as_eps_increases(seed):
    """§5.1 / Theorems 1–2 in the matrix setting: from W(0) = 0, a larger eps reaches 1e-3 sooner."""
    T, R0, _ = _problem(seed)
    Z = [np.zeros_like(R.T) for R in R0]
    times = [integrate(T, Z, R0, eps, dt=0.1, n_steps=1500, corr_every=10 ** 9).time_to(1e-3)
             for eps in (0.0, 0.25, 0.5, 1.0)]
    assert np.all(np.isfinite(times)), times
    assert np.all(np.diff(times) < 0), times


def test_bp_trajectory_is_gradient_descent_by_autograd():
    """BP (R = Wᵀ) with Euler step dt is gradient descent with learning rate dt on ½‖T - W_k⋯W_1‖_F²."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    T, _, W0 = _problem(3, sizes=[4, 6, 5, 3], scale=0.5)
    dt, n = 0.05, 30
    run = integrate(T, W0, None, None, dt=dt, n_steps=n, keep_history=True)
    Ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in W0]
    Tt = torch.tensor(T, dtype=torch.float64)
    for step in range(n + 1):
        W_ode, R_ode = run.history[step]
        for w_t, w_o, r_o in zip(Ws, W_ode, R_ode):
            np.testing.assert_allclose(w_t.detach().numpy(), w_o, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(r_o, w_o.T)
        P = Ws[0]
        for w in Ws[1:]:
            P = w @ P
        loss = 0.5 * ((Tt - P) ** 2).sum()
        grads = torch.autograd.grad(loss, Ws)
        with torch.no_grad():
            for w, g in zip(Ws, grads):
                w -= dt * g
    assert run.rel_error[-1] < run.rel_error[0]


def test_aligned_start_decouples_into_eq15():
    """Appendix 2: with R_i(0) = U_i Λ_{R,i} U_{i+1}ᵀ and W(0) = 0, W_i = U_{i+1} Λ_i U_iᵀ with Λ_i from eq. 15."""
    sizes, eps, dt, n = [7, 9, 8, 3], 0.5, 0.05, 300
    rng = np.random.default_rng(4)
    T = make_target(sizes, rng)
    lam_R = rng.uniform(0.05, 0.3, size=(2, 3))
    R0, Us, lam_T = aligned_feedback(T, sizes, lam_R, rng)
    Z = [np.zeros((m, l)) for l, m in zip(sizes[:-1], sizes[1:])]
    run = integrate(T, Z, R0, eps, dt=dt, n_steps=n, record_every=n)
    lam = np.zeros((3, 3))                              # one row per singular direction of T
    for _ in range(n):
        lam = lam + dt * scalar_velocities(lam, lam_T, lam_R.T, eps)[0]
    for i, Wi in enumerate(run.W):
        np.testing.assert_allclose(Us[i + 1].T @ Wi @ Us[i], np.diag(lam[:, i]), atol=1e-12)
    assert np.min(lam[0]) > 0.5                         # non-trivial: the top direction converged


def test_rate_identity_eq17_and_eq11_eq18():
    """-ė/e = scalar_rate (eq. 17, any state); with λ(0) = 0, eq. 16 holds and the rate is eq. 11 / eq. 18."""
    rng = np.random.default_rng(5)
    for k in (2, 3, 4):
        lam, lam_R, eps = rng.normal(size=(50, k)), rng.uniform(0, 1, (50, k - 1)), rng.uniform(0, 1, 50)
        dlam, e = scalar_velocities(lam, 1.3, lam_R, eps)
        edot = -sum(dlam[:, i] * np.prod(np.delete(lam, i, axis=1), axis=1) for i in range(k))
        np.testing.assert_allclose(-edot / e, scalar_rate(lam, lam_R, eps), rtol=1e-10)
    eps = np.array([0.0, 0.5, 1.0])
    for k, lam_R in ((2, [0.02]), (3, [0.02, 0.01])):
        run = integrate_scalar(np.full(3, 0.8), np.tile(lam_R, (3, 1)), eps, n_t=200)
        q = scalar_invariant(run.lam, np.asarray(lam_R), eps[:, None])
        assert np.max(np.abs(q)) < 1e-8 * np.max(run.lam ** 2)
        l1, l2 = run.lam[..., 0], run.lam[..., 1]
        if k == 2:
            bracket = 1.5 * l1 ** 2 + 0.5 * eps * l2 ** 2
        else:
            l3 = run.lam[..., 2]
            bracket = (0.5 * eps * l2 ** 2 + 1.5 * l1 ** 2) * (0.5 * eps * l3 ** 2 + 0.5 * l2 ** 2) + l1 ** 2 * l2 ** 2
        np.testing.assert_allclose(run.rate, bracket, rtol=1e-6, atol=1e-12 * np.max(bracket))


def test_theorem1_conclusions_hold_under_its_assumptions_and_fail_without():
    """Theorem 1 (k = 2, λ(0) = 0, λ_R ≪ λ_T): |e| falls, the rate and λ_1 rise with eps at every time.
    λ_2 is not claimed and falls (its limit is λ_T / λ_1). With λ_1(0) < 0 < λ_2(0) the conclusion fails."""
    eps = np.linspace(0, 1, 4)
    by = {r.claim: r for r in theorem_check(1.0, [0.01], eps)[0]}
    for claim in ("|e| decreasing in eps", "rate r increasing in eps", "lambda_1 increasing in eps",
                  "eps*lambda_2^2 increasing in eps"):
        assert by[claim].holds, by[claim]
    assert not by["lambda_2 increasing in eps"].holds
    by = {r.claim: r for r in theorem_check(1.0, [0.1], eps, lam0=[-0.3, 0.3])[0]}
    assert not by["|e| decreasing in eps"].holds and by["|e| decreasing in eps"].worst < -1e-3


def test_weight_correlation_is_pearson_of_W_and_RT():
    rng = np.random.default_rng(6)
    W, R = rng.normal(size=(5, 4)), rng.normal(size=(4, 5))
    assert weight_correlation(W, R) == pytest.approx(np.corrcoef(W.ravel(), R.T.ravel())[0, 1])
    assert np.isnan(weight_correlation(np.zeros((5, 4)), R))


def test_bad_input_raises_clear_errors():
    T, R0, W0 = _problem(0)
    with pytest.raises(ValueError, match="dt"):
        integrate(T, W0, R0, 1.0, dt=0.0, n_steps=1)
    with pytest.raises(ValueError, match="chain"):
        integrate(T, W0[::-1], R0, 1.0, dt=0.1, n_steps=1)
    with pytest.raises(ValueError, match="R0"):
        integrate(T, W0, R0[:2], 1.0, dt=0.1, n_steps=1)
    with pytest.raises(ValueError, match="sizes"):
        make_target([5], np.random.default_rng(0))
    with pytest.raises(ValueError, match="lam_R"):
        aligned_feedback(T, SIZES, np.ones((3, 3)), np.random.default_rng(0))
    with pytest.raises(FloatingPointError, match="lower dt"):
        integrate(T, [10 * w for w in W0], None, None, dt=5.0, n_steps=200)
    with pytest.raises(ValueError, match="ascending"):
        theorem_check(1.0, [0.1], [1.0, 0.0])
