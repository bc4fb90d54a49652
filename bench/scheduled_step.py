"""Step time of the scheduled engine (models.schedule, docs/spec.md §6) divided by the fast autograd engine's.

Both engines train the same network on the same batch; variants are timed interleaved in one process, round
after round, and the median of the per-round ratios is printed. The scheduled engine is also timed with the
circuit modules (output error circuit, veto readout; shutdown gate) in place of the ideal signals.

    python bench/scheduled_step.py                        # simpnet and deepnet, CIFAR-shaped batch of 500
    python bench/scheduled_step.py --nets simpnet --threads 1 --rounds 5
"""
from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from circuits.modules import OutputErrorCircuit, ShutdownGate  # noqa: E402
from models.network import Network  # noqa: E402
from models.schedule import ScheduledEngine  # noqa: E402
from models.train import _fast_step, make_loss  # noqa: E402
from sims import cli  # noqa: E402


def main():
    p = cli.parser(__doc__)
    p.add_argument("--nets", nargs="+", default=["simpnet", "deepnet"], help="presets or specifications")
    p.add_argument("--rule", default="urfb", help="learning rule (not dfa: the scheduled engine refuses it)")
    p.add_argument("--batch", type=int, default=500, help="mini-batch size")
    p.add_argument("--shape", default="3,32,32", help="C,H,W of one input (CIFAR by default)")
    p.add_argument("--steps", type=int, default=3, help="steps per engine per round")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the median ratio is printed)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (None: PyTorch's choice)")
    args = p.parse_args()
    shape = cli.check_bench(args, rules=[args.rule], nets=args.nets)
    if args.rule.strip().lower() == "dfa":
        raise cli.UsageError("--rule dfa has no top-down sequence for the scheduled engine; choose another rule")
    if args.threads:
        torch.set_num_threads(args.threads)
    mu = 1 / 9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, rule {args.rule}, batch {args.batch}, "
          f"input {shape}, {args.rounds} rounds x {args.steps} steps, median of per-round ratios to 'fast'")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, *shape, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    loss_fn = make_loss(args.rule, mu)
    print(f"{'net':<10} {'engine':<28} {'ms/step':>9} {'ratio':>7}")
    for name in args.nets:
        base = Network(name, shape, 10, rule=args.rule, seed=0)
        nets = {k: copy.deepcopy(base) for k in ("fast", "scheduled paper", "scheduled gradient",
                                                 "scheduled paper + circuits")}
        circuit = OutputErrorCircuit(M=10.0, mu=mu, eps=0.1, readout="veto")
        engines = {
            "fast": _fast_step,
            "scheduled paper": ScheduledEngine(nets["scheduled paper"], order="paper", mu=mu),
            "scheduled gradient": ScheduledEngine(nets["scheduled gradient"], order="gradient", mu=mu),
            "scheduled paper + circuits": ScheduledEngine(nets["scheduled paper + circuits"], order="paper",
                                                          mu=mu, error_signal=circuit,
                                                          gate=ShutdownGate(K=100.0)),
        }

        def run(k):
            engines[k](nets[k], x, y, loss_fn, 0.01, 0.0)

        for k in engines:
            run(k)  # warm-up
        times = {k: [] for k in engines}
        for _ in range(args.rounds):
            for k in engines:
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    run(k)
                times[k].append((time.perf_counter() - t0) / args.steps)
        for k in engines:
            ratio = statistics.median(a / b for a, b in zip(times[k], times["fast"]))
            print(f"{name:<10} {k:<28} {1e3 * statistics.median(times[k]):9.1f} {ratio:7.3f}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
