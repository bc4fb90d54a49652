"""The breakpoint tables of circuits/transfer.py against docs/spec.md §7 written out by hand, with every parameter
its own value (elsewhere the learning threshold S is always 1, so a table that wrote 1 for S, or swapped two
parameters that happen to be equal, would pass).

Properties: σ_out, σ_ctl, σ_u, σ_v and σ_gate — as NumPy functions and as the Brian2 expression strings the
networks run — equal the spec's piecewise definitions at every breakpoint, just beside each, and on a spread of
values, for M = 3, S = 0.4, μ = 0.3, ε = 0.15, margin 0.5 and K = 1.7.
"""
import numpy as np

from circuits import transfer

M, S, MU, EPS, MARGIN, K = 3.0, 0.4, 0.3, 0.15, 0.5, 1.7


def _spec(x):
    """docs/spec.md §7.1 and §7.2, one np.select per function (H = ±M takes the outer value)."""
    lo, hi = -MU - MARGIN * EPS, 1.0 + MARGIN * EPS
    return {
        "sigma_out": np.select([x > 2 * M + S, x >= M, x > -M, x >= -2 * M - S], [1 + EPS, 1.0, 0.0, -MU], -MU - EPS),
        "sigma_ctl": np.select([x > hi, x < lo], [1.0, -1.0], 0.0),
        "sigma_u": np.where(x >= 1, 1.0, 0.0),
        "sigma_v": np.where(x <= -1, -1.0, 0.0),
        "sigma_gate": np.where(x >= -K, x, 0.0),
    }


def _points():
    ts = [-2 * M - S, -M, M, 2 * M + S, -2 * M - 1, 2 * M + 1, -MU - MARGIN * EPS, 1 + MARGIN * EPS, 1.0, -1.0, -MU,
          -K, -1.0 - 2 * K, 1.0 + 2 * K]
    near = [t + d for t in ts for d in (0.0, 1e-9, -1e-9, 0.05, -0.05)]
    return np.array(sorted(near + list(np.linspace(-2 * M - 2, 2 * M + 2, 161))))


def test_numpy_functions_are_the_spec_with_S_not_1():
    x = _points()
    want = _spec(x)
    got = {"sigma_out": transfer.sigma_out(x, M=M, S=S, mu=MU, eps=EPS),
           "sigma_ctl": transfer.sigma_ctl(x, mu=MU, eps=EPS, margin=MARGIN),
           "sigma_u": transfer.sigma_u(x), "sigma_v": transfer.sigma_v(x), "sigma_gate": transfer.sigma_gate(x, K=K)}
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    # the band between 2M+1 and 2M+S: where S = 1 and S = 0.4 disagree, σ_out is 1+ε
    assert transfer.sigma_out(np.array([2 * M + 0.7, -2 * M - 0.7]), M=M, S=S, mu=MU, eps=EPS).tolist() == \
        [1 + EPS, -MU - EPS]


def test_brian2_expressions_are_the_spec_with_S_not_1(brian):
    x = _points()
    want = _spec(x)
    ns = {"M": M, "S": S, "mu": MU, "eps": EPS, "margin": MARGIN, "K": K}
    exprs = transfer.brian2_expressions(sigma_out="x", sigma_ctl="x", sigma_u="x", sigma_v="x", sigma_gate="x")
    g = brian.NeuronGroup(len(x), "x : 1 (constant)\n" + "\n".join(f"{n} : 1" for n in exprs), name="tables",
                          namespace=ns)
    g.x = x
    g.run_regularly("\n".join(f"{n} = {e}" for n, e in exprs.items()), name="tables_update")
    brian.Network(g, name="tables_net").run(brian.defaultclock.dt, namespace={})
    for name in exprs:
        np.testing.assert_array_equal(np.asarray(getattr(g, name)[:]), want[name], err_msg=name)
