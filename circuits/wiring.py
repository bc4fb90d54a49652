"""The wiring of the Appendix 1 circuits (Fig. 14 and Fig. 15) as networkx graphs read off the Brian2 networks.

Nothing here is drawn by hand: ``graph_from_network`` walks the objects of a simulated ``brian2.Network``
(as built by ``circuits.output_error.build_network`` and ``circuits.shutdown.build_network``):

- each ``NeuronGroup`` is a node, labelled by the variable it outputs; its update code (e.g.
  ``delta = sigma_out(h + I_s + I_t, M, S, mu, eps)``) and transfer function are node attributes;
- each summed variable of each ``Synapses`` object is an edge from the source group to the target group,
  with the synapses' weight (all one-to-one weights of a projection are equal; the edge records the value)
  and the input term it feeds (``I_s``, ``I_t``, …);
- a group parameter that appears in another group's update code but is fed by no synapse (``h``, the
  feed-forward input of the output unit) becomes an external input node.

``draw`` renders such a graph with matplotlib (edge labels = weights) into a PNG.
"""
from __future__ import annotations

import re

import networkx as nx
import numpy as np

from . import transfer

__all__ = ["graph_from_network", "output_error_graph", "shutdown_graph", "draw"]

_PRETTY = {"delta": "δ", "t_c": "t", "delta_tilde": "δ̃", "s": "s", "x": "x", "u": "u", "v": "v", "h": "h"}


def _update_code(group):
    """(output variable, function name, identifiers of the right-hand side) of a group's update code."""
    from brian2.utils.stringtools import get_identifiers

    for obj in group.contained_objects:
        code = (getattr(obj, "abstract_code", "") or "").strip()
        if code and "=" in code and not obj.name.endswith("stateupdater"):
            lhs, rhs = (part.strip() for part in code.split("=", 1))
            known = transfer.identify_brian2(rhs)  # a transfer function's expression, from its breakpoint table
            if known is not None:
                return lhs, known[0], get_identifiers(known[1]), code
            fn = re.match(r"\s*([A-Za-z_]\w*)\s*\(", rhs)
            return lhs, (fn.group(1) if fn else None), get_identifiers(rhs), code
    return None


def graph_from_network(net) -> nx.DiGraph:
    """A ``DiGraph`` of the groups (nodes) and synaptic projections (edges) of a Brian2 ``Network``."""
    import brian2 as b2

    groups = [o for o in net.objects if isinstance(o, b2.NeuronGroup)]
    synapses = [o for o in net.objects if isinstance(o, b2.Synapses)]
    g = nx.DiGraph()
    summed = {}  # (target group name, variable) -> synapse
    for sy in synapses:
        for upd in sy.summed_updaters.values():
            summed[(upd.target.name, upd.target_var.name)] = sy
    for grp in groups:
        upd = _update_code(grp)
        if upd is None:  # an input group: it holds one constant variable
            (var,) = [n for n in grp.equations.names]
            g.add_node(grp.name, kind="input", variable=var, label=_PRETTY.get(var, var), size=int(grp.N),
                       code=None, function=None)
        else:
            var, fn, _, code = upd
            g.add_node(grp.name, kind="unit", variable=var, label=_PRETTY.get(var, var), size=int(grp.N),
                       code=code, function=fn)
    for sy in synapses:
        for upd in sy.summed_updaters.values():
            w = np.unique(np.asarray(sy.w[:]))
            if w.size != 1:
                raise ValueError(f"synapses {sy.name} have {w.size} distinct weights; the wiring graph needs one per projection.")
            pre_var = re.search(r"(\w+)_pre", upd.abstract_code).group(1)
            g.add_edge(sy.source.name, sy.target.name, weight=float(w[0]), term=upd.target_var.name,
                       pre_variable=pre_var, synapses=sy.name)
    # external inputs: parameters read in an update code that no synapse feeds
    for grp in groups:
        upd = _update_code(grp)
        if upd is None:
            continue
        _, _, idents, _ = upd
        for name in sorted(idents):
            if name in grp.equations.names and name != upd[0] and (grp.name, name) not in summed:
                node = f"{grp.name}.{name}"
                g.add_node(node, kind="external", variable=name, label=_PRETTY.get(name, name), size=int(grp.N),
                           code=None, function=None)
                g.add_edge(node, grp.name, weight=1.0, term=name, pre_variable=name, synapses=None)
    return g


def output_error_graph(M: float = 3.0, mu: float = 0.25, eps: float = 0.1) -> nx.DiGraph:
    """Fig. 14 read off a one-circuit network of ``circuits.output_error.build_network``."""
    from circuits.output_error import build_network

    import brian2 as b2

    net = build_network(np.zeros(1), np.ones(1), M=M, mu=mu, eps=eps, name="wiring_oe")
    net.run(2 * b2.ms, namespace={})  # simulated, so the graph is that of a network that ran
    return graph_from_network(net)


def shutdown_graph(K: float = 2.0) -> nx.DiGraph:
    """Fig. 15 read off a one-unit network of ``circuits.shutdown.build_network``."""
    from circuits.shutdown import build_network

    import brian2 as b2

    net = build_network(np.zeros(1), np.zeros(1), K=K, name="wiring_sd")
    net.run(1 * b2.ms, namespace={})
    return graph_from_network(net)


def draw(g: nx.DiGraph, path, *, title: str = "", pos: dict | None = None):
    """Draw the graph into ``path`` (PNG): nodes labelled by variable (and transfer function), edges by weight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = pos or nx.shell_layout(g)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = {"input": "#c6dbef", "external": "#e5e5e5", "unit": "#fdd0a2"}
    labels = {n: d["label"] + (f"\n{d['function'].replace('sigma_', 'σ_')}" if d["function"] else "")
              for n, d in g.nodes(data=True)}
    # node_size is the marker's area in points²: make the circle wider than its longest label line
    font = 9
    widest = max(len(line) for text in labels.values() for line in text.split("\n"))
    node_size = max(2200, (0.65 * font * widest + 18) ** 2)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=node_size,
                           node_color=[colors[d["kind"]] for _, d in g.nodes(data=True)], edgecolors="k")
    nx.draw_networkx_labels(g, pos, labels, ax=ax, font_size=font)
    nx.draw_networkx_edges(g, pos, ax=ax, node_size=node_size, arrowsize=18, connectionstyle="arc3,rad=0.12")
    elabels = {(a, b): f"{d['weight']:+g} → {d['term']}" for a, b, d in g.edges(data=True)}
    nx.draw_networkx_edge_labels(g, pos, elabels, ax=ax, font_size=8, connectionstyle="arc3,rad=0.12")
    ax.margins(0.12)  # room for the outer nodes: none is cut by the frame or the title
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
