"""The whole learning machine of Amit (2019) as one Brian2 rate network: units, feedback synapses, the two
control circuits of Appendix 1, Hebbian plasticity and the top-down timing of Remark 1 / Fig. 15.

What it is made of (docs/brian2_network.md has the mapping from the paper to these objects):

- one ``NeuronGroup`` per layer of rate units. A hidden unit holds its feed-forward activity ``x = σ(h)``
  (σ(h) = clip(a·h, -1, 1)) until its feedback δ arrives and *replaces* it (Remark 1); the output units hold
  h_L, then the output error δ_L;
- the feed-forward weights W of layer l as ``Synapses`` layer l-1 → l (``h_post = w·x_pre``, summed) and the
  feedback weights R as separate ``Synapses`` l → l-1 (``I_fb_post = r·x_pre``, summed). Random connectivity
  (§3.1) is absent synapses: the synapse lists given here are the entries that exist;
- the output error circuit of Fig. 14 on the output layer: supervisory units s_c, the output units
  themselves as error units δ_c = σ_out(h_c + 2M s_c − 2M t_c) and control units t_c = σ_ctl(δ_c), one
  cycle per time step in the paper's sequential order (or simultaneous), read out by ``veto`` or ``phase K``;
- the shutdown units of Fig. 15 at every hidden unit: u = σ_u(x), v = σ_v(x) read x, and the unit's feedback
  δ = a·σ_gate(R δ_{l+1} − 2K u + 2K v);
- Hebbian plasticity: each W synapse changes by ``η·δ_post·x_pre`` and, where R learns (URFB), each R synapse
  by ``η·δ_pre·x_post`` (the same product of the two units it connects), in the update slot only.

All transfer functions are the Brian2 strings of ``circuits.transfer.brian2_expressions`` (one definition);
there is no Python callback inside the network.

Timing. One example is a fixed number of time steps (``dt`` = 1 ms, a unit of slots). Slot 0 presents the
example (input x_0 and supervisory s from ``TimedArray`` s; the circuits' t_c, δ_c reset to 0); then each event
of the given order gets its own slot (``error`` gets one slot per cycle of the output circuit). Every
operation is a ``run_regularly`` block that acts only in its slot (``int(slot == k)`` terms: exact, it
leaves a variable bit for bit unchanged elsewhere); within a step the summed variables are computed first
(order 0), so an operation reads what earlier slots wrote. A ``send`` slot latches the summed feedback
``R δ`` into the receiving layer's ``fb`` (so a layer sends with the weights it has at that slot: after its
update in order ``paper``), a ``replace`` slot turns ``fb`` into δ through the shutdown units.

The builder takes plain data only (``circuits`` knows nothing of training): layer sizes, the synapse lists
(pre, post, value) of W and R, the event order as (kind, layer index) pairs, η per example, the circuit
parameters. ``check_events`` refuses, before any Brian2 object exists, an order in which an operation would
read a value that is not there yet or no longer there (the data-flow form of Remark 1's constraints).

``LearningNetwork.run(x, s, eta)`` presents a block of examples (batch 1, in order) in one ``Network.run``;
on the ``cpp_standalone`` device the project is built once, at the first call, and each later call reruns
the binary with new inputs and the current weights (``device.run(run_args=...)``).
"""
from __future__ import annotations

import numpy as np

from circuits import output_error, transfer
from circuits.params import check_params

__all__ = ["ScheduleError", "EVENT_KINDS", "check_events", "slot_table", "LearningNetwork"]

EVENT_KINDS = ("forward", "error", "update", "gate", "send", "replace")
READOUTS = ("veto", "phase")


class ScheduleError(ValueError):
    """An event order that the network cannot run: an operation would read a value not (or no longer) there."""


def _layer_name(layers, i):
    return layers[i].get("name", f"layer {i}") if 0 <= i < len(layers) else ("the input" if i == -1 else str(i))


