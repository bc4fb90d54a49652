"""Spiking output error circuit of LIF step detectors (circuits.spiking; docs/spec.md §7.1).

Properties: the step decomposition of σ_out and σ_ctl is exact; the calibrated open-loop rate code of the
δ unit approximates σ_out; in the update regimes the closed loop gives eq. 6's value with the t detectors
silent, in the correct regimes the t detectors fire; a run is reproducible with a fixed seed.
"""
import numpy as np
import pytest

from circuits import spiking, transfer
from circuits.output_error import rule

P = dict(M=2.0, S=1.0, mu=1 / 9, eps=0.2)


def _sum_of_steps(dets, X):
    return sum(w * (d * (X - th) > 0) for th, d, w in dets)


def test_steps_sum_to_the_transfer_functions():
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
    """Open loop, away from the breakpoints (|H - θ| ≥ 0.25): within 3% of σ_out's value (0 exactly at rest)."""
    H = np.array([-6.0, -5.25, -4.0, -2.25, -1.5, 0.0, 1.5, 2.25, 4.0, 5.25, 6.0])
    d = spiking.transfer_curve(H, **P, duration=0.2)
    target = transfer.sigma_out(H, M=P["M"], S=P["S"], mu=P["mu"], eps=P["eps"])
    np.testing.assert_allclose(d, target, rtol=0.03, atol=0.0)
    cal = spiking.calibrate(spiking.DetectorParams())
    assert abs(cal.x50) < 0.01 and cal.r_sat > 0
    assert cal.f[0] == 0.0 and cal.f[-1] > 0.97


def test_closed_loop_update_regimes_agree_and_correct_regimes_drive_t(brian):
    h = np.array([0.0, -0.5, 1.5, 0.0, 0.5, -1.5])
    s = np.array([1, 1, 1, -1, -1, -1.0])
    tr = spiking.trajectory(h, s, **P, cycles=8, window=3)
    n = int(round(3 * tr.samples_per_cycle))
    t_mean = np.abs(tr.t_c[-n:]).mean(0)
    upd = np.array([0, 1, 3, 4])
    expected = rule(h, s, mu=P["mu"], S=P["S"])
    scale = np.where(s > 0, 1.0, P["mu"])
    assert np.all(np.abs(tr.readout("veto") - expected)[upd] <= 0.1 * scale[upd])
    assert np.all(t_mean[upd] < 0.05)
    assert np.all(t_mean[[2, 5]] > 0.1)
    np.testing.assert_array_equal(tr.readout("t-gate")[[2, 5]], 0.0)


def test_reproducible_with_a_fixed_seed(brian):
    h, s = np.array([1.5, 0.0]), np.array([1.0, -1.0])
    a = spiking.trajectory(h, s, **P, cycles=2, window=1, seed=3, record_spikes=True)
    b = spiking.trajectory(h, s, **P, cycles=2, window=1, seed=3, record_spikes=True)
    c = spiking.trajectory(h, s, **P, cycles=2, window=1, seed=4)
    np.testing.assert_array_equal(a.delta, b.delta)
    np.testing.assert_array_equal(a.spikes["time"], b.spikes["time"])
    assert not np.array_equal(a.delta, c.delta)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="dt"):
        spiking.DetectorParams(dt=1e-3, tau_m=2e-3).check()
    with pytest.raises(ValueError, match="fn\\(0\\) = 0"):
        spiking.steps(lambda x: x + 1.0, (1.0,))
    with pytest.raises(ValueError, match="window"):
        spiking.trajectory(np.zeros(1), 1.0, **P, cycles=2, window=3)
