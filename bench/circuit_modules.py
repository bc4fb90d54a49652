"""Speed of the PyTorch circuit modules (circuits.modules, Appendix 1) against the ideal formulas.

Times ``OutputErrorCircuit`` (the output error circuit's map, ``cycles`` cycles + readout + range check +
regime counts) against eq. 6 written directly as tensor ops, and ``ShutdownGate`` (Fig. 15) against eq. 3
(``where(|x| = 1, 0, δ)``), on a batch of 500 × 10 (the trainer's batch and classes). Reports the median
time per call over ``--repeats`` blocks and the ratio module / ideal, measured side by side in one process.
Target (issue 3): ≤ 1 ms per call for the output module on the CPU.

    python bench/circuit_modules.py [--device cuda] [--threads 1]
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from sims import cli  # noqa: E402

p = cli.parser(__doc__)
p.add_argument("--batch", type=int, default=500, help="examples per call")
p.add_argument("--classes", type=int, default=10, help="output classes (μ = 1/(classes-1))")
p.add_argument("--hidden", type=int, default=10, help="units per example gated by ShutdownGate")
p.add_argument("--M", type=float, default=4.0, help="bound M on |h| of the output circuit (> 1); h drawn in ±0.975 M")
p.add_argument("--K", type=float, default=4.0, help="bound K on |δ| of the shutdown gate (> 0); δ drawn in ±0.975 K")
p.add_argument("--eps", type=float, default=0.1, help="ε of σ_out (> 0)")
p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
p.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch")
p.add_argument("--calls", type=int, default=200, help="calls per timed block")
p.add_argument("--repeats", type=int, default=7, help="timed blocks (the median is reported)")
args = p.parse_args()
with cli.guard():  # every setting checked before any timing
    for name in ("batch", "hidden", "threads", "calls", "repeats"):
        if getattr(args, name) < 1:
            raise cli.UsageError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.classes < 2:
        raise cli.UsageError(f"--classes must be at least 2, got {args.classes}")
    cli.check_circuit(M=args.M, eps=args.eps, K=args.K, mu=1.0 / (args.classes - 1))
import torch  # noqa: E402

from circuits.modules import OutputErrorCircuit, ShutdownGate, supervisory  # noqa: E402

torch.set_num_threads(args.threads)
with cli.guard():
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise cli.UsageError("--device cuda was asked for but PyTorch sees no CUDA device; use --device cpu")
    dev = torch.device(args.device)
mu = 1.0 / (args.classes - 1)


def timeit(fn):
    for _ in range(20):
        fn()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    blocks = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.calls):
            fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        blocks.append((time.perf_counter() - t0) / args.calls)
    return statistics.median(blocks)


def eq6(h, s, S=1.0):
    """Eq. 6 (closed form) as plain tensor ops: the ideal the module is compared with."""
    return torch.where(s > 0, (h <= S).to(h.dtype), -mu * (h >= -S).to(h.dtype))


def eq3(x, delta):
    return torch.where(x.abs() >= 1.0, torch.zeros_like(delta), delta)


g = torch.Generator().manual_seed(0)
rows = []
for dtype in (torch.float32, torch.float64):
    hm, dm = 0.975 * args.M, 0.975 * args.K  # inside the circuits' ranges (3.9 for the defaults)
    h = (torch.randn(args.batch, args.classes, generator=g, dtype=dtype) * 1.2).clamp(-hm, hm).to(dev)
    s = supervisory(torch.randint(0, args.classes, (args.batch,), generator=g), args.classes, dtype=dtype).to(dev)
    x = (torch.rand(args.batch, args.hidden, generator=g, dtype=dtype) * 2.6 - 1.3).clamp(-1, 1).to(dev)
    d = (torch.randn(args.batch, args.hidden, generator=g, dtype=dtype)).clamp(-dm, dm).to(dev)
    for order, cycles in (("sequential", 2), ("simultaneous", 4)):
        mod = OutputErrorCircuit(M=args.M, mu=mu, eps=args.eps, cycles=cycles, order=order)
        assert torch.equal(mod(h, s), eq6(h, s))
        t_mod, t_ideal = timeit(lambda: mod(h, s)), timeit(lambda: eq6(h, s))
        rows.append((f"OutputErrorCircuit {order} ({cycles} cycles, veto)", dtype, t_mod, t_ideal))
    gate = ShutdownGate(K=args.K)
    assert torch.equal(gate(x, d), eq3(x, d))
    rows.append(("ShutdownGate", dtype, timeit(lambda: gate(x, d)), timeit(lambda: eq3(x, d))))

one = torch.randn(args.batch, args.classes, generator=g).to(dev)
t_op = timeit(lambda: one + 1.0)
print(f"batch {args.batch} x {args.classes} classes ({args.hidden} units for the gate), device {dev}, "
      f"{torch.get_num_threads()} thread(s), torch {torch.__version__}; median of {args.repeats} blocks "
      f"of {args.calls} calls")
print(f"{'module':<50} {'dtype':<8} {'module ms':>9} {'ideal ms':>9} {'ratio':>6}")
for name, dtype, tm, ti in rows:
    print(f"{name:<50} {str(dtype).replace('torch.', ''):<8} {tm * 1e3:>9.3f} {ti * 1e3:>9.3f} {tm / ti:>6.1f}")
print(f"one elementwise op (x + 1, float32, same size) takes {t_op * 1e6:.1f} µs here: the module costs "
      f"{rows[0][2] / t_op:.0f} such ops (float32, sequential); on a loaded machine every figure scales with it")
