"""Spiking version of the output error circuit (Appendix 1, Fig. 13, 14; docs/spec.md §7.1): LIF step detectors.

Each step of the paper's transfer functions is realised by a population of ``N`` leaky integrate-and-fire
neurons (a "step detector") that fires at its saturation rate when its input is past the step and is silent
otherwise. The rate-coded output of a unit is the weighted sum of its detectors' normalised rates:

    σ_out(H) = Σ_k w_k 1[d_k (H - θ_k) > 0]     breakpoints θ = -2M-S, -M, M, 2M+S   (δ unit, 4 detectors)
    σ_ctl(δ) = Σ_k w_k 1[d_k (δ - θ_k) > 0]     breakpoints θ = -μ-mε, 1+mε          (t unit, 2 detectors)

with ``d_k = +1`` for a breakpoint above 0 (the detector fires for larger inputs) and ``-1`` below 0. The
weights w_k are the jumps of ``circuits.transfer.sigma_out`` / ``sigma_ctl`` at θ_k, measured from those very
functions (``steps``); both are 0 at rest, so a silent circuit reads δ = t = 0.

Detector neuron i of circuit c (times in seconds, v dimensionless)::

    τ_m dv/dt = I - v   (unless refractory),   spike when v > 1: reset v to 0, refractory for a period
                                               drawn anew at each spike, uniform in t_ref·(1 ± t_ref_spread)
    I = 1 + clip(g (d_k (X_c - θ_k) + ξ_i), -1, I_max - 1)

where X_c is H_c = h_c + 2M s_c - 2M t̂_c for δ detectors and δ̂_c for t detectors (forward Euler,
dt = τ_m/5; the calibration absorbs the discretisation). The gain g makes the step sharp; the clip keeps the
membrane in [0, I_max] (a bounded synaptic current, so a detector switched on after a long silence responds
within one step); t_ref ≫ τ_m makes the firing rate saturate at ≈ 1/(t_ref + dt) just past the step, so the
rate is a step function of X rather than an f–I curve. ξ_i, the fixed threshold offset, forms the same
ladder in every population (``_ladders``). The random refractory period makes each neuron a renewal process,
so a population switched on by a strong step (all neurons fire in the first step) dephases within a few
spikes instead of firing in lockstep, and different circuits do not share one noise pattern.

Rate code: every spike of a detector k in circuit c adds ``w_k / (N r_sat τ_s)`` (exactly:
``w_k (1 - e^{-dt/τ_s}) / (N r_sat dt)``) to a synaptic trace of the circuit that decays with τ_s, so the
trace reads Σ_k w_k (population rate / r_sat): δ̂_c (read by the t detectors, after an optional synaptic
``delay``) and t̂_c (read by the δ detectors).

Calibration (``calibrate``): an open-loop Brian2 run of one population over a grid of drives measures the
saturation rate r_sat (the normalisation above) and the drive x₅₀ at which the population is half active;
the detectors' thresholds are shifted by -x₅₀ so the population switches at θ_k itself. ``transfer_curve``
measures the calibrated open-loop δ̂ as a function of H, to be compared with σ_out.

The readouts are those of ``circuits.continuous`` (``veto``, ``final``, ``window-mean``, ``t-gate``), applied
to δ̂ and t̂ sampled every ``record_dt``; one cycle lasts ``2 τ_s + delay``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from circuits import transfer
from circuits.params import check_params
from circuits.continuous import READOUTS, Trajectory, _check_readout, _prepare, agreement_of, cycle_length

__all__ = [
    "READOUTS",
    "DetectorParams",
    "steps",
    "calibrate",
    "Calibration",
    "transfer_curve",
    "build_network",
    "SpikingTrajectory",
    "trajectory",
    "simulate",
    "agreement",
]


@dataclass(frozen=True)
class DetectorParams:
    """Parameters of the LIF step detectors (times in seconds).

    ``N`` neurons per detector; membrane ``tau_m``; refractory period drawn at every spike uniformly in
    ``t_ref·(1 ± t_ref_spread)``; ``gain`` g (input units per unit
    of X); ``I_max`` bound of the input; ``spread`` s.d. of the fixed threshold offsets ξ (units of X);
    ``tau_s`` decay of the rate-code traces; ``dt`` integration step.
    """

    N: int = 20
    tau_m: float = 2.5e-3
    t_ref: float = 10e-3
    t_ref_spread: float = 0.25
    gain: float = 200.0
    I_max: float = 20.0
    spread: float = 0.01
    tau_s: float = 25e-3
    dt: float = 0.5e-3

    def check(self):
        if int(self.N) != self.N or self.N < 1:
            raise ValueError(f"N (neurons per detector) must be a positive integer, got {self.N}.")
        for name in ("tau_m", "t_ref", "gain", "tau_s", "dt"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if not self.I_max > 1:
            raise ValueError(f"I_max must exceed the firing threshold 1, got {self.I_max}.")
        if not 0 <= self.t_ref_spread < 1:
            raise ValueError(f"t_ref_spread must be in [0, 1), got {self.t_ref_spread}.")
        if not self.spread >= 0:
            raise ValueError(f"spread must be ≥ 0, got {self.spread}.")
        if not self.dt <= self.tau_m / 5:
            raise ValueError(f"dt = {self.dt} s is too coarse for tau_m = {self.tau_m} s; use dt ≤ tau_m/5.")


def steps(fn, breakpoints) -> list[tuple[float, int, float]]:
    """Decompose a step function ``fn`` (0 at 0) into detectors: ``[(θ_k, d_k, w_k)]`` at the breakpoints.

    ``d_k = +1`` for θ_k > 0 (fires for X > θ_k), ``-1`` for θ_k < 0 (fires for X < θ_k); ``w_k`` is fn's
    jump across θ_k in the detector's direction, measured from ``fn`` itself. Then, away from the
    breakpoints, ``fn(X) = Σ_k w_k 1[d_k (X - θ_k) > 0]``.
    """
    rest = float(fn(np.array([0.0]))[0])
    if rest != 0.0:
        raise ValueError(f"a step decomposition needs fn(0) = 0, got {rest}.")
    out = []
    for theta in breakpoints:
        if theta == 0:
            raise ValueError("a breakpoint at 0 has no direction; the circuit's breakpoints are all non-zero.")
        eta = 1e-9 * max(1.0, abs(theta))
        above, below = (float(v) for v in fn(np.array([theta + eta, theta - eta])))
        d = 1 if theta > 0 else -1
        out.append((float(theta), d, above - below if d > 0 else below - above))
    return out


def _delta_steps(*, M, S, mu, eps):
    return steps(lambda H: transfer.sigma_out(H, M=M, S=S, mu=mu, eps=eps), (-2 * M - S, -M, M, 2 * M + S))


def _t_steps(*, mu, eps, margin):
    return steps(lambda d: transfer.sigma_ctl(d, mu=mu, eps=eps, margin=margin),
                 (-mu - margin * eps, 1 + margin * eps))


_DETECTOR_EQS = """
dv/dt = (I - v) / tau_m : 1 (unless refractory)
t_ref_i : second
I = 1 + clip(gain * (direction * (X - theta) + offset), -1, I_max - 1) : 1
X = (1 - kind) * (h + 2*M*s - 2*M*t_hat) + kind * delta_seen : 1
theta : 1 (constant)
direction : 1 (constant)
offset : 1 (constant)
kind : 1 (constant)
h : 1 (constant)
s : 1 (constant)
a : 1 (constant)
t_hat : 1 (linked)
delta_seen : 1 (linked)
"""


def _ladders(n_pop, p: DetectorParams):
    """Per-neuron threshold offsets: the same ladder spread·Φ⁻¹((j + ½)/N), j = 0..N-1, in every population
    (so one calibration holds for all of them), and initial refractory periods t_ref·(1 ± t_ref_spread)."""
    from scipy.stats import norm

    q = (np.arange(p.N) + 0.5) / p.N
    t_ref = p.t_ref * (1.0 + p.t_ref_spread * (2 * q - 1))
    offset = p.spread * norm.ppf(q)
    return np.tile(t_ref, n_pop), np.tile(offset, n_pop)


def _detector_group(n, p: DetectorParams, *, M, name):
    import brian2 as b2
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

    ns = {"tau_m": p.tau_m * b2.second, "gain": p.gain, "I_max": p.I_max, "M": float(M),
          "t_ref": p.t_ref * b2.second, "t_ref_spread": p.t_ref_spread}
    return b2.NeuronGroup(n, _DETECTOR_EQS, threshold="v > 1",
                          reset="v = 0\nt_ref_i = t_ref * (1 + t_ref_spread * (2 * rand() - 1))", refractory="t_ref_i",
                          method="euler", namespace=ns, dt=p.dt * b2.second, name=name,
                          codeobj_class=NumpyCodeObject)


def _trace_group(n, p: DetectorParams, *, name):
    import brian2 as b2
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

    eqs = """ddelta_hat/dt = -delta_hat / tau_s : 1
             ddelta_seen/dt = -delta_seen / tau_s : 1
             dt_hat/dt = -t_hat / tau_s : 1"""
    return b2.NeuronGroup(n, eqs, method="exact", namespace={"tau_s": p.tau_s * b2.second},
                          dt=p.dt * b2.second, name=name, codeobj_class=NumpyCodeObject)


# --------------------------------------------------------------------------------------------------
# Calibration


@dataclass(frozen=True)
class Calibration:
    """Measured response of one detector population (``DetectorParams``), open loop.

    ``r_sat``: mean rate per neuron (Hz) well past the step; ``x50``: drive X - θ (in X units, direction
    +1) at which the population fires at r_sat/2; ``x``, ``f``: the measured curve, f = rate / r_sat.
    """

    r_sat: float
    x50: float
    x: tuple
    f: tuple


@functools.lru_cache(maxsize=16)
def calibrate(params: DetectorParams = DetectorParams(), *, n_x: int = 21, x_max: float = 0.05,
              duration: float = 0.3, seed: int = 0) -> Calibration:
    """Measure a detector population's transfer f(x) = rate / r_sat for x = X - θ in [-x_max, x_max].

    One Brian2 run (numpy target, its own ``seed``): ``n_x`` populations of ``params.N`` neurons held at
    fixed drives plus one at the input bound; rates counted over ``duration`` after a 50 ms transient.
    """
    import brian2 as b2
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

    params.check()
    rng = np.random.default_rng(seed)
    x = np.linspace(-x_max, x_max, n_x)
    xs = np.concatenate([x, [1e6]])  # the last population sits at the input bound I_max
    N = params.N
    det = _detector_group(xs.size * N, params, M=0.0, name="calib_detectors")
    tr = _trace_group(1, params, name="calib_traces")
    det.t_hat = b2.linked_var(tr, "t_hat", index=np.zeros(xs.size * N, dtype=np.int64))
    det.delta_seen = b2.linked_var(tr, "delta_seen", index=np.zeros(xs.size * N, dtype=np.int64))
    det.kind = 0.0
    det.direction = 1.0
    det.theta = 0.0
    det.s = 0.0
    det.h = np.repeat(xs, N)
    t_ref, offset = _ladders(xs.size, params)
    det.offset = offset
    det.t_ref_i = t_ref * b2.second
    det.v = rng.uniform(0.0, 1.0, xs.size * N)
    mon = b2.SpikeMonitor(det, name="calib_spikes", codeobj_class=NumpyCodeObject)
    net = b2.Network(det, tr, mon, name="calib_network")
    b2.seed(seed)
    net.run(0.05 * b2.second, namespace={})
    n0 = np.asarray(mon.count).copy()
    net.run(duration * b2.second, namespace={})
    counts = (np.asarray(mon.count) - n0).reshape(xs.size, N).sum(1)
    rates = counts / (N * duration)
    r_sat = float(rates[-1])
    f = rates[:-1] / r_sat
    above = np.flatnonzero(f >= 0.5)
    if above.size == 0 or above[0] == 0:
        raise RuntimeError(f"calibration could not locate the half-activation point within ±{x_max}; "
                           "raise x_max or the gain.")
    k = above[0]
    x50 = float(x[k - 1] + (0.5 - f[k - 1]) * (x[k] - x[k - 1]) / (f[k] - f[k - 1]))
    return Calibration(r_sat=r_sat, x50=x50, x=tuple(x), f=tuple(f))


# --------------------------------------------------------------------------------------------------
# The closed-loop network


def build_network(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, margin: float = 0.0,
                  delay: float = 0.0, params: DetectorParams = DetectorParams(), calibration: Calibration,
                  record_dt: float = 1e-3, record_spikes: bool = False, seed: int = 0, open_loop: bool = False,
                  name: str = "spk"):
    """The spiking circuits for flat arrays ``h``, ``s`` as a ``brian2.Network`` ``{name}_network``.

    Objects: ``{name}_detectors`` (all detector neurons of all circuits: per circuit 4 δ detectors and 2 t
    detectors of ``params.N`` neurons), ``{name}_traces`` (δ̂, δ̂ as seen by t after ``delay``, t̂ per
    circuit), the synapses ``{name}_to_delta``, ``{name}_to_delta_seen`` (with ``delay``), ``{name}_to_t``,
    the monitors ``{name}_rates`` (δ̂, t̂ every ``record_dt``) and, if asked, ``{name}_spikes``.
    ``open_loop=True`` leaves out the δ → t synapses, so t̂ stays 0 and H = h + 2M s: used to measure the δ
    unit's transfer alone.
    Returns ``(network, layout)`` where layout maps each neuron to (circuit, detector index 0..5).
    """
    check_params(M=M, S=S, mu=mu, eps=eps, margin=margin)
    import brian2 as b2
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

    params.check()
    h = np.asarray(h, dtype=np.float64).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    n_c, N = h.size, params.N
    dets = _delta_steps(M=M, S=S, mu=mu, eps=eps) + _t_steps(mu=mu, eps=eps, margin=margin)
    kind = np.array([0.0] * 4 + [1.0] * 2)
    theta = np.array([d[0] for d in dets])
    direction = np.array([float(d[1]) for d in dets])
    w = np.array([d[2] for d in dets])
    # neuron index = (circuit * 6 + detector) * N + j
    circ = np.repeat(np.arange(n_c), 6 * N)
    det_k = np.tile(np.repeat(np.arange(6), N), n_c)
    rng = np.random.default_rng(seed)
    det = _detector_group(circ.size, params, M=M, name=f"{name}_detectors")
    tr = _trace_group(n_c, params, name=f"{name}_traces")
    det.t_hat = b2.linked_var(tr, "t_hat", index=circ.astype(np.int64))
    det.delta_seen = b2.linked_var(tr, "delta_seen", index=circ.astype(np.int64))
    det.kind = kind[det_k]
    det.direction = direction[det_k]
    # calibrated threshold: the population is half active at θ_k (x50 measured in the +1 direction)
    det.theta = theta[det_k] + direction[det_k] * calibration.x50
    t_ref, offset = _ladders(n_c * 6, params)
    det.offset = offset
    det.t_ref_i = t_ref * b2.second
    det.v = rng.uniform(0.0, 1.0, circ.size)
    det.h = h[circ]
    det.s = s[circ]
    # per-spike increment such that the sampled trace (exact decay e^{-dt/τ_s} per step) averages
    # w_k · rate / r_sat: a = w (1 - e^{-dt/τ_s}) / (N r_sat dt), i.e. w / (N r_sat τ_s) up to O(dt/τ_s)
    decay = 1.0 - np.exp(-params.dt / params.tau_s)
    det.a = w[det_k] * decay / (N * calibration.r_sat * params.dt)
    objs = [det, tr]
    d_idx = np.flatnonzero(det_k < 4)
    t_idx = np.flatnonzero(det_k >= 4)
    for syn_name, var, idx, syn_delay in (("to_delta", "delta_hat", d_idx, 0.0),
                                          ("to_delta_seen", "delta_seen", d_idx, delay),
                                          ("to_t", "t_hat", t_idx, 0.0)):
        if open_loop and syn_name == "to_delta_seen":
            continue
        syn = b2.Synapses(det, tr, on_pre=f"{var}_post += a_pre", name=f"{name}_{syn_name}", namespace={},
                          dt=params.dt * b2.second, codeobj_class=NumpyCodeObject)
        syn.connect(i=idx, j=circ[idx])
        if syn_delay > 0:
            syn.delay = syn_delay * b2.second
        objs.append(syn)
    objs.append(b2.StateMonitor(tr, ["delta_hat", "t_hat"], record=True, dt=record_dt * b2.second, when="end",
                                name=f"{name}_rates", codeobj_class=NumpyCodeObject))
    if record_spikes:
        objs.append(b2.SpikeMonitor(det, name=f"{name}_spikes", codeobj_class=NumpyCodeObject))
    net = b2.Network(*objs, name=f"{name}_network")
    return net, {"circuit": circ, "detector": det_k}


def transfer_curve(H, *, M: float, S: float = 1.0, mu: float, eps: float,
                   params: DetectorParams = DetectorParams(), duration: float = 0.3, seed: int = 0) -> np.ndarray:
    """Calibrated open-loop transfer of the spiking δ unit: mean δ̂ over the last 2/3 of ``duration``
    for each fixed input H (t̂ held at 0), to compare with ``circuits.transfer.sigma_out(H)``."""
    import brian2 as b2

    H = np.asarray(H, dtype=np.float64)
    cal = calibrate(params)
    net, _ = build_network(H.ravel(), np.zeros(H.size), M=M, S=S, mu=mu, eps=eps, params=params,
                           calibration=cal, seed=seed, open_loop=True, name="spkcal")
    b2.seed(seed)
    net.run(duration * b2.second, namespace={})
    rates = net["spkcal_rates"]
    keep = np.asarray(rates.t / b2.second) >= duration / 3
    return np.asarray(rates.delta_hat)[:, keep].mean(1).reshape(H.shape)


# --------------------------------------------------------------------------------------------------
# Public interface


@dataclass
class SpikingTrajectory(Trajectory):
    """Rate-coded δ̂ and t̂ of each circuit, shape ``(n_times, *h.shape)``, sampled at ``times`` (s); the
    fields and readouts of ``circuits.continuous.Trajectory`` plus the calibration used.

    ``spikes``: with ``record_spikes``, a dict with arrays ``circuit``, ``detector`` (0-3: δ detectors at
    -2M-S, -M, M, 2M+S; 4-5: t detectors at -μ-mε, 1+mε), ``neuron`` (0..N-1 within its population) and
    ``time`` (s), one entry per spike; else None.
    """

    calibration: Calibration | None = None
    spikes: dict | None = None


def trajectory(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, cycles: int = 15, window: int = 5,
               delay: float = 0.0, margin: float = 0.5, params: DetectorParams = DetectorParams(),
               record_dt: float = 1e-3, record_spikes: bool = False, seed: int = 0,
               on_range: str = "report") -> SpikingTrajectory:
    """Run the spiking circuits from silence (δ̂ = t̂ = 0) for ``cycles`` cycles of ``2 τ_s + delay``.

    ``margin`` defaults to 0.5 here (σ_ctl thresholds half way to the oscillation values, docs/spec.md §7.1): with
    the paper's zero margin the t threshold sits exactly on the settled rate-coded δ, and rate noise alone
    switches t on in the update regimes (measured in docs/circuit_dynamics.md). ``seed`` fixes the
    detectors' initial potentials and the random refractory periods (it reseeds Brian2's generator).
    """
    import brian2 as b2

    if int(cycles) != cycles or cycles < 1 or int(window) != window or not 1 <= window <= cycles:
        raise ValueError(f"need integers 1 ≤ window ≤ cycles; got cycles={cycles}, window={window}.")
    if not delay >= 0:
        raise ValueError(f"delay must be ≥ 0 seconds, got {delay}.")
    h, s, report = _prepare(h, s, M=M, S=S, mu=mu, eps=eps, margin=margin, on_range=on_range)
    cal = calibrate(params)
    period = cycle_length(params.tau_s, delay)
    net, layout = build_network(h, s, M=M, S=S, mu=mu, eps=eps, margin=margin, delay=delay, params=params,
                                calibration=cal, record_dt=record_dt, record_spikes=record_spikes, seed=seed)
    b2.seed(seed)  # the random refractory periods drawn during the run
    net.run(cycles * period * b2.second, namespace={})
    mon = net["spk_rates"]
    times = np.asarray(mon.t / b2.second)
    shape = (times.size, *h.shape)
    spikes = None
    if record_spikes:
        sm = net["spk_spikes"]
        i = np.asarray(sm.i)
        spikes = {"circuit": layout["circuit"][i], "detector": layout["detector"][i], "neuron": i % params.N,
                  "time": np.asarray(sm.t / b2.second)}
    return SpikingTrajectory(times=times, delta=np.asarray(mon.delta_hat).T.reshape(shape),
                             t_c=np.asarray(mon.t_hat).T.reshape(shape), s=s, mu=float(mu),
                             samples_per_cycle=period / record_dt, window=int(window), range=report,
                             calibration=cal, spikes=spikes)


def simulate(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, readout="veto", cycles: int = 15,
             window: int = 5, delay: float = 0.0, margin: float = 0.5, params: DetectorParams = DetectorParams(),
             veto_level: float = 0.5, t_level: float = 0.05, seed: int = 0, on_range: str = "report") -> np.ndarray:
    """The readout of the spiking circuits' rate-coded δ̂, one value per input (h and s broadcast)."""
    _check_readout(readout)
    traj = trajectory(h, s, M=M, S=S, mu=mu, eps=eps, cycles=cycles, window=window, delay=delay, margin=margin,
                      params=params, seed=seed, on_range=on_range)
    return traj.readout(readout, veto_level=veto_level, t_level=t_level)


def agreement(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, readout="veto", rtol: float = 0.1,
              **kwargs) -> dict:
    """Run ``simulate`` on ``h``, ``s`` (keyword arguments passed on) and return its agreement with eq. 6
    per regime, ``{regime: (n, n_agree)}``, within ``rtol`` of the update value
    (``circuits.continuous.agreement_of``, which calls ``circuits.check.agreement_by_regime``)."""
    values = simulate(h, s, M=M, S=S, mu=mu, eps=eps, readout=readout, **kwargs)
    return agreement_of(values, h, s, mu=mu, S=S, rtol=rtol)
