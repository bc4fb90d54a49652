"""The whole learning machine of Amit (2019) in spikes: the rate network of ``circuits.learning_network`` with
every unit, control unit and circuit detector carried by a population of leaky integrate-and-fire neurons
(docs/spiking_network.md).

Same plain-data input as ``LearningNetwork`` (layers, W and R synapse lists, the event order checked by
``check_events``, η per example, the circuit parameters) and the same slots (``slot_table``), each slot a timed
phase of ``phase`` seconds; the output circuit's cycle slots are split into a δ phase and a t phase (the
sequential order of Fig. 14). One ``Network.run`` presents a block of examples; ``run`` is the rate network's
own (the class is a ``LearningNetwork`` with spiking objects).

Populations. Every neuron is the LIF step neuron of ``circuits.spiking`` (``DetectorParams``: τ_m, a refractory
period drawn anew at every spike, gain, I_max, dt) with its own threshold θ_n and a sign s_n::

    τ_m dv/dt = I - v  (unless refractory),  I = 1 + clip(gain (s_n X - Z - θ_n), -1, I_max - 1),  spike at v > 1

``X`` (drive) and ``Z`` (inhibition) are linked from the population's row in a unit group. A neuron fires at
≈ r_sat (measured by ``spiking.calibrate``) when its drive is past θ_n and is silent otherwise. Coding, ON/OFF
(push-pull): a unit of layer l has N neurons with s_n = +1 (ON) and N with s_n = -1 (OFF), thresholds on the
ladder θ_n = (j + ½)/N - x₅₀ (j = 0..N-1, the calibrated half-activation point x₅₀ subtracted); its value is
``scale · (count_ON - count_OFF) / (N r_c T)`` (r_c = ``count_rate``, T the counting window). With X = a·h the ON fraction is clip(a h, 0, 1) and the OFF
fraction clip(-a h, 0, 1): the saturated-linear σ(h) = clip(a h, -1, 1) is the population's response, resolved
to 1/N, not a formula. Step populations (the shutdown units u, v; the detectors of σ_out and σ_ctl) have all
thresholds at the step, spread by ``params.spread``·Φ⁻¹((j + ½)/N) as in ``circuits.spiking``.

Phases. Every neuron starts each phase at rest (a top-down reset with the slot clock), and every group counts its
neurons' spikes after the first ``settle`` seconds of the phase (the population's onset is synchronous; the
random refractory periods dephase it). A count is normalised by ``count_rate``: the rate that such a count reads
at full drive, measured by a Brian2 run of the same neurons. At the last step of every phase each row latches its value
(the measurement of that phase) and the count restarts. At the first step of phase p the operations of p read
those measurements (what earlier phases wrote) and set the drives, in this order within the step:
``end`` of the previous step: latch, then the Hebbian updates of an update phase; ``groups``: the summed inputs
of the layers (W v, R v; Brian2 runs a summed variable at its target's order - 1: order 1), the layers'
operations (3), the summed inputs of the shutdown units and detectors (4), their operations (6), the phase reset
of every neuron (7: v = 0, not refractory, at the first step of each phase), the neurons (8).
Values (v = the measured value of each unit):

- present: input X = x_0 (TimedArray), every other drive 0 (silent), s latched (TimedArray), t̂ = 0;
- forward l: X = a·(W v_{l-1}) (hidden, scale 1), or X = h/h_scale at the output (scale ``h_scale``, between S
  and M: |h_L| ≥ h_scale saturates, which leaves the regime of eq. 6 unchanged for |h_L| < M);
- error, cycle c, δ phase: detector k of σ_out (θ_k, d_k, w_k = ``spiking.steps``) driven by
  d_k (H - θ_k), H = y + 2M s - 2M t̂, y = the output's measured h_L (latched at the first δ phase);
  t phase: the σ_ctl detectors driven by d_k (δ̂ - θ_k), δ̂ = Σ w_k rate_k of the δ phase; t̂ likewise. Veto
  readout: δ_L = δ̂ of the last cycle, 0 if |δ̂| < ``zero_level`` in one of the last period of cycles; set on the
  output populations at the next phase (X = δ_L/D, scale D = ``delta_scale``);
- gate l: u, v populations driven by v_l (u fires for x > 1 - x_band, v for x < -(1 - x_band)); their summed
  normalised rate ẑ = û + v̂ is latched at the end of the phase;
- send l: the layer below latches fb = R v_l (v_l: δ_l measured in the phase before);
- replace l: X = a·fb/D and Z = (2 K a / D) ẑ on both the ON and OFF populations: the rectification of the
  populations passes a·fb where u and v are silent and shuts it where the unit is saturated (eq. 3, the
  subtractive gate of Fig. 15 as in ``spiking.gate_simulate``'s relays); scale D;
- update l: at the end of the phase, w += η·v_post·v_pre on every W synapse of layer l (and r += η·v_pre·v_post
  on R under URFB): products of the two populations' activities measured in the update phase.

Dale's law (``dale=True``). The ON/OFF code breaks it at every projection: a unit's value is read as ON - OFF
and drives its targets' ON neurons with the sign of the coefficient and their OFF neurons with the other, so
every neuron acts with both signs. With ``dale`` each sign of a population is split into two co-tuned routes
of N/2 neurons (A and B; same drive, each a full ladder of N/2 thresholds), counted apart (vA, vB, each reading
1 at full drive) besides the whole count v. A consumer whose coefficient κ on its target neurons' current is
positive reads route A, otherwise route B: route A's ON neurons then always excite and its OFF neurons always
inhibit, route B's the reverse, so every neuron has one sign (``dale_violations`` counts the others). κ is the
weight w for the targets' ON neurons and -w for their OFF neurons, which therefore receive their own estimate
of the drive (``Xn``, from h_n = Σ w·v_route(-w), ``fbn``; ``NEURON_EQS_DALE``); in the output circuit a detector
of direction d reads H and δ̂ through the routes of d·κ (Hp, Hm; dp, dm). A weight that changes sign moves its
effect from one route to the other (its magnitude is carried by the synapses of that route). The shutdown
units act only through Z, which inhibits, so they are not split. Readouts stay whole: the Hebbian products use
v of both populations, the veto and the records the whole δ̂. Same neurons in all; each estimate carried by
half of them.

Targets: numpy / cython (runtime) and cpp_standalone, as for ``LearningNetwork`` (the caller sets Brian2's
device). ``seed`` draws the initial membrane potentials (NumPy generator, the same on every target) and seeds
Brian2's generator (the refractory draws) before the first run.
"""
from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from circuits import output_error, spiking, transfer
from circuits.learning_network import LearningNetwork, check_events, slot_table
from circuits.params import check_params

