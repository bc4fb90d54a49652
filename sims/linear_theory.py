"""The linear theory of Amit (2019), §5.1 (Fig. 12) and Appendix 2 (Theorems 1 and 2), checked numerically.

Part 1 (§5.1, Fig. 12): a linear network 40 → 100 → 100 → 10 learns T = A_3 A_2 A_1 (A_i with N(0, 2²)
entries, normalised to largest singular value 1) from W_i(0) = 0 with random feedback R_i(0), under
eq. 9 with eps ∈ {0, .25, .5, 1} (eps = 0 is FRFB, 1 URFB), and by back-propagation from a random
start; three runs. Plots log10 of the relative error e / tr(TᵀT) and corr(W_l, R_lᵀ) per layer against the
iteration (one explicit Euler step of size dt). Also reported: the eps-family from a random W(0) (outside
the theorems' assumptions) and the effect of the step size.

Part 2 (Appendix 2): the scalar systems eq. 10 (k = 2) and eq. 15 (k = 3, 4) integrated over a grid of
eps for a grid of (λ_T, λ_R); at every time it checks whether |e| falls, the rate r = -ė/e rises and each
λ_i rises with eps, inside the theorems' assumptions and with each assumption dropped, plus a random
search over non-zero initial conditions.

    python sims/linear_theory.py             # the paper's setting; figures in runs/linear_theory/
    python sims/linear_theory.py --publish   # the published docs/figures/fig12_linear_theory.png, linear_theorems.png
"""
import os
import time

import sys

import matplotlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from sims import cli  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.linear import integrate, make_target, random_feedback, theorem_check  # noqa: E402

p = cli.parser(__doc__)
p.add_argument("--sizes", type=int, nargs="+", default=[40, 100, 100, 10], help="n_0 … n_k (§5.1)")
p.add_argument("--sd", type=float, default=2.0, help="sd of the entries of T's factors (§5.1)")
p.add_argument("--init-scale", type=float, default=0.1,
               help="R_i(0) (and BP's W_i(0)) entries N(0, scale²/n_i)")
p.add_argument("--dt", type=float, default=0.1, help="Euler step = learning rate of one iteration")
p.add_argument("--iterations", type=int, default=1000, help="iterations (§5.1: 1000)")
p.add_argument("--eps", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0], help="eps of Ṙ = eps Ẇᵀ")
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed (§5.1: 3)")
p.add_argument("--threshold", type=float, default=1e-3, help="relative error for the time table")
p.add_argument("--dts", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 1.0],
               help="step sizes of the stability sweep (seed of the first run, 100 time units)")
p.add_argument("--eps-grid", type=int, default=6, help="number of eps values in [0, 1] for Part 2")
p.add_argument("--random-inits", type=int, default=16,
               help="random non-zero initial conditions per depth in the Part 2 search")
cli.add_output(p, "linear_theory")
args = p.parse_args()
with cli.guard():  # every setting checked before any integration
    if len(args.sizes) < 2 or min(args.sizes) < 1:
        raise cli.UsageError(f"--sizes takes n_0 … n_k, at least two positive integers, got {args.sizes}")
    for name in ("sd", "init_scale", "dt", "threshold"):
        if not getattr(args, name) > 0:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ("iterations", "eps_grid", "random_inits"):
        if getattr(args, name) < (2 if name == "eps_grid" else 1):
            raise cli.UsageError(f"--{name.replace('_', '-')} must be at least {2 if name == 'eps_grid' else 1}, "
                                 f"got {getattr(args, name)}")
    if not args.seeds or not args.eps or min(args.dts) <= 0 or min(args.eps) < 0:
        raise cli.UsageError("--seeds and --eps need at least one value, --eps values ≥ 0 and --dts values > 0")
    args.out = str(cli.figure_dir(args))
t_start = time.time()
k = len(args.sizes) - 1
methods = ["BP"] + [f"eps={e:g}" for e in args.eps]

# ---------------------------------------------------------------------------------------------------
# Part 1: §5.1, Fig. 12
# ---------------------------------------------------------------------------------------------------
runs, times, times_rand_W0 = {}, {}, {}
for seed in args.seeds:
    rng = np.random.default_rng(seed)
    T = make_target(args.sizes, rng, sd=args.sd)
    R0 = random_feedback(args.sizes, rng, args.init_scale)
    W0_random = [R.T.copy() for R in random_feedback(args.sizes, rng, args.init_scale)]
    W0_zero = [np.zeros_like(R.T) for R in R0]
    # the error at every iteration, the correlations (for the figure only) every 5th
    runs[seed] = {"BP": integrate(T, W0_random, None, None, dt=args.dt, n_steps=args.iterations,
                                  corr_every=5)}
    for e in args.eps:
        runs[seed][f"eps={e:g}"] = integrate(T, W0_zero, R0, e, dt=args.dt, n_steps=args.iterations,
                                             corr_every=5)
        times_rand_W0[seed, f"eps={e:g}"] = integrate(
            T, W0_random, R0, e, dt=args.dt, n_steps=args.iterations, corr_every=10 ** 9).time_to(args.threshold)
    for m in methods:
        times[seed, m] = runs[seed][m].time_to(args.threshold)

