"""circuits.shutdown: the Brian2 network of Fig. 15 computes eq. 3 for |δ| < K (docs/spec.md §7.2); |δ| ≥ K is reported."""
import numpy as np
import pytest

from circuits import shutdown
from circuits.check import CircuitRangeWarning

K = 2.0


def test_rule_is_eq3():
    np.testing.assert_array_equal(shutdown.rule([-1.0, -0.3, 0.9, 1.0], [0.5, 0.5, -0.5, -0.5]), [0, 0.5, -0.5, 0])


@pytest.mark.slow
def test_brian2_gate_agrees_with_eq3_on_10000_draws(brian):
    rng = np.random.default_rng(0)
    n = 10_000
    x = np.clip(rng.uniform(-1.3, 1.3, n), -1.0, 1.0)  # about a quarter saturated
    delta = rng.uniform(-K, K, n)
    delta = np.where(np.abs(delta) >= K, 0.0, delta)
    edges_x = np.array([-1.0, -1.0, 1.0, 1.0, 1 - 1e-9, -1 + 1e-9, 0.0, 0.0])
    edges_d = np.array([K - 1e-9, -K + 1e-9, K - 1e-9, -K + 1e-9, K - 1e-9, -K + 1e-9, K - 1e-9, -K + 1e-9])
    x, delta = np.concatenate([x, edges_x]), np.concatenate([delta, edges_d])
    out = shutdown.simulate(x, delta, K=K)
    assert (np.abs(x) >= 1).sum() > 2000
    np.testing.assert_array_equal(out, shutdown.rule(x, delta))


def test_out_of_range_report_error_clip(brian):
    x = np.array([1.0, 0.0, 1.0, -0.5])
    delta = np.array([K, -K - 0.5, 0.3, 0.2])
    with pytest.warns(CircuitRangeWarning, match="2 of 4 inputs have \\|delta\\|"):
        out = shutdown.simulate(x, delta, K=K)
    # the documented failure: δ = K passes as -K at a saturated unit; δ < -K is shut at an active one
    np.testing.assert_array_equal(out, [-K, 0.0, 0.0, 0.2])
    with pytest.raises(ValueError, match="2 of 4 .*Fix: raise K"):
        shutdown.simulate(x, delta, K=K, on_range="error")
    out = shutdown.simulate(x, delta, K=K, on_range="clip")
    assert out[0] == 0.0 and -K < out[1] < -K + 1e-12 and out[2] == 0.0 and out[3] == 0.2


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="shape"):
        shutdown.simulate(np.zeros(2), np.zeros(3), K=K)
    with pytest.raises(ValueError, match="K"):
        shutdown.simulate(np.zeros(2), np.zeros(2), K=0.0)
