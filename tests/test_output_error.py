"""circuits.output_error: the Brian2 rate network of Fig. 14 computes eq. 6 (docs/spec.md §7.1), in both update orders."""
import numpy as np
import pytest

from circuits import check, output_error
from circuits.check import CircuitRangeWarning

M, S, MU, EPS = 3.0, 1.0, 0.25, 0.1
P = dict(M=M, S=S, mu=MU, eps=EPS)
H4 = np.array([0.5, 1.5, -0.5, -1.5])
S4 = np.array([1.0, 1.0, -1.0, -1.0])


def test_rule_is_eq6_strict_by_default_and_closed_on_request():
    h = np.array([0.0, S, 2.0, 0.0, -S, -2.0])
    s = np.array([1, 1, 1, -1, -1, -1])
    np.testing.assert_array_equal(output_error.rule(h, s, mu=MU, S=S), [1, 0, 0, -MU, 0, 0])
    np.testing.assert_array_equal(output_error.rule(h, s, mu=MU, S=S, boundary="closed"), [1, 1, 0, -MU, -MU, 0])


def test_brian2_network_equals_the_transfer_map_sequential_period_2(brian):
    tr = output_error.trajectory(H4, S4, cycles=6, **P)
    d, t = output_error.iterate_map(H4, S4, cycles=6, **P)
    np.testing.assert_array_equal(tr.delta, d)
    np.testing.assert_array_equal(tr.t, t)
    np.testing.assert_array_equal(tr.delta[:, 0], 1.0)  # on-update: constant 1
    np.testing.assert_array_equal(tr.delta[:, 2], -MU)  # off-update: constant -μ
    np.testing.assert_array_equal(tr.delta[:, 1], [1 + EPS, 0] * 3)  # period 2
    np.testing.assert_array_equal(tr.delta[:, 3], [-MU - EPS, 0] * 3)
    np.testing.assert_array_equal(tr.t[:, 1], [1, 0] * 3)


def test_brian2_network_simultaneous_order_has_period_4(brian):
    tr = output_error.trajectory(H4, S4, cycles=8, order="simultaneous", **P)
    d, t = output_error.iterate_map(H4, S4, cycles=8, order="simultaneous", **P)
    np.testing.assert_array_equal(tr.delta, d)
    np.testing.assert_array_equal(tr.t, t)
    np.testing.assert_array_equal(tr.delta[:, 1], [1 + EPS, 1 + EPS, 0, 0] * 2)
    np.testing.assert_array_equal(tr.delta[:, 3], [-MU - EPS, -MU - EPS, 0, 0] * 2)
    assert (tr.delta[:, 0] == 1).all() and (tr.delta[:, 2] == -MU).all()
    # veto over the period-4 window is eq. 6; over 2 cycles of this order it would not be
    np.testing.assert_array_equal(tr.readout("veto"), output_error.rule(H4, S4, mu=MU, S=S))
    assert output_error.apply_readout(tr.delta[:6], "veto", order="sequential")[1] == 1 + EPS  # cycles 5, 6


def test_readouts_phase_and_window_mean(brian):
    tr = output_error.trajectory(H4, S4, cycles=4, **P)
    np.testing.assert_array_equal(tr.readout("phase 1"), [1, 1 + EPS, -MU, -MU - EPS])
    np.testing.assert_array_equal(tr.readout(("phase", 2)), [1, 0, -MU, 0])
    np.testing.assert_allclose(tr.readout("window-mean"), [1, (1 + EPS) / 2, -MU, -(MU + EPS) / 2], atol=1e-15)
    for bad in ("phase", "phase 0", "veto 2", "mean", ("phase", "x"), 3):
        with pytest.raises(ValueError):
            output_error.parse_readout(bad)
    with pytest.raises(ValueError, match="cycles"):
        output_error.simulate(H4, S4, cycles=3, readout="phase 4", **P)


@pytest.mark.slow
@pytest.mark.parametrize("order,cycles", [("sequential", 2), ("simultaneous", 4)])
def test_veto_agrees_with_eq6_on_10000_draws_and_the_boundary_grid_in_float64(brian, order, cycles):
    rep = check.check_rule(lambda h, s: output_error.simulate(h, s, cycles=cycles, order=order, **P),
                           M=M, S=S, mu=MU, n_random=10_000, seed=1)
    assert rep.n == rep.n_grid + 10_000 and rep.n_random == 10_000
    assert rep.all_agree, rep.disagreements
    assert all(n > 1000 for n, _ in rep.by_regime.values())  # every regime well sampled