colors = {"BP": "k", "eps=0": "tab:green", "eps=0.25": "tab:orange", "eps=0.5": "tab:purple",
          "eps=1": "tab:red"}
fig, axes = plt.subplots(1 + k, len(args.seeds), figsize=(4.2 * len(args.seeds), 2.6 * (1 + k)),
                         sharex=True, squeeze=False)
for c, seed in enumerate(args.seeds):
    for m in methods:
        r = runs[seed][m]
        col = colors.get(m)
        axes[0, c].plot(r.steps, np.log10(np.maximum(r.rel_error, 1e-300)), color=col, label=m)
        if m == "BP":
            continue                                    # corr(W, Wᵀᵀ) = 1 identically
        has = np.isfinite(r.corr[:, 0]) | (r.steps == 0)
        for l in range(k):
            axes[1 + l, c].plot(r.steps[has], r.corr[has, l], color=col, label=m)
    axes[0, c].set_title(f"run {seed}")
    axes[0, c].set_ylim(-12, 0.5)
    axes[0, c].axhline(np.log10(args.threshold), color="0.6", lw=0.8, ls=":")
    for l in range(k):
        axes[1 + l, c].set_ylim(-0.2, 1.02)
    axes[-1, c].set_xlabel("iteration")
axes[0, 0].set_ylabel("log10 e / tr(TᵀT)")
for l in range(k):
    axes[1 + l, 0].set_ylabel(f"corr(W_{l + 1}, R_{l + 1}ᵀ)")
axes[0, 0].legend(fontsize=8)
fig.suptitle(f"Fig. 12: linear net {'-'.join(map(str, args.sizes))}, dt = {args.dt}, "
             f"R(0) scale {args.init_scale}")
bottom = cli.caption(fig, f"§5.1: a linear network {'-'.join(map(str, args.sizes))} learns a random linear map T "
                          f"(factors with N(0, {args.sd:g}²) entries, largest singular value 1) by eq. 9, "
                          f"{args.iterations} Euler steps of dt = {args.dt:g}, from W(0) = 0 and random R(0) "
                          "(eps = 0: FRFB, eps = 1: URFB, R learns eps × W's increment), and by back-propagation "
                          "(BP) from a random W(0). Top row: log10 of the relative error; dotted: the threshold "
                          f"{args.threshold:g} of the time table. Below: corr(W_l, R_lᵀ) per layer (BP has R = Wᵀ, "
                          f"not drawn). One column per run, seeds {', '.join(map(str, args.seeds))}.")
cli.save(fig, os.path.join(args.out, "fig12_linear_theory.png"), bottom=bottom)

t_part1 = time.time() - t_start
print(f"Part 1 ({t_part1:.1f} s): iterations (dt = {args.dt}) to relative error <= {args.threshold:g}")
print("| method | " + " | ".join(f"run {s}" for s in args.seeds) + " | final corr W_l,R_lᵀ (run "
      f"{args.seeds[0]}) |")
print("|---|" + "---|" * len(args.seeds) + "---|")
for m in methods:
    corr = runs[args.seeds[0]][m]
    corr = corr.corr[np.isfinite(corr.corr[:, -1])][-1]
    print(f"| {m} | " + " | ".join(f"{times[s, m]:.0f}" for s in args.seeds) + " | "
          + ("1 (R = Wᵀ)" if m == "BP" else ", ".join(f"{c:.2f}" for c in corr)) + " |")
print("eps-family from the random W(0) of BP (iterations):")
for m in methods[1:]:
    print(f"| {m}, W(0) random | " + " | ".join(f"{times_rand_W0[s, m]:.0f}" for s in args.seeds) + " |")
ordered = all(np.all(np.diff([times[s, f"eps={e:g}"] for e in args.eps]) < 0) for s in args.seeds)
print(f"time to threshold strictly decreasing in eps on every run: {ordered}")

# step-size sweep on the first run: time units (iterations * dt) to the threshold, or 'diverged'
rng = np.random.default_rng(args.seeds[0])
T = make_target(args.sizes, rng, sd=args.sd)
R0 = random_feedback(args.sizes, rng, args.init_scale)
W0_random = [R.T.copy() for R in random_feedback(args.sizes, rng, args.init_scale)]
W0_zero = [np.zeros_like(R.T) for R in R0]
print("\nStep sizes (run %d): time units to the threshold within 100 time units" % args.seeds[0])
print("| dt | " + " | ".join(methods) + " |")
print("|---|" + "---|" * len(methods))
for dt in args.dts:
    row = []
    for m, e in zip(methods, [None] + list(args.eps)):
        try:
            r = integrate(T, W0_random if e is None else W0_zero, R0, e, dt=dt, n_steps=int(round(100 / dt)),
                          corr_every=10 ** 9)
            row.append(f"{r.time_to(args.threshold) * dt:.1f}")
        except FloatingPointError:
            row.append("diverged")
    print(f"| {dt:g} | " + " | ".join(row) + " |")

