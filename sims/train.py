"""Train a network of Amit (2019), §3–§4, with BP, BP-H, FRFB or URFB (or a peer rule: KP, sign, DFA).

Networks are given by preset name (simpnet, deepnet, deepernet, deepnet_s) or in the paper's own notation,
e.g. ``--net "conv 32 5x5; maxpool 3; drop .8; full 500; drop .3; output"``. Defaults are the paper's:
slope-0.5 saturated-linear units, Glorot-uniform W and an independent R, plain SGD with η = 0.1 and
batch 500, the multi-class hinge loss with μ = 1/(C−1) for every rule but ``bp`` (softmax cross-entropy).

Examples::

    python sims/train.py                                     # simpnet, URFB, scikit-learn digits
    python sims/train.py --data fashion-mnist --rule frfb --epochs 3 --out runs/fm-frfb
    python sims/train.py --out runs/fm-frfb --resume --epochs 5   # continue a run
    python sims/train.py --data images --data-dir cifar10-train-jpeg.tar.xz --net deepnet_s

The run directory (``--out``) receives ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from models.train import (LEGACY_CIRCUIT_FIELDS, CircuitConfig, DivergenceError, RunConfig, RunDirError,  # noqa: E402
                          load_config, train)
from models.data import DATASETS  # noqa: E402
from models.rules import RULES  # noqa: E402


def parse_args(argv=None):
    d = RunConfig()
    c = d.circuit
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--net", default=d.net, help="preset name or a specification in the paper's notation")
    # rule and data are checked by the project (one-line errors), not by argparse choices
    p.add_argument("--rule", default=d.rule, help=f"learning rule: {', '.join(RULES)}")
    p.add_argument("--data", default=d.data, help=f"data set: {', '.join(DATASETS)}")
    p.add_argument("--data-dir", default=None, help="folder or archive holding the data set's files")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="SGD step η")
    p.add_argument("--seed", type=int, default=d.seed, help="weights, masks, batch order, dropout, split")
    p.add_argument("--connectivity", type=float, default=d.connectivity,
                   help="probability p of each W and R entry existing (§3.1: 0.5)")
    p.add_argument("--no-mask-output", action="store_true", help="keep the output layer fully connected")
    p.add_argument("--feedback-init", default=d.feedback_init, choices=["random", "symmetric"],
                   help="R drawn independently, or R = Wᵀ (the Zipser–Rumelhart control)")
    p.add_argument("--slope", type=float, default=d.slope, help="a of σ(h) = clip(a·h, -1, 1)")
    p.add_argument("--mu", type=float, default=None, help="off-class weight of the hinge loss [1/(C-1)]")
    p.add_argument("--kp-decay", type=float, default=d.kp_decay,
                   help="weight decay λ of the kp rule (required: kp with λ = 0 is urfb)")
    p.add_argument("--train-subset", type=int, default=None, help="train on N examples only")
    p.add_argument("--val-size", type=int, default=None, help="validation hold-out [data set's default]")
    p.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", default=d.dtype, choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    g = p.add_argument_group("timing scheduler and circuits (Remark 1, Appendix 1)")
    g.add_argument("--engine", default=d.engine, help="fast (autograd) or scheduled (the event graph of Remark 1, docs/spec.md §6)")
    g.add_argument("--order", default=d.order,
                   help="scheduled engine: paper (send with the just-updated R, Fig. 15) or gradient")
    g.add_argument("--error-signal", default=c.error_signal, help="ideal (eq. 6) or circuit (Fig. 14)")
    g.add_argument("--readout", default=c.readout, help="circuit readout: veto, 'phase K', window-mean")
    g.add_argument("--gate", default=c.gate, help="ideal (σ') or circuit (shutdown units, Fig. 15)")
    g.add_argument("--circuit-M", type=float, default=c.M, help="bound M on |h_L| of the output circuit")
    g.add_argument("--circuit-eps", type=float, default=c.eps, help="ε of σ_out")
    g.add_argument("--circuit-cycles", type=int, default=None, help="cycles of the map [the readout's minimum]")
    g.add_argument("--circuit-order", default=c.order, help="sequential (paper) or simultaneous")
    g.add_argument("--circuit-margin", type=float, default=c.margin, help="σ_ctl margin, fraction of ε")
    g.add_argument("--circuit-K", type=float, default=c.K, help="bound K on |δ| of the shutdown gate")
    g.add_argument("--on-range", default=c.on_range, help="out-of-range circuit inputs: report, error, clip")
    g.add_argument("--audit-every", type=int, default=c.audit_every,
                   help="every N batches, check the circuit module against the Brian2 rate network")
    g.add_argument("--compare-every", type=int, default=c.compare_every,
                   help="order paper: every N batches, measure the distance to the gradient-order update")
    p.add_argument("--out", default=None, help="run directory [runs/<net>-<rule>-<data>-<time>]")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume:
        if args.out is None:
            raise RunDirError("--resume needs --out DIR, the run directory to continue")
        config = load_config(args.out)
        config.epochs = args.epochs  # the only setting a resumed run may change: train further
    else:
        circuit = CircuitConfig(**{new: getattr(args, old) for old, new in LEGACY_CIRCUIT_FIELDS.items()})
        config = RunConfig(**{f.name: getattr(args, f.name) for f in fields(RunConfig)
                              if f.name not in ("mask_output", "eval_batch_size", "circuit")},
                           mask_output=not args.no_mask_output, circuit=circuit)
    out = args.out
    if out is None:
        name = config.net if " " not in config.net else "custom"
        out = f"runs/{name}-{config.rule}-{config.data}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"run: {out}")
    print("config: " + ", ".join(f"{k}={v}" for k, v in asdict(config).items()))
    rows = train(config, out, resume=args.resume, progress=not args.no_progress and sys.stderr.isatty(),
                 log=print)
    if rows:
        last = rows[-1]
        final = {k: last[k] for k in ("train_error", "val_error", "test_error") if k in last}
        print("final: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in final.items()))
    return 0


def run() -> int:
    from models.data import DataError
    from models.spec import SpecError

    try:
        return main()
    except (SpecError, RunDirError, DivergenceError, DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last finished epoch is saved; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