def test_margin_changes_nothing_on_the_ideal_map(brian):
    h, s = check.random_draws(400, M=M, seed=3)
    a = output_error.trajectory(h, s, cycles=4, margin=0.0, **P)
    b = output_error.trajectory(h, s, cycles=4, margin=0.5, **P)
    np.testing.assert_array_equal(a.delta, b.delta)


def test_out_of_range_report_error_clip(brian):
    h = np.array([M, -M - 1.0, 0.5, 2.0])
    s = np.array([1.0, 1.0, 1.0, 1.0])
    with pytest.warns(CircuitRangeWarning, match="2 of 4 inputs have \\|h\\|"):
        tr = output_error.trajectory(h, s, cycles=4, **P)
    assert tr.range.n_violations == 2 and list(tr.range.mask) == [True, True, False, False]
    # the documented failure: at h = M the presented class oscillates 1+ε ↔ 1; below -M it is 0
    np.testing.assert_array_equal(tr.delta[:, 0], [1 + EPS, 1, 1 + EPS, 1])
    assert (tr.delta[:, 1] == 0).all()
    with pytest.raises(ValueError, match="2 of 4 .*Fix"):
        output_error.simulate(h, s, cycles=2, on_range="error", **P)
    v = output_error.simulate(h, s, cycles=2, on_range="clip", **P)
    np.testing.assert_array_equal(v, [0, 1, 1, 0])  # clipped to just inside ±M: eq. 6 of the clipped input


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="order"):
        output_error.simulate(H4, S4, cycles=2, order="async", **P)
    with pytest.raises(ValueError, match="backend"):
        output_error.simulate(H4, S4, cycles=2, backend="jax", **P)
    with pytest.raises(ValueError, match="eps"):
        output_error.simulate(H4, S4, cycles=2, M=M, mu=MU, eps=0.0)
    with pytest.raises(ValueError, match="on_range"):
        output_error.simulate(H4, S4, cycles=2, on_range="ignore", **P)
    with pytest.raises(ValueError, match="broadcast"):
        output_error.simulate(H4, np.ones(3), cycles=2, **P)


def _stream_inputs(E=60, N=10, seed=11, M=3.0):
    rng = np.random.default_rng(seed)
    h = rng.uniform(-M + 1e-6, M - 1e-6, (E, N))
    s = -np.ones((E, N))
    s[np.arange(E), rng.integers(0, N, E)] = 1.0
    return h, s


@pytest.mark.parametrize("order,C", [("sequential", 5), ("simultaneous", 6)])
def test_a_stream_with_reset_is_a_fresh_circuit_per_example(brian, order, C):
    """TimedArray-driven stream, t_c reset at each example (docs/spec.md §7.1): every example's δ and t
    trajectory equals a fresh run of the map from δ = t = 0, and its veto readout is eq. 6."""
    h, s = _stream_inputs()
    kw = dict(M=3.0, S=1.0, mu=1 / 9, eps=0.2)
    st = output_error.stream(h, s, cycles_per_example=C, reset=True, order=order, **kw)
    fresh = output_error.trajectory(h, s, cycles=C, order=order, backend="torch", **kw)
    assert np.array_equal(st.delta, np.moveaxis(fresh.delta, 0, 1))
    assert np.array_equal(st.t, np.moveaxis(fresh.t, 0, 1))
    assert np.array_equal(st.readout(), output_error.rule(h, s, mu=1 / 9, S=1.0, boundary="closed"))
    assert (st.settling() == output_error.PERIODS[order]).all()


def test_a_stale_t_costs_at_most_two_cycles_and_even_cycle_counts_need_no_reset(brian):
    """Without the reset, a new example meets the previous one's t_c. In the sequential order t_c is ±1 only
    after an odd cycle of a correct regime, so with an odd number of cycles per example some circuits need one
    or two extra cycles before the veto readout equals eq. 6 (the 2-cycle transient of docs/spec.md §7.1) and
    none needs more; with an even number t_c ends every example at 0 and the stream equals the reset one."""
    h, s = _stream_inputs()
    kw = dict(M=3.0, S=1.0, mu=1 / 9, eps=0.2)
    stale = output_error.stream(h, s, cycles_per_example=5, reset=False, **kw).settling()
    assert stale.max() == 4 and (stale > 2).any() and stale.min() == 2
    even = output_error.stream(h, s, cycles_per_example=4, reset=False, **kw)
    reset = output_error.stream(h, s, cycles_per_example=4, reset=True, **kw)
    assert np.array_equal(even.delta, reset.delta) and np.array_equal(even.t, reset.t)
