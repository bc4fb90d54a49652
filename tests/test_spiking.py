"""Spiking circuits of LIF step detectors (circuits.spiking; docs/spiking.md, docs/spec.md §7).

Properties: the step decomposition of σ_out and σ_ctl is exact; the calibrated open-loop rate code of the
δ unit approximates σ_out; in the update regimes the closed loop gives eq. 6's value with the t detectors
silent and in the correct regimes the t detectors fire, with constant, regular and Poisson inputs, with and
without Dale's law; with ``dale=True`` no neuron sends synapses of both signs; the spiking shutdown gate
computes eq. 3; a fixed seed reproduces a run, numpy and cython give identical spikes, and no entry point
changes the caller's random state.
"""
import numpy as np
import pytest

from circuits import spiking, transfer
from circuits.output_error import rule
from circuits.shutdown import rule as gate_rule

P = dict(M=2.0, S=1.0, mu=1 / 9, eps=0.2)
H6 = np.array([0.0, -0.5, 1.5, 0.0, 0.5, -1.5])  # on-update ×2, on-correct, off-update ×2, off-correct
S6 = np.array([1, 1, 1, -1, -1, -1.0])


def _sum_of_steps(dets, X):
    return sum(w * (d * (X - th) > 0) for th, d, w in dets)


def test_steps_sum_to_the_transfer_functions():
    """Away from the breakpoints, Σ_k w_k 1[d_k (X - θ_k) > 0] equals σ_out and σ_ctl (margins 0, 0.5)."""
    M, S, mu, eps = P["M"], P["S"], P["mu"], P["eps"]
    X = np.linspace(-7, 7, 14001)
    X = X[np.min(np.abs(X[:, None] - np.array([-2 * M - S, -M, M, 2 * M + S])), 1) > 1e-6]
    np.testing.assert_array_equal(_sum_of_steps(spiking._delta_steps(M=M, S=S, mu=mu, eps=eps), X),
                                  transfer.sigma_out(X, M=M, S=S, mu=mu, eps=eps))
    for margin in (0.0, 0.5):
        d = np.linspace(-2, 2, 4001)
        d = d[np.min(np.abs(d[:, None] - np.array([-mu - margin * eps, 1 + margin * eps])), 1) > 1e-6]
        np.testing.assert_allclose(_sum_of_steps(spiking._t_steps(mu=mu, eps=eps, margin=margin), d),
                                   transfer.sigma_ctl(d, mu=mu, eps=eps, margin=margin), atol=1e-12)


def test_calibrated_delta_unit_approximates_sigma_out(brian):
    """Open loop, away from the breakpoints (|H - θ| ≥ 0.25): within 3% of σ_out's value (0 exactly at rest);
    the one-run calibration finds the half-activation point within 0.01 of the step and a saturating rate."""
    H = np.array([-6.0, -5.25, -4.0, -2.25, -1.5, 0.0, 1.5, 2.25, 4.0, 5.25, 6.0])
    d = spiking.transfer_curve(H, **P, duration=0.2)
    target = transfer.sigma_out(H, M=P["M"], S=P["S"], mu=P["mu"], eps=P["eps"])
    np.testing.assert_allclose(d, target, rtol=0.03, atol=0.0)
    cal = spiking.calibrate(spiking.DetectorParams())
    assert abs(cal.x50) < 0.01 and cal.r_sat > 0
    assert cal.f[0] == 0.0 and cal.f[-1] > 0.97


def _check_closed_loop(tr):
    n = int(round(3 * tr.samples_per_cycle))
    t_mean = np.abs(tr.t_c[-n:]).mean(0)
    upd = np.array([0, 1, 3, 4])
    expected = rule(H6, S6, mu=P["mu"], S=P["S"])
    scale = np.where(S6 > 0, 1.0, P["mu"])
    assert np.all(np.abs(tr.readout("veto") - expected)[upd] <= 0.1 * scale[upd])
    assert np.all(t_mean[upd] < 0.05)
    assert np.all(t_mean[[2, 5]] > 0.1)
    np.testing.assert_array_equal(tr.readout("t-gate")[[2, 5]], 0.0)


@pytest.mark.parametrize("inputs,dale", [("constant", False), ("regular", False), ("regular", True),
                                         ("poisson", False)])
def test_closed_loop_update_regimes_agree_and_correct_regimes_drive_t(brian, inputs, dale):
    """Update regimes: veto readout within 10% of eq. 6 and t̂ silent; correct regimes: t̂ active (> 0.1) and
    the t-gate readout 0 — for constant inputs, spiking input populations (regular, Poisson) and Dale's law."""
    tr = spiking.trajectory(H6, S6, **P, cycles=8, window=3, inputs=inputs, dale=dale, seed=1)
    _check_closed_loop(tr)


def test_dale_option_gives_every_neuron_one_sign(brian):
    """dale=True: every input and detector neuron's synapses onto neurons have one sign; the plain circuit
    has neurons of both signs (t detectors inhibit one δ side and excite the other)."""
    cal = spiking.calibrate(spiking.DetectorParams())
    kw = dict(**P, margin=0.5, calibration=cal, inputs="regular")
    _, plain = spiking.build_network(H6, S6, dale=False, **kw)
    _, dale = spiking.build_network(H6, S6, dale=True, **kw)
    assert spiking.dale_violations(dale) == {"inputs": 0, "detectors": 0}
    v = spiking.dale_violations(plain)
    assert v["inputs"] > 0 and v["detectors"] > 0


