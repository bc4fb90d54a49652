"""circuits.wiring: the graphs read off the Brian2 networks are Fig. 14 and Fig. 15 (Appendix 1)."""
import networkx as nx

from circuits import wiring


def _by_label(g):
    return {d["label"]: n for n, d in g.nodes(data=True)}


def test_output_error_graph_is_fig14(brian):
    M = 2.5
    g = wiring.output_error_graph(M=M)
    n = _by_label(g)
    assert set(n) == {"s", "h", "δ", "t"}
    w = {(g.nodes[a]["label"], g.nodes[b]["label"]): d["weight"] for a, b, d in g.edges(data=True)}
    assert w == {("s", "δ"): 2 * M, ("t", "δ"): -2 * M, ("δ", "t"): 1.0, ("h", "δ"): 1.0}
    assert g.nodes[n["δ"]]["function"] == "sigma_out" and g.nodes[n["t"]]["function"] == "sigma_ctl"
    assert nx.find_cycle(g, n["δ"])  # the δ ↔ t loop that makes the oscillation


def test_shutdown_graph_is_fig15(brian, tmp_path):
    K = 1.5
    g = wiring.shutdown_graph(K=K)
    w = {(g.nodes[a]["label"], g.nodes[b]["label"]): d["weight"] for a, b, d in g.edges(data=True)}
    assert w == {("x", "u"): 1.0, ("x", "v"): 1.0, ("u", "δ̃"): -2 * K, ("v", "δ̃"): 2 * K, ("δ", "δ̃"): 1.0}
    assert nx.is_directed_acyclic_graph(g)
    wiring.draw(g, tmp_path / "w.png", title="Fig. 15")
    assert (tmp_path / "w.png").stat().st_size > 1000