def check_events(layers, events) -> list[tuple[str, int]]:
    """Check a plain event order against what each operation of the network reads and writes; return it as a
    list of (kind, layer) pairs, or raise ``ScheduleError`` naming the first event that cannot run.

    A layer's units hold nothing, then x (its ``forward``), then δ (``error`` at the output, ``replace`` below);
    ``update`` l reads δ_l and x_{l-1}; ``gate`` l reads x_l; ``send`` l reads δ_l and delivers R δ_l to layer
    l-1 while it still holds x; ``replace`` l needs that signal and (for a unit with σ) its shutdown units."""
    n = len(layers)
    out = n - 1
    ev = []
    for e in events:
        try:
            kind, layer = e[0], int(e[1])
        except (TypeError, ValueError, IndexError):
            raise ScheduleError(f"event {e!r} is not a (kind, layer index) pair") from None
        if kind not in EVENT_KINDS or not 0 <= layer < n:
            raise ScheduleError(f"event {e!r} is not an event of this network (kinds {', '.join(EVENT_KINDS)}, "
                                f"layers 0..{n - 1})")
        ev.append((kind, layer))
    need = {("forward", i) for i in range(n)} | {("update", i) for i in range(n)} | {("error", out)}
    need |= {("send", i) for i in range(1, n)}
    need |= {("replace", i) for i in range(out)} | {("gate", i) for i in range(out) if layers[i]["act"]}
    state = ["empty"] * n  # empty -> x -> delta
    gated, signal, seen = [False] * n, [False] * n, set()

    def holds(i, what):
        return True if i < 0 else state[i] == what

    for kind, i in ev:
        name = _layer_name(layers, i)
        what = f"{kind} of {name}"
        if (kind, i) in seen:
            raise ScheduleError(f"{what} runs twice")
        if (kind, i) not in need:
            raise ScheduleError(f"{what} is not an event of this network")
        seen.add((kind, i))
        below = _layer_name(layers, i - 1)
        if kind == "forward":
            if not holds(i - 1, "x"):
                raise ScheduleError(f"{what} reads the activity x of {below}, which it does not hold "
                                    f"({state[i - 1]})")
            state[i] = "x"
        elif kind == "error":
            if state[i] != "x":
                raise ScheduleError(f"{what} needs the output's h_L, which it does not hold ({state[i]})")
            state[i] = "delta"
        elif kind == "update":
            if state[i] != "delta":
                raise ScheduleError(f"{what} needs the feedback δ of {name}, which does not exist yet")
            if not holds(i - 1, "x"):
                raise ScheduleError(f"{what} reads the activity x of {below}, which it does not hold "
                                    f"({state[i - 1]}): the update must come before δ replaces x")
        elif kind == "gate":
            if state[i] != "x":
                raise ScheduleError(f"{what}: the shutdown units read x of {name}, which it does not hold "
                                    f"({state[i]})")
            gated[i] = True
        elif kind == "send":
            if state[i] != "delta":
                raise ScheduleError(f"{what} needs the feedback δ of {name}, which does not exist yet")
            if state[i - 1] != "x":
                raise ScheduleError(f"{what} reaches {below} after its x was replaced")
            signal[i - 1] = True
        elif kind == "replace":
            if state[i] != "x":
                raise ScheduleError(f"{what}: {name} does not hold x ({state[i]})")
            if not signal[i]:
                raise ScheduleError(f"{what} needs the signal sent down by {_layer_name(layers, i + 1)}, "
                                    "which has not arrived")
            if layers[i]["act"] and not gated[i]:
                raise ScheduleError(f"{what}: the shutdown units of {name} have not read x yet")
            state[i] = "delta"
    missing = sorted(need - seen, key=lambda e: (e[1], EVENT_KINDS.index(e[0])))
    if missing:
        k, i = missing[0]
        raise ScheduleError(f"{k} of {_layer_name(layers, i)} is missing from the schedule")
    return ev


def slot_table(events, cycles: int) -> list[tuple[str, int | None, int]]:
    """The time steps of one example: (kind, layer, cycle) per slot; slot 0 is ``present`` (layer None); an
    ``error`` event has one slot per cycle (cycle 1..cycles), every other event one slot (cycle 0)."""
    table = [("present", None, 0)]
    for kind, layer in events:
        if kind == "error":
            table += [("error", layer, c) for c in range(1, cycles + 1)]
        else:
            table.append((kind, layer, 0))
    return table


def _choose(var: str, cases: list[tuple[str, str]], keep: bool = True) -> str:
    """``var = Σ int(cond_k)·(expr_k) [+ int(no cond)·var]``: exact (0·a = 0, 1·b = b) for finite values."""
    terms = [f"int({c})*({e})" for c, e in cases]
    if keep:
        terms.append(f"int(not ({' or '.join(c for c, _ in cases)}))*{var}")
    return f"{var} = " + " + ".join(terms)


