"""Speed and memory of locally connected ("untied", §4.1) layers against tied convolution and a sparse-COO
reference of the same connectivity (the authors' approach: "implemented using tensorflow sparse tensor
operations, and is significantly slower and requires more memory", §4.1).

One step = forward (with σ) + feedback (the signal sent down through R; skipped for a first layer, whose input
needs none) + the URFB update of W and R, at batch 500, for simpnet's first layer and each of deepnet_s's six
conv layers, on their CIFAR-10 input shapes. The three implementations are timed in one process, interleaved
step by step, from the same weights; the table prints medians and the ratios untied ÷ tied and
untied ÷ sparse. Memory: bytes of W and R (and of the sparse index tensors), and the peak resident memory a
step adds, measured in a fresh child process per (layer, implementation) (Linux ``VmHWM``, reset first).

Sparse reference (written for this comparison only): ``torch.sparse_coo_tensor`` for W and for Rᵀ (indices
precomputed, values updated in place), forward ``torch.sparse.mm(W, X)``, feedback ``torch.sparse.mm(Rᵀ, G)``,
and the update of the non-zero values by PyTorch's fastest route, ``torch.sparse.sampled_addmm`` on the CSR
pattern (each value gets ``Σ_batch δ_i x_{i+k}``). ``--gather`` also times the TensorFlow gradient of
``sparse_tensor_dense_matmul`` (gather the rows of δ and of x per non-zero, multiply, sum), chunked so that
it fits in memory, for simpnet's layer only.

    python bench/local_layers.py                 # 1 thread, 5 interleaved repetitions, memory probes
    python bench/local_layers.py --threads 2 --reps 3 --gather --networks
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from sims import cli  # noqa: E402
from models.layers import Conv  # noqa: E402
from models.local import Local, in_grid  # noqa: E402
from models.rules import get_rule  # noqa: E402

# (name, C_in, C_out, k, H = W, first layer?) on CIFAR-10 inputs (3×32×32); deepnet_s pools 32 → 11 → 6
CASES = [
    ("simpnet conv1", 3, 32, 5, 32, True),
    ("deepnet_s conv1", 3, 16, 3, 32, True),
    ("deepnet_s conv2", 16, 16, 3, 32, False),
    ("deepnet_s conv3", 16, 64, 3, 11, False),
    ("deepnet_s conv4", 64, 64, 3, 11, False),
    ("deepnet_s conv5", 64, 64, 2, 6, False),
    ("deepnet_s conv6", 64, 64, 2, 6, False),
]
LR = 0.1
SLOPE = 0.5
warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # beta-state notices of torch.sparse


class SparseCOO:
    """The locally connected layer as the sparse (C_out·H·W) × (C_in·H·W) matrix of its connections."""

    def __init__(self, loc: Local):
        c_in, c_out, k, (h, w) = loc.c_in, loc.c_out, loc.k, loc.hw
        a = (k - 1) // 2
        inside = in_grid((h, w), c_in, k).expand(h * w, c_out, c_in * k * k)
        p, o, q = inside.nonzero(as_tuple=True)  # position, output channel, (c, dy, dx)
        c, dy, dx = q // (k * k), (q // k) % k, q % k
        i, j = p // w, p % w
        rows = o * h * w + p  # output unit (o, i, j)
        cols = c * h * w + (i + dy - a) * w + (j + dx - a)  # input unit (c, i+dy-a, j+dx-a)
        order = torch.argsort(rows * (c_in * h * w) + cols)  # coalesced (row-major) order
        self.rows, self.cols = rows[order], cols[order]
        self.W = loc.W.detach()[p, o, q][order].clone()
        self.R = loc.R[p, o, q][order].clone()
        self.shape = (c_out * h * w, c_in * h * w)
        t_order = torch.argsort(self.cols * self.shape[0] + self.rows)  # Rᵀ in its own coalesced order
        self.t_perm = t_order
        self.t_idx = torch.stack([self.cols[t_order], self.rows[t_order]])
        self.idx = torch.stack([self.rows, self.cols])
        pattern = torch.sparse_coo_tensor(self.idx, torch.ones_like(self.W), self.shape, is_coalesced=True)
        self.pattern = pattern.to_sparse_csr()
        self.out_shape = (c_out, h, w)

    def weight_bytes(self) -> int:
        idx = self.idx.numel() + self.t_idx.numel() + self.t_perm.numel()
        csr = self.pattern.crow_indices().numel() + self.pattern.col_indices().numel()
        return (self.W.numel() + self.R.numel() + self.pattern.values().numel()) * self.W.element_size() + \
            (idx + csr) * 8

    def step(self, x: torch.Tensor, g: torch.Tensor, feedback: bool, gather: bool = False) -> None:
        n = x.shape[0]
        if feedback:  # as the other two: x = σ(h below), whose backward receives the feedback
            x = F.hardtanh(x * SLOPE)
        X = x.reshape(n, -1).t().contiguous()
        S = torch.sparse_coo_tensor(self.idx, self.W, self.shape, is_coalesced=True)
        h = torch.sparse.mm(S, X)  # (C_out·H·W, N)
        xo = torch.clamp(h * SLOPE, -1.0, 1.0)
        G = (g.reshape(n, -1).t() * ((xo.abs() < 1.0) * SLOPE)).contiguous()  # -δ of this layer, from σ' (eq. 3)
        if feedback:
            RT = torch.sparse_coo_tensor(self.t_idx, self.R[self.t_perm], self.shape[::-1], is_coalesced=True)
            gx = torch.sparse.mm(RT, G).t().reshape(x.shape)
            gx * ((x.abs() < 1.0) * SLOPE)
        if gather:  # TensorFlow's gradient of sparse_tensor_dense_matmul w.r.t. the values
            gv = torch.empty_like(self.W)
            for s in range(0, len(gv), 1 << 16):
                sl = slice(s, s + (1 << 16))
                gv[sl] = (G[self.rows[sl]] * X[self.cols[sl]]).sum(1)
        else:
            gv = torch.sparse.sampled_addmm(self.pattern, G, X.t(), beta=0.0).values()
        self.W.sub_(gv, alpha=LR)
        self.R.sub_(gv, alpha=LR)


def build(case, impl: str, batch: int):
    name, c_in, c_out, k, hw, first = case
    gen = torch.Generator().manual_seed(0)
    conv = Conv(c_in, c_out, k, generator=gen, dtype=torch.float32)
    conv.rule = get_rule("urfb")
    loc = Local(c_in, c_out, k, (hw, hw), generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    loc.rule = get_rule("urfb")
    data = torch.Generator().manual_seed(2)
    x = torch.rand(batch, c_in, hw, hw, generator=data).requires_grad_(not first)
    g = torch.randn(batch, c_out, hw, hw, generator=data) * 1e-3
    return layer_of(impl, conv, loc), x, g


def layer_of(impl, conv, loc):
    if impl == "tied":
        return conv
    if impl == "untied":
        return loc
    return SparseCOO(loc)


def weight_bytes(layer) -> int:
    if isinstance(layer, SparseCOO):
        return layer.weight_bytes()
    return (layer.W.numel() + layer.R.numel()) * layer.W.element_size()


def step(layer, x, g, gather=False) -> None:
    if isinstance(layer, SparseCOO):
        layer.step(x.detach(), g, x.requires_grad, gather)
        return
    x0 = x
    if x.requires_grad:  # as in a network: the input is σ of the layer below, and the feedback flows into it
        x = F.hardtanh(x * SLOPE)
    layer(x).backward(g)
    layer.apply_update(LR)
    x0.grad = None


def _rss_mb(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def probe(case_name: str, impl: str, batch: int) -> None:
    """Child process: peak resident memory added by building the layer and running two steps.

    A child started from a large parent inherits its high-water mark (``ru_maxrss``), so the peak is reset
    first (``/proc/self/clear_refs``, Linux) and read back as ``VmHWM``.
    """
    case = next(c for c in CASES if c[0] == case_name)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _rss_mb("VmRSS")
    layer, x, g = build(case, impl, batch)
    for _ in range(2):
        step(layer, x, g)
    print(json.dumps({"peak_mb": _rss_mb("VmHWM") - before, "weight_mb": weight_bytes(layer) / 2 ** 20}))


def main(argv=None) -> int:
    ap = cli.parser(__doc__)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (2 only on a quiet machine)")
    ap.add_argument("--batch", type=int, default=500, help="mini-batch size (paper: 500)")
    ap.add_argument("--reps", type=int, default=5, help="interleaved timed steps per implementation")
    ap.add_argument("--cases", default="all", help="'all' or comma-separated substrings of the layer names")
    ap.add_argument("--no-sparse", action="store_true", help="skip the sparse-COO reference")
    ap.add_argument("--no-memory", action="store_true", help="skip the child-process memory probes")
    ap.add_argument("--gather", action="store_true", help="also time the TensorFlow-style gather update")
    ap.add_argument("--networks", action="store_true",
                    help="also time whole-network steps (simpnet, deepnet_s): tied vs every conv untied")
    ap.add_argument("--networks-only", action="store_true", help="only the whole-network comparison")
    ap.add_argument("--probe", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for name in ("threads", "batch", "reps"):
        if getattr(args, name) < 1:
            raise cli.UsageError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    if args.probe:
        probe(args.probe[0], args.probe[1], args.batch)
        return 0
    cases = CASES if args.cases == "all" else [c for c in CASES if any(s in c[0] for s in args.cases.split(","))]
    if not cases:
        raise cli.UsageError(f"--cases {args.cases!r} matches none of {', '.join(c[0] for c in CASES)}")
    impls = ["tied", "untied"] + ([] if args.no_sparse else ["sparse"])
    load = open("/proc/loadavg").read().split()[0] if sys.platform.startswith("linux") else "?"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}, "
          f"{args.reps} interleaved reps, load average at start {load}")
    if args.networks or args.networks_only:
        networks(args.batch, args.reps)
        if args.networks_only:
            return 0
    print(f"{'layer (s/step)':<17} " + " ".join(f"{i:>8}" for i in impls))
    rows = []
    for case in cases:
        built = {impl: build(case, impl, args.batch) for impl in impls}
        for impl in impls:  # warm-up
            step(*built[impl])
        times = {impl: [] for impl in impls}
        for _ in range(args.reps):
            for impl in impls:
                t0 = time.perf_counter()
                step(*built[impl])
                times[impl].append(time.perf_counter() - t0)
        row = {"case": case[0], **{impl: statistics.median(times[impl]) for impl in impls}}
        row["weights"] = {impl: weight_bytes(built[impl][0]) / 2 ** 20 for impl in impls}
        if args.gather and case[0].startswith("simpnet") and "sparse" in built:
            t0 = time.perf_counter()
            step(*built["sparse"], gather=True)
            row["gather"] = time.perf_counter() - t0
        del built
        if not args.no_memory:
            row["peak"] = {}
            for impl in impls:
                cmd = [sys.executable, __file__, "--threads", str(args.threads), "--batch", str(args.batch),
                       "--probe", case[0], impl]
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                row["peak"][impl] = json.loads(res.stdout.strip().splitlines()[-1])["peak_mb"]
        rows.append(row)
        print(_format(row, impls), flush=True)
    tot = {impl: sum(r[impl] for r in rows) for impl in impls}
    line = f"{'sum of the layers':<17} " + " ".join(f"{tot[i]:8.3f}" for i in impls)
    line += f" | untied/tied {tot['untied'] / tot['tied']:5.2f}"
    if "sparse" in tot:
        line += f" | untied/sparse {tot['untied'] / tot['sparse']:5.3f}"
    print(line)
    return 0


def networks(batch: int, reps: int) -> None:
    """Whole training steps (forward, hinge loss, feedback, URFB update) of tied vs fully untied networks."""
    from models.losses import hinge_loss
    from models.protocol import untie
    from models.network import Network

    data = torch.Generator().manual_seed(3)
    x = torch.rand(batch, 3, 32, 32, generator=data)
    y = torch.randint(0, 10, (batch,), generator=data)
    for name in ("simpnet", "deepnet_s"):
        tied = Network(name, (3, 32, 32), 10, rule="urfb", seed=0)
        nets = {"tied": tied, "untied": untie(tied)}

        def run(net):
            hinge_loss(net(x), y, 1 / 9).backward()
            net.apply_update(LR)

        for net in nets.values():
            run(net)
        times = {k: [] for k in nets}
        for _ in range(reps):
            for k, net in nets.items():
                t0 = time.perf_counter()
                run(net)
                times[k].append(time.perf_counter() - t0)
        t = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name + ' network':<17} {t['tied']:8.3f} {t['untied']:8.3f} | untied/tied {t['untied'] / t['tied']:5.2f}"
              " (whole step, every conv untied)", flush=True)


def _format(row, impls) -> str:
    head = f"{row['case']:<17} " + " ".join(f"{row[i]:8.3f}" for i in impls)
    head += f" | untied/tied {row['untied'] / row['tied']:5.2f}"
    if "sparse" in row:
        head += f" | untied/sparse {row['untied'] / row['sparse']:5.3f}"
    head += " | weights MB " + "/".join(f"{row['weights'][i]:.1f}" for i in impls)
    if "peak" in row:
        head += " | step peak MB " + "/".join(f"{row['peak'][i]:.0f}" for i in impls)
    if "gather" in row:
        head += f" | TF-style gather update step {row['gather']:.1f} s"
    return head


if __name__ == "__main__":
    sys.exit(cli.run(main))
