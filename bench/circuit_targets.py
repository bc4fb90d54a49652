"""Time of one simulation of the output error circuits (Appendix 1, Fig. 14) on each Brian2 target.

One simulation = ``--circuits`` circuits (default 10,000) × ``--cycles`` cycles (default 8) of the Brian2 rate
network, from building the objects to reading the monitors. For each target it reports, measured side by side
in one process:

- ``first``: the first simulation, code generation and compilation included (a fresh, empty build folder and
  Cython cache, so nothing compiled earlier is reused);
- ``again``: the same call repeated with new inputs (Cython's cache warm; the standalone folder kept, so
  ``make`` recompiles nothing);
- for ``cpp_standalone`` also ``Compiled``: one build, then each simulation a rerun of the compiled program with
  new inputs (``device.run(run_args=...)``), as the training audit and the sweeps over h use it;
- the PyTorch map (``backend="torch"``) for scale.

Every result is checked against eq. 6 before its time counts. Ratios are against the numpy target's ``again``.

    python bench/circuit_targets.py [--circuits 10000] [--cycles 8] [--repeats 3]
"""
import os
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from sims import cli  # noqa: E402

p = cli.parser(__doc__)
p.add_argument("--circuits", type=int, default=10_000, help="circuits per simulation")
p.add_argument("--cycles", type=int, default=8, help="cycles per simulation (≥ 2)")
p.add_argument("--repeats", type=int, default=3, help="repeated simulations per target (the median is reported)")
args = p.parse_args()
with cli.guard():
    if args.circuits < 1 or args.repeats < 1:
        raise cli.UsageError("--circuits and --repeats must be positive integers")
    if args.cycles < 2:
        raise cli.UsageError(f"--cycles must be ≥ 2 (the veto readout needs two cycles), got {args.cycles}")

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")
build_root = tempfile.mkdtemp(prefix="circuit-targets-")
os.environ["ASYMHEBB_BRIAN2_BUILD"] = build_root  # fresh: the first runs compile everything
import brian2 as b2  # noqa: E402

from circuits import output_error  # noqa: E402

M, S, EPS = 3.0, 1.0, 0.2
MU = 1 / 9
rng = np.random.default_rng(0)


def draw():
    h = rng.uniform(-M + 1e-6, M - 1e-6, args.circuits)
    return h, np.where(rng.random(args.circuits) < 0.5, 1.0, -1.0)


def timed(fn):
    h, s = draw()
    b2.start_scope()
    t0 = time.perf_counter()
    got = fn(h, s)
    seconds = time.perf_counter() - t0
    if not np.array_equal(got, output_error.rule(h, s, mu=MU, S=S, boundary="closed")):
        raise SystemExit("a target's result differs from eq. 6: the timing would be meaningless")
    return seconds


kw = dict(M=M, S=S, mu=MU, eps=EPS, cycles=args.cycles)
rows = []
for target in ("numpy", "cython", "cpp_standalone"):
    def call(h, s, target=target):
        return output_error.simulate(h, s, target=target, **kw)

    first = timed(call)
    again = statistics.median(timed(call) for _ in range(args.repeats))
    rows.append((target, first, again))

os.environ["ASYMHEBB_BRIAN2_BUILD"] = tempfile.mkdtemp(prefix="circuit-targets-compiled-")
t0 = time.perf_counter()
with output_error.Compiled(args.circuits, **kw) as compiled:
    build = time.perf_counter() - t0
    rerun = statistics.median(timed(compiled.simulate) for _ in range(args.repeats))
rows.append(("cpp_standalone, Compiled", build, rerun))
torch_s = statistics.median(timed(lambda h, s: output_error.simulate(h, s, backend="torch", **kw))
                            for _ in range(args.repeats))
rows.append(("PyTorch map (no Brian2)", float("nan"), torch_s))

base = rows[0][2]
print(f"{args.circuits} output error circuits × {args.cycles} cycles, one simulation; "
      f"median of {args.repeats} repeats; Brian2 {b2.__version__}")
print(f"{'target':28s} {'first (s)':>10s} {'again (s)':>10s} {'circuits/s':>12s} {'speed vs numpy':>15s}")
for name, first, again in rows:
    f = "—" if first != first else f"{first:.3f}"
    print(f"{name:28s} {f:>10s} {again:>10.4f} {args.circuits / again:>12.3g} {base / again:>14.1f}×")
print("first: build, compile and run with an empty cache (Compiled: the build alone); "
      "again: a new simulation reusing what the first compiled")
