"""Training-step time of each rule divided by plain PyTorch autograd back-propagation of the same network.

The reference is the same architecture written with PyTorch's own ops only (``F.conv2d(padding='same')``,
``torch.clamp``, zero-padded ``F.max_pool2d``, ``F.dropout``, ``F.linear``), the same weights, the same loss
(softmax cross-entropy for ``bp``, the hinge of eq. 4 written with ``relu`` for the others) and
``torch.optim.SGD``. Each rule runs through the project's layers (``models.feedback`` Functions, ``satlin``,
``hinge_loss``, ``apply_update``; DFA's direct feedback through ``models.network``), against the reference of
back-propagation with the same loss. Variants are timed interleaved in one process, round after round, and
the median of per-round ratios is printed, so machine noise hits numerator and denominator alike.

    python bench/step_time.py                      # simpnet and deepnet, CIFAR-shaped batch of 500
    python bench/step_time.py --nets simpnet --rounds 5 --threads 1
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.losses import hinge_loss  # noqa: E402
from models.layers import Conv, Drop, Full, MaxPool, Sum  # noqa: E402
from models.network import Network  # noqa: E402
from sims import cli  # noqa: E402


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


def project_step(net: Network, x, y, rule: str, mu: float):
    out = net(x)
    loss = F.cross_entropy(out, y) if rule == "bp" else hinge_loss(out, y, mu)
    loss.backward()
    net.apply_update(0.1)


def main():
    p = cli.parser(__doc__)
    p.add_argument("--nets", nargs="+", default=["simpnet", "deepnet"], help="presets or specifications")
    p.add_argument("--rules", nargs="+", default=["bp", "bp-h", "frfb", "urfb", "dfa"], help="learning rules")
    p.add_argument("--batch", type=int, default=500, help="mini-batch size")
    p.add_argument("--shape", default="3,32,32", help="C,H,W of one input (CIFAR by default)")
    p.add_argument("--steps", type=int, default=3, help="steps per variant per round")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the median ratio is printed)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (None: PyTorch's choice)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = p.parse_args()
    shape = cli.check_bench(args, rules=args.rules, nets=args.nets, device=args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    mu = 1 / 9
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}, batch {args.batch}, "
          f"input {shape}, {args.rounds} rounds x {args.steps} steps, median of per-round ratios")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, *shape, generator=gen).to(dev)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    print(f"{'net':<10} {'rule':<6} {'ms/step':>9} {'ref ms':>9} {'ratio':>7}")
    for name in args.nets:
        nets = {r: Network(name, shape, 10, rule=r, seed=0).to(dev) for r in args.rules}
        ref_net = nets[args.rules[0]]
        Ws = [m.W.detach().clone().requires_grad_(True) for m in ref_net.weight_layers().values()]
        opt = torch.optim.SGD(Ws, lr=0.1)
        variants = {}
        for r in args.rules:
            variants[r] = (lambda r=r: project_step(nets[r], x, y, r, mu))
            variants["ref:" + r] = (lambda r=r: reference_step(ref_net, Ws, opt, x, y, r, mu, 0.5))
        for f in variants.values():  # warm-up
            f()
        times = {k: [] for k in variants}
        for _ in range(args.rounds):
            for k, f in variants.items():
                sync()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    f()
                sync()
                times[k].append((time.perf_counter() - t0) / args.steps)
        for r in args.rules:
            ratios = [a / b for a, b in zip(times[r], times["ref:" + r])]
            print(f"{name:<10} {r:<6} {1e3 * statistics.median(times[r]):9.1f} "
                  f"{1e3 * statistics.median(times['ref:' + r]):9.1f} {statistics.median(ratios):7.3f}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
