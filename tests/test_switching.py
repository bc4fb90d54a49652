"""Where the spiking step detectors switch (circuits.spiking.switching_points; docs/spiking.md, "Switching points").

Property: every detector population of the spiking output circuit (δ at ±M, ±(2M+S); t at -μ-mε, 1+mε) and
of the spiking gate (u, v at ±(1 - x_band)), given the threshold the circuits give it, is half active at its
breakpoint θ (the breakpoints of σ_out, σ_ctl and of the gate's band), within what a population of N
neurons counted over a finite window, located on finite grids, can resolve. The detector parameters have a
calibrated half-activation drive x₅₀ far larger than that resolution, so a calibration shift applied with
the wrong sign (which moves every switching point by 2 x₅₀) is seen.
"""
import inspect

import numpy as np
import pytest

from circuits import spiking

P = dict(M=2.0, S=1.0, mu=1 / 9, eps=0.2, margin=0.5)
# a slow membrane and a short refractory period: the f-I curve is far from a step, x₅₀ ≈ 0.03 (≈ 20× the
# default parameters' 0.0015)
SLOW = spiking.DetectorParams(tau_m=10e-3, t_ref=2e-3, dt=0.2e-3, gain=100.0)


def tolerance(res: spiking.Switching) -> float:
    """The largest distance |x½ - θ| that a population switching exactly at θ can show (see the test)."""
    cal = res.calibration
    x, f = np.asarray(cal.x), np.asarray(cal.f)
    k = np.flatnonzero(f >= 0.5)[0]
    step_cal = x[1] - x[0]
    slope = (f[k] - f[k - 1]) / (x[k] - x[k - 1])  # of f at its half-activation point, per unit of drive
    T_cal = inspect.signature(spiking.calibrate).parameters["duration"].default
    N, r = res.params.N, cal.r_sat
    sd_f = np.sqrt(1 / (2 * N * r * T_cal) + 1 / (2 * N * r * res.duration))
    return float(step_cal + res.spacing + 3 * sd_f / slope)


@pytest.mark.parametrize("target", ["numpy", pytest.param("cpp_standalone", marks=pytest.mark.slow)])
def test_every_detector_population_is_half_active_at_its_breakpoint(brian, target, tmp_path):
    """|x½ - θ| ≤ tol for all 8 populations, with tol = Δ_cal + Δ_grid + 3 s.d., where:

    - Δ_cal, Δ_grid: the steps of the calibration's drive grid and of the measurement's. Both place the
      half-activation point by linear interpolation between the two grid points around the crossing of f = ½;
      for a monotone f the crossing and its interpolation lie in the same grid interval, so each of the two
      estimates is within one step of the true point, and the threshold θ' = θ - x₅₀ inherits the
      calibration's error.
    - s.d.: counting noise. At half activation a population of N neurons fires N r_sat T / 2 spikes in a
      window of T seconds; for spike trains no more irregular than Poisson (these, refractory, are far more
      regular) the count's s.d. is at most √(N r_sat T / 2), i.e. f's s.d. is at most 1 / √(2 N r_sat T).
      The calibration (T_cal = 0.3 s) and the measurement (T = duration) count independently, so the two
      variances add; divided by the slope of f at ½ (from the calibration's curve) this is the s.d. of the
      drive at which f = ½.

    With SLOW, tol ≈ 0.02 in units of the drive while a wrong-signed shift puts every population 2 x₅₀ ≈ 0.064
    past its breakpoint (asserted: 2 x₅₀ > 2 tol), and the grid (± 0.1) holds both.
    """
    res = spiking.switching_points(SLOW, **P, n_grid=21, half_width=0.1, duration=0.2, seed=3, target=target,
                                   directory=str(tmp_path / "standalone"))
    tol = tolerance(res)
    x50 = res.calibration.x50
    assert 2 * abs(x50) > 2 * tol, (x50, tol)  # a sign error would be seen
    labels = [p.detector for p in res.points]
    assert labels == list(spiking.DETECTOR_LABELS + spiking.GATE_LABELS)
    report = {p.detector: round(p.distance, 5) for p in res.points}
    for p in res.points:
        assert abs(p.distance) <= tol, (f"{p.detector} switches at {p.x_half:.5f}, {p.distance:+.5f} past its "
                                        f"breakpoint {p.theta:+.4f} (tolerance {tol:.4f}, x50 {x50:.4f})", report)
        f = np.asarray(p.f)
        silent, active = (f[0], f[-1]) if p.direction > 0 else (f[-1], f[0])
        assert silent == 0.0 and active > 0.8, (p.detector, silent, active)  # the grid spans the switch


def test_switching_points_refuses_bad_arguments():
    """Bad grids and windows are one-line errors naming the argument."""
    with pytest.raises(ValueError, match="n_grid"):
        spiking.switching_points(**P, n_grid=2)
    with pytest.raises(ValueError, match="half_width"):
        spiking.switching_points(**P, half_width=0.0)
    with pytest.raises(ValueError, match="x_band"):
        spiking.switching_points(**P, x_band=0.6)
    with pytest.raises(ValueError, match="duration"):
        spiking.switching_points(**P, duration=0.0)
