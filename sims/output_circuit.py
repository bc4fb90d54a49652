"""The output error circuit of Amit (2019), Appendix 1 (Fig. 13, 14): oscillation regimes and eq. 6.

Runs the Brian2 rate network of ``circuits.output_error`` (the paper's alternating δ → t → δ map) on one
representative input of each of the four regimes (docs/spec.md §7.1) and plots δ_c and t_c over cycles, with the
δ and t half-steps interleaved and the readout window shaded, for the paper's sequential order (period-2
oscillation) and the simultaneous order (period 4); the same orbits in the (δ, t) phase plane with the switching
lines of σ_ctl and σ_out; a stream of examples (TimedArray inputs) with and without the reset of t between
examples, and the transient a stale t costs. Then a regime map:
the readouts ``veto``, ``phase K`` (K and K+1) and ``window-mean`` of the rate network over h_c ∈ (-M, M)
for s = +1 and s = -1, with eq. 6 overlaid; beside it the continuous-time (``circuits.continuous``) and
spiking (``circuits.spiking``) versions on a coarser grid. Also draws the wiring of Fig. 14 as read off
the simulated network (``circuits.wiring``), checks the veto readout against eq. 6 on the boundary grid
and random draws (``circuits.check``), and prints what the regimes and readouts are, in words, beside a
table of one input per regime, and which disagreements with eq. 6 are expected and why.

    python sims/output_circuit.py             # figures in runs/output_circuit/
    python sims/output_circuit.py --publish   # the published docs/figures/fig14_output_circuit_*.png, fig14_wiring_output_error.png
    python sims/output_circuit.py --target cpp_standalone   # the same figures from the C++ standalone build
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
p.add_argument("--stream-examples", type=int, default=2000, help="examples of the stream experiment (10 classes each)")
p.add_argument("--target", choices=["numpy", "cython", "cpp_standalone"], default="numpy",
               help="Brian2 code-generation target of the rate and continuous networks (results are the same)")
cli.add_output(p, "output_circuit")
args = p.parse_args()
with cli.guard():  # every setting checked before any simulation
    cli.check_circuit(M=args.M, S=args.S, mu=args.mu, eps=args.eps)
    for name in ("cycles", "phase", "grid", "variant_grid", "draws", "stream_examples"):
        if getattr(args, name) < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    args.out = str(cli.figure_dir(args))

import brian2 as b2  # noqa: E402

from circuits import check, output_error, wiring  # noqa: E402

b2.BrianLogger.log_level_error()
P = dict(M=args.M, S=args.S, mu=args.mu, eps=args.eps)
T = dict(target=args.target)
start = time.time()

# 1. trajectories of the four representative inputs, both orders, with the δ and t half-steps interleaved
h4 = np.array(args.inputs)
s4 = np.array([1.0, 1.0, -1.0, -1.0])
names = check.regime(h4, s4, S=args.S)
traj = {order: output_error.trajectory(h4, s4, cycles=args.cycles, order=order, **P, **T)
        for order in output_error.ORDERS}
fig, axes = plt.subplots(2, 4, figsize=(14, 5.6), sharex=True)
for j in range(4):
    for row, order in enumerate(output_error.ORDERS):
        ax = axes[row, j]
        tr = traj[order]
        # cycle k: δ updates at k − ½ (reading t of cycle k − 1), t at k (sequential: reading the new δ);
        # each value is held until the unit's next update, so the alternation of Fig. 14 shows as staggered steps
        d_times = np.arange(1, args.cycles + 1) - 0.5
        t_times = np.arange(1, args.cycles + 1) if order == "sequential" else d_times
        ax.step(np.r_[0, d_times, args.cycles + 0.5], np.r_[0, tr.delta[:, j], tr.delta[-1, j]], where="post",
                color="C0", lw=2, label="δ_c (updates at k − ½)")
        ax.step(np.r_[0, t_times, args.cycles + 0.5], np.r_[0, tr.t[:, j], tr.t[-1, j]], where="post",
                color="C3", lw=1.2, ls="--", label="t_c (updates at k)" if order == "sequential" else "t_c")
        period = output_error.PERIODS[order]
        ax.axvspan(args.cycles - period + 0.5, args.cycles + 0.5, color="0.85", zorder=0,
                   label=f"veto window ({period} cycles)")
        ax.axhline(0, color="0.7", lw=0.6)
        ax.set_ylim(-1.35, 1.45)
        ax.set_xlim(0, args.cycles + 0.5)
        if row == 0:
            ax.set_title(f"{names[j]}: h={h4[j]:g}, s={s4[j]:+g}\neq. 6 → {output_error.rule(h4[j], s4[j], mu=args.mu, S=args.S):.3g},"
                         f" veto → {tr.readout('veto')[j]:.3g}", fontsize=9)
        if j == 0:
            ax.set_ylabel(f"{order} (period {period})\nactivity (dimensionless)")
        if row == 1:
            ax.set_xlabel("time (cycles of the map)")
axes[0, 0].legend(fontsize=7, loc="lower left")
axes[1, 0].legend(fontsize=7, loc="lower left")
fig.suptitle(f"Fig. 14 output error circuit, Brian2 rate network ({args.target}): M={args.M:g}, S={args.S:g}, "
             f"μ={args.mu:.3g}, ε={args.eps:g}; δ = t = 0 at the start; grey: the readout window", fontsize=10)
bottom = cli.caption(fig, "One input per regime (columns), the error unit δ_c (blue) and the control unit t_c (red) "
                          f"over {args.cycles} cycles of the map. Top: the paper's sequential order (δ reads the old "
                          "t, then t the new δ; period 2); bottom: both read the previous state (period 4). In the "
                          "update regimes δ settles at 1 or −μ and t stays 0; in the correct regimes δ and t "
                          "oscillate and the veto readout, over the grey window, gives eq. 6's 0. Deterministic; "
                          "no seeds.")
f1 = str(cli.save(fig, os.path.join(args.out, "fig14_output_circuit_trajectories.png"), bottom=bottom))

# 1b. the (δ, t) phase plane: switching lines of σ_ctl (vertical) and of σ_out for this h, s (horizontal), and
# the map's orbit from (0, 0): a fixed point in the update regimes, the 2-cycle in the correct ones
fig, axes = plt.subplots(1, 4, figsize=(14, 3.9), sharey=True)
tr = traj["sequential"]
for j, ax in enumerate(axes):
    # σ_out's input H = h + 2Ms − 2Mt crosses a threshold θ at t = (h + 2Ms − θ) / 2M
    for theta, lab in ((args.M, "H = M"), (-args.M, "H = −M"), (2 * args.M + args.S, "H = 2M+S"),
                       (-2 * args.M - args.S, "H = −2M−S")):
        tl = (h4[j] + 2 * args.M * s4[j] - theta) / (2 * args.M)
        if -1.3 < tl < 1.3:
            ax.axhline(tl, color="C0", lw=0.8, ls=":")
            ax.text(-0.48, tl, lab, fontsize=7, color="C0", va="bottom", ha="left")
    for x, lab in ((1.0, "δ = 1"), (-args.mu, "δ = −μ")):
        ax.axvline(x, color="C3", lw=0.8, ls=":")
        ax.text(x, -1.25, lab, fontsize=7, color="C3", ha="center")
    pts = np.c_[np.r_[0.0, np.repeat(tr.delta[:, j], 2)], np.r_[0.0, 0.0, np.repeat(tr.t[:, j], 2)[:-1]]]
    ax.plot(pts[:, 0], pts[:, 1], color="0.5", lw=0.8, zorder=1)
    for a, b in zip(pts[:-1], pts[1:]):
        if np.any(a != b):
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.3", lw=0.9))
    ax.scatter(tr.delta[-2:, j], tr.t[-2:, j], s=60, color="C2", zorder=3, label="last 2 states (δ, t)")
    ax.scatter([0], [0], s=30, color="k", zorder=3, label="start (0, 0)")
    ax.set_xlim(-0.5, 1.4)
    ax.set_ylim(-1.3, 1.3)
    ax.set_title(f"{names[j]}: h={h4[j]:g}, s={s4[j]:+g}", fontsize=9)
    ax.set_xlabel("δ_c (dimensionless)")
axes[0].set_ylabel("t_c (dimensionless)")
axes[0].legend(fontsize=7, loc="upper left")
fig.suptitle("Fig. 14 circuit in the (δ, t) plane, sequential order: arrows are the half-steps δ → t → δ; dotted: "
             "switching lines of σ_ctl (red) and σ_out (blue)", fontsize=10)
bottom = cli.caption(fig, f"The same four inputs as the trajectories (M={args.M:g}, S={args.S:g}, μ={args.mu:.3g}, "
                          f"ε={args.eps:g}), from (δ, t) = (0, 0): the update regimes end at a fixed point (one "
                          "green dot), the correct regimes on a 2-cycle between (δ, t) = (1+ε, 1) and (0, 0), or "
                          "(−μ−ε, −1) and (0, 0) (two green dots). Deterministic; no seeds.")
f1b = str(cli.save(fig, os.path.join(args.out, "fig14_output_circuit_phase_plane.png"), bottom=bottom))

# 1c. a stream of examples (TimedArray inputs), with and without the reset of t between examples
rng = np.random.default_rng(0)
E = args.stream_examples
hs = rng.uniform(-args.M + 1e-6, args.M - 1e-6, (E, 10))
ss = -np.ones((E, 10))
ss[np.arange(E), rng.integers(0, 10, E)] = 1.0
streams = {(C, reset): output_error.stream(hs, ss, cycles_per_example=C, reset=reset, **P, **T)
           for C in (2, 3, 4, 5) for reset in (True, False)}
fig = plt.figure(figsize=(13, 5.6))
gs = fig.add_gridspec(2, 2, width_ratios=[2.2, 1])
C, show = 5, min(6, E)
# the class and the stretch of `show` examples where the stale t changes δ the most (reset vs not), so that
# the two rows show the difference the right panel counts
gap = np.abs(streams[(C, True)].delta - streams[(C, False)].delta).sum(axis=1)  # (examples, classes)
window = np.lib.stride_tricks.sliding_window_view(gap, show, axis=0).sum(-1)  # (starts, classes)
e0, j = (int(v) for v in np.unravel_index(np.argmax(window), window.shape))
sl = slice(e0, e0 + show)
left = [fig.add_subplot(gs[0, 0])]
left.append(fig.add_subplot(gs[1, 0], sharex=left[0], sharey=left[0]))
for ax, reset in zip(left, (True, False)):
    st = streams[(C, reset)]
    x = np.arange(1, C * show + 1) - 0.5
    ax.step(np.r_[0, x], np.r_[0, st.delta[sl, :, j].ravel()], where="post", color="C0", lw=2, label="δ_c")
    ax.step(np.r_[0, x + 0.5], np.r_[0, st.t[sl, :, j].ravel()], where="post", color="C3", lw=1.1, ls="--",
            label="t_c")
    for e in range(show + 1):
        ax.axvline(e * C, color="0.55", lw=0.8, ls=":")
    eq6 = output_error.rule(hs[sl, j], ss[sl, j], mu=args.mu, S=args.S, boundary="closed")
    for e in range(show):  # what eq. 6 asks of each example, above its stretch of the stream
        ax.text(e * C + C / 2, 1.3, f"h={hs[e0 + e, j]:+.2f}, s={ss[e0 + e, j]:+g}\neq. 6: {eq6[e]:.3g}", ha="center",
                va="bottom", fontsize=7, color="0.3")
    ax.set_ylim(-1.25, 1.85)
    ax.set_ylabel(f"class {j}, {'t reset' if reset else 'no reset'}\nactivity (dimensionless)")
    ax.grid(axis="y", alpha=0.3)
left[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
left[0].tick_params(labelbottom=False)
left[0].set_title(f"class {j}'s circuit over examples {e0 + 1}–{e0 + show} of the stream (top: t_c set to 0 at "
                  f"each new example; bottom: not)", fontsize=9)
left[1].set_xlabel(f"time (cycles; a new example every {C} cycles, dotted lines)")
ax = fig.add_subplot(gs[:, 1])
width = 0.35
for k, reset in enumerate((True, False)):
    extra = [np.mean(streams[(C, reset)].settling() - 2) for C in (2, 3, 4, 5)]
    worst = [np.max(streams[(C, reset)].settling() - 2) for C in (2, 3, 4, 5)]
    ax.bar(np.arange(4) + (k - 0.5) * width, extra, width, color="C0" if reset else "C1",
           label=f"{'t reset' if reset else 'no reset'}: mean")
    ax.scatter(np.arange(4) + (k - 0.5) * width, worst, marker="_", s=200, color="k",
               label="largest" if k else None)
ax.set_xticks(range(4), [f"C = {C}" for C in (2, 3, 4, 5)])
ax.set_ylim(0, 3.2)
ax.set_xlabel("cycles per example")
ax.set_ylabel("extra cycles until the veto\nreadout equals eq. 6")
ax.set_title(f"{E} examples × 10 classes", fontsize=9)
ax.legend(fontsize=8, loc="upper left", ncol=2)
fig.suptitle("Fig. 14 circuit on a stream of examples (TimedArray inputs), sequential order: a stale t_c costs up "
             "to 2 cycles, and only after an odd number of cycles per example", fontsize=10)
bottom = cli.caption(fig, f"Brian2 rate network ({args.target}), M={args.M:g}, S={args.S:g}, μ={args.mu:.3g}, "
                          f"ε={args.eps:g}; {E} examples of 10 classes, h uniform on (−M, M), one class "
                          "presented (s = +1) per example, drawn with seed 0. Left: the class and the "
                          f"{show} consecutive examples where the reset changes δ the most; above each example, its input and eq. 6. Right: "
                          "cycles beyond the 2 a fresh circuit needs until the veto readout equals eq. 6.")
f1c = str(cli.save(fig, os.path.join(args.out, "fig14_output_circuit_stream.png"), bottom=bottom))

# 2. regime map of the rate network's readouts over h ∈ (-M, M), s = ±1
hg = np.linspace(-args.M, args.M, args.grid + 2)[1:-1]
H = np.concatenate([hg, hg])
Sg = np.concatenate([np.ones_like(hg), -np.ones_like(hg)])
K = args.phase
ODD, EVEN = (K, K + 1) if K % 2 else (K + 1, K)  # phase readouts: the odd one reads the top of the swing
tr = output_error.trajectory(H, Sg, cycles=max(K + 1, 4), **P, **T)
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
        variants[f"continuous {ro}"] = continuous.simulate(Hv, Sv, readout=ro, **P, **T)
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

REGIME_SHADE = {"on-update": "#fde0c5", "on-correct": "#c6dbef", "off-update": "#fde0c5", "off-correct": "#c6dbef"}
fig, axes = plt.subplots(2, 2, figsize=(13, 7.6), sharex=True)
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
    # the four regimes: where h lies against ±S, for the presented class (s = +1) or another (s = -1)
    spans = ((("on-update", -args.M, args.S), ("on-correct", args.S, args.M)) if sval > 0 else
             (("off-correct", -args.M, -args.S), ("off-update", -args.S, args.M)))
    top = 1.35 if sval > 0 else 0.2
    bottom_y = -0.25 if sval > 0 else -0.75
    for col in range(2):
        ax = axes[row, col]
        for name, a, b in spans:
            oscillates = name.endswith("correct")
            ax.axvspan(a, b, color=REGIME_SHADE[name], alpha=0.6, lw=0, zorder=0,
                       hatch="//" if oscillates else None, ec="#9ecae1" if oscillates else None)
            ax.text((a + b) / 2, top - 0.03 * (top - bottom_y), name + ("\nδ and t oscillate" if oscillates else
                                                                       "\nδ steady, t = 0"),
                    ha="center", va="top", fontsize=8, fontweight="bold", color="0.25")
        ax.plot(hg, eq6[sl], color="k", lw=5, alpha=0.18, label="eq. 6")
        for edge in (args.S, -args.S):
            ax.axvline(edge, color="0.6", lw=0.6, ls=":")
        ax.set_ylim(bottom_y, top)
        ax.set_ylabel(f"readout δ_c, dimensionless  (s = {sval:+g})")
    # the leaky readouts' decision level: a δ closer to 0 than half the update value in the window is a veto
    level = 0.5 if sval > 0 else -0.5 * args.mu
    axes[row, 1].axhline(level, color="C1", lw=0.8, ls="--", label="veto level (½ update value)")
    for name, vals in readouts.items():
        axes[row, 0].plot(hg, vals[sl], label=name, **styles[name])
    for name, vals in variants.items():
        axes[row, 1].plot(hv, vals[slv], label=name, **vstyles[name])
axes[0, 0].set_title("Brian2 rate network (discrete map), sequential order: four readouts", fontsize=10)
shown = " and ".join(x for x in ("continuous-time", "spiking") if any(k.startswith(x[:5]) for k in variants))
axes[0, 1].set_title(f"{shown} version{'s' if ' and ' in shown else ''} "
                     f"({', '.join(sorted({'circuits.' + k.split()[0] for k in variants}))})", fontsize=10)
for ax in axes[1]:
    ax.set_xlabel("feed-forward input h_c (dimensionless)")
# lower left of the s = +1 panels: every curve there is at δ = 1 (h < S), so the legends cover none
axes[0, 0].legend(fontsize=8, loc="lower left")
axes[0, 1].legend(fontsize=8, loc="lower left")
fig.suptitle(f"Fig. 14 circuit, regime map: M={args.M:g}, S={args.S:g}, μ={args.mu:.3g}, ε={args.eps:g} "
             f"(dotted lines: h = ±S)", fontsize=10)
missing = "" if not args.no_spiking else " The spiking version was not run (--no-spiking); sims/spiking_circuit.py draws it."
bottom = cli.caption(fig, f"Readout of the circuit after a fresh start (δ = t = 0) for every input h_c in (−M, M): "
                          f"top the presented class (s = +1), bottom the others (s = −1). Shading: the four "
                          f"regimes; hatched, the two where δ and t oscillate and eq. 6 is 0. Left: the rate "
                          f"network on {args.grid} points per s ({args.target} target); veto and phase {EVEN} lie "
                          f"on eq. 6, phase {ODD} and window-mean leave it exactly where the circuit oscillates. "
                          f"Right: the leaky-rate version{'' if args.no_spiking else ' and the spiking one'} on "
                          f"{args.variant_grid} points per s; the leaky veto reads 'update' in the correct regimes "
                          "(the leaky δ hovers near its update value instead of oscillating, "
                          "docs/circuit_dynamics.md), its t-gate readout follows eq. 6." + missing)
f2 = str(cli.save(fig, os.path.join(args.out, "fig14_output_circuit_regime_map.png"), bottom=bottom))

# 4. wiring of Fig. 14, read off the simulated network
g = wiring.output_error_graph(M=args.M, mu=args.mu, eps=args.eps)
lab = {d["label"]: node for node, d in g.nodes(data=True)}
pos = {lab["s"]: (-1.0, 0.7), lab["h"]: (-1.0, -0.7), lab["δ"]: (0.0, 0.0), lab["t"]: (1.2, 0.0)}
f3 = os.path.join(args.out, "fig14_wiring_output_error.png")
wiring.draw(g, f3, title="Fig. 14 as read off the Brian2 network (edge: weight → input term)", pos=pos)

# 5. agreement of the veto readout with eq. 6 (boundary grid + random draws), float64
with warnings.catch_warnings():
    warnings.simplefilter("ignore", check.CircuitRangeWarning)
    rep = check.check_rule(lambda h, s: output_error.simulate(h, s, cycles=2, **P, **T), M=args.M, S=args.S,
                           mu=args.mu, n_random=args.draws, out_of_range=True)

# what the regimes and readouts are, in words; then the table of one input per regime
mu_s, top_on, top_off = f"{args.mu:.3g}", f"{1 + args.eps:.3g}", f"{-args.mu - args.eps:.3g}"
print(f"Output error circuit (Appendix 1, Fig. 14), M={args.M:g} S={args.S:g} mu={args.mu:.4g} eps={args.eps:g}")
print(f"""
What it computes: per output class c, an error unit δ_c reads the class's feed-forward input h_c and its
supervisory signal s_c (+1 for the presented class, -1 for the others); a control unit t_c reads δ_c and feeds
back on it. Where h_c lies against the margin S = {args.S:g} of the hinge loss puts the circuit in one of four regimes:
  on-update    s = +1, h ≤ S    the presented class is not yet past the margin: δ = 1 at every cycle, t = 0.
                                eq. 6 is 1: the weights learn.
  on-correct   s = +1, h > S    the presented class is past the margin: δ overshoots to 1+ε = {top_on}, which switches
                                t on, which silences δ (0), which switches t off: δ and t OSCILLATE {top_on}, 0, ...
                                eq. 6 is 0: nothing to learn.
  off-update   s = -1, h ≥ -S   another class, not yet far enough below: δ = -μ = -{mu_s} at every cycle, t = 0.
                                eq. 6 is -μ.
  off-correct  s = -1, h < -S   another class, far enough below: δ and t OSCILLATE {top_off}, 0, ...
                                eq. 6 is 0.
