"""Spiking versions of the Appendix 1 circuits (Fig. 13-15; docs/spec.md §7; docs/spiking.md): LIF step detectors.

Output error circuit. Each step of the paper's transfer functions is a population of ``N`` leaky
integrate-and-fire neurons (a "step detector") that fires at its saturation rate when its input is past the
step and is silent otherwise:

    σ_out(H) = Σ_k w_k 1[d_k (H - θ_k) > 0]     breakpoints θ = -2M-S, -M, M, 2M+S   (δ unit, 4 detectors)
    σ_ctl(δ) = Σ_k w_k 1[d_k (δ - θ_k) > 0]     breakpoints θ = -μ-mε, 1+mε          (t unit, 2 detectors)

with ``d_k = +1`` for a breakpoint above 0 and ``-1`` below; the weights w_k are the jumps of
``circuits.transfer.sigma_out`` / ``sigma_ctl`` at θ_k, measured from those very functions (``steps``).

Inputs. h and s arrive as spiking populations of ``N_in`` neurons per sign (push-pull, rates never negative):
``h⁺`` fires at ``r_in·max(h, 0)/M``, ``h⁻`` at ``r_in·max(-h, 0)/M``, ``s⁺`` at ``r_in`` where s = +1,
``s⁻`` at ``r_in`` where s = -1. ``inputs="regular"``: each input neuron is a perfect (non-leaky)
integrate-and-fire encoder ``dv/dt = r`` with subtractive reset, phases staggered evenly within the population,
so the population rate is the encoded rate with the least possible noise; ``inputs="poisson"``: Poisson
neurons (the threshold rule of Brian2's ``PoissonGroup``, ``rand() < r dt``); ``inputs="constant"``: no input
neurons, h + 2M s added to the detectors' drive as a constant (the idealised model).

Detector neuron i (times in seconds, v dimensionless)::

    τ_m dv/dt = I - v   (unless refractory),   spike when v > 1: reset v to 0, refractory for a period drawn
                                               anew at each spike, uniform in t_ref·(1 ± t_ref_spread)
    I = 1 + clip(g (x_in + x_ff - θ' + ξ_i), -1, I_max - 1)

``x_in`` is the synaptic current of the neuron's population (Brian2 linked variable), ``θ'`` the calibrated
threshold, ξ_i a fixed offset (the same ladder in every population). Every population projects all-to-all
with one weight onto each target population, so all neurons of a target population receive the same
current: one state variable per (circuit, target population) in the group ``{name}_currents``, decaying with
τ_s. Per circuit the currents are (population weight W per unit of normalised rate rate/r_ref)::

    class 0  input of the δ detectors with d = +1:  h⁺ (+M), h⁻ (-M), s⁺ (+2M), s⁻ (-2M), t_k (-2M w_k)
    class 1  input of the δ detectors with d = -1:  the negatives of class 0
    class 2  input of the t detector  with d = +1:  δ_k (+w_k), through a synaptic ``delay``
    class 3  input of the t detector  with d = -1:  δ_k (-w_k), through the same delay
    class 4  observer δ̂ = Σ w_k rate_k / r_sat (the rate-coded δ, read out; no neuron reads it)
    class 5  observer t̂ = Σ w_k rate_k / r_sat

A spike of a neuron of population P adds ``W (1 - e^{-dt/τ_s}) / (N_P r_ref dt)`` to the current, so the
sampled current averages W · rate / r_ref (r_ref: r_sat for detectors, r_in for inputs).

Dale's law (``dale=True``): in the plain circuit a population sends both signs (t⁺ inhibits the d = +1 δ
detectors and excites the d = -1 ones). With ``dale=True`` every population is split into an excitatory
half (neurons 0..N/2-1, which make only the positive projections, with twice the weight) and an inhibitory
half (which make only the negative ones); both halves receive the same input, so they are co-tuned and the
mean currents are those of the plain circuit. Every neuron then has outgoing synapses of one sign
(``dale_violations`` checks it).

Calibration (``calibrate``): one open-loop Brian2 run of detector populations held at fixed drives measures
the saturation rate r_sat (from ``PopulationRateMonitor``s) and the drive x₅₀ at which a population is half
active; a population meant to switch at θ_k gets the threshold θ' = d_k θ_k − x₅₀ (``detector_threshold``), so
that it is half active at θ_k itself (``switching_points`` measures where each population switches).

Shutdown gate (``gate_simulate``; eq. 3, Fig. 15): per hidden unit, push-pull input populations x⁺, x⁻
(rates r_in·max(±x, 0)) and δ⁺, δ⁻ (rates r_in·max(±δ, 0)/K, switched on at ``lead``); control step
detectors u (x > 1 - x_band) and v (x < -(1 - x_band)); relay populations δ̃⁺, δ̃⁻ of perfect integrators,
each neuron driven one-to-one by its δ± partner (one input spike, one output spike) and drained by the
inhibitory current z = û + v̂ of the control populations at ``g_inh · r_in · z``. A relay therefore fires at
``[rate(δ±) - g_inh r_in z]₊``: δ passes where u and v are silent (|x| < 1) and is shut where the unit is
saturated (z ≈ 1; g_inh = 20 drains more than two input spikes per step, so even Poisson bursts do not pass) — eq. 3 in spiking form, the subtractive gate σ_gate(δ - 2K u + 2K v) of
Fig. 15 for push-pull rates. All its projections have one sign per population (Dale's law holds as built).

Targets and seeds: every entry point takes ``target="numpy" | "cython" | "cpp_standalone"`` and runs the
network on it (numpy and cython on Brian2's runtime device; cpp_standalone as its own standalone project in
``directory``, one ``run``, built and executed; unchanged code is not recompiled; a lock file beside the folder
keeps two processes from building or reading one folder at once). ``seed`` (an int or None):

- initial membrane potentials and input phases are drawn from ``numpy.random.default_rng(seed)`` (the same
  values on every target; fresh entropy for None);
- the draws during the run (refractory periods, Poisson spikes) come from Brian2's ``rand()``. On numpy and
  cython, ``seed`` int: Brian2's random state (NumPy's global generator and the cython buffers) is saved,
  seeded with ``seed`` for the run and restored afterwards, so the caller's random stream is untouched and
  numpy and cython give identical spikes; None: the run draws from the caller's stream as it stands, without
  reseeding. On cpp_standalone the project's own generator is seeded with ``seed`` (None: Brian2's default,
  a seed chosen at run time); its stream differs from the runtime one, so results agree in distribution only.
"""
from __future__ import annotations

import functools
import gc
import os
from dataclasses import dataclass

import numpy as np

from circuits import transfer
from circuits.brian import _lock, standalone_dir
from circuits.continuous import READOUTS, Trajectory, _check_readout, _prepare, agreement_of, cycle_length
from circuits.params import check_params