__all__ = ["phase_table", "SpikingLearningNetwork", "NEURON_EQS", "NEURON_EQS_DALE", "PARAMS"]

# circuits.spiking's neuron with refractory periods drawn in t_ref·(1 ± 0.9): a population switched on fires in
# synchrony once, then dephases within about two spikes (± 0.25 takes ten)
PARAMS = spiking.DetectorParams(t_ref_spread=0.9)

NEURON_EQS = """
dv/dt = (I - v) / tau_m : 1 (unless refractory)
I = 1 + clip(gain * (sgn * X - Z - theta), -1, I_max - 1) : 1
t_ref_i : second
theta : 1 (constant)
sgn : 1 (constant)
X : 1 (linked)
Z : 1 (linked)
"""

# with Dale's law: the ON neurons (sgn = +1) read the drive X, the OFF neurons (sgn = -1) their own estimate Xn
# of the same quantity, received through the routes of the other sign (module docstring)
NEURON_EQS_DALE = NEURON_EQS.replace("sgn * X", "(int(sgn > 0) * X - int(sgn < 0) * Xn)") + "Xn : 1 (linked)\n"


@functools.lru_cache(maxsize=32)
def count_rate(params: spiking.DetectorParams, phase: float, settle: float, *, n: int = 2000, seed: int = 0) -> float:
    """The rate (Hz) that a phase's count reads at full drive: spikes per neuron counted in [settle, phase) by
    ``n`` neurons of ``NEURON_EQS`` reset at the phase's start (v = 0, not refractory), divided by the window.
    One Brian2 run on the runtime device (numpy); Brian2's random state is restored afterwards."""
    import brian2 as b2
    from brian2.devices.device import get_device, reset_device

    b2.set_device("runtime")
    old_target = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    state = get_device().get_random_state()
    try:
        ns = {"tau_m": params.tau_m * b2.second, "gain": params.gain, "I_max": params.I_max,
              "t_ref": params.t_ref * b2.second, "t_ref_spread": params.t_ref_spread}
        g = b2.NeuronGroup(n, NEURON_EQS.replace("(linked)", "(constant)"), threshold="v > 1",
                           reset="v = 0\nt_ref_i = t_ref * (1 + t_ref_spread * (2 * rand() - 1))",
                           refractory="t_ref_i", method="euler", namespace=ns, dt=params.dt * b2.second,
                           name="count_rate_neurons")
        g.sgn, g.X = 1.0, 1e3
        q = (np.arange(n) + 0.5) / n
        g.t_ref_i = params.t_ref * (1 + params.t_ref_spread * (2 * q - 1)) * b2.second
        mon = b2.SpikeMonitor(g, name="count_rate_spikes")
        net = b2.Network(g, mon, name="count_rate_network")
        b2.seed(seed)
        net.run(phase * b2.second, namespace={})
        steps = np.round(np.asarray(mon.t / b2.second) / params.dt).astype(int)
        counted = int((steps >= int(round(settle / params.dt))).sum())
    finally:
        get_device().set_random_state(state)
        b2.prefs.codegen.target = old_target
        reset_device()
    return counted / (n * (phase - settle))


def phase_table(events, cycles: int) -> list[tuple[str, int | None, int]]:
    """The phases of one example: ``slot_table``'s slots with each ``error`` slot split into an ``error-delta``
    and an ``error-t`` phase (the sequential order of one cycle of Fig. 14)."""
    out = []
    for kind, layer, c in slot_table(events, cycles):
        out += [("error-delta", layer, c), ("error-t", layer, c)] if kind == "error" else [(kind, layer, c)]
    return out


