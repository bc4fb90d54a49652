"""The output error circuit of Amit (2019), Appendix 1 (Fig. 13, 14): oscillation regimes and eq. 6.

Runs the Brian2 rate network of ``circuits.output_error`` (the paper's alternating δ → t → δ map) on one
representative input of each of the four regimes (docs/spec.md §7.1) and plots δ_c and t_c over cycles, for the
paper's sequential order (period-2 oscillation) and the simultaneous order (period 4). Then a regime map:
the readouts ``veto``, ``phase K`` (K and K+1) and ``window-mean`` of the rate network over h_c ∈ (-M, M)
for s = +1 and s = -1, with eq. 6 overlaid; beside it the continuous-time (``circuits.continuous``) and
spiking (``circuits.spiking``) versions on a coarser grid. Also draws the wiring of Fig. 14 as read off
the simulated network (``circuits.wiring``), checks the veto readout against eq. 6 on the boundary grid
and random draws (``circuits.check``), and prints a table of the regimes.

    python sims/output_circuit.py             # figures in runs/output_circuit/
    python sims/output_circuit.py --publish   # the published docs/figures/output_circuit_*.png, fig14_wiring_output_error.png
"""
import os
import time
import warnings

import sys

import matplotlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from sims import cli  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

p = cli.parser(__doc__)
p.add_argument("--M", type=float, default=3.0, help="bound on |h_c| (Appendix 1 assumes h_c ∈ [-M, M])")
p.add_argument("--S", type=float, default=1.0, help="learning threshold S (§3: 1)")
p.add_argument("--mu", type=float, default=1 / 9, help="off-class error μ (hinge default 1/(C-1), C = 10)")
p.add_argument("--eps", type=float, default=0.2, help="oscillation increment ε > 0")
p.add_argument("--cycles", type=int, default=12, help="cycles plotted per trajectory")
p.add_argument("--phase", type=int, default=7, help="K of the 'phase K' readout (K+1 is drawn too)")
p.add_argument("--inputs", type=float, nargs=4, default=[0.5, 1.5, -0.5, -1.5],
               help="h_c of the representative on-update, on-correct, off-update, off-correct inputs")
p.add_argument("--grid", type=int, default=1201, help="points of the regime map over (-M, M), per s")
p.add_argument("--variant-grid", type=int, default=25, help="points per s for the continuous/spiking variants")
p.add_argument("--draws", type=int, default=10_000, help="random draws of the agreement check")
p.add_argument("--no-spiking", action="store_true", help="skip the spiking variant (the slowest part)")
cli.add_output(p, "output_circuit")
args = p.parse_args()
with cli.guard():  # every setting checked before any simulation
    cli.check_circuit(M=args.M, S=args.S, mu=args.mu, eps=args.eps)
    for name in ("cycles", "phase", "grid", "variant_grid", "draws"):
        if getattr(args, name) < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    args.out = str(cli.figure_dir(args))

import brian2 as b2  # noqa: E402

from circuits import check, output_error, wiring  # noqa: E402

b2.prefs.codegen.target = "numpy"
b2.BrianLogger.log_level_error()
P = dict(M=args.M, S=args.S, mu=args.mu, eps=args.eps)
start = time.time()

# 1. trajectories of the four representative inputs, both orders
h4 = np.array(args.inputs)
s4 = np.array([1.0, 1.0, -1.0, -1.0])
names = check.regime(h4, s4, S=args.S)
traj = {order: output_error.trajectory(h4, s4, cycles=args.cycles, order=order, **P)
        for order in output_error.ORDERS}
fig, axes = plt.subplots(2, 4, figsize=(13, 5.2), sharex=True)
cyc = np.arange(1, args.cycles + 1)
for j in range(4):
    for row, order in enumerate(output_error.ORDERS):
        ax = axes[row, j]
        tr = traj[order]
        ax.step(cyc, tr.delta[:, j], where="mid", color="C0", lw=2, label="δ_c")
        ax.step(cyc, tr.t[:, j], where="mid", color="C3", lw=1.2, ls="--", label="t_c")
        ax.axhline(0, color="0.7", lw=0.6)
        ax.set_ylim(-1.35, 1.45)
        if row == 0:
            ax.set_title(f"{names[j]}: h={h4[j]:g}, s={s4[j]:+g}\neq. 6 → {output_error.rule(h4[j], s4[j], mu=args.mu, S=args.S):.3g}",
                         fontsize=9)
        if j == 0:
            ax.set_ylabel(f"{order}\n(period {output_error.PERIODS[order]})")
        if row == 1:
            ax.set_xlabel("cycle")
