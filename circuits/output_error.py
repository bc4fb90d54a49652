"""The output error circuit of Appendix 1 (Fig. 13, 14) as a Brian2 rate network, and eq. 6 it computes.

Per output class c (docs/spec.md §7.1): a supervisory unit ``s_c`` (+1 for the presented class, -1 otherwise), the
error unit ``δ_c`` and the control unit ``t_c``, wired as in Fig. 14::

    s_c --(+2M)--> δ_c <--(-2M)-- t_c        H_c = h_c + 2M s_c - 2M t_c,  δ_c = σ_out(H_c)
                   δ_c --(+1)---> t_c                                        t_c = σ_ctl(δ_c)

The equations (σ_out, σ_ctl, one cycle) are defined once, in ``circuits.transfer``: the Brian2 network
runs the Brian2 expressions made from the same breakpoint tables (``transfer.brian2_expressions``; no Python
callback) on inputs that its synapses sum. One time step of the network is one cycle of the paper's alternating map:

- ``order="sequential"`` (the paper): δ reads the old t, then t reads the new δ. From t = 0 the four regimes
  of ``circuits.check`` appear: δ constant (1 or -μ) or a period-2 oscillation (1+ε ↔ 0, -μ-ε ↔ 0).
- ``order="simultaneous"``: δ and t both read the previous state; the oscillation has period 4
  (1+ε, 1+ε, 0, 0).

Every circuit starts from δ = t = 0 (the reset of t_c at each new example); all circuits of a call
(classes × examples, flattened) live in one ``NeuronGroup`` per unit type.

How the oscillation reaches the synapses is a named ``readout`` of the δ trajectory (docs/spec.md §7.1):

- ``"veto"``: 0 if δ visits 0 in the last ``period`` cycles (2 sequential, 4 simultaneous), else the last δ.
  Equals eq. 6 exactly. The default.
- ``"phase k"`` (or ``("phase", k)``): δ after k cycles. Parity-dependent in the oscillating regimes.
- ``"window-mean"``: the mean of δ over the last whole periods: (1+ε)/2 and -(μ+ε)/2 when correct. Not eq. 6.

``rule`` is eq. 6 with threshold S; ``simulate`` runs the network (``backend="brian2"``) or its PyTorch
equivalent (``backend="torch"``: ``iterate_map`` on torch tensors, as ``circuits.modules.OutputErrorCircuit``
runs it) and returns the readout;
``trajectory`` returns the whole δ and t trajectories; ``build_network`` returns the Brian2 objects
(used by ``circuits.wiring`` to draw Fig. 14 from the network itself). Every Brian2 entry point takes
``target`` (numpy, cython, cpp_standalone; ``circuits.brian``); ``Compiled`` is the network for a fixed
number of circuits compiled once as a C++ program and run again for each new (h, s) in milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuits import transfer
from circuits.params import check_params
from circuits.regimes import RangeReport, _check_s, enforce_range

__all__ = [
    "rule",
    "ORDERS",
    "PERIODS",
    "READOUTS",
    "parse_readout",
    "apply_readout",
    "min_cycles",
    "iterate_map",
    "build_network",
    "Trajectory",
    "trajectory",
    "simulate",
    "Compiled",
    "Stream",
    "stream",
]

ORDERS = ("sequential", "simultaneous")
PERIODS = {"sequential": 2, "simultaneous": 4}
BACKENDS = ("brian2", "torch")
RANGE_FIX = "scale h (the weights W of the output layer) down or raise M so that |h| < M"


def rule(h, s, *, mu: float, S: float = 1.0, boundary: str = "strict"):
    """Eq. 6 with learning threshold S: 1 if s=+1 and h < S; -μ if s=-1 and h > -S; else 0.

    ``boundary="strict"`` (default, docs/spec.md §3) uses ``<``/``>``; ``boundary="closed"`` uses ``≤``/``≥`` as eq. 6
    is printed and as the circuit computes it (the two differ only at h = ±S, where the loss is flat).
    NumPy in (``s`` = ±1, broadcast to h), float64 NumPy out.
    """
    h = np.asarray(h, dtype=np.float64)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), h.shape)
    _check_s(s)
    if boundary == "strict":
        on, off = h < S, h > -S
    elif boundary == "closed":
        on, off = h <= S, h >= -S
    else:
        raise ValueError(f"boundary must be 'strict' or 'closed', got {boundary!r}.")
    out = np.zeros(h.shape)
    out[(s > 0) & on] = 1.0
    out[(s < 0) & off] = -mu
    return out


# --------------------------------------------------------------------------------------------------
# Readouts: named functions of the δ trajectory (shape (cycles, ...)); NumPy arrays or torch tensors.


def _veto(delta, *, period: int):
    window = delta[-period:]
    vetoed = (window == 0).any(0)
    return transfer._where(vetoed, 0.0, window[-1])


def _phase(delta, *, k: int):
    return delta[k - 1]


def _window_mean(delta, *, period: int):
    n = (delta.shape[0] // period) * period
    return delta[delta.shape[0] - n:].mean(0)


READOUTS = {"veto": _veto, "phase": _phase, "window-mean": _window_mean}


def parse_readout(readout) -> tuple[str, dict]:
    """``"veto"``, ``"window-mean"``, ``"phase K"`` or ``("phase", K)`` -> ``(name, kwargs)``; K ≥ 1."""
    if isinstance(readout, tuple):
        if len(readout) != 2 or readout[0] != "phase":
            raise ValueError(f"a tuple readout must be ('phase', k), got {readout!r}.")
        name, k = readout
    elif isinstance(readout, str):
        parts = readout.split()
        name, k = parts[0], (parts[1] if len(parts) == 2 else None)
        if len(parts) > 2 or (name != "phase" and k is not None) or (name == "phase" and k is None):
            raise ValueError(f"readout {readout!r} not understood; use 'veto', 'window-mean' or 'phase K' (K ≥ 1).")
    else:
        raise ValueError(f"readout must be a string or ('phase', k), got {readout!r}.")
    if name not in READOUTS:
        raise ValueError(f"unknown readout {name!r}; known: {sorted(READOUTS)} ('phase K').")
    if name == "phase":
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise ValueError(f"phase readout needs an integer cycle K ≥ 1, got {k!r}.") from None
        if k < 1:
            raise ValueError(f"phase readout needs K ≥ 1 (δ after K cycles), got {k}.")
        return name, {"k": k}
    return name, {}


def min_cycles(readout, order: str = "sequential") -> int:
    """Fewest cycles the readout needs: the period for ``veto``/``window-mean``, K for ``phase K``."""
    _check_order(order)
    name, kw = parse_readout(readout)
    return kw["k"] if name == "phase" else PERIODS[order]


def apply_readout(delta, readout="veto", *, order: str = "sequential"):
    """Apply a readout to a δ trajectory of shape ``(cycles, ...)`` (NumPy or torch); returns shape ``(...)``."""
    name, kw = parse_readout(readout)
    need = min_cycles(readout, order)
    if delta.shape[0] < need:
        raise ValueError(f"readout {readout!r} with order {order!r} needs at least {need} cycles, "
                         f"got a trajectory of {delta.shape[0]}; raise cycles.")
    if name != "phase":
        kw["period"] = PERIODS[order]
    return READOUTS[name](delta, **kw)


# --------------------------------------------------------------------------------------------------
# The map itself, on arrays (the reference the Brian2 network and the torch module are tested against)


def _check_order(order):
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}.")


def _check_params(*, M, S, mu, eps, margin, cycles=None):
    check_params(M=M, S=S, mu=mu, eps=eps, margin=margin, cycles=cycles)


def iterate_map(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, cycles: int,
                order: str = "sequential", margin: float = 0.0):
    """Run ``cycles`` cycles of the map from δ = t = 0 with ``circuits.transfer``; NumPy or torch.

    Returns ``(delta, t)``, each of shape ``(cycles, *h.shape)``: the state after each cycle.
    """
    _check_order(order)
    zeros = transfer._full_like(h, 0.0)
    delta, t = zeros, zeros
    ds, ts = [], []
    for _ in range(cycles):
        if order == "sequential":
            delta, t = transfer.cycle_sequential(h, s, t, M=M, S=S, mu=mu, eps=eps, margin=margin)
        else:
            delta, t = transfer.cycle_simultaneous(h, s, t, delta, M=M, S=S, mu=mu, eps=eps, margin=margin)
        ds.append(delta)
        ts.append(t)
    if transfer._is_torch(h):
        import torch

        return torch.stack(ds), torch.stack(ts)
    return np.stack(ds), np.stack(ts)


# --------------------------------------------------------------------------------------------------
# The Brian2 rate network


def build_network(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, order: str = "sequential",
                  margin: float = 0.0, name: str = "oe", cycles_per_example: int | None = None,
                  reset: bool = True):
    """Build the Brian2 network of Fig. 14 for the flat arrays ``h``, ``s`` (one circuit per entry).

    Three ``NeuronGroup``s (``{name}_s``, ``{name}_delta``, ``{name}_t``) and three one-to-one ``Synapses``
    whose summed variables form H = h + 2M s - 2M t and the input δ of t. One time step (``dt`` = 1 ms,
    a unit of cycles) is one cycle, ordered within the ``groups`` slot as ``order`` demands. Monitors record
    δ and t at the end of each step. Returns a ``brian2.Network`` (its objects carry the given names).

    **Streams.** With ``cycles_per_example = C``, ``h`` and ``s`` have shape ``(examples, N)``: a stream of
    examples, each presented for C cycles. Two ``TimedArray``s (``{name}_h_stream``, ``{name}_s_stream``, one
    row per example) drive h and s; at the start of each example's first step (slot ``start``) the inputs
    switch and, with ``reset=True``, δ and t_c are set to 0 (the reset of docs/spec.md §7.1: each example starts
    from δ = t = 0; δ's reset matters in the simultaneous order only, where t reads the previous δ). With
    ``reset=False`` the new example meets the previous example's δ and t_c.
    """
    import brian2 as b2

    _check_order(order)
    check_params(M=M, S=S, mu=mu, eps=eps, margin=margin)
    h = np.asarray(h, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    streaming = cycles_per_example is not None
    if streaming:
        if h.ndim != 2 or h.shape != s.shape:
            raise ValueError(f"a stream needs h and s of one shape (examples, circuits); got {h.shape}, {s.shape}.")
        if int(cycles_per_example) != cycles_per_example or cycles_per_example < 1:
            raise ValueError(f"cycles_per_example must be a positive integer, got {cycles_per_example}.")
        h_rows, s_rows = h, s
        h, s = h_rows[0], s_rows[0]
    h = h.ravel()
    s = s.ravel()
    N = h.size
    ns = {"M": float(M), "S": float(S), "mu": float(mu), "eps": float(eps), "margin": float(margin)}
    f = transfer.brian2_expressions(sigma_out="h + I_s + I_t", sigma_ctl="I_delta")
    clock = b2.Clock(dt=1 * b2.ms, name=f"{name}_clock")  # one step = one cycle
    # Slots within 'groups': a summed variable is updated at (target order - 1), before its target reads it.
    d_order, t_order = (1, 3) if order == "sequential" else (2, 2)
    const = "" if streaming else " (constant)"
    sup = b2.NeuronGroup(N, f"s : 1{const}", name=f"{name}_s", namespace={}, clock=clock, order=0)
    err = b2.NeuronGroup(N, f"""h : 1{const}
                               I_s : 1
                               I_t : 1
                               delta : 1""", name=f"{name}_delta", namespace=ns, clock=clock, order=d_order)
    ctl = b2.NeuronGroup(N, """I_delta : 1
                               t_c : 1""", name=f"{name}_t", namespace=ns, clock=clock, order=t_order)
    sup.s = s
    err.h = h
    idx = np.arange(N)
    syn = []
    for pre, post, var, w in ((sup, err, "I_s_post = w * s_pre", 2 * M),
                              (ctl, err, "I_t_post = w * t_c_pre", -2 * M),
                              (err, ctl, "I_delta_post = w * delta_pre", 1.0)):
        sy = b2.Synapses(pre, post, f"w : 1 (constant)\n{var} : 1 (summed)", name=f"{pre.name}_to_{post.name}",
                         namespace={}, clock=clock)
        sy.connect(i=idx, j=idx)
        sy.w = w
        syn.append(sy)
    if streaming:
        C = int(cycles_per_example)
        h_in = b2.TimedArray(h_rows, dt=C * b2.ms, name=f"{name}_h_stream")
        s_in = b2.TimedArray(s_rows, dt=C * b2.ms, name=f"{name}_s_stream")
        # a new example starts at every C-th step: the inputs switch (and t_c is reset) before anything reads them
        sup.run_regularly("s = s_in(t, i)", when="start", name=f"{name}_s_switch", dt=C * b2.ms)
        err.run_regularly("h = h_in(t, i)" + ("\ndelta = 0" if reset else ""), when="start",
                          name=f"{name}_h_switch", dt=C * b2.ms)
        sup.namespace["s_in"] = s_in
        err.namespace["h_in"] = h_in
        if reset:
            ctl.run_regularly("t_c = 0", when="start", name=f"{name}_t_reset", dt=C * b2.ms)
    err.run_regularly(f"delta = {f['sigma_out']}", when="groups", order=d_order, name=f"{name}_delta_update")
    ctl.run_regularly(f"t_c = {f['sigma_ctl']}", when="groups", order=t_order, name=f"{name}_t_update")
    mon_d = b2.StateMonitor(err, "delta", record=True, when="end", name=f"{name}_delta_monitor")
    mon_t = b2.StateMonitor(ctl, "t_c", record=True, when="end", name=f"{name}_t_monitor")
    return b2.Network(sup, err, ctl, *syn, mon_d, mon_t, name=f"{name}_network")


def _run_brian2(h, s, *, M, S, mu, eps, cycles, order, margin, target=None):
    import brian2 as b2

    from circuits.brian import on_target

    with on_target(target, f"output_error_{order}") as finish:
        net = build_network(h, s, M=M, S=S, mu=mu, eps=eps, order=order, margin=margin)
        net.run(cycles * b2.ms, namespace={})
        finish(net)
        return _read(net, cycles)


def _read(net, cycles):
    mon_d, mon_t = net["oe_delta_monitor"], net["oe_t_monitor"]
    delta = np.asarray(mon_d.delta).T  # (cycles, N)
    t = np.asarray(mon_t.t_c).T
    if delta.shape[0] != cycles:
        raise RuntimeError(f"the Brian2 network ran {delta.shape[0]} steps for {cycles} cycles.")
    return delta, t


# --------------------------------------------------------------------------------------------------
# Public interface


@dataclass
class Trajectory:
    """δ and t after each cycle, shape ``(cycles, *h.shape)`` (float64 NumPy), and the range report."""

    delta: np.ndarray
    t: np.ndarray
    order: str
    range: RangeReport

    @property
    def cycles(self) -> int:
        return self.delta.shape[0]

    def readout(self, readout="veto") -> np.ndarray:
        return apply_readout(self.delta, readout, order=self.order)


def _prepare(h, s, *, M, S, mu, eps, margin, cycles, order, backend, on_range, target=None):
    from circuits.brian import check_target

    _check_params(M=M, S=S, mu=mu, eps=eps, margin=margin, cycles=cycles)
    _check_order(order)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    check_target(target)
    if target is not None and backend != "brian2":
        raise ValueError(f"target={target!r} chooses a Brian2 code-generation target; it needs backend='brian2'.")
    h = np.asarray(h, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if s.shape != h.shape:
        try:
            s = np.broadcast_to(s, h.shape).copy()
        except ValueError:
            raise ValueError(f"s has shape {s.shape}, which does not broadcast to h's shape {h.shape}.") from None
    _check_s(s)
    h, report = enforce_range(h, bound=M, on_range=on_range, name="h", fix=RANGE_FIX)
    return h, s, report


def trajectory(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, cycles: int, backend: str = "brian2",
               order: str = "sequential", margin: float = 0.0, on_range: str = "report",
               target: str | None = None) -> Trajectory:
    """Run the circuits for ``cycles`` cycles from δ = t = 0 and return the whole trajectory.

    ``h``: feed-forward inputs, any shape; ``s``: ±1 of the same shape (or broadcastable). Out-of-range
    inputs (|h| ≥ M) are handled by ``on_range`` (``circuits.regimes.enforce_range``). ``backend="brian2"``
    runs the rate network of ``build_network``; ``"torch"`` the map of ``iterate_map`` on torch tensors (float64,
    CPU), which is what ``circuits.modules.OutputErrorCircuit`` runs. ``target`` picks Brian2's code-generation
    target (``"numpy"``, ``"cython"``, ``"cpp_standalone"``; None keeps the caller's settings; ``circuits.brian``):
    the trajectory is the same on all of them, bit for bit.
    """
    h, s, report = _prepare(h, s, M=M, S=S, mu=mu, eps=eps, margin=margin, cycles=cycles, order=order,
                            backend=backend, on_range=on_range, target=target)
    shape = h.shape
    if backend == "brian2":
        delta, t = _run_brian2(h.ravel(), s.ravel(), M=M, S=S, mu=mu, eps=eps, cycles=cycles, order=order,
                               margin=margin, target=target)
    else:  # the same map on torch tensors, as circuits.modules.OutputErrorCircuit runs it
        import torch

        d, tt = iterate_map(torch.from_numpy(h.ravel()), torch.from_numpy(s.ravel()), M=M, S=S, mu=mu, eps=eps,
                            cycles=cycles, order=order, margin=margin)
        delta, t = d.numpy(), tt.numpy()
    return Trajectory(delta=delta.reshape((cycles, *shape)), t=t.reshape((cycles, *shape)), order=order,
                      range=report)


def simulate(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, cycles: int, readout="veto",
             backend: str = "brian2", order: str = "sequential", margin: float = 0.0,
             on_range: str = "report", target: str | None = None) -> np.ndarray:
    """The output error circuits' readout δ for each input (float64 NumPy, h's shape).

    With ``readout="veto"`` and ``cycles ≥ 2`` (sequential; ≥ 4 simultaneous) the result equals
    ``rule(h, s, mu=mu, S=S, boundary="closed")`` for every |h| < M. See ``trajectory`` for the arguments.
    """
    if cycles < min_cycles(readout, order):
        raise ValueError(f"readout {readout!r} with order {order!r} needs cycles ≥ {min_cycles(readout, order)}, "
                         f"got {cycles}.")
    return trajectory(h, s, M=M, S=S, mu=mu, eps=eps, cycles=cycles, backend=backend, order=order,
                      margin=margin, on_range=on_range, target=target).readout(readout)


class Compiled:
    """``n`` output error circuits compiled once as a C++ standalone program ("build once, run many").

    Each ``trajectory(h, s)`` / ``simulate(h, s)`` runs the same compiled program with new inputs (``h`` and
    ``s`` as run-time initial values, ``device.run(run_args=...)``): a sweep over h, or the audit of every batch
    during training, pays for the compilation once. Results equal ``trajectory(..., target="numpy")`` bit
    for bit. Use it as a context manager; between its runs Brian2 is in runtime mode::

        with output_error.Compiled(10_000, M=3, mu=1/9, eps=0.2, cycles=8) as circuits:
            for h in sweeps:
                delta = circuits.simulate(h, s)
    """

    def __init__(self, n: int, *, M: float, S: float = 1.0, mu: float, eps: float, cycles: int,
                 order: str = "sequential", margin: float = 0.0):
        _check_params(M=M, S=S, mu=mu, eps=eps, margin=margin, cycles=cycles)
        _check_order(order)
        if int(n) != n or n < 1:
            raise ValueError(f"n (the number of circuits) must be a positive integer, got {n}.")
        self.n, self.cycles, self.order = int(n), int(cycles), order
        self.params = dict(M=M, S=S, mu=mu, eps=eps, margin=margin)
        self._program = None

    def __enter__(self):
        from circuits.brian import Standalone

        def build(b2):
            zeros = np.zeros(self.n)
            net = build_network(zeros, zeros + 1.0, order=self.order, **self.params)
            return net, self.cycles * b2.ms

        import hashlib

        tag = hashlib.sha1(repr(sorted(self.params.items())).encode()).hexdigest()[:10]
        self._program = Standalone(f"output_error_{self.order}_{self.n}_c{self.cycles}_{tag}", build).__enter__()
        return self

    def __exit__(self, *exc):
        program, self._program = self._program, None
        return program.__exit__(*exc) if program is not None else False

    def trajectory(self, h, s, *, on_range: str = "report") -> Trajectory:
        if self._program is None:
            raise RuntimeError("open the compiled circuits with 'with output_error.Compiled(...) as c:' first.")
        h, s, report = _prepare(h, s, cycles=self.cycles, order=self.order, backend="brian2", on_range=on_range,
                                **self.params)
        if h.size != self.n:
            raise ValueError(f"these circuits were compiled for {self.n} inputs, got {h.size}; "
                             f"compile another Compiled({h.size}, ...).")
        delta, t = self._program.run({("oe_delta", "h"): h.ravel(), ("oe_s", "s"): s.ravel()},
                                     lambda net: _read(net, self.cycles))
        return Trajectory(delta=delta.reshape((self.cycles, *h.shape)), t=t.reshape((self.cycles, *h.shape)),
                          order=self.order, range=report)

    def simulate(self, h, s, *, readout="veto", on_range: str = "report") -> np.ndarray:
        if self.cycles < min_cycles(readout, self.order):
            raise ValueError(f"readout {readout!r} with order {self.order!r} needs cycles ≥ "
                             f"{min_cycles(readout, self.order)}, got {self.cycles}.")
        return self.trajectory(h, s, on_range=on_range).readout(readout)


@dataclass
class Stream:
    """δ and t of a stream of examples, shape ``(examples, cycles_per_example, circuits)``; ``h``, ``s`` of
    shape ``(examples, circuits)``; ``reset`` says whether t_c was reset at each new example."""

    delta: np.ndarray
    t: np.ndarray
    h: np.ndarray
    s: np.ndarray
    order: str
    reset: bool
    mu: float
    S: float

    def readout(self, readout="veto") -> np.ndarray:
        """The readout of each example's own cycles, shape ``(examples, circuits)``."""
        return apply_readout(np.moveaxis(self.delta, 1, 0), readout, order=self.order)

    def settling(self) -> np.ndarray:
        """Per example and circuit, the first cycle k (1-based) from which the ``veto`` readout of the last
        period ending at every cycle k, k+1, …, C of the example equals eq. 6: the period itself (2 in the
        sequential order) when the circuit starts clean, more when a stale t_c must first be flushed; C + 1
        if the example ends before it settles."""
        period = PERIODS[self.order]
        want = rule(self.h, self.s, mu=self.mu, S=self.S, boundary="closed")
        E, C, N = self.delta.shape
        ok = np.zeros((E, C), bool).reshape(E, C, 1).repeat(N, 2)
        for k in range(period, C + 1):
            window = np.moveaxis(self.delta[:, k - period:k], 1, 0)
            ok[:, k - 1] = np.abs(apply_readout(window, "veto", order=self.order) - want) <= 1e-12
        # last k from which every later window agrees
        bad_after = np.flip(np.cumsum(np.flip(~ok, 1), 1), 1)  # windows at ≥ k that disagree
        settled = (bad_after == 0)
        first = np.where(settled.any(1), settled.argmax(1) + 1, C + 1)
        return np.maximum(first, period)


def stream(h, s, *, M: float, S: float = 1.0, mu: float, eps: float, cycles_per_example: int,
           reset: bool = True, order: str = "sequential", margin: float = 0.0, on_range: str = "report",
           target: str | None = None) -> Stream:
    """A stream of examples through one set of output circuits, in one Brian2 run (``build_network``'s
    ``TimedArray`` inputs): example e presents ``h[e]``, ``s[e]`` (shape ``(examples, circuits)``) for
    ``cycles_per_example`` cycles, with t_c reset to 0 at each new example or not (``reset``).

    With ``reset=True`` every example's trajectory is exactly that of a fresh ``trajectory`` call. Without it,
    a new example meets the previous example's t_c: ``Stream.settling`` measures the transient this costs.
    """
    import brian2 as b2

    from circuits.brian import on_target

    h = np.asarray(h, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if h.ndim != 2:
        raise ValueError(f"h must have shape (examples, circuits), got {h.shape}.")
    h, s, _ = _prepare(h, s, M=M, S=S, mu=mu, eps=eps, margin=margin, cycles=cycles_per_example, order=order,
                       backend="brian2", on_range=on_range, target=target)
    E, N = h.shape
    C = int(cycles_per_example)
    with on_target(target, f"output_error_stream_{order}") as finish:
        net = build_network(h, s, M=M, S=S, mu=mu, eps=eps, order=order, margin=margin,
                            cycles_per_example=C, reset=reset)
        net.run(E * C * b2.ms, namespace={})
        finish(net)
        delta, t = _read(net, E * C)
    return Stream(delta=delta.reshape(E, C, N), t=t.reshape(E, C, N), h=h, s=s, order=order, reset=bool(reset),
                  mu=float(mu), S=float(S))