class SpikingLearningNetwork(LearningNetwork):
    """The spiking learning network for a block of ``n_examples`` examples per run (module docstring).

    Plain data and circuit parameters as ``LearningNetwork`` (readout ``veto``, order ``sequential``), plus:
        N: neurons per population (per sign for a unit). phase: duration of one phase (s). settle: the start of
        each phase whose spikes are not counted (the populations' onset transient). params: the neuron
        (``spiking.DetectorParams``, default ``PARAMS``; its N and N_in are not used). calibration:
        ``spiking.calibrate``'s result
        for these neurons (measured here with spread 0 if None). delta_scale: D, the value carried at full
        rate by a population holding δ. h_scale: the h_L carried at full rate by an output population (h_L
        beyond it saturates; S < h_scale ≤ M keeps every regime of eq. 6 for |h_L| < M). x_band: the shutdown
        units fire for |x| > 1 - x_band. zero_level: |δ̂|
        below it is read as 0 by the veto. seed: initial potentials and Brian2's generator.
        record_phases: monitor every unit's measured value (and h, fb, the circuit's δ̂, t̂) at every phase.
        record_spikes: a SpikeMonitor per neuron group.
    """

    def __init__(self, n_in, layers, events, *, learn_R: bool, n_examples: int, M: float, S: float = 1.0,
                 mu: float, eps: float, K: float, margin: float = 0.5, cycles: int | None = None,
                 order: str = "sequential", readout: str = "veto", N: int = 30, phase: float = 40e-3,
                 params: spiking.DetectorParams = None, calibration=None,
                 settle: float = 10e-3, delta_scale: float = 2.0, h_scale: float = 4.0, x_band: float = 0.05,
                 zero_level: float = 0.05, seed: int = 0, dale: bool = False,
                 record_weights: bool = True, record_phases: bool = False, record_spikes: bool = False,
                 name: str = "sn", directory: str | None = None):
        # ---- every check before any Brian2 object exists
        if order != "sequential" or readout != "veto":
            raise ValueError(f"order {order!r}, readout {readout!r}: the spiking network runs the output circuit "
                             "in the sequential order with the veto readout; use order='sequential', readout='veto'")
        need = output_error.min_cycles(readout, order)
        cycles = need if cycles is None else int(cycles)
        check_params(M=M, S=S, mu=mu, eps=eps, K=K, margin=margin, cycles=cycles)
        if cycles < need:
            raise ValueError(f"readout {readout!r} with order {order!r} needs cycles ≥ {need}, got {cycles}")
        if not layers or layers[-1]["act"]:
            raise ValueError("the last layer must be the linear output layer (act False)")
        if int(n_examples) < 1:
            raise ValueError(f"n_examples must be a positive integer, got {n_examples}")
        if int(N) != N or N < 2:
            raise ValueError(f"N (neurons per population) must be an integer ≥ 2, got {N}")
        if dale and N % 2:
            raise ValueError(f"dale=True carries each sign of a population by two routes of N/2 neurons; N must be "
                             f"even, got {N}")
        params = PARAMS if params is None else params
        params.check()
        n_steps = int(round(phase / params.dt))
        if n_steps < 2 or abs(n_steps * params.dt - phase) > 1e-9 * phase:
            raise ValueError(f"phase = {phase} s must be a whole number (≥ 2) of steps dt = {params.dt} s")
        n_settle = int(round(settle / params.dt))
        if not 0 <= n_settle <= n_steps - 2 or abs(n_settle * params.dt - settle) > 1e-9 * max(settle, params.dt):
            raise ValueError(f"settle = {settle} s must be a whole number of steps dt = {params.dt} s, shorter than "
                             f"the phase ({phase} s) by at least two steps")
        if not S < h_scale <= M:
            raise ValueError(f"h_scale = {h_scale}: the output populations must carry h_L beyond S = {S} (where the "
                             f"circuit's regimes change) and at most M = {M}; choose S < h_scale ≤ M")
        if not (delta_scale > 0 and 0 < x_band < 0.5 and zero_level > 0):
            raise ValueError("need delta_scale > 0, 0 < x_band < 0.5 and zero_level > 0")
        if int(seed) != seed:
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.events = check_events(layers, events)  # ScheduleError here, before any Brian2 object
        self.slots = slot_table(self.events, cycles)
        self.phases = phase_table(self.events, cycles)
        if calibration is None:
            calibration = spiking.calibrate(replace(params, spread=0.0, N=20), target="numpy")
        r_count = count_rate(params, float(phase), float(settle))
        import brian2 as b2

        self.b2, self.calibration, self.params = b2, calibration, params
        self.n_in, self.n_examples, self.name, self.layers = int(n_in), int(n_examples), name, layers
        self.learn_R, self.cycles, self.order, self.readout = bool(learn_R), cycles, order, readout
        self.N, self.phase, self.delta_scale, self.seed = int(N), float(phase), float(delta_scale), int(seed)
        self.dale, self.projections = bool(dale), []
        self.standalone = b2.get_device().__class__.__name__ == "CPPStandaloneDevice"
        self.directory, self.record_weights, self._built, self.runs = directory, bool(record_weights), False, 0
        self._seeded = False
        if self.standalone:
            from circuits.brian import use_exact_flags

            use_exact_flags(b2)  # the same IEEE operations as the runtime targets
        self.n_phases = n_ph = len(self.phases)
        self.n_slots = n_ph
        dt = params.dt * b2.second
        self.dt = dt
        T_ex = n_ph * n_steps * dt
        self.example_duration = T_ex
        n_out, D, x50 = layers[-1]["units"], float(delta_scale), calibration.x50
        self.count_rate = r_count
        # a count of N neurons at full drive over the counting window (the phase after its first `settle` s) reads 1
        norm = 1.0 / (N * r_count * (phase - settle))
        clock = b2.Clock(dt=dt, name=f"{name}_clock")
        self.stim = b2.TimedArray(np.zeros((self.n_examples, self.n_in)), dt=T_ex, name=f"{name}_stimulus")
        self.sup = b2.TimedArray(-np.ones((self.n_examples, n_out)), dt=T_ex, name=f"{name}_supervision")
        self.eta = b2.TimedArray(np.zeros(self.n_examples), dt=T_ex, name=f"{name}_eta")
        rng = np.random.default_rng(seed)
        objects, self.neuron_groups, self.neuron_tables = [], {}, {}
        STEP = "int(t/dt + 0.5)"
        head = (f"phase = ({STEP} // {n_steps}) % {n_ph}\nfirst = int({STEP} % {n_steps} == 0)\n"
                f"last = int({STEP} % {n_steps} == {n_steps - 1})\n")
        where = {}
        for k, (kind, layer, c) in enumerate(self.phases):
            where.setdefault((kind, layer), []).append(k)

        def at(kind, layer, k=0):
            return f"first * int(phase == {where[(kind, layer)][k]})"

        def choose(var, cases):
            """var = Σ cond_k·expr_k + (1 - Σ cond_k)·var; the conditions are 0/1 and exclusive."""
            keep = " - ".join(f"({c})" for c, _ in cases)
            return f"{var} = " + " + ".join(f"({c})*({e})" for c, e in cases) + f" + (1 - {keep})*{var}"

        def units(n, extra, gname, ns=None, routed=False):
            """A unit group: one row per population (pair); v = the value measured over the last phase (all its
            neurons). With Dale's law a ``routed`` group also measures each route: vA, vB (N/2 neurons per sign)."""
            routed = routed and self.dale
            more = "cA : 1\ncB : 1\nvA : 1\nvB : 1\n" if routed else ""
            g = b2.NeuronGroup(n, "X : 1\nZ : 1\ncnt : 1\nv : 1\nscale : 1\n" + more + extra, name=gname,
                               clock=clock, namespace=dict(ns or {}), order=2)
            g.scale = 1.0
            objects.append(g)
            latch = f"v = last * scale * cnt * {norm!r} + (1 - last) * v\ncnt = (1 - last) * cnt"
            if routed:  # a route has half the neurons: its count reads 1 at full drive with twice the norm
                latch += "".join(f"\nv{r} = last * scale * c{r} * {2 * norm!r} + (1 - last) * v{r}\n"
                                 f"c{r} = (1 - last) * c{r}" for r in "AB")
            objects.append(g.run_regularly(head + latch, when="end", order=0, name=f"{gname}_latch"))
            return g

        def op(g, code, oname, order_=3):
            objects.append(g.run_regularly(head + code, when="groups", order=order_, name=oname))

        def neurons(g, per_row, sgn, theta, count_sign, gname, route=None):
            """``per_row`` neurons per row of unit group g, signs ``sgn`` and thresholds ``theta`` (per_row
            values, repeated for every row); their spikes add ``count_sign`` to the row's count (and, with
            Dale's law, to the count of their ``route``: 1 = A, 0 = B)."""
            n = g.N * per_row
            ns = {"tau_m": params.tau_m * b2.second, "gain": params.gain, "I_max": params.I_max,
                  "t_ref": params.t_ref * b2.second, "t_ref_spread": params.t_ref_spread}
            routed = "vA" in g.variables
            ng = b2.NeuronGroup(n, NEURON_EQS_DALE if self.dale else NEURON_EQS, threshold="v > 1",
                                reset="v = 0\nt_ref_i = t_ref * (1 + t_ref_spread * (2 * rand() - 1))",
                                refractory="t_ref_i", method="euler", namespace=ns, clock=clock, name=gname,
                                order=8)
            # every phase starts from rest (v = 0, not refractory): each count has the statistics of count_rate;
            # on a clock of one phase, so the neurons are visited at the first step of a phase only
            objects.append(ng.run_regularly("v = 0\nlastspike = t - 1*second", dt=n_steps * dt, when="groups",
                                            order=7, name=f"{gname}_phase_reset"))
            row = np.repeat(np.arange(g.N), per_row).astype(np.int64)
            ng.X = b2.linked_var(g, "X", index=row)
            ng.Z = b2.linked_var(g, "Z", index=row)
            if self.dale:
                ng.Xn = b2.linked_var(g, "Xn" if "Xn" in g.variables else "X", index=row)
            ng.sgn = np.tile(sgn, g.N)
            ng.theta = np.tile(theta, g.N)
            q = (np.arange(per_row) + 0.5) / per_row
            ng.t_ref_i = np.tile(params.t_ref * (1 + params.t_ref_spread * (2 * q - 1)), g.N) * b2.second
            ng.v = rng.uniform(0.0, 1.0, n)
            counted = f"int({STEP} % {n_steps} >= {n_settle})"
            sy = b2.Synapses(ng, g, "c : 1 (constant)" + ("\nra : 1 (constant)" if routed else ""),
                             name=f"{gname}_count", clock=clock,
                             on_pre=f"cnt_post += c * {counted}" + (f"\ncA_post += c * ra * {counted}\n"
                                                                   f"cB_post += c * (1 - ra) * {counted}"
                                                                   if routed else ""))
            sy.connect(i=np.arange(n, dtype=np.int64), j=row)
            sy.c = np.tile(count_sign, g.N)
            if routed:
                sy.ra = np.tile(route, g.N)
            self.neuron_tables[g.name] = (np.tile(np.asarray(count_sign, float), g.N),
                                          np.tile(np.asarray(route, float), g.N) if routed else None)
            objects.extend([ng, sy])
            self.neuron_groups[g.name] = ng
            return ng

        def synapses(pre, post, eqs, sname, i, j):
            sy = b2.Synapses(pre, post, eqs, name=sname, namespace={"eta_of": self.eta}, clock=clock)
            i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
            if len(i):
                sy.connect(i=i, j=j)
                if not (np.array_equal(np.asarray(sy.i[:]), i) and np.array_equal(np.asarray(sy.j[:]), j)):
                    raise RuntimeError(f"Brian2 reordered the synapses of {sname}")
            objects.append(sy)
            return sy

        from scipy.stats import norm as gauss

        ladder = (np.arange(N) + 0.5) / N - x50  # the linear populations' thresholds (ON and OFF alike)
        pair_sgn = np.repeat([1.0, -1.0], N)
        pair_theta = np.tile(ladder, 2)
        step = params.spread * gauss.ppf((np.arange(N) + 0.5) / N) - x50  # a step population's thresholds
        pair_route = step_route = None
        if self.dale:  # each sign in two routes (A, B) of N/2 neurons, each route a full ladder of its own
            h = N // 2
            pair_theta = np.tile((np.arange(h) + 0.5) / h - x50, 4)
            pair_route = np.tile(np.repeat([1.0, 0.0], h), 2)
            step_route = np.repeat([1.0, 0.0], h)
            step_routed = np.tile(params.spread * gauss.ppf((np.arange(h) + 0.5) / h) - x50, 2)

        def route(k):
            """What a consumer with coefficient ``k`` on its target neurons' current reads of a pre group: the
            whole population, or with Dale's law route A where k > 0 and route B elsewhere, so that every
            neuron acts with one sign (A: its count sign, B: the other)."""
            return f"(int({k} > 0) * vA_pre + int({k} <= 0) * vB_pre)" if self.dale else "v_pre"

        def project(pre, rows, kappa):
            """Record a projection of ``pre``'s rows onto neurons with coefficients ``kappa`` (an array or a
            function of the current weights) for ``dale_violations``."""
            self.projections.append((pre.name, np.asarray(rows, dtype=np.int64), kappa, "vA" in pre.variables))

        # input x_0: ON/OFF populations driven by the example's TimedArray row in the present phase
        # (with Dale's law an ON/OFF group holds Xn, its OFF neurons' drive; a step group's neurons read X)
        inp = units(self.n_in, "Xn : 1\n" if self.dale else "", f"{name}_input", {"stimulus": self.stim},
                    routed=True)
        drive = "stimulus(t - t_start, i)"
        op(inp, "\n".join([choose("X", [(at("present", None), drive)])]
                          + ([choose("Xn", [(at("present", None), drive)])] if self.dale else [])),
           f"{name}_input_present")
        neurons(inp, 2 * N, pair_sgn, pair_theta, pair_sgn, f"{name}_input_neurons", pair_route)
        pops, self.groups = [inp], {"input": inp}
        self.W_syn, self.R_syn = [], []
        out_idx = len(layers) - 1
        sends = {i for kind, i in self.events if kind == "send"}
        self._layer_groups = []
        for li, L in enumerate(layers):
            n, lname, is_out = int(L["units"]), L.get("name", f"layer{li}"), li == out_idx
            a = float(L["slope"])
            extra = "h : 1\n" + ("y : 1\nH : 1\ndhat : 1\nthat : 1\nseen0 : 1\ns : 1\nI_d : 1\nI_t : 1\n" if is_out
                                 else "I_fb : 1\nfb : 1\nI_z : 1\n")
            if self.dale:  # the OFF neurons' estimates, and the output circuit's quantities per route
                extra += "Xn : 1\nhn : 1\n" + ("yA : 1\nyB : 1\nHp : 1\nHm : 1\ndp : 1\ndm : 1\ntp : 1\ntm : 1\n"
                                       "I_dp : 1\nI_dm : 1\nI_tp : 1\nI_tm : 1\n" if is_out
                                       else "I_fbn : 1\nfbn : 1\n")
            g = units(n, extra, f"{name}_{lname}", {"supervision": self.sup}, routed=True)
            pops.append(g)
            self.groups[lname] = g
            self._layer_groups.append(g)
            pre = pops[li]
            W = L["W"]
            sw = synapses(pre, g, f"w : 1\nh_post = w * {route('w')} : 1 (summed)"
                          + (f"\nhn_post = w * {route('-w')} : 1 (summed)" if self.dale else ""),
                          f"{name}_{lname}_W", W["pre"], W["post"])
            sw.w = np.asarray(W["w"], dtype=np.float64)
            project(pre, W["pre"], lambda sw=sw: np.asarray(sw.w[:]))  # onto the ON neurons of the layer
            project(pre, W["pre"], lambda sw=sw: -np.asarray(sw.w[:]))  # and its OFF neurons
            upd = where[("update", li)][0]
            hebb = f"int(phase == {upd}) * last * eta_of(t - t_start)"
            objects.append(sw.run_regularly(head + f"w += {hebb} * v_post * v_pre", when="end", order=1,
                                            name=f"{name}_{lname}_W_hebb"))
            self.W_syn.append(sw)
            R = L["R"]
            summed = li in sends and li > 0
            fb_eqs = f"\nI_fb_post = r * {route('r')} : 1 (summed)" + (
                f"\nI_fbn_post = r * {route('-r')} : 1 (summed)" if self.dale else "")
            sr = synapses(g, pre, "r : 1" + (fb_eqs if summed else ""), f"{name}_{lname}_R", R["pre"], R["post"])
            sr.r = np.asarray(R["w"], dtype=np.float64)
            if summed:
                project(g, R["pre"], lambda sr=sr: np.asarray(sr.r[:]))
                project(g, R["pre"], lambda sr=sr: -np.asarray(sr.r[:]))
            if self.learn_R:
                objects.append(sr.run_regularly(head + f"r += {hebb} * v_pre * v_post", when="end", order=1,
                                                name=f"{name}_{lname}_R_hebb"))
            self.R_syn.append(sr)
            if li > 0:  # the layer below latches R δ in the send slot of this layer
                op(pops[li], "\n".join([choose("fb", [(at("send", li), "I_fb")])]
                                       + ([choose("fbn", [(at("send", li), "I_fbn")])] if self.dale else [])),
                   f"{pops[li].name}_receive")
            neurons(g, 2 * N, pair_sgn, pair_theta, pair_sgn, f"{g.name}_neurons", pair_route)
            if is_out:
                continue
            # the shutdown units u (x > 1 - x_band) and v (x < -(1 - x_band)); ẑ = û + v̂
            # (not routed: u and v act on the layer only through Z, which inhibits, so each neuron has one sign)
            gc = units(n, "I_x : 1" + ("\nXn : 1\nI_xn : 1" if self.dale else ""), f"{name}_{lname}_uv")
            gc.order = 5  # summed inputs at order - 1 = 4: after the layer's operations (set before its synapses)
            idx = np.arange(n)
            synapses(g, gc, f"I_x_post = {route('1')} : 1 (summed)"
                     + (f"\nI_xn_post = {route('-1')} : 1 (summed)" if self.dale else ""),
                     f"{name}_{lname}_x_to_uv", idx, idx)
            synapses(gc, g, "I_z_post = v_pre : 1 (summed)", f"{name}_{lname}_uv_to_x", idx, idx)
            project(g, idx, np.ones(n))  # x excites u (ON neurons) ...
            project(g, idx, -np.ones(n))  # ... and drives v (OFF neurons) with the other sign
            project(gc, idx, -np.ones(n))  # ẑ inhibits the layer's ON and OFF neurons
            op(gc, "\n".join([choose("X", [(at("present", None), "0.0"), (at("gate", li), "I_x")])]
                             + ([choose("Xn", [(at("present", None), "0.0"), (at("gate", li), "I_xn")])]
                                if self.dale else [])), f"{gc.name}_read", 6)
            neurons(gc, 2 * N, pair_sgn, np.tile(step + (1.0 - x_band), 2), np.ones(2 * N), f"{gc.name}_neurons")
            self.groups[lname + "_uv"] = gc
            gate_w = 2 * K * a / D
            op(g, "\n".join([
                choose("X", [(at("present", None), "0.0"), (at("forward", li), f"{a!r} * h"),
                             (at("replace", li), f"{a / D!r} * fb")]),
                *([choose("Xn", [(at("present", None), "0.0"), (at("forward", li), f"{a!r} * hn"),
                                 (at("replace", li), f"{a / D!r} * fbn")])] if self.dale else []),
                choose("Z", [(at("present", None), "0.0"), (at("replace", li), f"{gate_w!r} * I_z")]),
                choose("scale", [(at("present", None), "1.0"), (at("replace", li), f"{D!r}")]),
            ]), f"{g.name}_update")

        # the output error circuit (Fig. 14) as step populations, one row per (output unit, detector)
        out = self.output = pops[-1]
        dets = spiking.steps(lambda H: transfer.sigma_out(H, M=M, S=S, mu=mu, eps=eps),
                             (-2 * M - S, -M, M, 2 * M + S))
        dets += spiking.steps(lambda d: transfer.sigma_ctl(d, mu=mu, eps=eps, margin=margin),
                              (-mu - margin * eps, 1 + margin * eps))
        theta_k = np.array([d[0] for d in dets])
        dir_k = np.array([float(d[1]) for d in dets])
        w_k = np.array([d[2] for d in dets])
        gd = units(6 * n_out, "I_H : 1\nI_dhat : 1\nkind : 1 (constant)\nthk : 1 (constant)\ndk : 1 (constant)",
                   f"{name}_detectors", routed=True)
        gd.order = 5  # summed inputs at order 4, after the output's operations (3)
        gd.X = -1.0  # silent until the first operation
        gd.kind = np.tile([0, 0, 0, 0, 1, 1], n_out)
        gd.thk = np.tile(theta_k, n_out)
        gd.dk = np.tile(dir_k, n_out)
        unit_of = np.repeat(np.arange(n_out), 6)
        # with Dale's law a detector of direction d = +1 reads H and δ̂ as carried by the routes of one sign, one
        # of d = -1 by the other: Hp, dp and Hm, dm (the output's update below)
        by_dir = "int(dk_post > 0) * {0}p_pre + int(dk_post < 0) * {0}m_pre" if self.dale else "{0}_pre"
        synapses(out, gd, f"I_H_post = {by_dir.format('H')} : 1 (summed)", f"{name}_H_to_detectors", unit_of,
                 np.arange(6 * n_out))
        synapses(out, gd, f"I_dhat_post = {by_dir.format('d' if self.dale else 'dhat')} : 1 (summed)",
                 f"{name}_delta_to_detectors", unit_of, np.arange(6 * n_out))
        d_rows = np.flatnonzero(np.tile(np.arange(6) < 4, n_out))
        t_rows = np.flatnonzero(np.tile(np.arange(6) >= 4, n_out))
        # δ̂ and t̂ in full (every neuron reports: the veto's readout and the records), and with Dale's law as read
        # by targets of coefficient +c (I_dp, I_tp) and -c (I_dm, I_tm)
        per_route = "\nI_{0}p_post = c * {1} : 1 (summed)\nI_{0}m_post = c * {2} : 1 (summed)"
        sdd = synapses(gd, out, "c : 1 (constant)\nI_d_post = c * v_pre : 1 (summed)"
                       + (per_route.format("d", route("c"), route("-c")) if self.dale else ""),
                       f"{name}_detectors_to_delta", d_rows, unit_of[d_rows])
        sdd.c = np.tile(w_k[:4], n_out)
        stt = synapses(gd, out, "c : 1 (constant)\nI_t_post = c * v_pre : 1 (summed)"
                       + (per_route.format("t", route("c"), route("-c")) if self.dale else ""),
                       f"{name}_detectors_to_t", t_rows, unit_of[t_rows])
        stt.c = np.tile(w_k[4:], n_out)
        in_delta = " + ".join(at("error-delta", out_idx, c) for c in range(cycles))
        in_t = " + ".join(at("error-t", out_idx, c) for c in range(cycles))
        op(gd, choose("X", [(in_delta, "(1 - kind) * dk * (I_H - thk) - kind"),
                            (in_t, "kind * dk * (I_dhat - thk) - (1 - kind)"),
                            (f"first * (1 - ({in_delta}) - ({in_t}))", "-1.0")]), f"{name}_detectors_drive", 6)
        neurons(gd, N, np.ones(N), step_routed if self.dale else step, np.ones(N), f"{name}_detector_neurons",
                step_route)
        self.groups["detectors"] = gd
        # the circuit's projections onto neurons, per output unit: y into the δ detectors (d_k H), each t detector
        # into every δ detector (-2M w_j d_k), each δ detector into the t detectors (w_k d_j) and into the output's
        # ON and OFF neurons (±w_k)
        d_of, t_of = d_rows.reshape(n_out, 4), t_rows.reshape(n_out, 2)
        project(out, unit_of[d_rows], np.tile(dir_k[:4], n_out))
        pairs = [(t, d) for u in range(n_out) for t in t_of[u] for d in d_of[u]]
        project(gd, [t for t, _ in pairs], np.array([-2 * M * w_k[t % 6] * dir_k[d % 6] for t, d in pairs]))
        pairs = [(d, t) for u in range(n_out) for d in d_of[u] for t in t_of[u]]
        project(gd, [d for d, _ in pairs], np.array([w_k[d % 6] * dir_k[t % 6] for d, t in pairs]))
        project(gd, d_rows, np.tile(w_k[:4], n_out))
        project(gd, d_rows, -np.tile(w_k[:4], n_out))
        period = output_error.PERIODS[order]
        d_first, last_t = where[("error-delta", out_idx)][0], where[("error-t", out_idx)][-1]
        window = " + ".join(at("error-t", out_idx, c) for c in range(cycles - period, cycles))
        after = f"first * int(phase == {(last_t + 1) % n_ph})"
        ns_out = f"{2 * M!r}"
        op(out, "\n".join([
            choose("s", [(at("present", None), "supervision(t - t_start, i)")]),
            choose("y", [(f"first * int(phase == {d_first})", "v")]),
            choose("that", [(at("present", None), "0.0"), (in_delta, f"I_t * int(phase > {d_first})")]),
            choose("H", [(in_delta, f"y + {ns_out} * s - {ns_out} * that")]),
            choose("dhat", [(at("present", None), "0.0"), (in_t, "I_d")]),
            choose("seen0", [(at("present", None), "0.0"),
                             (window, f"clip(seen0 + int(abs(I_d) < {zero_level!r}), 0, 1)")]),
            *([  # Dale's law: H for the detectors of d = +1 (Hp) and d = -1 (Hm), δ̂ for the targets of ±w_k
                choose("yA", [(f"first * int(phase == {d_first})", "vA")]),
                choose("yB", [(f"first * int(phase == {d_first})", "vB")]),
                choose("tp", [(at("present", None), "0.0"), (in_delta, f"I_tp * int(phase > {d_first})")]),
                choose("tm", [(at("present", None), "0.0"), (in_delta, f"I_tm * int(phase > {d_first})")]),
                choose("Hp", [(in_delta, f"yA + {ns_out} * s - {ns_out} * tm")]),
                choose("Hm", [(in_delta, f"yB + {ns_out} * s - {ns_out} * tp")]),
                choose("dp", [(at("present", None), "0.0"), (in_t, "I_dp")]),
                choose("dm", [(at("present", None), "0.0"), (in_t, "I_dm")]),
                choose("Xn", [(at("present", None), "0.0"), (at("forward", out_idx), f"hn / {h_scale!r}"),
                              (after, f"dm * (1 - seen0) / {D!r}")]),
            ] if self.dale else []),
            choose("X", [(at("present", None), "0.0"), (at("forward", out_idx), f"h / {h_scale!r}"),
                         (after, f"{'dp' if self.dale else 'dhat'} * (1 - seen0) / {D!r}")]),
            choose("scale", [(at("present", None), "1.0"), (at("forward", out_idx), f"{h_scale!r}"),
                             (after, f"{D!r}")]),
        ]), f"{out.name}_update")

        self.monitors, mons = {}, []
        if record_weights:
            for sw, sr in zip(self.W_syn, self.R_syn):
                for sy, var in ((sw, "w"), (sr, "r")):
                    if len(sy):
                        m = b2.StateMonitor(sy, var, record=True, dt=T_ex, when="end", order=5,
                                            name=f"{sy.name}_monitor")
                        self.monitors[sy.name] = m
                        mons.append(m)
        m = b2.StateMonitor(out, "y", record=True, dt=T_ex, when="end", order=5, name=f"{name}_output_monitor")
        self.monitors["output"] = m
        mons.append(m)
        if record_phases:  # at the first step of every phase: what the previous phase measured
            for gname, g in self.groups.items():
                vs = ["v"] + [x for x in ("h", "fb", "y", "dhat", "that", "vA", "vB", "hn", "fbn", "dp", "dm")
                              if x in g.variables]
                m = b2.StateMonitor(g, vs, record=True, dt=n_steps * dt, when="end", order=5,
                                    name=f"{g.name}_phases")
                self.monitors[f"phases:{gname}"] = m
                mons.append(m)
        if record_spikes:
            for gname, ng in self.neuron_groups.items():
                m = b2.SpikeMonitor(ng, name=f"{ng.name}_spikes")
                self.monitors[f"spikes:{gname}"] = m
                mons.append(m)
        self.network = b2.Network(*objects, *mons, name=f"{name}_network")

    def run(self, x, s, eta, *, report=None) -> dict:
        """``LearningNetwork.run`` (present the block in one ``Network.run``; weights and the output's measured
        h_L after each example), with Brian2's generator seeded with ``seed`` before the first run."""
        if not self._seeded:
            self.b2.seed(self.seed)
            self._seeded = True
        return super().run(x, s, eta, report=report)

    def phase_record(self) -> dict:
        """{(group, variable): (rows, phases)} with ``record_phases``: column k is the state at the first step
        of phase k (counting from the first run), i.e. v = the value measured over phase k - 1."""
        out = {}
        for key, m in self.monitors.items():
            if key.startswith("phases:"):
                for var in m.record_variables:
                    out[(key.split(":", 1)[1], var)] = np.asarray(getattr(m, var))
        return out

    def dale_violations(self) -> dict:
        """For each neuron group, the number of neurons whose effects on the currents of other neurons have both
        signs, at the current weights (``circuits.spiking.dale_violations`` for this network). A neuron of count
        sign c in a row read with coefficient κ acts with sign c·sign(κ); with Dale's law only the route that
        the consumer reads (A for κ > 0, B otherwise) acts. Readouts (the Hebbian products, the veto, the
        records) are not projections onto neurons."""
        out = {}
        for gname, (csign, route) in self.neuron_tables.items():
            per_row = csign.size // self.network[gname].N
            pos, neg = np.zeros(csign.size, bool), np.zeros(csign.size, bool)
            for pre, rows, kappa, routed in self.projections:
                if pre != gname:
                    continue
                k = np.asarray(kappa() if callable(kappa) else kappa, dtype=np.float64)
                for r, kk in zip(rows, k):
                    if kk == 0:
                        continue
                    sl = slice(r * per_row, (r + 1) * per_row)
                    acts = route[sl] == (1.0 if kk > 0 else 0.0) if routed else np.ones(per_row, bool)
                    pos[sl] |= acts & (csign[sl] * kk > 0)
                    neg[sl] |= acts & (csign[sl] * kk < 0)
            out[self.neuron_groups[gname].name] = int((pos & neg).sum())
        return out

    def spikes(self) -> dict:
        """{unit group name: (neuron indices, spike times in s)} with ``record_spikes``."""
        return {k.split(":", 1)[1]: (np.asarray(m.i), np.asarray(m.t / self.b2.second))
                for k, m in self.monitors.items() if k.startswith("spikes:")}