axes[0, 0].legend(fontsize=8, loc="lower left")
fig.suptitle(f"Output error circuit (Fig. 14), Brian2 rate network: M={args.M:g}, S={args.S:g}, "
             f"μ={args.mu:.3g}, ε={args.eps:g}; t_c = 0 at the start", fontsize=10)
fig.tight_layout()
f1 = os.path.join(args.out, "output_circuit_trajectories.png")
fig.savefig(f1, dpi=110)
plt.close(fig)

# 2. regime map of the rate network's readouts over h ∈ (-M, M), s = ±1
hg = np.linspace(-args.M, args.M, args.grid + 2)[1:-1]
H = np.concatenate([hg, hg])
Sg = np.concatenate([np.ones_like(hg), -np.ones_like(hg)])
K = args.phase
tr = output_error.trajectory(H, Sg, cycles=max(K + 1, 4), **P)
readouts = {"veto": tr.readout("veto"), f"phase {K}": tr.readout(f"phase {K}"),
            f"phase {K + 1}": tr.readout(f"phase {K + 1}"), "window-mean": tr.readout("window-mean")}
eq6 = output_error.rule(H, Sg, mu=args.mu, S=args.S)

# 3. continuous and spiking variants on a coarser grid (each returns one readout value per input)
hv = np.linspace(-args.M, args.M, args.variant_grid + 2)[1:-1]
Hv = np.concatenate([hv, hv])
Sv = np.concatenate([np.ones_like(hv), -np.ones_like(hv)])
variants, variant_time = {}, {}
try:
    from circuits import continuous

    for ro in ("veto", "t-gate"):
        t0 = time.time()
        variants[f"continuous {ro}"] = continuous.simulate(Hv, Sv, readout=ro, **P)
        variant_time[f"continuous {ro}"] = time.time() - t0
except ImportError as err:  # written by another part of the project; the map is still useful without it
    print(f"continuous variant not available: {err}")
if not args.no_spiking:
    try:
        from circuits import spiking

        t0 = time.time()
        variants["spiking veto"] = spiking.simulate(Hv, Sv, **P)
        variant_time["spiking veto"] = time.time() - t0
    except ImportError as err:
        print(f"spiking variant not available: {err}")

fig, axes = plt.subplots(2, 2, figsize=(13, 7), sharex=True)
n = hg.size
nv = hv.size
styles = {"veto": dict(color="C0", lw=2.2), f"phase {K}": dict(color="C1", lw=1.2, ls="--"),
          f"phase {K + 1}": dict(color="C2", lw=1.2, ls="-."), "window-mean": dict(color="C4", lw=1.2, ls=":")}
vstyles = {"continuous veto": dict(color="C1", marker="o", ms=4, ls="none"),
           "continuous t-gate": dict(color="C2", marker="s", ms=4, ls="none", mfc="none"),
           "spiking veto": dict(color="C3", marker="^", ms=5, ls="none")}
for row, sval in enumerate((1.0, -1.0)):
    sl = slice(0, n) if sval > 0 else slice(n, 2 * n)
    slv = slice(0, nv) if sval > 0 else slice(nv, 2 * nv)
    for col in range(2):
        ax = axes[row, col]
        ax.plot(hg, eq6[sl], color="k", lw=5, alpha=0.18, label="eq. 6")
        for edge in (args.S, -args.S):
            ax.axvline(edge, color="0.6", lw=0.6, ls=":")
        ax.set_ylim(-0.75 if sval < 0 else -0.25, 1.35 if sval > 0 else 0.2)
        ax.set_ylabel(f"readout δ_c  (s = {sval:+g})")
    for name, vals in readouts.items():
        axes[row, 0].plot(hg, vals[sl], label=name, **styles[name])
    for name, vals in variants.items():
        axes[row, 1].plot(hv, vals[slv], label=name, **vstyles[name])
