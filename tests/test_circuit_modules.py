"""circuits.modules: the PyTorch modules reproduce the Brian2 rate networks exactly (docs/spec.md §7), report range
violations, and in float32 deviate from eq. 6 only within rounding distance of ±S."""
import warnings

import numpy as np
import pytest
import torch

from circuits import check, output_error, shutdown
from circuits.check import CircuitRangeWarning
from circuits.modules import OutputErrorCircuit, ShutdownGate, supervisory

M, S, MU, EPS = 3.0, 1.0, 0.25, 0.1
P = dict(M=M, S=S, mu=MU, eps=EPS)


def _batch(n=60, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.uniform(-M, M, (n, classes))
    h[0, :4] = [S, -S, M - 1e-9, -M + 1e-9]
    s = supervisory(torch.from_numpy(rng.integers(0, classes, n)), classes, dtype=torch.float64).numpy()
    return h, s


@pytest.mark.parametrize("order,cycles", [("sequential", 5), ("simultaneous", 9)])
def test_module_reproduces_brian2_trajectories_and_readouts_exactly(brian, order, cycles):
    h, s = _batch()
    tr = output_error.trajectory(h, s, cycles=cycles, order=order, **P)
    mod = OutputErrorCircuit(cycles=cycles, order=order, **P)
    d, t = mod.trajectory(torch.from_numpy(h), torch.from_numpy(s))
    np.testing.assert_array_equal(d.numpy(), tr.delta)
    np.testing.assert_array_equal(t.numpy(), tr.t)
    for readout in ("veto", "phase 3", "window-mean"):
        mod.readout = readout
        np.testing.assert_array_equal(mod(torch.from_numpy(h), torch.from_numpy(s)).numpy(), tr.readout(readout))
    tr2 = output_error.trajectory(h, s, cycles=cycles, order=order, backend="torch", **P)
    np.testing.assert_array_equal(tr2.delta, tr.delta)


def test_forward_is_eq6_and_reports_regime_counts():
    h, s = _batch(200, 10, seed=1)
    mod = OutputErrorCircuit(**P)
    out = mod(torch.from_numpy(h), torch.from_numpy(s))
    assert out.dtype == torch.float64 and out.shape == (200, 10)
    np.testing.assert_array_equal(out.numpy(), output_error.rule(h, s, mu=MU, S=S, boundary="closed"))
    assert mod.last_info["regimes"] == check.regime_counts(h, s, S=S)
    assert mod.last_info["n"] == 2000 and mod.last_info["n_out_of_range"] == 0


def test_out_of_range_warns_once_counts_raises_or_clips():
    h = torch.tensor([[M, 0.5], [-M - 1, 2.0]], dtype=torch.float64)
    s = torch.tensor([[1.0, -1.0], [1.0, -1.0]], dtype=torch.float64)
    mod = OutputErrorCircuit(**P)
    with pytest.warns(CircuitRangeWarning, match="2 of 4"):
        mod(h, s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mod(h, s)  # counted, not warned again
    assert mod.last_info["n_out_of_range"] == 2 and mod.total_out_of_range == 4
    with pytest.raises(ValueError, match="2 of 4 .*Fix"):
        OutputErrorCircuit(on_range="error", **P)(h, s)
    out = OutputErrorCircuit(on_range="clip", **P)(h, s)
    np.testing.assert_array_equal(out.numpy(), [[0.0, -MU], [1.0, -MU]])  # eq. 6 of the clipped inputs


def test_float32_deviates_only_within_rounding_of_plus_minus_S():
    rng = np.random.default_rng(2)
    ulp_edge = (2 * M + S) * 2.0 ** -23
    near = np.concatenate([S + np.arange(-40, 41) * ulp_edge / 8, -S + np.arange(-40, 41) * ulp_edge / 8])
    h = np.concatenate([rng.uniform(-M, M, 5000), near]).astype(np.float32)
    h = h[np.abs(h) < M * (1 - 16 * np.finfo(np.float32).eps)]
    s = np.where(rng.random(h.size) < 0.5, 1.0, -1.0).astype(np.float32)
    s[-near.size:] = np.where(h[-near.size:] > 0, 1.0, -1.0)
    out = OutputErrorCircuit(**P)(torch.from_numpy(h), torch.from_numpy(s)).numpy()
    want = output_error.rule(h.astype(np.float64), s, mu=MU, S=S, boundary="closed")
    bad = np.abs(out - want) > 1e-6
    dist = np.minimum(np.abs(np.abs(h.astype(np.float64)) - S), np.inf)
    assert bad.any()  # the documented float32 tolerance is real ...
    assert (dist[bad] <= ulp_edge).all()  # ... and confined to within (2M+S)·2⁻²³ of ±S


def test_shutdown_gate_reproduces_brian2_and_counts(brian):
    rng = np.random.default_rng(3)
    x = np.clip(rng.uniform(-1.3, 1.3, (40, 8)), -1, 1)
    delta = rng.uniform(-1.9, 1.9, (40, 8))
    gate = ShutdownGate(K=2.0)
    out = gate(torch.from_numpy(x), torch.from_numpy(delta))
    np.testing.assert_array_equal(out.numpy(), shutdown.simulate(x, delta, K=2.0))
    assert gate.last_info == {"n": 320, "n_gated": int((np.abs(x) >= 1).sum()), "n_out_of_range": 0}
    with pytest.warns(CircuitRangeWarning, match="1 of 2"):
        ShutdownGate(K=2.0)(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 2.0]))
    with pytest.raises(ValueError, match="Fix"):
        ShutdownGate(K=2.0, on_range="error")(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 2.0]))
    clipped = ShutdownGate(K=2.0, on_range="clip")(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 2.0]))
    assert clipped.tolist() == [0.5, 0.0]


def test_modules_follow_dtype_and_device_and_check_inputs():
    mod = OutputErrorCircuit(**P)
    h = torch.zeros(3, 4, dtype=torch.float32)
    s = supervisory(torch.tensor([0, 3, 1]), 4)
    assert s.tolist()[1] == [-1, -1, -1, 1]
    out = mod(h, s)
    assert out.dtype == torch.float32 and out.device == h.device
    with pytest.raises(ValueError, match="shape"):
        mod(h, s[:, :3])
    with pytest.raises(ValueError, match="supervisory"):
        mod(h, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="labels"):
        supervisory(torch.tensor([4]), 4)
    with pytest.raises(ValueError, match="cycles"):
        OutputErrorCircuit(cycles=2, order="simultaneous", **P)
