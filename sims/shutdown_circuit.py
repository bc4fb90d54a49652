"""The shutdown circuit of Amit (2019), Appendix 1 (Fig. 15): gating feedback at saturated units, eq. 3.

Runs the Brian2 rate network of ``circuits.shutdown`` (control units u = 1[x ≥ 1], v = -1[x ≤ -1] and the
gated feedback δ̃ = σ_gate(δ - 2K u + 2K v)) over a grid of the unit's feed-forward input h (x = σ(h),
slope 1) and incoming feedback δ, including |δ| ≥ K where the circuit's assumption fails. Plots eq. 3, the
circuit's δ̃ and where they differ (the |δ| ≥ K band), plus δ̃ against δ for a free and a saturated unit;
draws Fig. 15 as read off the simulated network; prints the agreement on random draws inside and outside
|δ| < K.

    python sims/shutdown_circuit.py             # figures in runs/shutdown_circuit/
    python sims/shutdown_circuit.py --publish   # the published docs/figures/shutdown_circuit.png, fig15_wiring_shutdown.png
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
p.add_argument("--K", type=float, default=1.0, help="bound on the feedback |δ| that the circuit assumes")
p.add_argument("--h-max", type=float, default=1.6, help="feed-forward input range h ∈ [-h_max, h_max]")
p.add_argument("--d-max", type=float, default=2.0, help="feedback range δ ∈ [-d_max·K, d_max·K]")
p.add_argument("--grid", type=int, default=301, help="grid points per axis")
p.add_argument("--draws", type=int, default=10_000, help="random draws of the agreement check")
p.add_argument("--seed", type=int, default=0, help="seed of the random draws")
p.add_argument("--target", choices=["numpy", "cython", "cpp_standalone"], default="numpy",
               help="Brian2 code-generation target of the shutdown network (results are the same)")
cli.add_output(p, "shutdown_circuit")
args = p.parse_args()
with cli.guard():  # every setting checked before any simulation
    cli.check_circuit(K=args.K)
    for name in ("h_max", "d_max", "grid", "draws"):
        if not getattr(args, name) > 0:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    args.out = str(cli.figure_dir(args))

import brian2 as b2  # noqa: E402

from circuits import shutdown, wiring  # noqa: E402
from circuits.check import CircuitRangeWarning  # noqa: E402

b2.BrianLogger.log_level_error()
start = time.time()
K = args.K

# 1. the map over (h, δ), x = σ(h) with slope 1
hg = np.linspace(-args.h_max, args.h_max, args.grid)
dg = np.linspace(-args.d_max * K, args.d_max * K, args.grid)
Hh, Dd = np.meshgrid(hg, dg)
X = np.clip(Hh, -1.0, 1.0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", CircuitRangeWarning)  # counted below
    out = shutdown.simulate(X, Dd, K=K, target=args.target)
eq3 = shutdown.rule(X, Dd)
wrong = out != eq3

fig = plt.figure(figsize=(14, 4.2))
gs = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1, 1.1])
ext = [hg[0], hg[-1], dg[0], dg[-1]]
for k, (title, img) in enumerate((("eq. 3: δ̃ = 0 where |x| = 1, else δ", eq3),
                                  ("circuit δ̃ = σ_gate(δ − 2Ku + 2Kv)", out))):
    ax = fig.add_subplot(gs[k])
    im = ax.imshow(img, origin="lower", extent=ext, aspect="auto", cmap="RdBu_r", vmin=-args.d_max * K,
                   vmax=args.d_max * K)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("feed-forward input h  (x = σ(h))")
    ax.set_ylabel("incoming feedback δ")
    for y in (K, -K):
        ax.axhline(y, color="k", lw=0.7, ls="--")
fig.colorbar(im, ax=ax, fraction=0.05)
ax = fig.add_subplot(gs[2])
ax.imshow(wrong, origin="lower", extent=ext, aspect="auto", cmap="Greys", vmin=0, vmax=1.5)
for y in (K, -K):
    ax.axhline(y, color="C3", lw=0.9, ls="--")
ax.set_title(f"circuit ≠ eq. 3 (black); dashed: |δ| = K = {K:g}", fontsize=9)
ax.set_xlabel("feed-forward input h")
ax = fig.add_subplot(gs[3])
dl = np.linspace(-args.d_max * K, args.d_max * K, 801)
for xval, style in ((0.5, dict(color="C0", lw=2)), (1.0, dict(color="C3", lw=2, ls="--")),
                    (-1.0, dict(color="C2", lw=1.2, ls=":"))):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CircuitRangeWarning)
        ax.plot(dl, shutdown.simulate(np.full_like(dl, xval), dl, K=K, target=args.target),
                label=f"circuit, x = {xval:g}", **style)
ax.axvspan(-args.d_max * K, -K, color="0.9")
ax.axvspan(K, args.d_max * K, color="0.9")
ax.set_xlabel("incoming feedback δ  (shaded: |δ| ≥ K)")
ax.set_ylabel("δ̃")
ax.set_title("eq. 3: δ̃ = δ (free), 0 (saturated)", fontsize=9)
ax.legend(fontsize=8)
fig.suptitle(f"Fig. 15 shutdown circuit (Brian2 rate network, {args.target}) against eq. 3, K = {K:g}", fontsize=10)
bottom = cli.caption(fig, f"A hidden unit with feed-forward input h (x = σ(h) = clip(h, −1, 1), slope 1) and incoming "
                          f"feedback δ, on a {args.grid} × {args.grid} grid; colour: the feedback sent on, δ̃. The "
                          "control units u = 1[x ≥ 1], v = −1[x ≤ −1] shut the feedback of a saturated unit by "
                          "subtracting 2K from its input; that is eq. 3 only while |δ| < K (between the dashed "
                          "lines). Third panel: where the circuit differs from eq. 3 (black), all outside |δ| < K, "
                          "as expected. Right: δ̃ against δ for a free unit (x = 0.5) and saturated ones (x = ±1, "
                          "the same curve); shaded: |δ| ≥ K. No random draws in this figure.")
f1 = str(cli.save(fig, os.path.join(args.out, "shutdown_circuit.png"), bottom=bottom))

# 2. wiring of Fig. 15
g = wiring.shutdown_graph(K=K)
lab = {d["label"]: node for node, d in g.nodes(data=True)}
pos = {lab["x"]: (-1.2, 0.0), lab["u"]: (0.0, 0.6), lab["v"]: (0.0, -0.6), lab["δ"]: (0.0, 1.5),
       lab["δ̃"]: (1.3, 0.0)}
f2 = os.path.join(args.out, "fig15_wiring_shutdown.png")
wiring.draw(g, f2, title="Fig. 15 as read off the Brian2 network (edge: weight → input term)", pos=pos)

# 3. random draws: inside |δ| < K and outside
rng = np.random.default_rng(args.seed)
x_in = np.clip(rng.uniform(-1.3, 1.3, args.draws), -1, 1)
d_in = rng.uniform(-K, K, args.draws)
d_in = np.where(np.abs(d_in) >= K, 0.0, d_in)
ok_in = shutdown.simulate(x_in, d_in, K=K, target=args.target) == shutdown.rule(x_in, d_in)
x_out = np.clip(rng.uniform(-1.3, 1.3, args.draws), -1, 1)
d_out = np.sign(rng.uniform(-1, 1, args.draws)) * rng.uniform(K, 2 * K, args.draws)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", CircuitRangeWarning)
    ok_out = shutdown.simulate(x_out, d_out, K=K, target=args.target) == shutdown.rule(x_out, d_out)

print(f"Shutdown circuit, K={K:g}")
print(f"{'draws':<28} {'n':>6} {'saturated':>9} {'agree':>6} {'%':>7}")
for name, ok, x in (("|δ| < K", ok_in, x_in), ("K ≤ |δ| < 2K (out of range)", ok_out, x_out)):
    print(f"{name:<28} {ok.size:>6d} {int((np.abs(x) >= 1).sum()):>9d} {int(ok.sum()):>6d} {100 * ok.mean():>7.2f}")
print(f"out-of-range draws reported: {caught[0].message if caught else 'NO WARNING'}")
sat = np.abs(x_out) >= 1
print(f"  of which wrong: saturated with δ ≥ K {int((~ok_out & sat & (d_out > 0)).sum())}, "
      f"free with δ < -K {int((~ok_out & ~sat & (d_out < 0)).sum())}, other {int((~ok_out & ~((sat & (d_out > 0)) | (~sat & (d_out < 0)))).sum())}")
for f in (f1, f2):
    print("wrote", os.path.relpath(f))
print(f"total time {time.time() - start:.1f} s")