axes[0, 0].set_title("Brian2 rate network (discrete map), sequential order", fontsize=10)
axes[0, 1].set_title("continuous-time and spiking versions (circuits.continuous, circuits.spiking)", fontsize=10)
for ax in axes[1]:
    ax.set_xlabel("h_c")
# lower left of the s = +1 panels: every curve there is at δ = 1 (h < S), so the legends cover none
axes[0, 0].legend(fontsize=8, loc="lower left")
axes[0, 1].legend(fontsize=8, loc="lower left")
fig.suptitle(f"Regime map: M={args.M:g}, S={args.S:g}, μ={args.mu:.3g}, ε={args.eps:g} "
             f"(dotted lines: h = ±S)", fontsize=10)
fig.tight_layout()
f2 = os.path.join(args.out, "output_circuit_regime_map.png")
fig.savefig(f2, dpi=110)
plt.close(fig)

# 4. wiring of Fig. 14, read off the simulated network
g = wiring.output_error_graph(M=args.M, mu=args.mu, eps=args.eps)
lab = {d["label"]: node for node, d in g.nodes(data=True)}
pos = {lab["s"]: (-1.0, 0.7), lab["h"]: (-1.0, -0.7), lab["δ"]: (0.0, 0.0), lab["t"]: (1.2, 0.0)}
f3 = os.path.join(args.out, "fig14_wiring_output_error.png")
wiring.draw(g, f3, title="Fig. 14 as read off the Brian2 network (edge: weight → input term)", pos=pos)

# 5. agreement of the veto readout with eq. 6 (boundary grid + random draws), float64
with warnings.catch_warnings():
    warnings.simplefilter("ignore", check.CircuitRangeWarning)
    rep = check.check_rule(lambda h, s: output_error.simulate(h, s, cycles=2, **P), M=args.M, S=args.S,
                           mu=args.mu, n_random=args.draws, out_of_range=True)

# table
print(f"Output error circuit, M={args.M:g} S={args.S:g} mu={args.mu:.4g} eps={args.eps:g}")
print(f"{'regime':<12} {'h':>6} {'s':>3}  {'δ over cycles 1-4 (seq.)':<30} {'veto':>7} {f'ph {K}':>7} "
      f"{f'ph {K + 1}':>7} {'w-mean':>7} {'eq. 6':>7}")
tr8 = output_error.trajectory(h4, s4, cycles=max(K + 1, 4), **P)
for j in range(4):
    seq = " ".join(f"{v:+.3f}" for v in tr8.delta[:4, j])
    vals = [tr8.readout(r)[j] for r in ("veto", f"phase {K}", f"phase {K + 1}", "window-mean")]
    print(f"{names[j]:<12} {h4[j]:>6g} {s4[j]:>+3g}  {seq:<30} " + " ".join(f"{v:>7.4f}" for v in vals)
          + f" {output_error.rule(h4[j], s4[j], mu=args.mu, S=args.S):>7.4f}")
print(f"\nveto readout vs eq. 6 (closed form) on {rep.n_grid} boundary-grid points + {rep.n_random} random draws:")
print(rep.table())
print(f"at |h| = M exactly (out of range, reported): {rep.out_of_range[1]} of {rep.out_of_range[0]} agree")
print(f"inputs where the strict form of eq. 6 differs (h = ±S exactly): {rep.strict_differs}")
for name, vals in variants.items():
    agr = check.agreement_by_regime(vals, Hv, Sv, mu=args.mu, S=args.S, atol=0.05)
    print(f"{name:<18} (atol 0.05, {variant_time[name]:.1f} s): "
          + ", ".join(f"{k} {a}/{n_}" for k, (n_, a) in agr.items()))
for f in (f1, f2, f3):
    print("wrote", os.path.relpath(f))
print(f"total time {time.time() - start:.1f} s")
