"""The timing scheduler: training under the rigid top-down sequence of Remark 1 and Fig. 15 (docs/spec.md §6).

At a unit the feedback activity δ *replaces* the feed-forward activity x. So, layer by layer from the top,
with δ_{l+1} present in layer l+1 and x_l still present in layer l:

1. ``update``  W_{l+1} (and R_{l+1} under URFB) from δ_{l+1} and x_l (reads x_l);
2. ``gate``    the shutdown units u_l, v_l read x_l (Appendix 1, Fig. 15);
3. ``send``    the signal R_{l+1} δ_{l+1} goes down to layer l;
4. ``replace`` δ_l = gate_l(signal) overwrites x_l.

This module makes that sequence explicit:

- ``build_schedule(net, order)`` is the event graph (a ``networkx`` DAG) of one batch: ``forward`` of every
  layer, the ``error`` at the output, and per layer ``update``, ``gate``, ``send``, ``replace``. With order
  ``paper`` (Fig. 15 and the authors' code) a layer sends with the weights it has just updated (update → send);
  with order ``gradient`` it sends with the pre-update weights (send → update), which equals autograd exactly.
- ``check_order`` checks a whole schedule against the graph before it runs: an event that comes before one
  it depends on, a missing or repeated event, or an event of another network raises ``SequencingError``
  naming the step and the constraint of Remark 1 it breaks, with W and R untouched.
- ``LayerState`` holds a layer's activity: first x (written by the layer's ``forward`` event), then δ. Each
  access checks the order again (reading x after it was replaced, replacing it before every signal has
  arrived, using δ before it exists), as a second line behind ``check_order``.
- ``ScheduledEngine`` executes a topological order of the graph for every batch (any valid order gives the
  same result). A ``forward`` event runs the layer's own forward code (``Network``'s layers; the backward of
  max-pool, dropout and sum is autograd's, from that same forward); the output error comes from eq. 6
  (``ideal``) or from the output error circuit, and the gate from σ' (``ideal``) or from the shutdown
  circuit (``circuits.modules``: this engine is the one place where circuits and training meet). It plugs
  into ``models.train.train`` as its ``step``.

Signals are carried per example (δ of eq. 2 and 6, not divided by the batch size); updates are the Hebbian
``ΔW = (η/B) Σ_batch δ xᵀ`` through each layer's ``weight_grad`` (the same kernels as back-propagation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch

from .layers import Sum, WeightLayer
from .losses import default_mu, output_error, softmax_error, supervisory
from .network import Network

__all__ = ["SequencingError", "Event", "build_schedule", "LayerState", "ScheduledEngine", "check_order",
           "plain_network", "synapse_values"]


class SequencingError(RuntimeError):
    """An event ran out of the order of Remark 1 / docs/spec.md §6."""


@dataclass(frozen=True, order=True)
class Event:
    """One step of a batch: ``kind`` in forward, error, update, gate, send, replace; ``layer`` an index."""

    kind: str
    layer: int

    def describe(self, net: Network) -> str:
        return f"{self.kind} of layer {net.names[self.layer]}"


def _inputs(net: Network, i: int) -> list[int]:
    """Indices of the layers feeding layer i (-1 is the network's input x_0)."""
    return [i - 2, i - 1] if isinstance(net.layers[i], Sum) else [i - 1]


def _has_gate(m) -> bool:
    return isinstance(m, WeightLayer) and m.act


def build_schedule(net: Network, order: str = "paper") -> nx.DiGraph:
    """The event DAG of one batch under order ``paper`` or ``gradient`` (see the module docstring).

    Every edge carries ``why``: the sentence a ``SequencingError`` gives when a schedule breaks it."""
    if order not in ("paper", "gradient"):
        raise ValueError(f"order must be 'paper' or 'gradient', got {order!r}")
    n = len(net.layers)
    out = n - 1
    G = nx.DiGraph(order=order)
    E = Event
    name = net.names

    def ready(i):  # the event after which δ_i exists
        return E("error", out) if i == out else E("replace", i)

    for i in range(n):
        G.add_node(E("forward", i))
        for j in _inputs(net, i):
            if j >= 0:
                G.add_edge(E("forward", j), E("forward", i),
                           why=f"forward of layer {name[i]} reads the output of layer {name[j]}")
    G.add_edge(E("forward", out), E("error", out), why="the output error needs the output layer's h_L")
    consumers = {j: [i for i in range(n) if j in _inputs(net, i)] for j in range(-1, n)}
    for i in range(n):
        m = net.layers[i]
        if _has_gate(m):
            G.add_edge(E("forward", i), E("gate", i),
                       why=f"the shutdown units of layer {name[i]} read its activity x, computed by its forward")
            G.add_edge(E("gate", i), E("replace", i),
                       why=f"the shutdown units of layer {name[i]} read x before its feedback δ replaces it")
        if i != out:
            for c in consumers[i]:
                G.add_edge(E("send", c), E("replace", i),
                           why=f"the feedback δ of layer {name[i]} needs the signal sent down by layer {name[c]}")
                if isinstance(net.layers[c], WeightLayer):  # c's update reads x_i first
                    G.add_edge(E("update", c), E("replace", i),
                               why=f"update of layer {name[c]} reads the activity x of layer {name[i]} before "
                                   "its feedback δ replaces it")
        if isinstance(m, WeightLayer):
            G.add_edge(ready(i), E("update", i),
                       why=f"update of layer {name[i]} needs the feedback δ of layer {name[i]}")
        if any(j >= 0 for j in _inputs(net, i)):
            G.add_edge(ready(i), E("send", i), why=f"send of layer {name[i]} needs the feedback δ of layer {name[i]}")
            if isinstance(m, WeightLayer):
                if order == "paper":
                    G.add_edge(E("update", i), E("send", i),
                               why=f"order paper: layer {name[i]} sends with the weights it has just updated")
                else:
                    G.add_edge(E("send", i), E("update", i),
                               why=f"order gradient: layer {name[i]} sends with its weights before the update")
    # Every weight layer's update must exist even where nothing depends on it (the first layer's).
    for i in range(n):
        if isinstance(net.layers[i], WeightLayer):
            G.add_node(E("update", i))
    assert nx.is_directed_acyclic_graph(G)
    return G


def _default_order(G: nx.DiGraph) -> list[Event]:
    """A deterministic topological order: the forward pass first, then top-down by layer."""
    return list(nx.lexicographical_topological_sort(G, key=lambda e: (e.kind != "forward", -e.layer, e.kind)))


def check_order(G: nx.DiGraph, events, names=None) -> None:
    """Raise ``SequencingError`` unless ``events`` runs every event of ``G`` once, in a topological order.

    The error names the first event of ``events`` that comes too early (or the event that is missing) and
    the constraint of Remark 1 it breaks. ``names`` (the network's layer names) makes the messages name
    layers; otherwise they give indices."""

    def say(e):
        return f"{e.kind} of layer {names[e.layer]}" if names is not None else f"{e.kind} of layer index {e.layer}"

    events = list(events)
    listed = set()
    for e in events:
        if e not in G:
            raise SequencingError(f"step {e} is not an event of this network's graph")
        if e in listed:
            raise SequencingError(f"step {say(e)} runs twice")
        listed.add(e)
    done = set()
    for e in events:
        for u in G.predecessors(e):
            if u not in done:
                why = G.edges[u, e].get("why", f"{say(e)} depends on {say(u)}")
                if u not in listed:
                    raise SequencingError(f"step {say(u)} is skipped, but {why}")
                raise SequencingError(f"step {say(e)} is scheduled before {say(u)}, but {why}")
        done.add(e)
    missing = [e for e in G if e not in listed]
    if missing:
        raise SequencingError(f"step {say(missing[0])} is skipped")


class LayerState:
    """A layer's activity in one batch: its feed-forward x (set by its forward event), later replaced by its
    feedback δ (Remark 1). Each access checks the order, as a second line behind ``check_order``."""

    def __init__(self, name: str, x, expected_signals: int, gated: bool):
        self.name = name
        self._x = x
        self.shape = None if x is None else x.shape
        self._replaced = False
        self._delta = None
        self._signal = None
        self._arrived = 0
        self._expected = expected_signals
        self._gated = gated
        self.control = None  # what the shutdown units read from x (set by the gate step)

    def set_x(self, x: torch.Tensor, step: str) -> None:
        if self._x is not None or self._replaced:
            raise SequencingError(f"{step} runs twice: layer {self.name} already has its activity")
        self._x = x
        self.shape = x.shape

    def read_x(self, step: str) -> torch.Tensor:
        if self._x is None:
            if self._replaced:
                raise SequencingError(f"{step} reads the activity x of layer {self.name}, which was already "
                                      "replaced by its feedback δ")
            raise SequencingError(f"{step} reads the activity x of layer {self.name} before its forward pass")
        return self._x

    def read_delta(self, step: str) -> torch.Tensor:
        if self._delta is None:
            raise SequencingError(f"{step} needs the feedback δ of layer {self.name}, which does not exist yet")
        return self._delta

    def add_signal(self, e: torch.Tensor, step: str) -> None:
        if self._delta is not None:
            raise SequencingError(f"{step} sends a signal to layer {self.name} after its x was replaced")
        self._signal = e if self._signal is None else self._signal + e
        self._arrived += 1

    def signal(self, step: str) -> torch.Tensor:
        if self._arrived < self._expected:
            raise SequencingError(f"{step}: layer {self.name} has {self._arrived} of its {self._expected} "
                                  "feedback signals")
        if self._gated and self.control is None:
            raise SequencingError(f"{step}: the shutdown units of layer {self.name} have not read x yet")
        return self._signal

    def replace(self, delta: torch.Tensor, step: str) -> None:
        self.read_x(step)
        self._x = None
        self._replaced = True
        self._delta = delta


class _Batch:
    """What one batch's events share: the input, labels, step settings, and what the error event computed."""

    def __init__(self, x, y, loss_fn, lr, decay):
        self.x, self.y, self.loss_fn, self.lr, self.decay = x, y, loss_fn, lr, decay
        self.loss = self.h = self.delta_out = None
        self.graphs = {}  # layer index -> (inputs, output) of a non-weight layer's forward, for its send
        self.dW_gradient = None


class ScheduledEngine:
    """Runs a batch through the event graph; use as ``train(..., step=engine)``.

    Parameters
    ----------
    net : the network (its rule decides loss, feedback and whether R learns).
    order : ``paper`` or ``gradient``.
    error_signal : None for the ideal output error (eq. 6; softmax error for ``bp``), or a module
        ``f(h, s) -> δ`` (``circuits.modules.OutputErrorCircuit``), s = ±1 supervisory signals.
    gate : None for the ideal gate σ'(h) = a·1[|x| < 1], or a module ``g(x, signal) -> gated signal``
        (``circuits.modules.ShutdownGate``); the slope a of σ' is applied after the circuit's gate.
    mu : off-class weight of the hinge loss (default 1/(C-1)).
    compare_every : under order ``paper``, every N batches also compute the ``gradient``-order updates from
        the same state (not applied) and record their relative distance (0: never).
    audit : optional ``audit(h, s, delta) -> mismatches`` called every ``audit_every`` batches with the batch's
        output inputs and the readout used (the Brian2 audit of the circuit module).
    schedule : an explicit list of events to execute instead of a topological order of the graph. It is
        checked against the graph here (and whenever ``events`` is set), before anything runs: an invalid
        order raises ``SequencingError`` and leaves W and R untouched.
    """

    def __init__(self, net: Network, *, order="paper", error_signal=None, gate=None, mu=None,
                 compare_every=0, audit=None, audit_every=0, schedule=None):
        if net.rule.feedback == "D":
            raise ValueError(f"rule {net.rule.name} sends the output error to every layer directly, not down the "
                             "top-down sequence of Remark 1 that this engine schedules; use the fast engine")
        self.net = net
        self.order = order
        self._graphs = {o: build_schedule(net, o) for o in ("paper", "gradient")}
        self._orders = {o: _default_order(g) for o, g in self._graphs.items()}
        self.graph = self._graphs[order]
        self.events = schedule if schedule is not None else self._orders[order]
        self.error_signal = error_signal
        self.gate = gate
        self.mu = mu if mu is not None else default_mu(net.num_classes)
        self.compare_every = compare_every
        self.audit = audit
        self.audit_every = audit_every
        self.executed: list[Event] = []
        self._batch = 0
        self.reset_metrics()

    @property
    def events(self) -> tuple[Event, ...]:
        """The order of events each batch executes (checked against the graph when set)."""
        return self._events

    @events.setter
    def events(self, events) -> None:
        events = tuple(events)
        check_order(self.graph, events, self.net.names)
        self._events = events

    # ------------------------------------------------------------------ metrics
    def reset_metrics(self) -> None:
        self._m = {"n_outputs": 0, "regimes": {k: 0 for k in ("on-update", "on-correct", "off-update",
                                                                "off-correct")},
                   "out_of_range_M": 0, "out_of_range_K": 0, "audit_batches": 0, "audit_mismatches": 0,
                   "order_distance": []}

    def epoch_metrics(self) -> dict:
        """Per-epoch additions to metrics.jsonl; resets the counters."""
        m = self._m
        n = max(m["n_outputs"], 1)
        row = {"regime_fraction": {k: v / n for k, v in m["regimes"].items()},
               "range_violations": {"output_M": m["out_of_range_M"], "gate_K": m["out_of_range_K"]}}
        if m["audit_batches"]:
            row["audit"] = {"batches": m["audit_batches"], "mismatches": m["audit_mismatches"]}
        if m["order_distance"]:
            row["order_distance"] = sum(m["order_distance"]) / len(m["order_distance"])
        self.reset_metrics()
        return row

    # ------------------------------------------------------------------ one batch
    @torch.no_grad()
    def __call__(self, net, x, y, loss_fn, lr, decay):
        if net is not self.net:
            raise ValueError("this ScheduledEngine was built for another network")
        batch = _Batch(x, y, loss_fn, lr, decay)
        compare = self.order == "paper" and self.compare_every and self._batch % self.compare_every == 0
        dW = self._run(self.events, self._states(), batch, apply=True, want_dW=compare, compare=compare)
        if compare:
            ref = batch.dW_gradient
            num = sum(float((dW[k] - ref[k]).norm() ** 2) for k in dW)
            den = sum(float(ref[k].norm() ** 2) for k in dW)
            self._m["order_distance"].append(math.sqrt(num / den) if den > 0 else 0.0)
        self._batch += 1
        return batch.loss.detach(), batch.h

    def _states(self, xs=None) -> list[LayerState]:
        net, n = self.net, len(self.net.layers)
        consumers = {j: sum(j in _inputs(net, i) for i in range(n)) for j in range(n)}
        return [LayerState(net.names[i], None if xs is None else xs[i], consumers[i], _has_gate(net.layers[i]))
                for i in range(n)]

    def _output_error(self, batch: _Batch, h) -> None:
        """The error event's computation, once per batch: loss, supervisory signals, regimes, δ_L."""
        batch.h = h
        batch.loss = batch.loss_fn(h, batch.y)
        s = supervisory(batch.y, h)
        self._count_regimes(h, s)
        batch.delta_out = self._error(h, batch.y, s)

    def _error(self, h, y, s):
        if self.net.rule.loss == "xent":
            return softmax_error(h, y)
        if self.error_signal is None:
            return output_error(h, y, self.mu)
        delta = self.error_signal(h, s)
        info = getattr(self.error_signal, "last_info", None) or {}
        self._m["out_of_range_M"] += int(info.get("n_out_of_range", 0))
        if self.audit is not None and self.audit_every and self._batch % self.audit_every == 0:
            self._m["audit_batches"] += 1
            self._m["audit_mismatches"] += int(self.audit(h, s, delta))
        return delta

    def _count_regimes(self, h, s):
        S = getattr(self.error_signal, "S", 1.0)
        on = s > 0
        r = self._m["regimes"]
        r["on-update"] += int((on & (h <= S)).sum())
        r["on-correct"] += int((on & (h > S)).sum())
        r["off-update"] += int((~on & (h >= -S)).sum())
        r["off-correct"] += int((~on & (h < -S)).sum())
        self._m["n_outputs"] += h.numel()

    def _run(self, events, states, batch: _Batch, *, apply, want_dW, compare=False):
        """Execute ``events`` on ``states`` (updates applied in place if ``apply``); with ``want_dW`` return
        {layer index: -η·M_W⊙grad}, the Hebbian part of each ΔW, for comparing orders. With ``compare``, the
        error event also runs the gradient order's feedback events on the same forward state (not applied)
        and leaves their ΔW in ``batch.dW_gradient``."""
        net = self.net
        layers = net.layers
        lr, decay = batch.lr, batch.decay
        n_batch = batch.x.shape[0]
        dW = {}
        executed = []
        for ev in events:
            executed.append(ev)
            i, m = ev.layer, layers[ev.layer]
            step = ev.describe(net)
            if ev.kind == "forward":  # the layer's own forward code, from its inputs' activities
                ins = [batch.x if j < 0 else states[j].read_x(step) for j in _inputs(net, i)]
                if isinstance(m, WeightLayer):
                    out = m(*ins)
                else:  # max-pool, dropout, sum: their backward (arg-max, mask, copy) is autograd's own
                    with torch.enable_grad():
                        ins = [t.detach().requires_grad_(True) for t in ins]
                        out = m(*ins)
                    batch.graphs[i] = (ins, out)
                    out = out.detach()
                states[i].set_x(out, step)
            elif ev.kind == "error":  # δ_L of the output units (computed once per batch from h_L and s)
                h = states[i].read_x(step)
                if batch.delta_out is None:
                    self._output_error(batch, h)
                if compare:  # every forward has run and nothing is updated yet: the gradient order's reference
                    xs = [st.read_x(step) for st in states]
                    feedback = [e for e in self._orders["gradient"] if e.kind != "forward"]
                    batch.dW_gradient = self._run(feedback, self._states(xs), batch, apply=False, want_dW=True)
                states[i].replace(batch.delta_out, step)
            elif ev.kind == "gate":  # the control units read x_l (they hold its saturation state)
                states[i].control = states[i].read_x(step)
            elif ev.kind == "update":
                delta = states[i].read_delta(step)
                j = _inputs(net, i)[0]
                x_in = batch.x if j < 0 else states[j].read_x(step)
                g = m.weight_grad(x_in, delta).mul_(-1.0 / n_batch)  # linear in δ: scale the small tensor
                if want_dW:
                    dW[i] = -lr * (g if m.mask_W is None else g * m.mask_W)
                if apply:
                    m.W.grad = g
                    m.apply_update(lr, decay)
            elif ev.kind == "send":
                delta = states[i].read_delta(step)
                ins = [j for j in _inputs(net, i) if j >= 0]
                if isinstance(m, WeightLayer):
                    states[ins[0]].add_signal(m.send(delta, m.feedback_tensor(), states[ins[0]].shape), step)
                else:
                    inputs, out = batch.graphs[i]
                    grads = torch.autograd.grad(out, inputs, delta, retain_graph=True)
                    for j, g in zip(_inputs(net, i), grads):
                        if j >= 0:
                            states[j].add_signal(g, step)
            elif ev.kind == "replace":
                signal = states[i].signal(step)
                if _has_gate(m):
                    if self.gate is None:  # σ'(h) = a·1[|x| < 1], strict (PyTorch's hardtanh backward)
                        delta = torch.ops.aten.hardtanh_backward(signal, states[i].control, -1.0, 1.0).mul_(m.slope)
                    else:
                        delta = self.gate(states[i].control, signal) * m.slope
                        info = getattr(self.gate, "last_info", None) or {}
                        if apply:  # a dry run (the comparison) leaves the metrics alone
                            self._m["out_of_range_K"] += int(info.get("n_out_of_range", 0))
                else:
                    delta = signal
                states[i].replace(delta, step)
            else:  # pragma: no cover - check_order admits only the graph's events
                raise SequencingError(f"unknown step {ev.kind!r}")
        if apply:
            self.executed = executed
        return dW


def brian2_audit(circuit, atol: float = 1e-6, target: str | None = "numpy"):
    """An ``audit(h, s, delta) -> mismatches`` that runs the actual Brian2 rate network of the output error
    circuit (float64) on a batch's output inputs h and counts the entries where its readout differs from
    ``delta``, the readout the training module produced (by more than ``atol``; float32 training rounds -μ).
    Brian2 is imported only when an audit runs.

    ``target`` is Brian2's code-generation target (``circuits.brian``). With ``"cpp_standalone"`` the network
    is compiled once, for the largest batch seen, and every later audit reruns that program with the batch's
    inputs (``circuits.output_error.Compiled``; smaller batches are padded with on-update inputs h = 0,
    s = +1, whose readouts are dropped); the program is closed when the process ends, or by ``audit.close()``.
    """
    from circuits.brian import check_target

    check_target(target)
    compiled = {}

    def kwargs():
        return dict(M=circuit.M, S=circuit.S, mu=circuit.mu, eps=circuit.eps, cycles=circuit.cycles,
                    order=circuit.order, margin=circuit.margin)

    def close():
        program = compiled.pop("program", None)
        if program is not None:
            program.__exit__(None, None, None)

    def reference(h, s):
        if target != "cpp_standalone":
            from circuits.output_error import simulate

            return simulate(h, s, readout=circuit.readout, on_range=circuit.on_range, backend="brian2",
                            target=target, **kwargs())
        from circuits.output_error import Compiled

        n = h.size
        if compiled.get("n", 0) < n:
            close()
            if not compiled.get("atexit"):
                import atexit

                atexit.register(close)
                compiled["atexit"] = True
            compiled["program"] = Compiled(n, **kwargs()).__enter__()
            compiled["n"] = n
        size = compiled["n"]
        hp = np.zeros(size)
        sp = np.ones(size)
        hp[:n], sp[:n] = h.ravel(), s.ravel()
        return compiled["program"].simulate(hp, sp, readout=circuit.readout, on_range=circuit.on_range)[:n] \
            .reshape(h.shape)

    def audit(h, s, delta) -> int:
        ref = reference(h.detach().double().cpu().numpy(), s.detach().double().cpu().numpy())
        got = delta.detach().double().cpu().numpy()
        return int((abs(ref - got) > atol).sum())

    audit.close = close
    return audit


def plain_network(net: Network, order: str = "paper", events=None) -> dict:
    """The network and its schedule as plain data, for a simulator that knows nothing of ``models``
    (``circuits.learning_network``, the whole learning machine in Brian2; docs/brian2_network.md).

    ``events`` (default: the scheduled engine's own topological order) is checked against the event graph
    first: an order that breaks Remark 1 raises ``SequencingError`` here, before any simulation. Returns
    ``{"n_in", "classes", "learn_R", "events": [(kind, layer index)], "layers": [...]}`` with one dict per
    weight layer: ``name``, ``kind``, ``units``, ``act``, ``slope``, and ``W``, ``R`` as synapse lists
    ``{"pre", "post", "w", "index"}``: one entry per weight that exists (masked-out entries and a local
    layer's connections into the zero padding are absent), ``index`` its position in the flattened tensor
    (``W.flatten()[index]`` is the synapse's value), units numbered as PyTorch flattens (C, H, W). W goes from
    layer l-1 (pre) to l (post); R from l (pre) to l-1 (post), carrying the feedback R δ down.
    Only ``full``, ``local`` and ``output`` layers have a synapse-level form (a tied convolution shares one
    weight among many synapses; max-pool, dropout and sum are not in this network); rules whose feedback is
    not R (bp, bp-h, sign, dfa) or that decay the weights (kp) are refused."""
    from .layers import Full
    from .local import Local, in_grid

    rule = net.rule
    if rule.feedback != "R" or rule.decay:
        raise ValueError(f"rule {rule.name}: the network of neurons sends feedback through its own R synapses and "
                         "updates them only by Hebbian products; use frfb or urfb (urfb from feedback_init "
                         "'symmetric' is the symmetric control, equal to bp-h)")
    G = build_schedule(net, order)
    events = _default_order(G) if events is None else [e if isinstance(e, Event) else Event(*e) for e in events]
    check_order(G, events, net.names)
    layers = []
    for name, m, shape in zip(net.names, net.layers, net.shapes):
        if isinstance(m, Local):
            hw, c_in, k, c_out = m.hw, m.c_in, m.k, m.c_out
            h, w = hw
            a = (k - 1) // 2
            exists = in_grid(hw, c_in, k).expand_as(m.W).reshape(-1).numpy()
            f = torch.arange(m.W.numel()).numpy()
            q_len = c_in * k * k
            p, o, q = f // (c_out * q_len), (f // q_len) % c_out, f % q_len
            c, dy, dx = q // (k * k), (q // k) % k, q % k
            row, col = p // w + dy - a, p % w + dx - a
            pre_all = np.where(exists, c * h * w + row * w + col, -1)
            post_all = o * h * w + p
        elif isinstance(m, Full):
            n_out, n_in = m.W.shape
            f = np.arange(m.W.numel())
            exists = np.ones(f.size, dtype=bool)
            pre_all, post_all = f % n_in, f // n_in
        else:
            raise ValueError(f"layer {name} ({type(m).__name__}): the network of neurons has full, local and output "
                             "layers only (a tied convolution shares one weight among many synapses: write it "
                             "'local'; max-pool, dropout and sum are not part of it)")
        lay = {"name": name, "kind": "output" if not m.act else ("local" if isinstance(m, Local) else "full"),
               "units": int(np.prod(shape)), "act": bool(m.act), "slope": float(m.slope), "shape": tuple(shape)}
        for key, tensor, mask in (("W", m.W, m.mask_W), ("R", m.R, m.mask_R)):
            keep = exists.copy()
            if mask is not None:
                keep &= mask.detach().reshape(-1).cpu().numpy() > 0
            index = np.flatnonzero(keep)
            value = tensor.detach().reshape(-1).cpu().double().numpy()[index]
            pre, post = pre_all[index], post_all[index]
            lay[key] = {"pre": pre if key == "W" else post, "post": post if key == "W" else pre, "w": value,
                        "index": index}
        layers.append(lay)
    return {"n_in": int(np.prod(net.in_shape)), "classes": int(net.num_classes), "learn_R": bool(rule.learn_R),
            "events": [(e.kind, e.layer) for e in events], "layers": layers}


def synapse_values(net: Network, plain: dict) -> list[tuple]:
    """The current (W, R) values of ``net`` at the synapses of ``plain`` (``plain_network``'s lists), float64
    NumPy, layer by layer: what a simulator of those synapses should hold."""
    out = []
    for lay, m in zip(plain["layers"], (m for m in net.layers if isinstance(m, WeightLayer))):
        out.append(tuple(t.detach().reshape(-1).cpu().double().numpy()[lay[k]["index"]]
                         for k, t in (("W", m.W), ("R", m.R))))
    return out
