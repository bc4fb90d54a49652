"""Training-step time of the current implementation against the previous one, and against the CPU's own
float32 matmul rate, all measured side by side in one process.

Per network and rule, interleaved round after round (median of per-round values printed):

- ``new``: the step as ``models.train.train`` runs it: ``models.network.Network`` (fused σ, max-pool without
  a padded copy, NumPy-drawn dropout masks, channels-last convolutions) with freed memory kept for reuse
  (``models.allocator.keep_freed_memory``, which ``train`` sets);
- ``prev``: the previous implementation, a frozen copy in ``bench/previous`` (same weights), under glibc's
  default allocation: its steady state is set for that variant (blocks above 32 MiB are fresh ``mmap``s,
  the heap's free top above 64 MiB is trimmed; the dynamic threshold never exceeds 32 MiB) and the heap's
  free memory is released before its round, so it does not reuse what the other variants left;
- ``new@default``: the current layers under that same default allocation (what the code alone gains);
- ``matmul``: a 2048×2048 float32 matrix product, the machine's arithmetic rate in this process;
- with ``--nchw``, ``new@nchw``: the current step with channels-last order switched off
  (``models.feedback.CHANNELS_LAST = False`` around it), the check that the layout pays.

GFLOP per step is counted by ``torch.utils.flop_counter`` on one step (matrix products and convolutions,
forward and backward); GFLOP/s is that count over the step time, also as a share of the matmul rate.
``--allocator untouched`` makes no allocator call at all (every variant under the true glibc defaults,
``new`` then equal to ``new@default``): the check that the emulated default is the real one.
``--autograd`` adds the old column: the step against plain PyTorch autograd back-propagation of the same
architecture (``reference_step``: PyTorch ops only, ``torch.optim.SGD``).

    python bench/step_time.py                            # simpnet, deepnet, deepernet; URFB; batch 500; 2 threads
    python bench/step_time.py --nets simpnet --rules urfb bp --rounds 9
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.previous.network import Network as PreviousNetwork  # noqa: E402
from models import allocator  # noqa: E402
from models import feedback  # noqa: E402
from models.losses import hinge_loss  # noqa: E402
from models.layers import Conv, Drop, Full, MaxPool, Sum  # noqa: E402
from models.network import Network  # noqa: E402
from sims import cli  # noqa: E402

GLIBC_DEFAULT = (32 << 20, 64 << 20)  # mmap and trim thresholds glibc's dynamic adjustment settles at


def reference_step(net: Network, Ws, opt, x, y, rule: str, mu: float, slope: float):
    """One step of plain autograd back-propagation through the same architecture with PyTorch ops only."""
    it = iter(Ws)
    prev = prev2 = None
    h = x
    for m in net.layers:
        if isinstance(m, Conv):
            W = next(it)
            out = torch.clamp(slope * F.conv2d(h, W, padding="same"), -1, 1)
        elif isinstance(m, Full):
            W = next(it)
            out = F.linear(h.flatten(1), W)
            if m.act:
                out = torch.clamp(slope * out, -1, 1)
        elif isinstance(m, MaxPool):
            a, b = m.pad
            out = F.max_pool2d(F.pad(h, (a, b, a, b)), m.k, m.stride)
        elif isinstance(m, Drop):
            out = F.dropout(h, m.p, True)
        elif isinstance(m, Sum):
            out = prev2 + prev
        else:
            raise TypeError(type(m))
        prev2, prev, h = prev, out, out
    if rule == "bp":
        loss = F.cross_entropy(h, y)
    else:
        target = F.one_hot(y, h.shape[1]).bool()
        loss = torch.where(target, torch.relu(1 - h), mu * torch.relu(1 + h)).sum(1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def project_step(net, x, y, rule: str, mu: float):
    out = net(x)
    loss = F.cross_entropy(out, y) if rule == "bp" else hinge_loss(out, y, mu)
    loss.backward()
    net.apply_update(0.1)


def step_flops(net, x, y, rule, mu) -> float:
    """Floating-point operations of one step (matrix products and convolutions), counted, not estimated."""
    from torch.utils.flop_counter import FlopCounterMode

    import copy

    probe = copy.deepcopy(net)
    with FlopCounterMode(display=False) as counter:
        project_step(probe, x, y, rule, mu)
    return float(counter.get_total_flops())


def main():
    p = cli.parser(__doc__)
    p.add_argument("--nets", nargs="+", default=["simpnet", "deepnet", "deepernet"], help="presets or specifications")
    p.add_argument("--rules", nargs="+", default=["urfb"], help="learning rules")
    p.add_argument("--batch", type=int, default=500, help="mini-batch size")
    p.add_argument("--shape", default="3,32,32", help="C,H,W of one input (CIFAR by default)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per variant per round (after one untimed)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians are printed)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for PyTorch")
    p.add_argument("--allocator", choices=("as-trained", "untouched"), default="as-trained",
                   help="as-trained: each variant under its allocation (see above); untouched: no allocator call")
    p.add_argument("--autograd", action="store_true", help="also time plain PyTorch autograd back-propagation")
    p.add_argument("--nchw", action="store_true", help="also time the current step in NCHW memory order")
    args = p.parse_args()
    shape = cli.check_bench(args, rules=args.rules, nets=args.nets)
    torch.set_num_threads(args.threads)
    mu = 1 / 9
    managed = args.allocator == "as-trained"

    def allocation(kind):
        if not managed:
            return
        allocator.keep_freed_memory(*(GLIBC_DEFAULT if kind == "default" else (allocator.KEEP, allocator.KEEP)))
        allocator.release_free_memory()

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, *shape, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    a = torch.randn(2048, 2048, generator=gen)
    b = torch.randn(2048, 2048, generator=gen)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, input {shape}, "
          f"{args.rounds} rounds x (1 untimed + {args.steps}) steps, medians; allocator {args.allocator}")
    head = (f"{'net':<10} {'rule':<5} {'new ms':>7} {'prev ms':>8} {'speed-up':>8} {'new@def':>8} {'code x':>7} "
            f"{'GFLOP':>6} {'matmul':>7} {'new GF/s':>9} {'prev GF/s':>10}")
    if args.nchw:
        head += f" {'nchw ms':>8} {'nchw/new':>8}"
    if args.autograd:
        head += f" {'autograd':>9} {'new/ag':>7}"
    print(head)
    for name in args.nets:
        for rule in args.rules:
            torch.manual_seed(1)
            new = Network(name, shape, 10, rule=rule, seed=0)
            prev = PreviousNetwork(name, shape, 10, rule=rule, seed=0)
            new_default = Network(name, shape, 10, rule=rule, seed=0)
            flops = step_flops(new, x, y, rule, mu)
            variants = {
                "new": ("kept", lambda: project_step(new, x, y, rule, mu)),
                "prev": ("default", lambda: project_step(prev, x, y, rule, mu)),
                "new@default": ("default", lambda: project_step(new_default, x, y, rule, mu)),
                "matmul": ("kept", lambda: a @ b),
            }
            if args.nchw:
                nchw = Network(name, shape, 10, rule=rule, seed=0)

                def nchw_step():
                    feedback.CHANNELS_LAST = False
                    try:
                        project_step(nchw, x, y, rule, mu)
                    finally:
                        feedback.CHANNELS_LAST = True

                variants["new@nchw"] = ("kept", nchw_step)
            if args.autograd:
                Ws = [m.W.detach().clone().requires_grad_(True) for m in new.weight_layers().values()]
                opt = torch.optim.SGD(Ws, lr=0.1)
                variants["autograd"] = ("kept", lambda: reference_step(new, Ws, opt, x, y, rule, mu, 0.5))
            times = {k: [] for k in variants}
            for _ in range(args.rounds):
                for k, (alloc, f) in variants.items():
                    allocation(alloc)
                    f()  # untimed: the allocator's first step after the switch
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        f()
                    times[k].append((time.perf_counter() - t0) / args.steps)
            allocation("kept")
            med = {k: statistics.median(v) for k, v in times.items()}
            rate = 2 * 2048 ** 3 / med["matmul"] / 1e9

            def ratio(num, den):
                return statistics.median(u / v for u, v in zip(times[num], times[den]))

            gf = flops / 1e9
            line = (f"{name:<10} {rule:<5} {1e3 * med['new']:7.1f} {1e3 * med['prev']:8.1f} "
                    f"{ratio('prev', 'new'):8.2f} {1e3 * med['new@default']:8.1f} {ratio('prev', 'new@default'):7.2f} "
                    f"{gf:6.2f} {rate:7.1f} {gf / med['new']:5.1f} {100 * gf / med['new'] / rate:2.0f}% "
                    f"{gf / med['prev']:5.1f} {100 * gf / med['prev'] / rate:3.0f}%")
            if args.nchw:
                line += f" {1e3 * med['new@nchw']:8.1f} {ratio('new@nchw', 'new'):8.2f}"
            if args.autograd:
                line += f" {1e3 * med['autograd']:9.1f} {ratio('new', 'autograd'):7.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    sys.exit(cli.run(main))