Only the two correct regimes oscillate, in δ and t alike; the circuit's δ is never a constant 0 there, so what the
synapses see depends on the readout:
  veto         0 if δ was 0 at any cycle of the last period of the oscillation, else δ: eq. 6 in all four regimes
               (the paper's "ignoring the oscillation"); the readout training uses.
  phase K      δ after exactly K cycles. Even K reads the 0 of the swing: eq. 6. Odd K reads its top, {top_on} or {top_off},
               where eq. 6 is 0: an expected disagreement, not a fault (it reads the oscillation at the wrong moment),
               and it breaks learning (python sims/error_signals.py).
  window-mean  δ averaged over the last period: {(1 + args.eps) / 2:.3g} and {-(args.mu + args.eps) / 2:.3g} where eq. 6 is 0: expected likewise.
One input per regime, δ over the first cycles (sequential order) and each readout beside eq. 6:
""")
print(f"{'regime':<12} {'h':>6} {'s':>3}  {'δ over cycles 1-4':<30} {'veto':>7} {f'phase {ODD}':>8} "
      f"{f'phase {EVEN}':>8} {'window-mean':>11} {'eq. 6':>7}")
tr8 = output_error.trajectory(h4, s4, cycles=max(K + 1, 4), **P)
for j in range(4):
    seq = " ".join(f"{v:+.3f}" for v in tr8.delta[:4, j])
    vals = [tr8.readout(r)[j] for r in ("veto", f"phase {ODD}", f"phase {EVEN}", "window-mean")]
    print(f"{names[j]:<12} {h4[j]:>6g} {s4[j]:>+3g}  {seq:<30} {vals[0]:>7.4f} {vals[1]:>8.4f} {vals[2]:>8.4f} "
          f"{vals[3]:>11.4f} {output_error.rule(h4[j], s4[j], mu=args.mu, S=args.S):>7.4f}")
print(f"\nveto readout vs eq. 6 (closed form) on {rep.n_grid} boundary-grid points + {rep.n_random} random draws:")
print(rep.table())
print(f"at |h| = M exactly (out of range, reported): {rep.out_of_range[1]} of {rep.out_of_range[0]} agree. Expected: "
      "the circuit assumes |h| < M; at h = ±M the correct regimes oscillate 1+ε ↔ 1 (-μ-ε ↔ -μ) instead of down to 0, "
      "so the veto passes an update where eq. 6 is 0.")
print(f"inputs where the strict form of eq. 6 differs (h = ±S exactly): {rep.strict_differs}. Expected: the circuit "
      "computes eq. 6 as printed (h ≤ S updates), training's form is strict (h < S); at h = ±S the hinge loss is "
      "flat and both are subgradients.")
if variants:
    print("\nversions with dynamics, agreement with eq. 6 per regime (agree/n, within 0.05):")
for name, vals in variants.items():
    agr = check.agreement_by_regime(vals, Hv, Sv, mu=args.mu, S=args.S, atol=0.05)
    print(f"  {name:<18} ({variant_time[name]:.1f} s): " + ", ".join(f"{k} {a}/{n_}" for k, (n_, a) in agr.items()))
    if name.endswith("veto") and any(a < n_ for k, (n_, a) in agr.items() if k.endswith("correct")):
        print("  " + " " * 18 + "  expected in the correct regimes: a leaky δ does not oscillate down to 0 there but "
              "hovers near its\n" + " " * 22 + "update value while t is active (docs/circuit_dynamics.md §3), so a "
              "veto on δ reads 'update';\n" + " " * 22 + "a δ → t delay restores the oscillation, and the t-gate "
              "readout (it reads t) agrees.")
print("\nstream of examples (sequential): extra cycles until the veto readout equals eq. 6, mean / largest")
for C in (2, 3, 4, 5):
    row = [f"{np.mean(streams[(C, r)].settling() - 2):.3f} / {np.max(streams[(C, r)].settling() - 2)}"
           for r in (True, False)]
    final = [np.mean(streams[(C, r)].readout() == output_error.rule(hs, ss, mu=args.mu, S=args.S, boundary="closed"))
             for r in (True, False)]
    print(f"  C = {C}: reset {row[0]} (readout = eq. 6: {100 * final[0]:.2f}%),  "
          f"no reset {row[1]} (readout = eq. 6: {100 * final[1]:.2f}%)")
print("  (without the reset an example starts from the last one's t: after an even number of cycles t is back at 0,\n"
      "   after an odd number it may be 1 or -1, and the next example needs up to 2 extra cycles to settle.)")
for f in (f1, f1b, f1c, f2, f3):
    print("wrote", os.path.relpath(f))
print(f"total time {time.time() - start:.1f} s")