# ---------------------------------------------------------------------------------------------------
# Part 2: Theorems 1 and 2 on the scalar systems
# ---------------------------------------------------------------------------------------------------
t_part2 = time.time()
eps_grid = np.linspace(0.0, 1.0, args.eps_grid)
# (label, lam_T, lam_R = (λ_R2, …, λ_Rk), lam0 or None, which assumption is dropped or "none")
cases = []
for lt in (0.1, 0.5, 1.0):
    for lr in (1e-3, 1e-2):
        cases.append(("k=2", lt, (lr,), None, "none"))
    cases.append(("k=2", lt, (lt,), None, "λ_R ≪ λ_T (λ_R = λ_T)"))
    cases.append(("k=2", lt, (10 * lt,), None, "λ_R ≪ λ_T (λ_R = 10 λ_T)"))
for lt in (0.1, 1.0):
    for lr in ((0.01, 0.005), (0.02, 0.01), (0.001, 0.0005)):
        cases.append(("k=3", lt, lr, None, "none"))
    for lr in ((0.005, 0.01), (0.01, 0.05), (0.001, 0.1)):
        cases.append(("k=3", lt, lr, None, "λ_R2 > (1+√(1+ε))/2 λ_R3"))
    cases.append(("k=3", lt, (0.5, 0.2), None, "λ_R < δ ≪ λ_T"))
    cases.append(("k=3", lt, (2.0, 1.0), None, "λ_R < δ ≪ λ_T"))
    cases.append(("k=4", lt, (0.02, 0.01, 0.005), None, "k = 3 (k = 4)"))
cases.append(("k=2", 1.0, (0.01,), (0.3, 0.05), "λ(0) = 0 (λ(0) > 0)"))
cases.append(("k=2", 1.0, (0.01,), (0.0, -0.5), "λ(0) = 0 (λ_2(0) < 0)"))
cases.append(("k=2", 1.0, (0.1,), (-0.3, 0.3), "λ(0) = 0 (λ_1(0) < 0 < λ_2(0))"))

short = {"|e| decreasing in eps": "e↓", "rate r increasing in eps": "r↑"}


def short_name(claim):
    if claim in short:
        return short[claim]
    if claim.startswith("lambda_"):
        return "λ" + claim.split("_")[1].split(" ")[0] + "↑"
    if claim.startswith("eps*lambda"):
        return "ελ_k²↑"
    return "t↓"


print(f"\nPart 2: eq. 10/15 over eps = {', '.join(f'{e:g}' for e in eps_grid)}; "
      "✓ holds at every time, ✗ fails (worst relative violation, at eps pair)")
