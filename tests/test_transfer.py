"""circuits.transfer: σ_out, σ_ctl, the cycles and the shutdown gate equal docs/spec.md §7 piece by piece (NumPy and torch)."""
import numpy as np
import pytest
import torch

from circuits import transfer

M, S, MU, EPS = 3.0, 1.0, 0.25, 0.1


def test_sigma_out_values_on_each_interval_and_outer_value_at_pm_M():
    H = np.array([-2 * M - S - 1e-9, -2 * M - S, -M - 0.5, -M, -M + 1e-9, 0.0, M - 1e-9, M, 2 * M + S,
                  2 * M + S + 1e-9])
    want = [-MU - EPS, -MU, -MU, -MU, 0, 0, 0, 1, 1, 1 + EPS]
    np.testing.assert_array_equal(transfer.sigma_out(H, M=M, S=S, mu=MU, eps=EPS), want)


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_sigma_ctl_thresholds_with_margin(margin):
    d = np.array([1 + EPS, 1.0, 1 + margin * EPS, 0.0, -MU, -MU - margin * EPS, -MU - EPS])
    np.testing.assert_array_equal(transfer.sigma_ctl(d, mu=MU, eps=EPS, margin=margin), [1, 0, 0, 0, 0, 0, -1])


def test_sequential_cycle_gives_the_four_regimes_of_spec_table():
    h = np.array([0.5, 1.5, -0.5, -1.5])
    s = np.array([1.0, 1.0, -1.0, -1.0])
    t = np.zeros(4)
    seen = []
    for _ in range(4):
        delta, t = transfer.cycle_sequential(h, s, t, M=M, S=S, mu=MU, eps=EPS)
        seen.append(delta)
    np.testing.assert_array_equal(np.array(seen), [[1, 1 + EPS, -MU, -MU - EPS], [1, 0, -MU, 0]] * 2)


def test_simultaneous_cycle_has_period_4():
    h, s = np.array([1.5]), np.array([1.0])
    delta = t = np.zeros(1)
    seen = []
    for _ in range(8):
        delta, t = transfer.cycle_simultaneous(h, s, t, delta, M=M, S=S, mu=MU, eps=EPS)
        seen.append(delta[0])
    assert seen == [1 + EPS, 1 + EPS, 0, 0] * 2


def test_gate_equals_eq3_for_delta_inside_K():
    x = np.array([-1.0, -0.5, 0.0, 0.99, 1.0])
    delta = np.array([0.7, -1.9, 1.9, -0.3, -1.99])
    np.testing.assert_array_equal(transfer.gate(x, delta, K=2.0), np.where(np.abs(x) >= 1, 0.0, delta))
    np.testing.assert_array_equal(transfer.control_units(x)[0], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(transfer.control_units(x)[1], [-1, 0, 0, 0, 0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_and_numpy_agree_and_keep_dtype(dtype):
    rng = np.random.default_rng(0)
    H = rng.uniform(-3 * M, 3 * M, 200).astype(np.float32 if dtype == torch.float32 else np.float64)
    out_t = transfer.sigma_out(torch.from_numpy(H), M=M, S=S, mu=MU, eps=EPS)
    assert out_t.dtype == dtype
    np.testing.assert_array_equal(out_t.numpy(), transfer.sigma_out(H, M=M, S=S, mu=MU, eps=EPS))
    x = rng.uniform(-1.2, 1.2, 200)
    d = rng.uniform(-1, 1, 200)
    np.testing.assert_array_equal(transfer.gate(torch.from_numpy(x), torch.from_numpy(d), K=2.0).numpy(),
                                  transfer.gate(x, d, K=2.0))
