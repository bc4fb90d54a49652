"""The event graph of one training batch under the rigid top-down timing (Remark 1, Fig. 2, Fig. 15; docs/spec.md §6).

Draws the networkx DAG that the scheduled engine (models.schedule) executes, for a network in the paper's
notation, in both orders: ``paper`` (a layer sends its signal down with the weights it has just updated, as
in Fig. 15) and ``gradient`` (it sends before updating). Columns are layers (input side left), rows are the
DAG's topological generations (time runs downward); edge colours mark the constraints of Remark 1.
Writes schedule_<net>_<order>.png into --out (default runs/schedule_graph; docs/figures with --publish) and
prints the executed order.

    python sims/schedule_graph.py --net simpnet
    python sims/schedule_graph.py --net simpnet --publish      # the published figures
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402

from models.network import Network  # noqa: E402
from models.schedule import ScheduledEngine  # noqa: E402
from sims import cli  # noqa: E402

COLORS = {"forward": "#9ecae1", "error": "#fb6a4a", "update": "#74c476", "gate": "#fdae6b",
          "send": "#bcbddc", "replace": "#fcbba1"}


def draw(net: Network, G: nx.DiGraph, title: str, path: Path) -> None:
    row = {}
    for k, generation in enumerate(nx.topological_generations(G)):
        for e in generation:
            row[e] = k
    slots: dict[tuple[int, int], int] = {}
    pos = {}
    for e in sorted(G, key=lambda e: (row[e], e.layer, e.kind)):
        key = (row[e], e.layer)
        offset = slots.get(key, 0)
        slots[key] = offset + 1
        pos[e] = (e.layer + 0.35 * offset, -row[e])
    fig, ax = plt.subplots(figsize=(1.25 * len(net.layers) + 3, 0.42 * (max(row.values()) + 1) + 2))
    edge_colors = []
    for u, v in G.edges:
        if u.kind == "update" and v.kind == "replace":
            edge_colors.append("#d62728")  # the update reads x before it is replaced
        elif u.kind == "gate":
            edge_colors.append("#ff7f0e")
        else:
            edge_colors.append("#999999")
    nx.draw_networkx_edges(G, pos, ax=ax, edge_color=edge_colors, arrowsize=8, width=0.8,
                           connectionstyle="arc3,rad=0.08", node_size=900)
    nx.draw_networkx_nodes(G, pos, ax=ax, node_color=[COLORS[e.kind] for e in G], node_size=900,
                           edgecolors="#444444", linewidths=0.5)
    nx.draw_networkx_labels(G, pos, ax=ax, labels={e: e.kind for e in G}, font_size=6)
    ax.set_xticks(range(len(net.layers)))
    ax.set_xticklabels(net.names, rotation=30, fontsize=8)
    ax.tick_params(left=False, labelleft=False, bottom=True, labelbottom=True)
    for s in ("left", "right", "top"):
        ax.spines[s].set_visible(False)
    ax.set_title(title + "\nred: W_{l+1} update reads x_l before δ_l replaces it; orange: u/v read x_l first",
                 fontsize=9)
    ax.set_ylabel("time (topological generation) ↓", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    p = cli.parser(__doc__)
    p.add_argument("--net", default="simpnet", help="preset or specification in the paper's notation")
    p.add_argument("--shape", default="1,28,28", help="C,H,W of one input")
    p.add_argument("--classes", type=int, default=10, help="output classes")
    cli.add_output(p, "schedule_graph")
    p.add_argument("--outdir", dest="out", action=cli._Given, help=argparse.SUPPRESS)  # deprecated: --out
    args = p.parse_args()
    shape = cli.parse_shape(args.shape)
    if args.classes < 2:
        raise cli.UsageError(f"--classes must be at least 2, got {args.classes}")
    net = Network(args.net, shape, args.classes, rule="urfb")
    outdir = cli.figure_dir(args)
    for order in ("paper", "gradient"):
        engine = ScheduledEngine(net, order=order)
        G = engine.graph
        name = args.net if " " not in args.net else "custom"
        path = outdir / f"schedule_{name}_{order}.png"
        draw(net, G, f"{name}: event graph of one batch, order '{order}' ({G.number_of_nodes()} events, "
                     f"{G.number_of_edges()} constraints)", path)
        print(f"order {order}: " + " → ".join(f"{e.kind}:{net.names[e.layer]}" for e in engine.events
                                             if e.kind != "forward"))
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