class LearningNetwork:
    """The Brian2 learning network for a block of ``n_examples`` examples per run (see the module docstring).

    Parameters (plain data; ``models.schedule.plain_network`` makes them from a network):
        n_in: input units. layers: list of dicts, one per weight layer bottom-up, the last the output:
            ``name``, ``units``, ``act`` (σ applied: hidden layers), ``slope`` (a), ``W`` and ``R``: dicts with
            ``pre``, ``post`` (int arrays, unit indices; R goes from layer l to layer l-1) and ``w`` (float64).
        events: the event order, (kind, layer index) pairs (checked by ``check_events``).
        learn_R: R receives W's increment (URFB) or stays fixed (FRFB).
        n_examples: examples per ``run`` call. M, S, mu, eps, margin, cycles, order, readout: the output
        error circuit (``circuits.output_error``); K: the shutdown gate.
        record_weights: monitor every W and R synapse after every example. record_activity: monitor every
        population at every time step (for the timeline figure). name: prefix of every Brian2 object.
        directory: the cpp_standalone project folder (that device only).
    """

    def __init__(self, n_in, layers, events, *, learn_R: bool, n_examples: int, M: float, S: float = 1.0,
                 mu: float, eps: float, K: float, margin: float = 0.0, cycles: int | None = None,
                 order: str = "sequential", readout: str = "veto", record_weights: bool = True,
                 record_activity: bool = False, name: str = "ln", directory: str | None = None):
        import brian2 as b2

        output_error._check_order(order)
        rname, rkw = output_error.parse_readout(readout)
        if rname not in READOUTS:
            raise ValueError(f"readout {readout!r}: the Brian2 learning network reads the output circuit out with "
                             f"'veto' or 'phase K' (its δ must be final after the cycles); choose one of these")
        need = output_error.min_cycles(readout, order)
        cycles = need if cycles is None else int(cycles)
        check_params(M=M, S=S, mu=mu, eps=eps, K=K, margin=margin, cycles=cycles)
        if cycles < need:
            raise ValueError(f"readout {readout!r} with order {order!r} needs cycles ≥ {need}, got {cycles}")
        if not layers:
            raise ValueError("the network needs at least the output layer")
        if layers[-1]["act"]:
            raise ValueError("the last layer is the linear output layer (act False)")
        if int(n_examples) < 1:
            raise ValueError(f"n_examples must be a positive integer, got {n_examples}")
        self.events = check_events(layers, events)
        self.slots = slot_table(self.events, cycles)
        self.n_slots = len(self.slots)
        self.n_in, self.n_examples, self.name = int(n_in), int(n_examples), name
        self.layers = layers
        self.learn_R = bool(learn_R)
        self.cycles, self.order, self.readout = cycles, order, readout
        self.b2 = b2
        self.standalone = b2.get_device().__class__.__name__ == "CPPStandaloneDevice"
        self.directory = directory
        self.record_weights = bool(record_weights)
        self._built = False
        self.runs = 0

        dt = 1 * b2.ms
        self.dt = dt
        T = self.n_slots * dt  # one example
        self.example_duration = T
        n_out = layers[-1]["units"]
        slot_of = {}
        for k, (kind, layer, cyc) in enumerate(self.slots):
            slot_of.setdefault((kind, layer), []).append(k)
        SLOT = f"int(t/dt + 0.5) % {self.n_slots}"

        def at(kind, layer):
            return f"slot == {slot_of[(kind, layer)][0]}"

        clock = b2.Clock(dt=dt, name=f"{name}_clock")
        self.stim = b2.TimedArray(np.zeros((self.n_examples, self.n_in)), dt=T, name=f"{name}_stimulus")
        self.sup = b2.TimedArray(-np.ones((self.n_examples, n_out)), dt=T, name=f"{name}_supervision")
        self.eta = b2.TimedArray(np.zeros(self.n_examples), dt=T, name=f"{name}_eta")
        objects = []

        def group(n, eqs, gname, ns, order_=1):
            g = b2.NeuronGroup(n, eqs, name=gname, namespace=ns, clock=clock, order=order_)
            objects.append(g)
            return g

        def op(target, code, oname, order_=1):
            objects.append(target.run_regularly(f"slot = {SLOT}\n" + code, when="groups", order=order_,
                                                name=oname))

        def synapses(pre, post, eqs, sname, i, j, ns=None):
            sy = b2.Synapses(pre, post, eqs, name=sname, namespace={} if ns is None else ns, clock=clock)
            i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
            if len(i):
                sy.connect(i=i, j=j)
                if not (np.array_equal(np.asarray(sy.i[:]), i) and np.array_equal(np.asarray(sy.j[:]), j)):
                    raise RuntimeError(f"Brian2 reordered the synapses of {sname}")
            objects.append(sy)
            return sy

        # the input x_0 and the supervisory units s_c: set in slot 0 from the example's TimedArray rows
        inp = group(self.n_in, "x : 1", f"{name}_input", {"stimulus": self.stim})
        op(inp, _choose("x", [("slot == 0", "stimulus(t - t_start, i)")]), f"{name}_input_present")
        pops = [inp]
        self.groups = {"input": inp}
        self.W_syn, self.R_syn = [], []
        out_idx = len(layers) - 1
        sends = {i for kind, i in self.events if kind == "send"}
        for li, L in enumerate(layers):
            n = int(L["units"])
            lname = L.get("name", f"layer{li}")
            is_out = li == out_idx
            ns = {"a": float(L["slope"]), "K": float(K), "M": float(M), "S": float(S), "mu": float(mu),
                  "eps": float(eps), "margin": float(margin)}
            eqs = ["h : 1", "x : 1"]
            if is_out:
                eqs += ["I_s : 1", "I_t : 1", "d : 1", "seen0 : 1", "y : 1"]
            else:
                eqs += ["I_fb : 1", "fb : 1", "I_u : 1", "I_v : 1"]
            g = group(n, "\n".join(eqs), f"{name}_{lname}", ns)
            pops.append(g)
            self.groups[lname] = g
            pre = pops[li]
            # W: layer l-1 -> l, summed into h; Hebbian w += η δ_post x_pre in the update slot
            W = L["W"]
            sw = synapses(pre, g, "w : 1\nh_post = w * x_pre : 1 (summed)", f"{name}_{lname}_W", W["pre"], W["post"],
                          {"eta_of": self.eta})
            sw.w = np.asarray(W["w"], dtype=np.float64)
            op(sw, f"w += int({at('update', li)}) * eta_of(t - t_start) * x_post * x_pre", f"{name}_{lname}_W_hebb")
            self.W_syn.append(sw)
            # R: layer l -> l-1 (separate synapses); summed into the lower layer's I_fb where l sends
            R = L["R"]
            summed = li in sends and li > 0
            sr = synapses(g, pre, "r : 1" + ("\nI_fb_post = r * x_pre : 1 (summed)" if summed else ""),
                          f"{name}_{lname}_R", R["pre"], R["post"], {"eta_of": self.eta})
            sr.r = np.asarray(R["w"], dtype=np.float64)
            if self.learn_R:
                op(sr, f"r += int({at('update', li)}) * eta_of(t - t_start) * x_pre * x_post",
                   f"{name}_{lname}_R_hebb")
            self.R_syn.append(sr)
            if li > 0:  # the layer below latches the signal R δ that this layer sends, in the send slot
                below = pops[li]
                op(below, _choose("fb", [(at("send", li), "I_fb")]), f"{below.name}_receive")
            if is_out:
                continue
            # the shutdown units of Fig. 15: u, v read x in the gate slot; the unit's δ in its replace slot
            f = transfer.brian2_expressions(sigma_u="I_x", sigma_v="I_x", sigma_gate="fb + I_u + I_v")
            gu = group(n, "I_x : 1\nu : 1", f"{name}_{lname}_u", {})
            gv = group(n, "I_x : 1\nv : 1", f"{name}_{lname}_v", {})
            idx = np.arange(n)
            for src, dst, expr, w, sname in ((g, gu, "I_x_post = c * x_pre", 1.0, "x_to_u"),
                                              (g, gv, "I_x_post = c * x_pre", 1.0, "x_to_v"),
                                              (gu, g, "I_u_post = c * u_pre", -2 * K, "u_to_x"),
                                              (gv, g, "I_v_post = c * v_pre", 2 * K, "v_to_x")):
                sy = synapses(src, dst, f"c : 1 (constant)\n{expr} : 1 (summed)", f"{name}_{lname}_{sname}", idx, idx)
                sy.c = w
            if L["act"]:
                op(gu, _choose("u", [(at("gate", li), f["sigma_u"])]), f"{gu.name}_read")
                op(gv, _choose("v", [(at("gate", li), f["sigma_v"])]), f"{gv.name}_read")
                delta = f"a * ({f['sigma_gate']})"
                forward = "clip(a * h, -1, 1)"
            else:
                delta, forward = "fb", "h"
            op(g, _choose("x", [(at("forward", li), forward), (at("replace", li), delta)]), f"{g.name}_update")
            self.groups[lname + "_u"], self.groups[lname + "_v"] = gu, gv

        # the output error circuit (Fig. 14) on the output units: s --(2M)--> δ <--(-2M)-- t, δ --(1)--> t
        out = self.output = pops[-1]
        c_slots = slot_of[("error", out_idx)]
        c0, c1 = c_slots[0], c_slots[-1]
        in_cycles = f"slot >= {c0} and slot <= {c1}"
        ns = {"M": float(M), "S": float(S), "mu": float(mu), "eps": float(eps), "margin": float(margin)}
        ctl_order = 3 if order == "sequential" else 1  # sequential: t reads the δ of the same cycle
        gs = group(n_out, "s : 1", f"{name}_s", {"supervision": self.sup})
        gt = group(n_out, "I_delta : 1\nt_c : 1", f"{name}_t", ns, order_=ctl_order)
        idx = np.arange(n_out)
        for src, dst, expr, w, sname in ((gs, out, "I_s_post = c * s_pre", 2 * M, "s_to_delta"),
                                          (gt, out, "I_t_post = c * t_c_pre", -2 * M, "t_to_delta"),
                                          (out, gt, "I_delta_post = c * d_pre", 1.0, "delta_to_t")):
            sy = synapses(src, dst, f"c : 1 (constant)\n{expr} : 1 (summed)", f"{name}_{sname}", idx, idx)
            sy.c = w
        f = transfer.brian2_expressions(sigma_out="x + I_s + I_t", sigma_ctl="I_delta")
        op(gs, _choose("s", [("slot == 0", "supervision(t - t_start, i)")]), f"{name}_s_present")
        op(gt, _choose("t_c", [("slot == 0", "0.0"), (in_cycles, f["sigma_ctl"])]), f"{name}_t_update",
           order_=ctl_order)
        period = output_error.PERIODS[order]
        window = f"slot > {c1 - period} and slot <= {c1}"
        if rname == "veto":  # 0 if δ visited 0 in the last period of cycles, else the last δ
            readout_slot, value = c1, "d * int(seen0 < 0.5)"
        else:
            readout_slot, value = c0 + rkw["k"] - 1, "d"
        code = "\n".join([
            _choose("d", [("slot == 0", "0.0"), (in_cycles, f["sigma_out"])]),
            _choose("seen0", [("slot == 0", "0.0"), (window, "clip(seen0 + int(d == 0), 0, 1)")]),
            _choose("x", [(at("forward", out_idx), "h"), (f"slot == {readout_slot}", value)]),
            _choose("y", [(at("forward", out_idx), "h")]),
        ])
        op(out, code, f"{out.name}_update")
        self.groups["s"], self.groups["t"] = gs, gt

        # monitors: weights and the output h_L after every example (recorded at the start of the next one)
        self.monitors = {}
        mons = []
        if record_weights:
            for sw, sr, L in zip(self.W_syn, self.R_syn, layers):
                for sy, var in ((sw, "w"), (sr, "r")):
                    if len(sy):
                        m = b2.StateMonitor(sy, var, record=True, dt=T, when="start", name=f"{sy.name}_monitor")
                        self.monitors[sy.name] = m
                        mons.append(m)
        m = b2.StateMonitor(out, "y", record=True, dt=T, when="start", name=f"{name}_output_monitor")
        self.monitors["output"] = m
        mons.append(m)
        if record_activity:
            for gname, g, var in self._activity_vars():
                m = b2.StateMonitor(g, var, record=True, when="end", name=f"{g.name}_{var}_activity")
                self.monitors[f"activity:{gname}:{var}"] = m
                mons.append(m)
        self.network = b2.Network(*objects, *mons, name=f"{name}_network")

    def _activity_vars(self):
        for gname, g in self.groups.items():
            if gname == "input":
                yield gname, g, "x"
            elif gname == "s":
                yield gname, g, "s"
            elif gname == "t":
                yield gname, g, "t_c"
            elif gname.endswith("_u") or gname.endswith("_v"):
                yield gname, g, gname[-1]
            else:
                yield gname, g, "x"
                if "fb" in g.variables:
                    yield gname, g, "fb"
                if "d" in g.variables:
                    yield gname, g, "d"

    # ------------------------------------------------------------------ state
    def weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(w, r) of every layer, in the order of the synapse lists given."""
        return [(np.array(sw.w[:]) if len(sw) else np.zeros(0), np.array(sr.r[:]) if len(sr) else np.zeros(0))
                for sw, sr in zip(self.W_syn, self.R_syn)]

    def run(self, x, s, eta, *, report=None) -> dict:
        """Present ``n_examples`` examples, one at a time, in the order given; returns ``{"output": h_L of each
        example (n, C), "W": [(n, synapses) after each example per layer], "R": [...]}`` (weights only if
        recorded). ``x`` (n, n_in) inputs, ``s`` (n, C) supervisory signals ±1, ``eta`` (n,) the learning rate
        of each example (0: present without learning, e.g. a test example)."""
        b2 = self.b2
        x = np.ascontiguousarray(x, dtype=np.float64)
        s = np.ascontiguousarray(s, dtype=np.float64)
        eta = np.asarray(eta, dtype=np.float64)
        if eta.shape not in ((), (self.n_examples,)) or not (np.isfinite(eta).all() and (eta >= 0).all()):
            raise ValueError(f"eta must be one learning rate or one per example ({self.n_examples}), each ≥ 0 and "
                             f"finite; got shape {eta.shape}, smallest {eta.min(initial=np.inf):g}")
        eta = np.ascontiguousarray(np.broadcast_to(eta, (self.n_examples,)))
        n_out = self.layers[-1]["units"]
        if x.shape != (self.n_examples, self.n_in) or s.shape != (self.n_examples, n_out):
            raise ValueError(f"x must be ({self.n_examples}, {self.n_in}) and s ({self.n_examples}, {n_out}); got "
                             f"{x.shape} and {s.shape} (the network was built for {self.n_examples} examples a run)")
        if not np.isin(s, (-1.0, 1.0)).all():
            raise ValueError("s must hold the supervisory signals +1 (presented class) and -1 (others)")
        duration = self.n_examples * self.example_duration
        if self.standalone:
            before = self.weights() if self._built else None
            if not self._built:
                if self.directory is None:
                    import tempfile

                    self.directory = tempfile.mkdtemp(prefix=f"{self.name}_standalone_")
                self.network.run(duration, namespace={"t_start": 0 * b2.second}, report=report)
                b2.device.build(run=False, directory=self.directory, with_output=False)
                self._built = True
            args = {self.stim: x, self.sup: s, self.eta: eta}
            if before is not None:
                for (w, r), sw, sr in zip(before, self.W_syn, self.R_syn):
                    if len(sw):
                        args[sw.w] = w
                    if len(sr):
                        args[sr.r] = r
            b2.device.run(run_args=args, with_output=False)
            first = 0
        else:
            self.stim.values[:] = x
            self.sup.values[:] = s
            self.eta.values[:] = eta
            first = self.runs * self.n_examples
            self.network.run(duration, namespace={"t_start": self.network.t}, report=report)
        self.runs += 1
        result = {"output": self._after_each(self.monitors["output"], "y", first, np.array(self.output.y[:])).T}
        if self.record_weights:
            now = self.weights()
            result["W"], result["R"] = [], []
            for (w, r), sw, sr in zip(now, self.W_syn, self.R_syn):
                for sy, var, final, key in ((sw, "w", w, "W"), (sr, "r", r, "R")):
                    m = self.monitors.get(sy.name)
                    result[key].append(self._after_each(m, var, first, final).T if m is not None
                                       else np.zeros((self.n_examples, 0)))
        return result

    def _after_each(self, monitor, var, first, final):
        """(units, n): the values after each example of this run: the monitor records a variable at the start
        of every example (the state the previous one left), so after example k is record k+1, and after the
        last one is the final state."""
        rec = np.asarray(getattr(monitor, var))[:, first:first + self.n_examples]
        return np.concatenate([rec[:, 1:], np.asarray(final).reshape(-1, 1)], axis=1)

    def activity(self) -> dict:
        """{(population, variable): (units, steps)} of the run(s), with ``record_activity``."""
        return {tuple(k.split(":")[1:]): np.asarray(getattr(m, k.split(":")[2]))
                for k, m in self.monitors.items() if k.startswith("activity:")}