__all__ = [
    "READOUTS",
    "TARGETS",
    "INPUTS",
    "DetectorParams",
    "steps",
    "calibrate",
    "Calibration",
    "detector_threshold",
    "transfer_curve",
    "build_network",
    "dale_violations",
    "SpikingTrajectory",
    "trajectory",
    "simulate",
    "agreement",
    "GateResult",
    "gate_simulate",
    "gate_agreement",
    "SwitchingPoint",
    "Switching",
    "switching_points",
]

TARGETS = ("numpy", "cython", "cpp_standalone")
INPUTS = ("regular", "poisson", "constant")
N_CLASSES = 6  # currents per circuit, see the module docstring


@dataclass(frozen=True)
class DetectorParams:
    """Parameters of the LIF step detectors and of the input populations (times in seconds).

    ``N`` neurons per detector population; membrane ``tau_m``; refractory period drawn at every spike uniformly
    in ``t_ref·(1 ± t_ref_spread)``; ``gain`` g (input units per unit of X); ``I_max`` bound of the input;
    ``spread`` s.d. of the fixed threshold offsets ξ (units of X); ``tau_s`` decay of the synaptic currents;
    ``dt`` integration step; ``N_in`` neurons per input population, ``r_in`` their full-scale rate (Hz).
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
    N_in: int = 20
    r_in: float = 200.0

    def check(self):
        for name in ("N", "N_in"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} (neurons per population) must be a positive integer, got {v}.")
        for name in ("tau_m", "t_ref", "gain", "tau_s", "dt", "r_in"):
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
        if not self.r_in * self.dt <= 0.5:
            raise ValueError(f"r_in·dt = {self.r_in * self.dt:g} > 0.5: an input neuron cannot fire that often; "
                             "lower r_in or dt.")


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


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


# --------------------------------------------------------------------------------------------------
# Running one network on one target


def _standalone_dir(name: str, directory) -> str:
    """The project folder of a cpp_standalone run: ``directory`` if given, else ``spiking-<name>`` in the project's
    build folder (``circuits.brian.standalone_dir``: ``$ASYMHEBB_BRIAN2_BUILD`` or the system's temporary
    folder)."""
    if directory is not None:
        return str(directory)
    return standalone_dir(f"spiking-{name}")


def _execute(make, duration: float, *, target: str, seed, directory=None, name: str):
    """Build the objects with ``make()`` -> ``(network, collect)`` on ``target``, run ``duration`` seconds in
    one ``run``, and return ``collect()`` (which reads the monitors into NumPy). See the module docstring for
    what ``seed`` does on each target. Brian2's device, code-generation target and (on numpy and cython)
    random state are as before afterwards."""
    import brian2 as b2
    from brian2.devices.device import get_device, reset_device

    _check_choice("target", target, TARGETS)
    if seed is not None and (int(seed) != seed or isinstance(seed, bool)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}.")
    if target == "cpp_standalone":
        current = get_device()
        if getattr(current, "code_objects", None) or getattr(current, "has_been_run", False):
            raise RuntimeError("a cpp_standalone project is already being set up in this process; run the spiking "
                               "circuits before it, or call brian2.device.reinit() first.")
        gc.collect()  # objects of an earlier build still alive would give this build's code new names
        b2.set_device("cpp_standalone", build_on_run=False)
        try:
            net, collect = make()
            if seed is not None:
                b2.seed(int(seed))
            net.run(duration * b2.second, namespace={})
            folder = _standalone_dir(name, directory)
            # Held from the build until the monitors are read back: two processes building the same network
            # (two test workers, two scripts) would otherwise write and read one folder at once.
            with _lock(folder):
                b2.device.build(directory=folder, run=True, compile=True, with_output=False)
                return collect()
        finally:
            b2.device.reinit()
            reset_device()
    b2.set_device("runtime")
    old_target = b2.prefs.codegen.target
    b2.prefs.codegen.target = target
    state = get_device().get_random_state() if seed is not None else None
    try:
        net, collect = make()
        if seed is not None:
            b2.seed(int(seed))
        net.run(duration * b2.second, namespace={})
        return collect()
    finally:
        if state is not None:
            get_device().set_random_state(state)
        b2.prefs.codegen.target = old_target
        reset_device()


# --------------------------------------------------------------------------------------------------
# Groups


_DETECTOR_EQS = """
dv/dt = (I - v) / tau_m : 1 (unless refractory)
I = 1 + clip(gain * (x_in + x_ff - theta + offset), -1, I_max - 1) : 1
t_ref_i : second
theta : 1 (constant)
offset : 1 (constant)
x_ff : 1 (constant)
x_in : 1 (linked)
"""


def _ladders(n_pop, p: DetectorParams):
    """Per-neuron threshold offsets: the same ladder spread·Φ⁻¹((j + ½)/N), j = 0..N-1, in every population
    (so one calibration holds for all of them), and initial refractory periods t_ref·(1 ± t_ref_spread)."""
    from scipy.stats import norm

    q = (np.arange(p.N) + 0.5) / p.N
    t_ref = p.t_ref * (1.0 + p.t_ref_spread * (2 * q - 1))
    offset = p.spread * norm.ppf(q)
    return np.tile(t_ref, n_pop), np.tile(offset, n_pop)


def _detector_group(n, p: DetectorParams, *, name, linked: bool = True):
    """Detector neurons; ``linked=False`` (calibration) makes x_in a constant 0 instead of a linked current,
    so that the group has subgroups (Brian2 does not subgroup indexed linked variables)."""
    import brian2 as b2

    ns = {"tau_m": p.tau_m * b2.second, "gain": p.gain, "I_max": p.I_max, "t_ref": p.t_ref * b2.second,
          "t_ref_spread": p.t_ref_spread}
    eqs = _DETECTOR_EQS if linked else _DETECTOR_EQS.replace("x_in : 1 (linked)", "x_in : 1 (constant)")
    return b2.NeuronGroup(n, eqs, threshold="v > 1",
                          reset="v = 0\nt_ref_i = t_ref * (1 + t_ref_spread * (2 * rand() - 1))", refractory="t_ref_i",
                          method="euler", namespace=ns, dt=p.dt * b2.second, name=name)


def _currents_group(n, p: DetectorParams, *, name):
    import brian2 as b2

    return b2.NeuronGroup(n, "dx/dt = -x / tau_s : 1", method="exact", namespace={"tau_s": p.tau_s * b2.second},
                          dt=p.dt * b2.second, name=name)


def _input_group(rates, t_on, p: DetectorParams, *, kind, rng, name):
    """``rates.size`` input neurons (``rates`` in Hz, one per neuron, in populations of ``p.N_in``) that start
    firing at ``t_on`` (s, per neuron): regular perfect integrate-and-fire encoders or Poisson neurons."""
    import brian2 as b2

    n = rates.size
    if kind == "regular":
        g = b2.NeuronGroup(n, "dv/dt = r * int(t >= t_on) : 1\nr : Hz (constant)\nt_on : second (constant)",
                           threshold="v >= 1", reset="v -= 1", method="euler", namespace={},
                           dt=p.dt * b2.second, name=name)
        # phases staggered evenly within each population, the population's offset drawn once
        phase = rng.uniform(0.0, 1.0, n // p.N_in)
        g.v = (np.tile(np.arange(p.N_in), n // p.N_in) + np.repeat(phase, p.N_in)) / p.N_in
    else:
        g = b2.NeuronGroup(n, "r : Hz (constant)\nt_on : second (constant)",
                           threshold="rand() < r * dt * int(t >= t_on)", namespace={}, dt=p.dt * b2.second, name=name)
    g.r = rates * b2.Hz
    g.t_on = t_on * b2.second
    return g


def _increment(W, n_pop, r_ref, p: DetectorParams):
    """Per-spike increment of a current so that its sampled value averages W · rate / r_ref."""
    return W * (1.0 - np.exp(-p.dt / p.tau_s)) / (n_pop * r_ref * p.dt)


def _projections(W, n_pop, r_ref, p, *, dale):
    """Per-neuron weights of populations of ``n_pop`` neurons onto target currents.

    ``W``: array (n_sources, n_targets) of population weights. Returns ``(j_neuron, target, w)`` for the
    non-zero synapses, neuron j of source population q being ``q * n_pop + j``. With ``dale`` the first half of
    each population makes only the positive projections and the second half only the negative ones, each
    with twice the weight."""
    W = np.asarray(W, dtype=np.float64)
    q, c = np.nonzero(W)
    rows_j, rows_c, rows_w = [], [], []
    for qq, cc in zip(q, c):
        a = _increment(W[qq, cc], n_pop, r_ref, p)
        if dale:
            half = np.arange(n_pop // 2) if W[qq, cc] > 0 else np.arange(n_pop // 2, n_pop)
            js, a = qq * n_pop + half, 2 * a
        else:
            js = qq * n_pop + np.arange(n_pop)
        rows_j.append(js)
        rows_c.append(np.full(js.size, cc))
        rows_w.append(np.full(js.size, a))
    if not rows_j:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    return np.concatenate(rows_j), np.concatenate(rows_c), np.concatenate(rows_w)


def _synapses(src, dst, i, j, w, p, *, name, delay=0.0, on_pre="x_post += w", namespace=None):
    import brian2 as b2

    syn = b2.Synapses(src, dst, "w : 1 (constant)", on_pre=on_pre, name=name, namespace=dict(namespace or {}),
                      dt=p.dt * b2.second)
    syn.connect(i=np.asarray(i, dtype=np.int64), j=np.asarray(j, dtype=np.int64))
    syn.w = w
    if delay > 0:
        syn.delay = delay * b2.second
    return syn


# --------------------------------------------------------------------------------------------------
# Calibration


@dataclass(frozen=True)
class Calibration:
    """Measured response of one detector population (``DetectorParams``), open loop, on one target.

    ``r_sat``: mean rate per neuron (Hz) at the input bound; ``x50``: drive X - θ (in X units) at which the
    population fires at r_sat/2; ``x``, ``f``: the measured curve, f = rate / r_sat.
    """

    r_sat: float
    x50: float
    x: tuple
    f: tuple
    target: str = "numpy"


@functools.lru_cache(maxsize=32)
def calibrate(params: DetectorParams = DetectorParams(), *, n_x: int = 21, x_max: float = 0.05,
              duration: float = 0.3, transient: float = 0.05, seed: int = 0, target: str = "numpy",
              directory=None) -> Calibration:
    """Measure a detector population's transfer f(x) = rate / r_sat for x = X - θ in [-x_max, x_max].

    One Brian2 run of ``transient + duration`` seconds on ``target``: ``n_x`` populations of ``params.N``
    neurons held at fixed drives plus one at the input bound; each population's rate is the mean of its
    ``PopulationRateMonitor`` after ``transient``. ``seed`` as in the module docstring (cached per arguments).
    """
    import brian2 as b2

    params.check()
    if seed is None:
        raise ValueError("calibrate needs an integer seed (its result is cached and reused).")
    x = np.linspace(-x_max, x_max, n_x)
    xs = np.concatenate([x, [1e6]])  # the last population sits at the input bound I_max
    N = params.N
    rng = np.random.default_rng(seed)

    def make():
        det = _detector_group(xs.size * N, params, name="calib_detectors", linked=False)
        det.theta = 0.0
        det.x_ff = np.repeat(xs, N)
        t_ref, offset = _ladders(xs.size, params)
        det.offset = offset
        det.t_ref_i = t_ref * b2.second
        det.v = rng.uniform(0.0, 1.0, xs.size * N)
        mons = [b2.PopulationRateMonitor(det[k * N:(k + 1) * N], name=f"calib_rate_{k}") for k in range(xs.size)]
        net = b2.Network(det, *mons, name="calib_network")

        def collect():
            keep = np.asarray(mons[0].t / b2.second) >= transient
            return np.array([np.asarray(m.rate / b2.Hz)[keep].mean() for m in mons])

        return net, collect

    rates = _execute(make, transient + duration, target=target, seed=seed, directory=directory,
                     name="calib")
    r_sat = float(rates[-1])
    f = rates[:-1] / r_sat
    above = np.flatnonzero(f >= 0.5)
    if above.size == 0 or above[0] == 0:
        raise RuntimeError(f"calibration could not locate the half-activation point within ±{x_max}; "
                           "raise x_max or the gain.")
    k = above[0]
    x50 = float(x[k - 1] + (0.5 - f[k - 1]) * (x[k] - x[k - 1]) / (f[k] - f[k - 1]))
    return Calibration(r_sat=r_sat, x50=x50, x=tuple(x), f=tuple(f), target=target)


def detector_threshold(theta, calibration: Calibration):
    """The threshold θ' that makes a detector population half active where its drive X equals ``theta``.

    ``theta`` and X are in the population's own sign (d·H for a δ detector, d·δ for a t detector, ±x for the
    gate's u and v). The detector's input is ``gain (X - θ' + ξ)``, a function of X - θ' alone, and the
    calibration ran the same population at θ' = 0 and found it half active at X = x₅₀. So a population
    with threshold θ' is half active at X - θ' = x₅₀, i.e. at X = θ' + x₅₀, and θ' = θ - x₅₀ puts that
    point at θ (``switching_points`` measures it).
    """
    return np.asarray(theta, dtype=np.float64) - calibration.x50


# --------------------------------------------------------------------------------------------------
# The output error circuit


def _population_weights(*, M, w, inputs):
    """Population weights onto the 6 currents of a circuit: inputs (h⁺, h⁻, s⁺, s⁻) and detectors (0..5)."""
    W_in = np.zeros((4, N_CLASSES))
    if inputs != "constant":
        for q, v in enumerate((M, -M, 2 * M, -2 * M)):
            W_in[q, 0], W_in[q, 1] = v, -v
    W_det = np.zeros((6, N_CLASSES))
    for k in (4, 5):
        W_det[k, 0], W_det[k, 1] = -2 * M * w[k], 2 * M * w[k]
        W_det[k, 5] = w[k]
    for k in range(4):
        W_det[k, 2], W_det[k, 3] = w[k], -w[k]
        W_det[k, 4] = w[k]
    return W_in, W_det


def build_network(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, margin: float = 0.0,
                  delay: float = 0.0, params: DetectorParams = DetectorParams(), calibration: Calibration,
                  inputs: str = "regular", dale: bool = False, record_dt: float = 1e-3, record_spikes: bool = False,
                  record_neurons=(), seed=0, open_loop: bool = False,
                  name: str = "spk"):
    """The spiking circuits for flat arrays ``h``, ``s`` as a ``brian2.Network`` ``{name}_network`` (objects
    created on the current Brian2 device; ``trajectory`` runs it on a target).

    Objects: ``{name}_detectors`` (per circuit 4 δ detectors and 2 t detectors of ``params.N`` neurons),
    ``{name}_inputs`` (per circuit h⁺, h⁻, s⁺, s⁻ of ``params.N_in`` neurons; absent for ``inputs="constant"``),
    ``{name}_currents`` (6 per circuit, module docstring), synapses ``{name}_ff`` (inputs), ``{name}_fb``
    (t detectors → δ currents, detectors → observers), ``{name}_delta_to_t`` (with ``delay``; left out with
    ``open_loop``, so t̂ stays 0), monitors ``{name}_rates`` (δ̂, t̂ every ``record_dt``) and, if asked,
    ``{name}_spikes`` and ``{name}_membrane`` (v and I every step, before the threshold, of the detector neurons ``record_neurons``, flat indices).
    Returns ``(network, layout)``; layout maps each detector neuron to (circuit, detector index 0..5) and
    holds the synapse tables for ``dale_violations``.
    """
    check_params(M=M, S=S, mu=mu, eps=eps, margin=margin)
    import brian2 as b2

    params.check()
    _check_choice("inputs", inputs, INPUTS)
    if dale and (params.N % 2 or params.N_in % 2):
        raise ValueError(f"dale=True splits every population in two halves; N and N_in must be even, "
                         f"got N={params.N}, N_in={params.N_in}.")
    h = np.asarray(h, dtype=np.float64).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    n_c, N, N_in = h.size, params.N, params.N_in
    dets = _delta_steps(M=M, S=S, mu=mu, eps=eps) + _t_steps(mu=mu, eps=eps, margin=margin)
    theta = np.array([d[0] for d in dets])
    direction = np.array([float(d[1]) for d in dets])
    w = np.array([d[2] for d in dets])
    # the current each detector reads: δ detectors class 0 (d = +1) or 1 (d = -1); t detectors class 2 or 3
    cls = np.array([0 if d > 0 else 1 for d in direction[:4]] + [2 if d > 0 else 3 for d in direction[4:]])
    # neuron index = (circuit * 6 + detector) * N + j
    circ = np.repeat(np.arange(n_c), 6 * N)
    det_k = np.tile(np.repeat(np.arange(6), N), n_c)
    rng = np.random.default_rng(seed)
    ff = h + 2 * M * s  # the feed-forward part of H
    objs = []
    det = _detector_group(circ.size, params, name=f"{name}_detectors")
    cur = _currents_group(n_c * N_CLASSES, params, name=f"{name}_currents")
    det.x_in = b2.linked_var(cur, "x", index=(circ * N_CLASSES + cls[det_k]).astype(np.int64))
    # calibrated threshold in the current's own sign: the population is half active at θ_k
    det.theta = detector_threshold(direction[det_k] * theta[det_k], calibration)
    t_ref, offset = _ladders(n_c * 6, params)
    det.offset = offset
    det.t_ref_i = t_ref * b2.second
    det.v = rng.uniform(0.0, 1.0, circ.size)
    is_delta = det_k < 4
    det.x_ff = np.where(is_delta, direction[det_k] * ff[circ], 0.0) if inputs == "constant" else 0.0
    if inputs != "constant":
        x0 = np.zeros((n_c, N_CLASSES))
        x0[:, 0], x0[:, 1] = ff, -ff  # the inputs have been firing before the circuit starts
        cur.x = x0.ravel()
    objs += [det, cur]
    W_in, W_det = _population_weights(M=M, w=w, inputs=inputs)
    tables = {}
    if inputs != "constant":
        r_in = params.r_in
        rates = np.stack([r_in * np.maximum(h, 0) / M, r_in * np.maximum(-h, 0) / M,
                          r_in * (s > 0), r_in * (s < 0)], 1)  # (n_c, 4)
        inp = _input_group(np.repeat(rates.ravel(), N_in), np.zeros(n_c * 4 * N_in), params, kind=inputs, rng=rng,
                           name=f"{name}_inputs")
        j, c, a = _projections(W_in, N_in, r_in, params, dale=dale)
        I = (np.arange(n_c)[:, None] * 4 * N_in + j[None]).ravel()
        J = (np.arange(n_c)[:, None] * N_CLASSES + c[None]).ravel()
        A = np.tile(a, n_c)
        objs += [inp, _synapses(inp, cur, I, J, A, params, name=f"{name}_ff")]
        tables["ff"] = (I, J, A)
    # detectors: t → δ currents and both observers now; δ → t currents after the delay
    for label, cols, syn_delay in (("fb", [0, 1, 4, 5], 0.0), ("delta_to_t", [2, 3], delay)):
        if open_loop and label == "delta_to_t":
            continue
        Wsel = np.zeros_like(W_det)
        Wsel[:, cols] = W_det[:, cols]
        obs = [4, 5]
        # the observers are read out, not synapses onto neurons: every neuron reports, whatever `dale`
        W_neur = Wsel.copy()
        W_neur[:, obs] = 0.0
        j, c, a = _projections(W_neur, N, calibration.r_sat, params, dale=dale)
        if label == "fb":
            W_obs = np.zeros_like(W_det)
            W_obs[:, obs] = W_det[:, obs]
            j2, c2, a2 = _projections(W_obs, N, calibration.r_sat, params, dale=False)
            j, c, a = np.concatenate([j, j2]), np.concatenate([c, c2]), np.concatenate([a, a2])
        I = (np.arange(n_c)[:, None] * 6 * N + j[None]).ravel()
        J = (np.arange(n_c)[:, None] * N_CLASSES + c[None]).ravel()
        A = np.tile(a, n_c)
        objs.append(_synapses(det, cur, I, J, A, params, name=f"{name}_{label}", delay=syn_delay))
        tables[label] = (I, J, A)
    obs_idx = np.sort(np.concatenate([np.arange(n_c) * N_CLASSES + 4, np.arange(n_c) * N_CLASSES + 5]))
    objs.append(b2.StateMonitor(cur, "x", record=obs_idx, dt=record_dt * b2.second, when="end",
                                name=f"{name}_rates"))
    if record_spikes:
        objs.append(b2.SpikeMonitor(det, name=f"{name}_spikes"))
    if len(record_neurons):
        objs.append(b2.StateMonitor(det, ["v", "I"], record=np.asarray(record_neurons, dtype=np.int64),
                                    when="before_thresholds", dt=params.dt * b2.second, name=f"{name}_membrane"))
    net = b2.Network(*objs, name=f"{name}_network")
    return net, {"circuit": circ, "detector": det_k, "synapses": tables, "n_inputs": n_c * 4 * N_in,
                 "n_circuits": n_c}


def dale_violations(layout) -> dict:
    """For each presynaptic group (``"inputs"``, ``"detectors"``), the number of neurons whose synapses onto
    other neurons (the currents of classes 0-3; the observers 4, 5 are read-outs) have both signs."""
    out = {}
    for group, labels in (("inputs", ("ff",)), ("detectors", ("fb", "delta_to_t"))):
        rows = [layout["synapses"][lab] for lab in labels if lab in layout["synapses"]]
        if not rows:
            out[group] = 0
            continue
        I = np.concatenate([r[0] for r in rows])
        J = np.concatenate([r[1] for r in rows])
        A = np.concatenate([r[2] for r in rows])
        onto_neurons = (J % N_CLASSES) < 4
        I, A = I[onto_neurons], A[onto_neurons]
        n = int(I.max()) + 1 if I.size else 0
        pos = np.bincount(I, weights=(A > 0), minlength=n) > 0
        neg = np.bincount(I, weights=(A < 0), minlength=n) > 0
        out[group] = int((pos & neg).sum())
    return out


def transfer_curve(H, *, M: float, S: float = 1.0, mu: float, eps: float,
                   params: DetectorParams = DetectorParams(), duration: float = 0.3, seed=0,
                   target: str = "numpy", directory=None) -> np.ndarray:
    """Calibrated open-loop transfer of the spiking δ unit: mean δ̂ over the last 2/3 of ``duration``
    for each fixed input H (constant inputs, t̂ held at 0), to compare with ``circuits.transfer.sigma_out(H)``."""
    import brian2 as b2

    H = np.asarray(H, dtype=np.float64)
    cal = calibrate(params, target=target, directory=directory)

    def make():
        net, _ = build_network(H.ravel(), np.zeros(H.size), M=M, S=S, mu=mu, eps=eps, params=params,
                               calibration=cal, inputs="constant", seed=seed, open_loop=True, name="spkcal")

        def collect():
            rates = net["spkcal_rates"]
            keep = np.asarray(rates.t / b2.second) >= duration / 3
            return np.asarray(rates.x)[0::2][:, keep].mean(1)

        return net, collect

    return _execute(make, duration, target=target, seed=seed, directory=directory, name="spkcal").reshape(H.shape)


@dataclass
class SpikingTrajectory(Trajectory):
    """Rate-coded δ̂ and t̂ of each circuit, shape ``(n_times, *h.shape)``, sampled at ``times`` (s); the
    fields and readouts of ``circuits.continuous.Trajectory`` plus the calibration used.

    ``spikes``: with ``record_spikes``, a dict with arrays ``circuit``, ``detector`` (0-3: δ detectors at
    -2M-S, -M, M, 2M+S; 4-5: t detectors at -μ-mε, 1+mε), ``neuron`` (0..N-1 within its population) and
    ``time`` (s), one entry per spike; else None. ``membrane``: with ``record_neurons``, ``{"times", "v", "I"}`` (v, I of shape
    (n_times, n_neurons)).
    """

    calibration: Calibration | None = None
    spikes: dict | None = None
    membrane: dict | None = None


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or int(seed) != seed):
        raise ValueError(f"seed must be an integer or None, got {seed!r}.")


def trajectory(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, cycles: int = 15, window: int = 5,
               delay: float = 0.0, margin: float = 0.5, params: DetectorParams = DetectorParams(),
               inputs: str = "regular", dale: bool = False, record_dt: float = 1e-3, record_spikes: bool = False,
               record_neurons=(), seed=0, target: str = "numpy", directory=None,
               on_range: str = "report") -> SpikingTrajectory:
    """Run the spiking circuits from silence (δ̂ = t̂ = 0, the inputs already firing) for ``cycles`` cycles of
    ``2 τ_s + delay`` on ``target``, in one run.

    ``margin`` defaults to 0.5 here (σ_ctl thresholds half way to the oscillation values, docs/spec.md §7.1): with
    the paper's zero margin the t threshold sits exactly on the settled rate-coded δ, and rate noise alone
    switches t on in the update regimes (docs/spiking.md). ``inputs``, ``dale``, ``seed``, ``target``: module
    docstring; ``directory``: the cpp_standalone project folder (default: one per network in the project's build
    folder, ``circuits.brian.standalone_dir``, reused, so that unchanged code is not compiled again). ``record_neurons``: flat indices of
    detector neurons, ``(circuit * 6 + detector) * N + j``, whose v and I are recorded.
    """
    import brian2 as b2

    if int(cycles) != cycles or cycles < 1 or int(window) != window or not 1 <= window <= cycles:
        raise ValueError(f"need integers 1 ≤ window ≤ cycles; got cycles={cycles}, window={window}.")
    if not delay >= 0:
        raise ValueError(f"delay must be ≥ 0 seconds, got {delay}.")
    _check_choice("target", target, TARGETS)
    _check_choice("inputs", inputs, INPUTS)
    _check_seed(seed)
    h, s, report = _prepare(h, s, M=M, S=S, mu=mu, eps=eps, margin=margin, on_range=on_range)
    params.check()
    cal = calibrate(params, target=target, directory=None if directory is None else os.path.join(directory, "calib"))
    period = cycle_length(params.tau_s, delay)

    def make():
        net, layout = build_network(h, s, M=M, S=S, mu=mu, eps=eps, margin=margin, delay=delay, params=params,
                                    calibration=cal, inputs=inputs, dale=dale, record_dt=record_dt,
                                    record_spikes=record_spikes, record_neurons=record_neurons, seed=seed)

        def collect():
            mon = net["spk_rates"]
            x = np.asarray(mon.x)  # rows: circuit 0 δ̂, circuit 0 t̂, circuit 1 δ̂, ...
            out = {"times": np.asarray(mon.t / b2.second), "delta": x[0::2].T, "t_c": x[1::2].T}
            if record_spikes:
                sm = net["spk_spikes"]
                i = np.asarray(sm.i)
                out["spikes"] = {"circuit": layout["circuit"][i], "detector": layout["detector"][i],
                                 "neuron": i % params.N, "time": np.asarray(sm.t / b2.second)}
            if len(record_neurons):
                mm = net["spk_membrane"]
                out["membrane"] = {"times": np.asarray(mm.t / b2.second), "v": np.asarray(mm.v).T,
                                   "I": np.asarray(mm.I).T}
            return out

        return net, collect

    out = _execute(make, cycles * period, target=target, seed=seed, directory=directory, name="spk")
    shape = (out["times"].size, *h.shape)
    return SpikingTrajectory(times=out["times"], delta=out["delta"].reshape(shape), t_c=out["t_c"].reshape(shape),
                             s=s, mu=float(mu), samples_per_cycle=period / record_dt, window=int(window),
                             range=report, calibration=cal, spikes=out.get("spikes"),
                             membrane=out.get("membrane"))


def simulate(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, readout="veto", cycles: int = 15,
             window: int = 5, delay: float = 0.0, margin: float = 0.5, params: DetectorParams = DetectorParams(),
             inputs: str = "regular", dale: bool = False, veto_level: float = 0.5, t_level: float = 0.05, seed=0,
             target: str = "numpy", directory=None, on_range: str = "report") -> np.ndarray:
    """The readout of the spiking circuits' rate-coded δ̂, one value per input (h and s broadcast)."""
    _check_readout(readout)
    traj = trajectory(h, s, M=M, S=S, mu=mu, eps=eps, cycles=cycles, window=window, delay=delay, margin=margin,
                      params=params, inputs=inputs, dale=dale, seed=seed, target=target, directory=directory,
                      on_range=on_range)
    return traj.readout(readout, veto_level=veto_level, t_level=t_level)


def agreement(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, readout="veto", rtol: float = 0.1,
              **kwargs) -> dict:
    """Run ``simulate`` on ``h``, ``s`` (keyword arguments passed on) and return its agreement with eq. 6
    per regime, ``{regime: (n, n_agree)}``, within ``rtol`` of the update value
    (``circuits.continuous.agreement_of``, which calls ``circuits.check.agreement_by_regime``)."""
    values = simulate(h, s, M=M, S=S, mu=mu, eps=eps, readout=readout, **kwargs)
    return agreement_of(values, h, s, mu=mu, S=S, rtol=rtol)


# --------------------------------------------------------------------------------------------------
# The shutdown gate (Fig. 15, eq. 3)


@dataclass
class GateResult:
    """Spiking shutdown gate on a set of units (arrays of x's shape).

    ``delta_tilde``: δ̃ read as the relays' rate over the settled window ``[lead + settle, duration]``
    (in δ units, K·(rate⁺ - rate⁻)/r_in); ``early``: the same over ``[lead, lead + settle)`` (the transient
    after δ arrives, eq. 3 asks for the settled value only); ``control``: the window mean of the control
    populations' normalised rate z = û + v̂ (≈ 1 at a saturated unit, 0 otherwise); ``times``, ``trace``:
    the rate-coded δ̃(t) (decaying with τ_s) of the first ``record`` units, if asked.
    """

    delta_tilde: np.ndarray
    early: np.ndarray
    control: np.ndarray
    calibration: Calibration
    times: np.ndarray | None = None
    trace: np.ndarray | None = None
    control_trace: np.ndarray | None = None


def _gate_control(n_u, params: DetectorParams, cal: Calibration, *, x_band, name, linked: bool = True):
    """The control step detectors of ``n_u`` gates, per unit u (fires for x > 1 - x_band) then v (fires for
    x < -(1 - x_band)), ``params.N`` neurons each, with their calibrated threshold, offsets and refractory
    periods. Their drive (u: max(x, 0), v: max(-x, 0)) is the linked current ``x_in`` that the caller links,
    or, with ``linked=False``, the constant ``x_ff`` that the caller sets (``switching_points``); the
    initial potentials are the caller's too."""
    import brian2 as b2

    det = _detector_group(n_u * 2 * params.N, params, name=name, linked=linked)
    det.theta = detector_threshold(1.0 - x_band, cal)
    det.x_ff = 0.0
    t_ref, offset = _ladders(n_u * 2, params)
    det.offset = offset
    det.t_ref_i = t_ref * b2.second
    return det


def gate_simulate(x, delta, *, K: float, x_band: float = 0.05, g_inh: float = 20.0, lead: float = 50e-3,
                  settle: float = 25e-3, window: float = 100e-3, params: DetectorParams = DetectorParams(),
                  inputs: str = "regular", record: int = 0, record_dt: float = 1e-3, seed=0, target: str = "numpy",
                  directory=None, on_range: str = "report") -> GateResult:
    """The spiking shutdown gate for each unit (module docstring): δ̃ ≈ eq. 3, ``circuits.shutdown.rule``.

    ``x`` in [-1, 1] (feed-forward activity; saturated units have |x| = 1), ``delta`` of the same shape with
    |δ| < K (``on_range`` as in ``circuits.shutdown.simulate``). The control detectors fire for
    |x| > 1 - ``x_band`` (a population cannot resolve finer steps: units with 1 - x_band < |x| < 1 are read
    as saturated). x is present from t = 0, δ arrives at ``lead`` (Fig. 15's sequence: u and v settle first).
    """
    check_params(K=K)
    import brian2 as b2

    from circuits.regimes import enforce_range
    from circuits.shutdown import RANGE_FIX

    params.check()
    _check_choice("target", target, TARGETS)
    _check_choice("inputs", inputs, ("regular", "poisson"))
    _check_seed(seed)
    x = np.asarray(x, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    if x.shape != delta.shape:
        raise ValueError(f"x has shape {x.shape} but delta has shape {delta.shape}; pass one δ per unit.")
    if np.isnan(x).any() or np.abs(x).max(initial=0) > 1:
        raise ValueError("x must lie in [-1, 1] (the activity σ(h) of a saturated-linear unit) and not be NaN.")
    if not 0 < x_band < 0.5 or not g_inh > 1:
        raise ValueError(f"need 0 < x_band < 0.5 and g_inh > 1 (the inhibition must outweigh any δ); "
                         f"got x_band={x_band}, g_inh={g_inh}.")
    if not (lead >= 0 and settle >= 0 and window > 0):
        raise ValueError("lead, settle ≥ 0 and window > 0 (seconds).")
    delta, _ = enforce_range(delta, bound=K, on_range=on_range, name="delta", fix=RANGE_FIX)
    shape = x.shape
    x, delta = x.ravel(), delta.ravel()
    n_u, N, N_in, r_in = x.size, params.N, params.N_in, params.r_in
    record = min(int(record), n_u)
    cal = calibrate(params, target=target, directory=None if directory is None else os.path.join(directory, "calib"))
    t_settle = lead + settle
    duration = t_settle + window
    rng = np.random.default_rng(seed)

    def make():
        C = 3  # currents per unit: u's input (max(x, 0)), v's input (max(-x, 0)), inhibition z
        inp_rates = np.stack([r_in * np.maximum(x, 0), r_in * np.maximum(-x, 0),
                              r_in * np.maximum(delta, 0) / K, r_in * np.maximum(-delta, 0) / K], 1)
        t_on = np.repeat(np.tile([0.0, 0.0, lead, lead], n_u), N_in)
        inp = _input_group(np.repeat(inp_rates.ravel(), N_in), t_on, params, kind=inputs, rng=rng,
                           name="gate_inputs")
        cur = _currents_group(n_u * C, params, name="gate_currents")
        x0 = np.stack([np.maximum(x, 0), np.maximum(-x, 0), np.zeros(n_u)], 1)
        cur.x = x0.ravel()  # x has been present before (Fig. 15 step 2)
        det = _gate_control(n_u, params, cal, x_band=x_band, name="gate_control")
        unit = np.repeat(np.arange(n_u), 2 * N)
        kind = np.tile(np.repeat([0, 1], N), n_u)  # 0: u, 1: v
        det.x_in = b2.linked_var(cur, "x", index=(unit * C + kind).astype(np.int64))
        det.v = rng.uniform(0.0, 1.0, det.N)
        relay = b2.NeuronGroup(n_u * 2 * N_in, "v : 1\nz : 1 (linked)", threshold="v >= 1", reset="v -= 1",
                               namespace={"drain": g_inh * r_in * b2.Hz}, dt=params.dt * b2.second,
                               name="gate_relays")
        relay.run_regularly("v = clip(v - drain * z * dt, 0, 1e9)", when="groups", name="gate_relays_drain")
        r_unit = np.repeat(np.arange(n_u), 2 * N_in)
        relay.z = b2.linked_var(cur, "x", index=(r_unit * C + 2).astype(np.int64))
        out = b2.NeuronGroup(n_u, """ddtilde/dt = -dtilde / tau_s : 1
                                     settled : 1
                                     early : 1""", method="exact", namespace={"tau_s": params.tau_s * b2.second},
                             dt=params.dt * b2.second, name="gate_readout")
        # input x± → the control detectors' currents (excitatory)
        q = np.arange(n_u)[:, None] * 4 * N_in
        jx = (q + np.arange(N_in)[None]).ravel()
        a_x = _increment(1.0, N_in, r_in, params)
        syn_x = _synapses(inp, cur, np.concatenate([jx, jx + N_in]),
                          np.concatenate([np.repeat(np.arange(n_u) * C, N_in), np.repeat(np.arange(n_u) * C + 1, N_in)]),
                          np.full(2 * jx.size, a_x), params, name="gate_x_to_control")
        # δ± → relays, one to one (excitatory: one spike, one output spike)
        jd = (q + 2 * N_in + np.arange(2 * N_in)[None]).ravel()
        syn_d = _synapses(inp, relay, jd, np.arange(n_u * 2 * N_in), np.ones(jd.size), params,
                          name="gate_delta_to_relays", on_pre="v_post += w")
        # control populations → inhibition z of their unit (inhibitory onto the relays)
        syn_z = _synapses(det, cur, np.arange(det.N), unit * C + 2,
                          np.full(det.N, _increment(1.0, N, cal.r_sat, params)), params, name="gate_control_to_z")
        # relays → read-out: δ̃ = K (rate⁺ - rate⁻) / r_in over the windows, and its rate-coded trace
        sign = np.tile(np.repeat([1.0, -1.0], N_in), n_u)
        syn_o = _synapses(relay, out, np.arange(relay.N), r_unit, sign * K, params, name="gate_relays_to_readout",
                          on_pre=(f"settled_post += w * int(t >= t_settle) / ({N_in} * r_in * window)\n"
                                  f"early_post += w * int(t >= lead) * int(t < t_settle) / ({N_in} * r_in * settle_s)\n"
                                  f"dtilde_post += w * trace_gain"),
                          namespace={"t_settle": t_settle * b2.second, "lead": lead * b2.second,
                                "r_in": r_in * b2.Hz, "window": window * b2.second,
                                "settle_s": max(settle, params.dt) * b2.second,
                                     "trace_gain": _increment(1.0, N_in, r_in, params)})
        zmon = b2.StateMonitor(cur, "x", record=np.arange(n_u) * C + 2, when="end", dt=record_dt * b2.second,
                               name="gate_control_monitor")
        objs = [inp, cur, det, relay, out, syn_x, syn_d, syn_z, syn_o, zmon]
        if record:
            objs.append(b2.StateMonitor(out, "dtilde", record=np.arange(record), when="end", dt=record_dt * b2.second,
                                        name="gate_trace_monitor"))
        net = b2.Network(*objs, name="gate_network")

        def collect():
            zt = np.asarray(zmon.t / b2.second)
            z = np.asarray(zmon.x)
            res = {"delta_tilde": np.asarray(out.settled).copy(), "early": np.asarray(out.early).copy(),
                   "control": z[:, zt >= t_settle].mean(1), "control_trace": z[:record].T if record else None}
            if record:
                tm = net["gate_trace_monitor"]
                res["times"] = np.asarray(tm.t / b2.second)
                res["trace"] = np.asarray(tm.dtilde).T
            return res

        return net, collect

    res = _execute(make, duration, target=target, seed=seed, directory=directory, name="gate")
    return GateResult(delta_tilde=res["delta_tilde"].reshape(shape), early=res["early"].reshape(shape),
                      control=res["control"].reshape(shape), calibration=cal, times=res.get("times"),
                      trace=res.get("trace"), control_trace=res.get("control_trace"))


def gate_agreement(x, delta, *, K: float, atol: float | None = None, **kwargs) -> dict:
    """Run ``gate_simulate`` and compare δ̃ with eq. 3 within ``atol`` (default 0.05 K): counts
    ``{"open": (n, n_agree), "saturated": (n, n_agree)}`` (saturated: |x| = 1) and the largest error."""
    from circuits.shutdown import rule

    res = gate_simulate(x, delta, K=K, **kwargs)
    atol = 0.05 * K if atol is None else atol
    x = np.asarray(x, dtype=np.float64)
    err = np.abs(res.delta_tilde - rule(x, delta))
    ok = err <= atol
    sat = np.abs(x) >= 1
    return {"open": (int((~sat).sum()), int((ok & ~sat).sum())), "saturated": (int(sat.sum()), int((ok & sat).sum())),
            "max_error": float(err.max(initial=0.0))}


# --------------------------------------------------------------------------------------------------
# Switching points: where each detector population is half active


DETECTOR_LABELS = ("δ:<−2M−S", "δ:<−M", "δ:>M", "δ:>2M+S", "t:<−μ−mε", "t:>1+mε")
GATE_LABELS = ("u:>1−x_band", "v:<−(1−x_band)")


@dataclass(frozen=True)
class SwitchingPoint:
    """One detector population held at fixed drives X around its breakpoint (``switching_points``).

    ``circuit``: ``"output"`` or ``"gate"``; ``detector``: its label (``DETECTOR_LABELS``, ``GATE_LABELS``);
    ``theta``: the breakpoint, in the variable that drives the population (H for the δ detectors, δ for the
    t detectors, x for u and v); ``direction`` d: the population fires for d (X - θ) > 0; ``scale``: the
    breakpoint's own scale (M for ±M, S for ±(2M+S), ε for the t detectors, x_band for u and v);
    ``drive``, ``f``: the grid of X and the population's rate / r_sat there; ``x_half``: the drive at which f
    reaches 1/2 coming from the silent side (linear interpolation between the two grid points around the
    crossing, the rule of ``calibrate``; NaN if f does not cross 1/2 on the grid).
    """

    circuit: str
    detector: str
    theta: float
    direction: int
    scale: float
    drive: tuple
    f: tuple
    x_half: float

    @property
    def distance(self) -> float:
        """d (x_half - θ): how far past its breakpoint (> 0: away from the silent side) the population
        switches, in units of X."""
        return self.direction * (self.x_half - self.theta)

    @property
    def relative(self) -> float:
        """``distance`` in units of the breakpoint's own scale."""
        return self.distance / self.scale


@dataclass(frozen=True)
class Switching:
    """``points``: every detector population of the output circuit (4 δ, 2 t) and of the gate (u, v), in
    that order; ``calibration``: the calibration the thresholds were set from; ``spacing``: the drive grid's
    step; ``duration``: the counting window (s) after ``transient``; ``params``, ``target``: as run."""

    points: tuple
    calibration: Calibration
    spacing: float
    duration: float
    transient: float
    params: DetectorParams
    target: str


def _half_point(X, f, d):
    """The drive at which f reaches 1/2 from the silent side (d X increasing), as in ``calibrate``."""
    order = np.argsort(d * X)
    y, g = d * X[order], f[order]
    above = np.flatnonzero(g >= 0.5)
    if above.size == 0 or above[0] == 0:
        return float("nan")
    k = above[0]
    return float(d * (y[k - 1] + (0.5 - g[k - 1]) * (y[k] - y[k - 1]) / (g[k] - g[k - 1])))


def switching_points(params: DetectorParams = DetectorParams(), *, M: float, S: float = 1.0, mu: float, eps: float,
                     margin: float = 0.5, x_band: float = 0.05, n_grid: int = 41, half_width: float | None = None,
                     duration: float = 0.3, transient: float = 0.05, seed=0, target: str = "numpy",
                     directory=None) -> Switching:
    """Measure where every detector population of the circuits switches: its half-activation drive.

    Each population is the one the circuits build, with the threshold they give it: the four δ and two t
    detectors of ``build_network`` (open loop, constant inputs) and the u, v control detectors of the gate.
    Each is held at ``n_grid`` fixed drives X = θ + Δ, Δ evenly spaced in [-half_width, half_width] (default:
    the calibration's range of x, or 4 |x₅₀| if larger), one copy of the population per drive: the δ
    detectors through H (``x_ff = d H``), the t detectors through a fixed δ (``x_ff = d δ``; open loop, their
    synaptic input stays 0), u and v through x (``x_ff = ±x``). Its rate is its spike count over ``duration``
    after ``transient``, divided by N and r_sat. One Brian2 run on ``target``, after the (cached) calibration;
    ``seed`` as in the module docstring. Returns a ``Switching``; ``SwitchingPoint.distance`` is 0 for a
    population that switches exactly at its breakpoint.
    """
    check_params(M=M, S=S, mu=mu, eps=eps, margin=margin)
    import brian2 as b2

    params.check()
    _check_choice("target", target, TARGETS)
    _check_seed(seed)
    if int(n_grid) != n_grid or n_grid < 3:
        raise ValueError(f"n_grid must be an integer ≥ 3 (drives per population), got {n_grid}.")
    if not 0 < x_band < 0.5:
        raise ValueError(f"x_band must be in (0, 0.5), got {x_band}.")
    if not (duration > 0 and transient >= 0):
        raise ValueError(f"need duration > 0 and transient ≥ 0 (seconds); got {duration}, {transient}.")
    if half_width is not None and not half_width > 0:
        raise ValueError(f"half_width must be positive (units of the drive), got {half_width}.")
    cal = calibrate(params, target=target, directory=None if directory is None else os.path.join(directory, "calib"))
    hw = float(half_width) if half_width is not None else max(float(np.max(np.abs(cal.x))), 4 * abs(cal.x50))
    grid = np.linspace(-hw, hw, int(n_grid))
    n, N = grid.size, params.N
    dets = _delta_steps(M=M, S=S, mu=mu, eps=eps) + _t_steps(mu=mu, eps=eps, margin=margin)
    theta = np.array([d[0] for d in dets])
    direction = np.array([d[1] for d in dets])
    scales = (S, M, M, S, eps, eps)
    # circuits 0..4n-1: δ detector k at H = θ_k + Δ; circuits 4n..6n-1: t detector at δ = θ + Δ (H = 0)
    H = np.concatenate([theta[k] + grid for k in range(4)] + [np.zeros(2 * n)])
    dt_drive = np.concatenate([np.zeros(4 * n), theta[4] + grid, theta[5] + grid])
    # gate units 0..n-1: u at x = 1 - x_band + Δ; units n..2n-1: v at x = -(1 - x_band) + Δ
    xg = np.concatenate([(1.0 - x_band) + grid, -(1.0 - x_band) + grid])
    rng = np.random.default_rng(seed)

    def make():
        net, layout = build_network(H, np.zeros(H.size), M=M, S=S, mu=mu, eps=eps, margin=margin, params=params,
                                    calibration=cal, inputs="constant", seed=seed, open_loop=True, name="swp")
        det = net["swp_detectors"]
        k, c = layout["detector"], layout["circuit"]
        det.x_ff = direction[k] * np.where(k < 4, H[c], dt_drive[c])
        gate = _gate_control(xg.size, params, cal, x_band=x_band, name="swp_gate_control", linked=False)
        sign = np.tile(np.repeat([1.0, -1.0], N), xg.size)  # u reads x, v reads -x
        gate.x_ff = sign * np.repeat(xg, 2 * N)
        gate.v = rng.uniform(0.0, 1.0, gate.N)
        mons = [b2.SpikeMonitor(det, name="swp_detector_spikes"), b2.SpikeMonitor(gate, name="swp_gate_spikes")]
        net.add(gate, *mons)

        def collect():
            out = []
            for m, size in zip(mons, (det.N, gate.N)):
                keep = np.asarray(m.t / b2.second) >= transient
                counts = np.bincount(np.asarray(m.i)[keep], minlength=size)
                out.append(counts.reshape(-1, N).sum(1) / (N * duration * cal.r_sat))
            return out

        return net, collect

    f_det, f_gate = _execute(make, transient + duration, target=target, seed=seed, directory=directory, name="swp")
    f_det = f_det.reshape(6 * n, 6)  # (circuit, detector)
    f_gate = f_gate.reshape(2 * n, 2)  # (unit, u/v)
    points = []
    for k in range(6):
        rows = np.arange(n) + k * n
        X = H[rows] if k < 4 else dt_drive[rows]
        f = f_det[rows, k]
        points.append(SwitchingPoint("output", DETECTOR_LABELS[k], float(theta[k]), int(direction[k]),
                                     float(scales[k]), tuple(X), tuple(f), _half_point(X, f, direction[k])))
    for j, d in enumerate((1, -1)):
        rows = np.arange(n) + j * n
        X, f = xg[rows], f_gate[rows, j]
        points.append(SwitchingPoint("gate", GATE_LABELS[j], float(d * (1.0 - x_band)), d, float(x_band),
                                     tuple(X), tuple(f), _half_point(X, f, d)))
    return Switching(points=tuple(points), calibration=cal, spacing=float(grid[1] - grid[0]), duration=float(duration),
                     transient=float(transient), params=params, target=target)