def test_spiking_gate_computes_eq3(brian):
    """The spiking shutdown gate: δ̃ within 0.05 K of eq. 3 — δ passes where the unit is not saturated, is
    shut at |x| = 1 — and the control populations are ≈ 1 exactly where saturated. Regular inputs resolve x to
    |x| ≤ 0.9; Poisson inputs (noisier) with 200 neurons per population and a 0.15 band, |x| ≤ 0.6."""
    x = np.array([0.0, 0.5, -0.5, 0.9, -0.9, 1.0, -1.0, 1.0, -1.0, 1.0])
    d = np.array([0.5, -0.7, 0.3, 0.8, -0.8, 0.5, -0.5, -0.9, 0.9, 0.0])
    g = spiking.gate_simulate(x, d, K=1.0, seed=2)
    np.testing.assert_allclose(g.delta_tilde, gate_rule(x, d), atol=0.05)
    sat = np.abs(x) >= 1
    assert np.all(g.control[sat] > 0.9) and np.all(g.control[~sat] == 0.0)
    xp = np.where(sat, x, 0.6 * x)
    g = spiking.gate_simulate(xp, d, K=1.0, seed=2, inputs="poisson", x_band=0.15,
                              params=spiking.DetectorParams(N_in=200))
    np.testing.assert_allclose(g.delta_tilde, gate_rule(xp, d), atol=0.05)
    assert np.all(g.control[sat] > 0.9) and np.all(g.control[~sat] < 0.05)


def test_reproducible_with_a_fixed_seed_and_the_callers_random_state_untouched(brian):
    """The same seed gives the same spikes; another seed other spikes; an int seed leaves NumPy's global
    random state (Brian2's runtime stream) as it was; seed=None draws from it without reseeding."""
    kw = dict(**P, cycles=2, window=1, record_spikes=True, inputs="poisson")
    before = np.random.get_state()[1].copy()
    a = spiking.trajectory(H6[:2], S6[:2], seed=3, **kw)
    b = spiking.trajectory(H6[:2], S6[:2], seed=3, **kw)
    g = spiking.gate_simulate(np.array([0.3]), np.array([0.2]), K=1.0, inputs="poisson", seed=3)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    c = spiking.trajectory(H6[:2], S6[:2], seed=4, **kw)
    np.testing.assert_array_equal(a.delta, b.delta)
    np.testing.assert_array_equal(a.spikes["time"], b.spikes["time"])
    assert not np.array_equal(a.delta, c.delta)
    assert g.delta_tilde.shape == (1,)
    np.random.seed(7)
    n1 = spiking.trajectory(H6[:2], S6[:2], seed=None, **kw)
    np.random.seed(7)
    n2 = spiking.trajectory(H6[:2], S6[:2], seed=None, **kw)
    assert not np.array_equal(np.random.get_state()[1], np.random.RandomState(7).get_state()[1])
    assert n1.spikes["time"].size > 0 and n2.spikes["time"].size > 0


def test_every_target_runs_the_same_circuit(target):
    """On each target (numpy; cython and cpp_standalone compiled, slow) the circuit runs without any Python
    callback. numpy and cython give identical spikes for a seed; cpp_standalone (its own build and generator)
    satisfies the same closed-loop properties, and its gate eq. 3. (The gate is not compiled for cython too:
    its Cython modules, compiled from cold, would add a minute to the suite and assert nothing new.)"""
    kw = dict(**P, cycles=8, window=3, inputs="poisson", seed=5, record_spikes=True)
    tr = spiking.trajectory(H6, S6, target=target, **kw)
    _check_closed_loop(tr)
    if target != "cython":
        g = spiking.gate_simulate(np.array([0.5, 1.0]), np.array([0.4, 0.4]), K=1.0, seed=5, target=target)
        np.testing.assert_allclose(g.delta_tilde, [0.4, 0.0], atol=0.05)
    if target == "cython":
        ref = spiking.trajectory(H6, S6, target="numpy", **kw)
        np.testing.assert_array_equal(tr.spikes["time"], ref.spikes["time"])
        np.testing.assert_array_equal(tr.delta, ref.delta)


def test_bad_parameters_raise():
    """Impossible parameters are refused with a message naming the parameter."""
    with pytest.raises(ValueError, match="dt"):
        spiking.DetectorParams(dt=1e-3, tau_m=2e-3).check()
    with pytest.raises(ValueError, match="fn\\(0\\) = 0"):
        spiking.steps(lambda x: x + 1.0, (1.0,))
    with pytest.raises(ValueError, match="window"):
        spiking.trajectory(np.zeros(1), 1.0, **P, cycles=2, window=3)
    with pytest.raises(ValueError, match="target"):
        spiking.trajectory(np.zeros(1), 1.0, **P, target="cuda")
    with pytest.raises(ValueError, match="inputs"):
        spiking.trajectory(np.zeros(1), 1.0, **P, inputs="rate")
    with pytest.raises(ValueError, match="even"):
        spiking.trajectory(np.zeros(1), 1.0, **P, dale=True, params=spiking.DetectorParams(N=21))
    with pytest.raises(ValueError, match="x must lie"):
        spiking.gate_simulate(np.array([1.5]), np.array([0.1]), K=1.0)
