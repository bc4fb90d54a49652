"""Continuous-time leaky-rate output error circuit (circuits.continuous; docs/spec.md §7.1).

Properties: the units' steady states are the transfer functions of circuits.transfer, so in the update
regimes δ settles to eq. 6's value and t_c stays 0; in the correct regimes t_c is clearly non-zero (it
separates the regimes) while δ chatters near its update value instead of visiting 0 (docs/spec.md §7.1); a delay
on δ → t restores an oscillation deep enough for the veto readout.
"""
import numpy as np
import pytest

from circuits import continuous
from circuits.check import CircuitRangeWarning
from circuits.output_error import rule

P = dict(M=2.0, S=1.0, mu=1 / 9, eps=0.2)
TAU = 10e-3


def test_update_regimes_settle_to_eq6_with_t_silent(brian):
    h = np.array([-1.9, -0.5, 0.0, 0.9, -0.9, 0.0, 0.5, 1.9])
    s = np.array([1, 1, 1, 1, -1, -1, -1, -1.0])
    tr = continuous.trajectory(h, s, **P, tau=TAU, cycles=10, window=2)
    np.testing.assert_allclose(tr.delta[-1], rule(h, s, mu=P["mu"], S=P["S"]), atol=1e-6)
    assert np.all(tr.t_c == 0.0)
    assert tr.delta.shape == (tr.times.size, h.size)
    np.testing.assert_allclose(tr.readout("veto"), rule(h, s, mu=P["mu"], S=P["S"]), atol=1e-6)


def test_correct_regimes_chatter_without_delay_and_oscillate_with_delay(brian):
    h = np.array([1.5, -1.5])
    s = np.array([1.0, -1.0])
    update = np.array([1.0, P["mu"]])
    for delay, visits_zero in ((0.0, False), (2 * TAU, True)):
        tr = continuous.trajectory(h, s, **P, tau=TAU, cycles=20, window=8, delay=delay)
        n = int(round(8 * tr.samples_per_cycle))
        win_d, win_t = tr.delta[-n:], tr.t_c[-n:]
        assert np.all(np.abs(win_t).mean(0) > 0.2), "t_c must be clearly active in the correct regimes"
        closest = (s * win_d).min(0) / update  # 1 = stays at the update value, 0 = visits 0
        if visits_zero:
            assert np.all(closest < 0.5)
            np.testing.assert_array_equal(tr.readout("veto"), 0.0)
        else:
            assert np.all(closest > 0.8), "without delay δ chatters near its update value (docs/spec.md §7.1)"
            assert np.all(np.abs(tr.readout("window-mean")) > 0.8 * update)
        np.testing.assert_array_equal(tr.readout("t-gate"), 0.0)


def test_t_gate_agrees_with_eq6_away_from_the_boundaries(brian):
    h = np.concatenate([np.linspace(-1.9, 0.9, 6), np.linspace(1.1, 1.9, 4)])
    h = np.concatenate([h, -h])
    s = np.repeat([1.0, -1.0], h.size // 2)
    res = continuous.agreement(h, s, **P, readout="t-gate", tau=TAU, cycles=20, window=8)
    assert all(n > 0 and a == n for n, a in res.values()), res


def test_delay_postpones_the_control_unit(brian):
    h, s = np.array([1.5]), np.array([1.0])
    onsets = []
    for delay in (0.0, 2 * TAU):
        tr = continuous.trajectory(h, s, **P, tau=TAU, cycles=3, window=1, delay=delay)
        onsets.append(tr.times[np.argmax(tr.t_c[:, 0] > 0.05)])
    assert onsets[1] - onsets[0] > TAU


def test_shapes_broadcast_and_bad_inputs(brian):
    h = np.array([[0.0, 1.5], [-1.5, 0.3]])
    out = continuous.simulate(h, 1.0, **P, tau=TAU, cycles=4, window=2)
    assert out.shape == (2, 2)
    with pytest.raises(ValueError, match="s must be"):
        continuous.simulate(np.zeros(2), 0.0, **P, cycles=2, window=1)
    with pytest.raises(ValueError, match="readout"):
        continuous.simulate(np.zeros(2), 1.0, **P, readout="phase 2")
    with pytest.raises(ValueError, match="dt"):
        continuous.simulate(np.zeros(2), 1.0, **P, tau=TAU, dt=TAU)
    with pytest.raises(ValueError, match=r"\|h\|"):
        continuous.simulate(np.array([2.0]), 1.0, **P, on_range="error")
    with pytest.warns(CircuitRangeWarning):
        continuous.simulate(np.array([2.5]), 1.0, **P, cycles=2, window=1)


def test_leaky_gate_settles_to_eq3_and_leaks_its_own_inhibition(brian):
    from circuits.shutdown import rule as eq3

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-0.99, 0.99, 6), [1.0, 1.0, -1.0, -1.0]])
    delta = np.concatenate([rng.uniform(-0.9, 0.9, 6), [0.5, 0.0, -0.5, 0.0]])
    g = continuous.gate_trajectory(x, delta, K=1.0, tau=TAU, lead=3 * TAU)
    np.testing.assert_allclose(g.final(), eq3(x, delta), atol=1e-4)
    leak = g.leak()[6:]
    assert np.all(leak > 0.2)  # -2K u passes σ_gate while u < 1/2: a transient eq. 3 does not have
    fast = continuous.gate_trajectory(x, delta, K=1.0, tau=TAU, tau_uv=TAU / 20, lead=3 * TAU, dt=TAU / 40)
    np.testing.assert_allclose(fast.final(), eq3(x, delta), atol=1e-4)
    assert np.all(fast.leak()[6:] < 0.25 * leak)
