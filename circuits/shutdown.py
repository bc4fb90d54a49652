"""The shutdown circuit of Appendix 1 (Fig. 15) as a Brian2 rate network, and eq. 3 it computes.

Per hidden unit (l, i) with feed-forward activity ``x`` and incoming feedback ``δ`` (the sum R δ from the
layer above, docs/spec.md §6 step 3): control units ``u = 1[x ≥ 1]`` and ``v = -1[x ≤ -1]`` read x, and the
feedback unit outputs

    δ̃ = σ_gate(δ - 2K u + 2K v),   σ_gate(z) = z if z ≥ -K else 0,

which is eq. 3 (δ̃ = 0 where the unit is saturated, |x| = 1; else δ) whenever |δ| < K (docs/spec.md §7.2). The
equations are those of ``circuits.transfer`` (``sigma_u``, ``sigma_v``, ``sigma_gate``), called by the Brian2
network as ``Function``s on inputs its synapses sum::

    x --(+1)--> u --(-2K)--\\
    x --(+1)--> v --(+2K)---> δ̃
    δ (feedback) --(+1)----/

One time step runs the paper's sequence: u and v read x first, then δ̃ reads δ, u, v.
``|δ| ≥ K`` is out of range (the gate then passes -K for δ = K at a saturated unit, and shuts a
non-saturated unit with δ < -K): it is detected and handled by ``on_range`` (``circuits.regimes.enforce_range``).

Slope: with the saturated-linear σ of slope a (docs/spec.md §1), σ'(h) = a inside the linear range. The gate computes
only the 0/1 part of σ' (eq. 3); the factor a is applied by the caller (the trainer), not by this circuit.
"""
from __future__ import annotations

import numpy as np

from circuits import transfer
from circuits.params import check_params
from circuits.regimes import enforce_range

__all__ = ["rule", "build_network", "simulate", "RANGE_FIX"]

BACKENDS = ("brian2", "torch")
RANGE_FIX = "raise K above the largest |δ| (the feedback R δ reaching the layer) or scale the feedback down"


def rule(x, delta):
    """Eq. 3: δ̃ = 0 where the unit is saturated (|x| ≥ 1, i.e. |x| = 1 for x = σ(h)), else δ. NumPy out."""
    x = np.asarray(x, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    return np.where(np.abs(x) >= 1.0, 0.0, delta)


def build_network(x, delta, *, K: float, name: str = "sd"):
    """Build the Brian2 network of Fig. 15 for flat arrays ``x``, ``delta`` (one unit per entry).

    Groups ``{name}_x`` (feed-forward activity), ``{name}_u``, ``{name}_v`` (control units), ``{name}_fb``
    (incoming feedback δ) and ``{name}_gated`` (δ̃); one-to-one ``Synapses`` with summed inputs. One step of
    ``dt`` = 1 ms: u, v update first (order 1), δ̃ second (order 3). A monitor records δ̃ at the end.
    """
    check_params(K=K)
    import brian2 as b2

    x = np.asarray(x, dtype=np.float64).ravel()
    delta = np.asarray(delta, dtype=np.float64).ravel()
    N = x.size
    f = transfer.brian2_expressions(sigma_u="I_x", sigma_v="I_x", sigma_gate="I_delta + I_u + I_v")
    clock = b2.Clock(dt=1 * b2.ms, name=f"{name}_clock")
    g_x = b2.NeuronGroup(N, "x : 1 (constant)", name=f"{name}_x", namespace={}, clock=clock, order=0)
    g_fb = b2.NeuronGroup(N, "delta : 1 (constant)", name=f"{name}_fb", namespace={}, clock=clock, order=0)
    g_u = b2.NeuronGroup(N, "I_x : 1\nu : 1", name=f"{name}_u", namespace={}, clock=clock, order=1)
    g_v = b2.NeuronGroup(N, "I_x : 1\nv : 1", name=f"{name}_v", namespace={}, clock=clock, order=1)
    g_out = b2.NeuronGroup(N, """I_delta : 1
                                 I_u : 1
                                 I_v : 1
                                 delta_tilde : 1""", name=f"{name}_gated",
                           namespace={"K": float(K)}, clock=clock, order=3)
    g_x.x = x
    g_fb.delta = delta
    idx = np.arange(N)
    syn = []
    for pre, post, var, w in ((g_x, g_u, "I_x_post = w * x_pre", 1.0),
                              (g_x, g_v, "I_x_post = w * x_pre", 1.0),
                              (g_fb, g_out, "I_delta_post = w * delta_pre", 1.0),
                              (g_u, g_out, "I_u_post = w * u_pre", -2 * K),
                              (g_v, g_out, "I_v_post = w * v_pre", 2 * K)):
        sy = b2.Synapses(pre, post, f"w : 1 (constant)\n{var} : 1 (summed)", name=f"{pre.name}_to_{post.name}",
                         namespace={}, clock=clock)
        sy.connect(i=idx, j=idx)
        sy.w = w
        syn.append(sy)
    g_u.run_regularly(f"u = {f['sigma_u']}", when="groups", order=1, name=f"{name}_u_update")
    g_v.run_regularly(f"v = {f['sigma_v']}", when="groups", order=1, name=f"{name}_v_update")
    g_out.run_regularly(f"delta_tilde = {f['sigma_gate']}", when="groups", order=3, name=f"{name}_gated_update")
    mon = b2.StateMonitor(g_out, "delta_tilde", record=True, when="end", name=f"{name}_monitor")
    return b2.Network(g_x, g_fb, g_u, g_v, g_out, *syn, mon, name=f"{name}_network")


def simulate(x, delta, *, K: float, backend: str = "brian2", on_range: str = "report",
             target: str | None = None) -> np.ndarray:
    """The gated feedback δ̃ for each unit (float64 NumPy, x's shape).

    ``x``: feed-forward activities (any shape); ``delta``: incoming feedback of the same shape. Equals
    ``rule(x, delta)`` wherever |δ| < K. ``|δ| ≥ K`` is handled by ``on_range``: ``"report"`` (count and
    warn), ``"error"`` (raise), ``"clip"`` (clip δ into (-K, K) first). ``backend="torch"`` applies
    ``circuits.transfer.gate`` to torch tensors (float64, CPU), as ``circuits.modules.ShutdownGate`` does.
    ``target``: Brian2's code-generation target (``circuits.brian``; None keeps the caller's settings).
    """
    from circuits.brian import check_target, on_target

    check_params(K=K)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    check_target(target)
    if target is not None and backend != "brian2":
        raise ValueError(f"target={target!r} chooses a Brian2 code-generation target; it needs backend='brian2'.")
    x = np.asarray(x, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    if x.shape != delta.shape:
        raise ValueError(f"x has shape {x.shape} but delta has shape {delta.shape}; pass one δ per unit.")
    if np.isnan(x).any():
        raise ValueError("x contains NaN; the control units have no defined response to NaN.")
    delta, _ = enforce_range(delta, bound=K, on_range=on_range, name="delta", fix=RANGE_FIX)
    if backend == "torch":  # the gate on torch tensors, as circuits.modules.ShutdownGate applies it
        import torch

        return transfer.gate(torch.from_numpy(x), torch.from_numpy(delta), K=K).numpy()
    import brian2 as b2

    with on_target(target, "shutdown") as finish:
        net = build_network(x, delta, K=K)
        net.run(1 * b2.ms, namespace={})
        finish(net)
        return np.asarray(net["sd_monitor"].delta_tilde)[:, 0].reshape(x.shape)