print("| k | λ_T | λ_R | λ(0) | assumption dropped | e↓ | r↑ | λ_1↑ | λ_2↑ | λ_3↑ | λ_4↑ | ελ_k²↑ | "
      "t(1e-3)↓ | t(1e-3) at eps=0 / 1 |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
scalar_examples = {}
for label, lt, lr, lam0, dropped in cases:
    res, run, t_hit = theorem_check(lt, lr, eps_grid, lam0)
    marks = {short_name(r.claim): ("✓" if r.holds else f"✗ {r.worst:.1e} ({r.eps_pair[0]:g},{r.eps_pair[1]:g})")
             for r in res}
    cols = [marks["e↓"], marks["r↑"]] + [marks.get(f"λ{i}↑", "–") for i in range(1, 5)]
    cols += [marks["ελ_k²↑"], marks["t↓"], f"{t_hit[0]:.3g} / {t_hit[-1]:.3g}"]
    print(f"| {label[-1]} | {lt:g} | {', '.join(f'{x:g}' for x in lr)} | "
          f"{'0' if lam0 is None else ', '.join(f'{x:g}' for x in lam0)} | {dropped} | " + " | ".join(cols) + " |")
    scalar_examples[(label, lt, lr, lam0)] = run

# random search: the theorems' conclusions (e↓, r↑, λ_1↑) from random non-zero initial conditions
rng = np.random.default_rng(12345)
print(f"(grid: {time.time() - t_part2:.1f} s)")
t_part2 = time.time()
print(f"\nRandom non-zero λ(0) ~ U(-0.5, 0.5)^k, λ_T ~ U(0.1, 1), λ_R ~ logU(1e-3, 1e-1) "
      f"({args.random_inits} draws per depth): fraction where a conclusion fails")
print("| k | e↓ fails | r↑ fails | λ_1↑ fails | t(1e-3)↓ fails | worst e↓ example (λ_T, λ_R, λ(0)) |")
print("|---|---|---|---|---|---|")
closest = None  # the k = 2 draw with the smallest e↓ margin (a violation if negative): the figure's third panel
for kk in (2, 3):
    fails = {"e↓": 0, "r↑": 0, "λ1↑": 0, "t↓": 0}
    worst = (0.0, None)
    for _ in range(args.random_inits):
        lt = rng.uniform(0.1, 1.0)
        lr = tuple(10 ** rng.uniform(-3, -1, size=kk - 1))
        lam0 = tuple(rng.uniform(-0.5, 0.5, size=kk))
        res, run, _ = theorem_check(lt, lr, eps_grid, lam0)
        by = {short_name(r.claim): r for r in res}
        for key in fails:
            fails[key] += not by[key].holds
        if by["e↓"].worst < worst[0]:
            worst = (by["e↓"].worst, (lt, lr, lam0))
        if kk == 2 and (closest is None or by["e↓"].worst < closest[0]):
            closest = (by["e↓"].worst, lt, lr, lam0, run)
    ex = worst[1]
    ex_s = "–" if ex is None else (f"{ex[0]:.2f}, ({', '.join(f'{x:.3g}' for x in ex[1])}), "
                                   f"({', '.join(f'{x:.2f}' for x in ex[2])}); violation {worst[0]:.1e}")
    print(f"| {kk} | " + " | ".join(f"{fails[key]}/{args.random_inits}" for key in fails) + f" | {ex_s} |")

print(f"(random search: {time.time() - t_part2:.1f} s)")

# Figure: the scalar systems
plt.rcParams["axes.titlesize"] = 9
fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
cmap = plt.get_cmap("viridis")
lr_show = (0.01, 0.005)
run = scalar_examples[("k=3", 1.0, lr_show, None)]
for j, e in enumerate(eps_grid):
    ax[0].semilogy(run.t, np.maximum(np.abs(run.e[:, j]), 1e-9), color=cmap(j / (eps_grid.size - 1)),
                   label=f"eps={e:g}")
ax[0].set(title=f"k=3, λ_T=1, λ_R={lr_show}, λ(0)=0: |e|", xlabel="t", ylabel="|e|")
ax[0].legend(fontsize=7)
for i, mk in zip(range(3), ("o", "s", "^")):
    ax[1].semilogy(eps_grid, run.lam[-1, :, i], marker=mk, label=f"λ_{i + 1}(∞)")
ax[1].semilogy(eps_grid[1:], eps_grid[1:] * run.lam[-1, 1:, 2] ** 2, marker="v", ls="--", label="ε λ_3(∞)²")
ax[1].set(title="same: limits vs eps (λ_3 falls, ε λ_3² rises)", xlabel="eps", ylabel="λ_i(∞)")
ax[1].legend(fontsize=7)
margin, lt, lr, lam0, run = closest
for j, e in enumerate(eps_grid):
    ax[2].semilogy(run.t, np.maximum(np.abs(run.e[:, j]), 1e-9), color=cmap(j / (eps_grid.size - 1)),
                   label=f"eps={e:g}")
verdict = (f"|e| not ordered by eps (violation {margin:.1e})" if margin < -1e-6 else
           f"none of {args.random_inits} draws violates e↓; the closest")
ax[2].set(title=f"k=2, λ(0)=({lam0[0]:.2f}, {lam0[1]:.2f}), λ_R={lr[0]:.3g}, λ_T={lt:.2f}:\n{verdict}",
          xlabel="t", ylabel="|e|")
ax[2].legend(fontsize=7)
bottom = cli.caption(fig, f"Scalar systems of Appendix 2 (eq. 10, k = 2; eq. 15, k = 3), integrated for eps = "
                          f"{', '.join(f'{e:g}' for e in eps_grid)} (colours dark to light). Left: |e| against t; "
                          "a flat line at 1e-8 is where a run stopped. Middle: the limits λ_i(∞) against eps. "
                          f"Right: of the {args.random_inits} random non-zero initial conditions λ(0) ~ "
                          "U(−0.5, 0.5)² with k = 2 (seed 12345), the one with the largest violation of 'the "
                          "error falls faster for larger eps' (the theorems assume λ(0) = 0), or the one "
                          "closest to violating it if none does. No training data; deterministic integration.")
cli.save(fig, os.path.join(args.out, "linear_theorems.png"), bottom=bottom)
print(f"\nfigures: {os.path.join(args.out, 'fig12_linear_theory.png')}, {os.path.join(args.out, 'linear_theorems.png')}"
      f"; total {time.time() - t_start:.1f} s")
