"""The control circuits of Amit (2019), Appendix 1, on every Brian2 target: agreement with eq. 6 / eq. 3 and
the largest difference between targets.

For each circuit (the output error rate network in both update orders, the shutdown network, the leaky output
circuit with and without the δ → t relay delay, the leaky shutdown gate) and each target (numpy, cython,
cpp_standalone): run the boundary grid of ``circuits.check`` plus ``--draws`` random inputs in one simulation,
count agreement with the abstract rule (eq. 6 for the output circuits, eq. 3 for the gates), and compare the
whole recorded trajectories with the numpy target's (the largest absolute difference over every recorded value).

    python sims/circuit_targets.py                 # runs/circuit_targets/targets.md and .json
    python sims/circuit_targets.py --publish       # also rewrites the table in docs/circuits.md

Tolerances: the rate networks must equal the rule exactly (1e-12); the leaky circuits are read with the
``veto`` readout and agree within 10% of the update value (``circuits.continuous.agreement_of``); the leaky gate
is read at the end of its run (settled to e^-12) and agrees within 1e-4.
"""
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from sims import cli  # noqa: E402

p = cli.parser(__doc__)
p.add_argument("--draws", type=int, default=10_000, help="random inputs per circuit (plus the boundary grid)")
p.add_argument("--continuous-draws", type=int, default=10_000,
               help="random inputs of the leaky circuits (their monitors record every step: ~40 bytes/input/step)")
p.add_argument("--targets", nargs="+", default=["numpy", "cython", "cpp_standalone"],
               choices=["numpy", "cython", "cpp_standalone"], help="Brian2 targets (numpy first: the reference)")
p.add_argument("--seed", type=int, default=0, help="seed of the random draws")
cli.add_output(p, "circuit_targets", what="table")
args = p.parse_args()
with cli.guard():
    if args.draws < 1 or args.continuous_draws < 1:
        raise cli.UsageError("--draws and --continuous-draws must be positive integers")
    if args.targets[0] != "numpy":
        raise cli.UsageError("the first of --targets must be numpy: the other targets are compared with it")
    out = cli.writable(args.out)

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")
import brian2 as b2  # noqa: E402

from circuits import continuous, output_error, shutdown  # noqa: E402
from circuits.check import boundary_grid, random_draws  # noqa: E402

b2.BrianLogger.log_level_error()
M, S, MU, EPS, K = 3.0, 1.0, 1 / 9, 0.2, 1.0
TAU, DELAY = 10e-3, 10e-3


def output_inputs(n):
    hg, sg = boundary_grid(M=M, S=S)
    hr, sr = random_draws(n, M=M, seed=args.seed)
    return np.concatenate([hg, hr]), np.concatenate([sg, sr]), hg.size


def gate_inputs(n):
    """x on [-1, 1] with a third of the units saturated (x = ±1, as σ gives them), δ in (-K, K); the grid:
    x ∈ {0, ±(1 - 1e-9), ±1} × δ ∈ {0, ±K/2, ±(K - 1e-9)}."""
    rng = np.random.default_rng(args.seed + 1)
    x = rng.uniform(-1, 1, n)
    sat = rng.random(n) < 1 / 3
    x[sat] = np.sign(x[sat])
    d = rng.uniform(-K, K, n) * (1 - 1e-9)
    xs = [0.0, 1 - 1e-9, -(1 - 1e-9), 1.0, -1.0]
    ds = [0.0, K / 2, -K / 2, K - 1e-9, -(K - 1e-9)]
    xg, dg = (a.ravel() for a in np.meshgrid(xs, ds))
    return np.concatenate([xg, x]), np.concatenate([dg, d]), xg.size


def run_output(order, cycles):
    h, s, n_grid = output_inputs(args.draws)
    want = output_error.rule(h, s, mu=MU, S=S, boundary="closed")

    def one(target):
        tr = output_error.trajectory(h, s, M=M, S=S, mu=MU, eps=EPS, cycles=cycles, order=order, target=target)
        agree = np.abs(tr.readout("veto") - want) <= 1e-12
        return [tr.delta, tr.t], agree
    return one, h.size, n_grid, "eq. 6"


def run_shutdown():
    x, d, n_grid = gate_inputs(args.draws)
    want = shutdown.rule(x, d)

    def one(target):
        got = shutdown.simulate(x, d, K=K, target=target)
        return [got], np.abs(got - want) <= 1e-12
    return one, x.size, n_grid, "eq. 3"


