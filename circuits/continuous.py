"""Continuous-time leaky-rate version of the output error circuit (Appendix 1, Fig. 13, 14; docs/spec.md §7.1).

The paper's circuit is a discrete alternating map (``circuits.output_error``). Here each unit is a leaky
rate unit that relaxes towards the paper's transfer function of its input, with time constant τ::

    τ dδ_c/dt  = -δ_c + σ_out(H_c),     H_c = h_c + 2M s_c - 2M t_c
    τ dt_c/dt  = -t_c + σ_ctl(δ̄_c)

σ_out and σ_ctl are those of ``circuits.transfer``, written into the equations as Brian2 expressions made from
their breakpoint tables, so the steady state of each unit is exactly the paper's transfer function and the
network runs on every Brian2 target (``target=``, ``circuits.brian``). ``δ̄_c`` is what t_c sees of δ_c:

- ``delay = 0``: δ̄_c = δ_c (the direct connection of Fig. 14);
- ``delay = D > 0``: a relay chain of ``n_relay`` linear leaky units, each with time constant D / n_relay,
  ``(D/n) dr_k/dt = r_{k-1} - r_k`` (r_0 = δ_c), and δ̄_c = r_n. Its impulse response is a gamma density
  of mean D: a smoothed transport delay on δ → t (docs/spec.md §7.1 "relay chain").

All circuits of a call (inputs h, s broadcast and flattened) are one ``NeuronGroup`` (``cont_circuits``),
integrated with exponential Euler (exact relaxation over a step with the targets held), and start from
δ = t = 0 (the reset of t_c at each new example).

What the dynamics does (measured in docs/circuit_dynamics.md): in the update regimes δ relaxes to 1 or -μ
and t stays exactly 0, as eq. 6 asks. In the correct regimes the 0 ↔ 1+ε oscillation of the map does not
appear: δ rises past the σ_ctl threshold, t grows, δ is pushed back to the threshold and stays near it
(1 or -μ) while t wanders in a band between the two break points of σ_out -- δ chatters on the threshold,
but t is clearly non-zero, so t separates the regimes. A delay lets δ overshoot and fall towards 0 before
t reacts, restoring a partial oscillation.

Time is measured in cycles of length ``2τ + delay`` (one δ → t → δ pass: each unit needs about τ to
respond). A run lasts ``cycles`` cycles; the readouts look at the last ``window`` cycles. Readouts
(functions of the sampled trajectory, see ``apply_readout``):

- ``"veto"`` (default): 0 if δ comes within the window closer to 0 than ``veto_level`` times the update
  value (|δ| < veto_level·1 for s=+1, < veto_level·μ for s=-1; "δ visits 0"), else the window mean of δ.
  The continuous analogue of the map's veto readout.
- ``"final"``: δ at the end of the run (the analogue of ``phase k``).
- ``"window-mean"``: the mean of δ over the window.
- ``"t-gate"``: 0 if the window mean of |t_c| exceeds ``t_level``, else the window mean of δ: the control
  unit itself gates the synapses.

``gate_trajectory`` is the same treatment of the shutdown circuit (Fig. 15, eq. 3; docs/spec.md §7.2): leaky u, v and
δ̃ with the transfer functions σ_u, σ_v, σ_gate. It settles to eq. 3, but transiently passes the gate's own
inhibition (measured in docs/circuit_dynamics.md §7).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits import transfer
from circuits.check import agreement_by_regime
from circuits.regimes import RangeReport, _check_s, enforce_range
from circuits.output_error import RANGE_FIX, _check_params
from circuits.params import check_params

__all__ = [
    "READOUTS",
    "cycle_length",
    "apply_readout",
    "build_network",
    "Trajectory",
    "trajectory",
    "simulate",
    "agreement_of",
    "agreement",
    "GateTrajectory",
    "gate_trajectory",
]

READOUTS = ("veto", "final", "window-mean", "t-gate")


def cycle_length(tau: float, delay: float = 0.0) -> float:
    """Length (s) of one δ → t → δ cycle of the leaky circuit: 2τ + delay."""
    return 2.0 * tau + delay


# --------------------------------------------------------------------------------------------------
# Readouts of a sampled trajectory


def _check_readout(readout):
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r} for a continuous trajectory; known: {READOUTS}.")


def apply_readout(delta, t_c, s, readout="veto", *, mu: float, n_window: int, veto_level: float = 0.5,
                  t_level: float = 0.05) -> np.ndarray:
    """Readout of sampled trajectories ``delta``, ``t_c`` of shape ``(n_times, *shape)``; ``s`` of ``shape``.

    ``n_window``: how many final samples form the readout window. See the module docstring for the names.
    Shared by the continuous and the spiking circuits (the latter passes its rate-coded δ and t).
    """
    _check_readout(readout)
    delta = np.asarray(delta, dtype=np.float64)
    t_c = np.asarray(t_c, dtype=np.float64)
    if not 1 <= n_window <= delta.shape[0]:
        raise ValueError(f"the readout window needs 1 ≤ n_window ≤ {delta.shape[0]} samples, got {n_window}.")
    win = delta[-n_window:]
    mean = win.mean(0)
    if readout == "final":
        return delta[-1].copy()
    if readout == "window-mean":
        return mean
    if readout == "t-gate":
        gated = np.abs(t_c[-n_window:]).mean(0) > t_level
        return np.where(gated, 0.0, mean)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), mean.shape)
    update = np.where(s > 0, 1.0, mu)  # |eq. 6 value| in the update regime
    vetoed = (s * win).min(0) < veto_level * update  # δ came closer to 0 than veto_level of its update value
    return np.where(vetoed, 0.0, mean)


# --------------------------------------------------------------------------------------------------
# The Brian2 network


def build_network(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, tau: float, dt: float,
                  delay: float = 0.0, n_relay: int = 4, margin: float = 0.0, record_dt: float | None = None,
                  name: str = "cont"):
    """The leaky circuits for flat arrays ``h``, ``s`` as a ``brian2.Network`` named ``{name}_network``.

    One ``NeuronGroup`` ``{name}_circuits`` with variables ``delta``, ``t_c`` (and relays ``r1..rn`` when
    ``delay > 0``); a ``StateMonitor`` ``{name}_monitor`` records δ and t_c every ``record_dt`` (default dt).
    Times in seconds.
    """
    check_params(M=M, S=S, mu=mu, eps=eps, margin=margin)
    import brian2 as b2

    h = np.asarray(h, dtype=np.float64).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    f = transfer.brian2_expressions(sigma_out="h + 2*M*s - 2*M*t_c")
    eqs = [f"ddelta/dt = (-delta + ({f['sigma_out']})) / tau : 1",
           "h : 1 (constant)",
           "s : 1 (constant)"]
    if delay > 0:
        seen = f"r{n_relay}"
        prev = "delta"
        for k in range(1, n_relay + 1):
            eqs.append(f"dr{k}/dt = ({prev} - r{k}) / tau_r : 1")
            prev = f"r{k}"
    else:
        seen = "delta"
    eqs.append(f"dt_c/dt = (-t_c + ({transfer.brian2_expressions(sigma_ctl=seen)['sigma_ctl']})) / tau : 1")
    ns = {"M": float(M), "S": float(S), "mu": float(mu), "eps": float(eps), "margin": float(margin),
          "tau": tau * b2.second,
          "tau_r": (delay / n_relay if delay > 0 else 1.0) * b2.second}
    group = b2.NeuronGroup(h.size, "\n".join(eqs), method="exponential_euler", namespace=ns,
                           dt=dt * b2.second, name=f"{name}_circuits")
    group.h = h
    group.s = s
    mon = b2.StateMonitor(group, ["delta", "t_c"], record=True, dt=(record_dt or dt) * b2.second,
                          when="end", name=f"{name}_monitor")
    return b2.Network(group, mon, name=f"{name}_network")


# --------------------------------------------------------------------------------------------------
# Public interface


@dataclass
class Trajectory:
    """Sampled trajectory: ``times`` (s, shape (n_times,)), ``delta`` and ``t_c`` (shape (n_times, *h.shape)).

    ``s`` (h's shape), ``mu``, ``samples_per_cycle`` and ``window`` (cycles) are kept for the readouts;
    ``range`` is the range report of the inputs.
    """

    times: np.ndarray
    delta: np.ndarray
    t_c: np.ndarray
    s: np.ndarray
    mu: float
    samples_per_cycle: float
    window: int
    range: RangeReport

    def readout(self, readout="veto", *, veto_level: float = 0.5, t_level: float = 0.05) -> np.ndarray:
        n_window = max(1, int(round(self.window * self.samples_per_cycle)))
        return apply_readout(self.delta, self.t_c, self.s, readout, mu=self.mu, n_window=n_window,
                             veto_level=veto_level, t_level=t_level)


def _prepare(h, s, *, M, S, mu, eps, margin, on_range):
    _check_params(M=M, S=S, mu=mu, eps=eps, margin=margin)
    h = np.asarray(h, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    try:
        h, s = (np.array(a) for a in np.broadcast_arrays(h, s))
    except ValueError:
        raise ValueError(f"h of shape {h.shape} and s of shape {s.shape} do not broadcast together.") from None
    _check_s(s)
    h, report = enforce_range(h, bound=M, on_range=on_range, name="h", fix=RANGE_FIX)
    return h, s, report


def _check_time(*, tau, dt, cycles, window, delay, n_relay):
    if not tau > 0:
        raise ValueError(f"tau must be a positive time in seconds, got {tau}.")
    if not 0 < dt <= tau / 5:
        raise ValueError(f"dt must be in (0, tau/5] for the leaky units to be resolved; got dt={dt}, tau={tau}.")
    if int(cycles) != cycles or cycles < 1:
        raise ValueError(f"cycles must be a positive integer, got {cycles}.")
    if int(window) != window or not 1 <= window <= cycles:
        raise ValueError(f"window must be an integer number of cycles in [1, cycles={cycles}], got {window}.")
    if not delay >= 0:
        raise ValueError(f"delay must be ≥ 0 seconds, got {delay}.")
    if delay > 0 and (int(n_relay) != n_relay or n_relay < 1):
        raise ValueError(f"n_relay must be a positive integer, got {n_relay}.")
    if delay > 0 and delay / n_relay < 2 * dt:
        raise ValueError(f"each relay's time constant delay/n_relay = {delay / n_relay:g} s must be ≥ 2 dt; "
                         f"lower n_relay or dt.")


def trajectory(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, tau: float = 10e-3,
               dt: float | None = None, cycles: int = 40, window: int = 10, delay: float = 0.0,
               n_relay: int = 4, margin: float = 0.0, on_range: str = "report",
               target: str | None = None) -> Trajectory:
    """Run the leaky circuits for ``cycles`` cycles (of ``cycle_length(tau, delay)`` s) from δ = t = 0.

    ``h``, ``s`` (±1) broadcast together; times in seconds; ``dt`` defaults to τ/20. Out-of-range inputs
    (|h| ≥ M) are handled by ``on_range`` (``circuits.regimes.enforce_range``). ``target``: Brian2's
    code-generation target (``circuits.brian``; None keeps the caller's settings).
    """
    import brian2 as b2

    from circuits.brian import check_target, on_target

    check_target(target)
    dt = tau / 20 if dt is None else dt
    _check_time(tau=tau, dt=dt, cycles=cycles, window=window, delay=delay, n_relay=n_relay)
    h, s, report = _prepare(h, s, M=M, S=S, mu=mu, eps=eps, margin=margin, on_range=on_range)
    period = cycle_length(tau, delay)
    with on_target(target, "continuous") as finish:
        net = build_network(h, s, M=M, S=S, mu=mu, eps=eps, tau=tau, dt=dt, delay=delay, n_relay=n_relay,
                            margin=margin)
        net.run(cycles * period * b2.second, namespace={})
        finish(net)
        mon = net["cont_monitor"]
        times = np.asarray(mon.t / b2.second)
        shape = (times.size, *h.shape)
        return Trajectory(times=times, delta=np.asarray(mon.delta).T.reshape(shape),
                          t_c=np.asarray(mon.t_c).T.reshape(shape), s=s, mu=float(mu),
                          samples_per_cycle=period / dt, window=int(window), range=report)


def simulate(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, readout="veto", tau: float = 10e-3,
             dt: float | None = None, cycles: int = 40, window: int = 10, delay: float = 0.0, n_relay: int = 4,
             margin: float = 0.0, veto_level: float = 0.5, t_level: float = 0.05,
             on_range: str = "report", target: str | None = None) -> np.ndarray:
    """The readout δ of the leaky circuits, one value per input (float64, shape of h and s broadcast)."""
    _check_readout(readout)
    traj = trajectory(h, s, M=M, S=S, mu=mu, eps=eps, tau=tau, dt=dt, cycles=cycles, window=window,
                      delay=delay, n_relay=n_relay, margin=margin, on_range=on_range, target=target)
    return traj.readout(readout, veto_level=veto_level, t_level=t_level)


def agreement_of(values, h, s, *, mu: float, S: float = 1.0, rtol: float = 0.1) -> dict:
    """``{regime: (n, n_agree)}`` with eq. 6 (``circuits.check.agreement_by_regime``), tolerance relative to
    the update value: |value - eq. 6| ≤ rtol for s = +1 and ≤ rtol·μ for s = -1."""
    h, s = (np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(h, s))
    values = np.asarray(values, dtype=np.float64)
    on, off = s > 0, s < 0
    res_on = agreement_by_regime(values[on], h[on], s[on], mu=mu, S=S, atol=rtol)
    res_off = agreement_by_regime(values[off], h[off], s[off], mu=mu, S=S, atol=rtol * mu)
    return {name: res_on[name] if name.startswith("on") else res_off[name] for name in res_on}


def agreement(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, readout="veto", rtol: float = 0.1,
              **kwargs) -> dict:
    """Run ``simulate`` on ``h``, ``s`` (keyword arguments passed on) and return its agreement with eq. 6
    per regime, ``{regime: (n, n_agree)}``, within ``rtol`` of the update value (see ``agreement_of``)."""
    values = simulate(h, s, M=M, S=S, mu=mu, eps=eps, readout=readout, **kwargs)
    return agreement_of(values, h, s, mu=mu, S=S, rtol=rtol)


# --------------------------------------------------------------------------------------------------
# Leaky version of the shutdown gate (Appendix 1, Fig. 15; docs/spec.md §7.2)


@dataclass
class GateTrajectory:
    """Sampled trajectory of the leaky shutdown gate: ``times`` (s), ``delta_tilde``, ``u``, ``v`` of shape
    (n_times, *x.shape); ``arrival`` is the time (s) at which the feedback δ reaches the unit."""

    times: np.ndarray
    delta_tilde: np.ndarray
    u: np.ndarray
    v: np.ndarray
    arrival: float
    range: RangeReport

    def final(self) -> np.ndarray:
        """δ̃ at the end of the run (the settled gated feedback)."""
        return self.delta_tilde[-1].copy()

    def leak(self) -> np.ndarray:
        """Largest |δ̃| over the run: for a saturated unit (eq. 3 says 0 throughout) what leaks transiently."""
        return np.abs(self.delta_tilde).max(0)


def gate_trajectory(x, delta, *, K: float, tau: float = 10e-3, tau_uv: float | None = None, dt: float | None = None,
                    lead: float = 30e-3, duration: float | None = None, on_range: str = "report",
                    target: str | None = None) -> GateTrajectory:
    """Leaky shutdown gate: u, v, δ̃ relax towards the transfer functions of Fig. 15::

        τ_uv du/dt = -u + σ_u(x),   τ_uv dv/dt = -v + σ_v(x)
        τ dδ̃/dt = -δ̃ + σ_gate(δ·1[t ≥ lead] - 2K u + 2K v)

    (σ_u, σ_v, σ_gate of ``circuits.transfer``; τ_uv defaults to τ). x is present from t = 0 (u, v start
    reading it at once, Fig. 15 step 2); the feedback δ arrives as a step at t = ``lead`` (step 3). Units start at 0; the run lasts ``duration`` (default lead + 12τ, so δ̃ settles
    to within e^-12 of its target). ``|δ| ≥ K`` is handled by ``on_range``. One group ``gate_units``; the
    arriving feedback ``delta_in`` (δ from ``lead`` on, 0 before) is set at the start of every step.
    ``target``: Brian2's code-generation target (``circuits.brian``; None keeps the caller's settings).

    The settled δ̃ is eq. 3 exactly (the steady state of each unit is its transfer function). The transient
    is not: while u < 1/2 the gate's own inhibition -2K u lies in [-K, 0], which σ_gate passes, so a
    saturated unit emits a negative δ̃ before u has grown (≈ 0.29 K with τ_uv = τ, whatever the lead; less
    with faster control units); ``leak`` measures it.
    """
    import brian2 as b2

    from circuits.brian import check_target, on_target
    from circuits.shutdown import RANGE_FIX as GATE_FIX

    check_target(target)
    dt = tau / 20 if dt is None else dt
    duration = lead + 12 * tau if duration is None else duration
    tau_uv = tau if tau_uv is None else tau_uv
    if not tau_uv >= dt:
        raise ValueError(f"tau_uv must be ≥ dt, got tau_uv={tau_uv}, dt={dt}.")
    check_params(K=K)
    if not tau > 0 or not 0 < dt <= tau / 5:
        raise ValueError(f"need tau > 0 and 0 < dt ≤ tau/5 (s); got tau={tau}, dt={dt}.")
    if not 0 <= lead < duration:
        raise ValueError(f"need 0 ≤ lead < duration (s); got lead={lead}, duration={duration}.")
    x = np.asarray(x, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    try:
        x, delta = (np.array(a) for a in np.broadcast_arrays(x, delta))
    except ValueError:
        raise ValueError(f"x of shape {x.shape} and delta of shape {delta.shape} do not broadcast.") from None
    delta, report = enforce_range(delta, bound=K, on_range=on_range, name="delta", fix=GATE_FIX)
    f = transfer.brian2_expressions(sigma_u="x", sigma_v="x", sigma_gate="delta_in - 2*K*u + 2*K*v")
    ns = {"K": float(K), "tau": tau * b2.second, "tau_uv": tau_uv * b2.second, "lead": lead * b2.second}
    eqs = f"""du/dt = (-u + ({f['sigma_u']})) / tau_uv : 1
             dv/dt = (-v + ({f['sigma_v']})) / tau_uv : 1
             ddelta_tilde/dt = (-delta_tilde + ({f['sigma_gate']})) / tau : 1
             delta_in : 1
             x : 1 (constant)
             delta : 1 (constant)"""
    with on_target(target, "continuous_gate") as finish:
        group = b2.NeuronGroup(x.size, eqs, method="exponential_euler", namespace=ns, dt=dt * b2.second,
                               name="gate_units")
        group.x = x.ravel()
        group.delta = delta.ravel()
        group.run_regularly("delta_in = delta * int(t >= lead)", when="start", name="gate_arrival")
        mon = b2.StateMonitor(group, ["u", "v", "delta_tilde"], record=True, when="end", name="gate_monitor")
        net = b2.Network(group, mon, name="gate_network")
        net.run(duration * b2.second, namespace={})
        finish(net)
        times = np.asarray(mon.t / b2.second)
        shape = (times.size, *x.shape)
        return GateTrajectory(times=times, delta_tilde=np.asarray(mon.delta_tilde).T.reshape(shape),
                              u=np.asarray(mon.u).T.reshape(shape), v=np.asarray(mon.v).T.reshape(shape),
                              arrival=float(lead), range=report)
