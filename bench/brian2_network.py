"""Examples per second of the whole learning machine in Brian2 (circuits/learning_network.py) on the numpy
target and on cpp_standalone, against the PyTorch scheduled engine (models/schedule.py), side by side in one
process, on the same digits examples (batch 1, order paper, circuit signals, float64).

Each Brian2 target runs ``--rounds`` blocks of ``--examples`` examples, one ``Network.run`` (numpy) or one
``device.run`` (cpp_standalone, built once before the first block: the build is reported separately) per
block; the weights carry over from block to block. The first numpy block includes code generation and is
reported separately too. The PyTorch engine runs the same examples one call each.

    python bench/brian2_network.py [--net "full 40; output"] [--examples 500] [--rounds 3]
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
p.add_argument("--net", default="full 40; output", help="network in the paper's notation (full, local, output)")
p.add_argument("--examples", type=int, default=500, help="examples per block (one run)")
p.add_argument("--rounds", type=int, default=3, help="timed blocks after the first (the median is reported)")
p.add_argument("--lr", type=float, default=0.03, help="η of one example")
args = p.parse_args()
with cli.guard():
    from models.spec import resolve

    resolve(args.net)
    for name in ("examples", "rounds"):
        if getattr(args, name) < 1:
            raise cli.UsageError(f"--{name} must be a positive integer, got {getattr(args, name)}")

import brian2 as b2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from circuits.learning_network import LearningNetwork  # noqa: E402
from circuits.modules import OutputErrorCircuit, ShutdownGate  # noqa: E402
from models.data import load  # noqa: E402
from models.losses import make_loss  # noqa: E402
from models.network import Network  # noqa: E402
from models.schedule import ScheduledEngine, plain_network  # noqa: E402

warnings.filterwarnings("ignore", module="brian2")
b2.BrianLogger.log_level_error()
torch.set_num_threads(1)
M, EPS, K = 10.0, 0.1, 100.0

ds = load("digits")
n = args.examples
C = len(ds.classes)
mu = 1.0 / (C - 1)
idx = np.arange(n * (args.rounds + 1)) % len(ds.y_train)
x = torch.as_tensor(ds.x_train[idx], dtype=torch.float64)
y = torch.as_tensor(ds.y_train[idx], dtype=torch.long)
s = -np.ones((len(idx), C))
s[np.arange(len(idx)), y.numpy()] = 1.0
xs = x.reshape(len(idx), -1).numpy()


def fresh():
    return Network(args.net, ds.x_train.shape[1:], C, rule="urfb", seed=0, dtype=torch.float64)


def blocks(ln):
    times = []
    for r in range(args.rounds + 1):
        t0 = time.perf_counter()
        ln.run(xs[r * n:(r + 1) * n], s[r * n:(r + 1) * n], args.lr)
        times.append(time.perf_counter() - t0)
    return times


net = fresh()
engine = ScheduledEngine(net, order="paper", mu=mu, error_signal=OutputErrorCircuit(M=M, mu=mu, eps=EPS),
                         gate=ShutdownGate(K=K))
loss_fn = make_loss("urfb", mu)
torch_times = []
for r in range(args.rounds + 1):
    t0 = time.perf_counter()
    for k in range(r * n, (r + 1) * n):
        engine(net, x[k:k + 1], y[k:k + 1], loss_fn, args.lr, 0.0)
    torch_times.append(time.perf_counter() - t0)

plain = plain_network(fresh())
kw = dict(learn_R=True, n_examples=n, M=M, mu=mu, eps=EPS, K=K, record_weights=False)
b2.prefs.codegen.target = "numpy"
numpy_times = blocks(LearningNetwork(plain["n_in"], plain["layers"], plain["events"], name="bn", **kw))

b2.start_scope()
b2.set_device("cpp_standalone", build_on_run=False)
with tempfile.TemporaryDirectory(prefix="brian2-network-bench-") as folder:
    ln = LearningNetwork(plain["n_in"], plain["layers"], plain["events"], name="bs", directory=folder, **kw)
    t0 = time.perf_counter()
    ln.run(xs[:n], s[:n], args.lr)  # builds the project (code generation and compilation) and runs it once
    first = time.perf_counter() - t0
    cpp_times = [first] + [0.0] * args.rounds
    for r in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        ln.run(xs[r * n:(r + 1) * n], s[r * n:(r + 1) * n], args.lr)
        cpp_times[r] = time.perf_counter() - t0

rate = {name: n / statistics.median(t[1:]) for name, t in (("PyTorch scheduled engine", torch_times),
                                                            ("Brian2 numpy", numpy_times),
                                                            ("Brian2 cpp_standalone", cpp_times))}
print(f"{args.net}: {n} examples per block, {args.rounds} timed blocks (median), {ln.n_slots} slots per example, "
      f"{sum(len(L[k]['w']) for L in plain['layers'] for k in ('W', 'R'))} plastic synapses")
print(f"{'simulator':<28} {'first block s':>13} {'examples/s':>11} {'vs PyTorch':>10}")
for (name, t), r in zip((("PyTorch scheduled engine", torch_times), ("Brian2 numpy", numpy_times),
                         ("Brian2 cpp_standalone", cpp_times)), rate.values()):
    print(f"{name:<28} {t[0]:>13.2f} {r:>11.0f} {r / rate['PyTorch scheduled engine']:>10.2f}")
print("first block: numpy includes code generation; cpp_standalone includes building and compiling the project")