def run_continuous(delay):
    h, s, n_grid = output_inputs(args.continuous_draws)

    def one(target):
        tr = continuous.trajectory(h, s, M=M, S=S, mu=MU, eps=EPS, tau=TAU, delay=delay, target=target)
        values = tr.readout("veto")
        want = output_error.rule(h, s, mu=MU, S=S, boundary="closed")
        tol = np.where(s > 0, 0.1, 0.1 * MU)
        return [tr.delta, tr.t_c], np.abs(values - want) <= tol
    return one, h.size, n_grid, "eq. 6 (±10%)"


def run_leaky_gate():
    x, d, n_grid = gate_inputs(args.continuous_draws)
    want = shutdown.rule(x, d)

    def one(target):
        g = continuous.gate_trajectory(x, d, K=K, tau=TAU, target=target)
        return [g.delta_tilde, g.u, g.v], np.abs(g.final() - want) <= 1e-4
    return one, x.size, n_grid, "eq. 3 (1e-4)"


CIRCUITS = [
    ("output error, sequential (Fig. 14), 4 cycles", lambda: run_output("sequential", 4)),
    ("output error, simultaneous, 8 cycles", lambda: run_output("simultaneous", 8)),
    ("shutdown (Fig. 15)", run_shutdown),
    (f"leaky output circuit, τ = {TAU * 1e3:g} ms, no delay", lambda: run_continuous(0.0)),
    (f"leaky output circuit, δ → t delay {DELAY * 1e3:g} ms", lambda: run_continuous(DELAY)),
    (f"leaky shutdown gate, τ = {TAU * 1e3:g} ms", run_leaky_gate),
]

rows = []
start = time.time()
for name, make in CIRCUITS:
    one, n, n_grid, rule_name = make()
    ref = None
    for target in args.targets:
        t0 = time.perf_counter()
        arrays, agree = one(target)
        seconds = time.perf_counter() - t0
        if ref is None:
            ref, diff = arrays, 0.0
        else:
            diff = max(float(np.abs(a - r).max()) for a, r in zip(arrays, ref))
        grid_ok = bool(agree[:n_grid].all())
        rows.append(dict(circuit=name, target=target, rule=rule_name, inputs=int(n), grid=int(n_grid),
                         agree=int(agree.sum()), grid_all_agree=grid_ok, max_diff_vs_numpy=diff,
                         seconds=round(seconds, 3)))
        print(f"{name:48s} {target:15s} agree {agree.sum():6d}/{n} (grid {'all' if grid_ok else 'NOT all'}) "
              f"max |Δ| vs numpy {diff:.3g}   {seconds:.2f} s", flush=True)

lines = ["| circuit | target | rule | inputs (grid + draws) | agree | grid | max \\|Δ\\| vs numpy | s |",
         "|---|---|---|---|---|---|---|---|"]
for r in rows:
    pct = 100.0 * r["agree"] / r["inputs"]
    lines.append(f"| {r['circuit']} | {r['target']} | {r['rule']} | {r['grid']} + {r['inputs'] - r['grid']} | "
                 f"{r['agree']} ({pct:.2f}%) | {'all agree' if r['grid_all_agree'] else 'not all'} | "
                 f"{r['max_diff_vs_numpy']:.3g} | {r['seconds']:.1f} |")
table = "\n".join(lines)
caption = (f"Generated by `python sims/circuit_targets.py --draws {args.draws} --continuous-draws "
           f"{args.continuous_draws} --seed {args.seed}` (Brian2 {b2.__version__}; M = {M:g}, S = {S:g}, "
           f"μ = 1/9, ε = {EPS:g}, K = {K:g}). Seconds include code generation and compilation where a target "
           f"compiles (cached between runs).")
(out / "targets.md").write_text(table + "\n\n" + caption + "\n")
(out / "targets.json").write_text(json.dumps(rows, indent=1) + "\n")
print(table)
if args.publish:
    page = cli.ROOT / "docs" / "circuits.md"
    text = page.read_text()
    begin, end = "<!-- circuit_targets:begin -->", "<!-- circuit_targets:end -->"
    if begin not in text or end not in text:
        cli.fail(f"docs/circuits.md has no {begin} … {end} section to rewrite")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.write_text(head + begin + "\n" + table + "\n\n" + caption + "\n" + end + tail)
    print(f"table written into {page.relative_to(cli.ROOT)}")
print(f"done in {time.time() - start:.0f} s")
