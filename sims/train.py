"""Train a network of Amit (2019), §3–§4, with BP, BP-H, FRFB or URFB (or a peer rule: KP, sign, DFA).

Networks are given by preset name (simpnet, deepnet, deepernet, deepnet_s) or in the paper's own notation,
e.g. ``--net "conv 32 5x5; maxpool 3; drop .8; full 500; drop .3; output"``. Defaults are the paper's:
slope-0.5 saturated-linear units, Glorot-uniform W and an independent R, plain SGD with η = 0.1 and
batch 500, the multi-class hinge loss with μ = 1/(C−1) for every rule but ``bp`` (softmax cross-entropy).

Examples::

    python sims/train.py                                     # simpnet, URFB, scikit-learn digits, batch 20
    python sims/train.py --data fashion-mnist --rule frfb --epochs 3 --out runs/fm-frfb
    python sims/train.py --out runs/fm-frfb --resume --epochs 5   # continue a run, to 5 epochs
    python sims/train.py --out runs/fm-frfb --resume              # continue it to its own epoch count
    python sims/train.py --data images --data-dir cifar10-train-jpeg.tar.xz --net deepnet_s

The run directory (``--out``) receives ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``. Every setting
is checked, the data loaded and the network built before anything is written: bad input is one line on stderr
and exit status 2, and leaves no run directory behind.
"""
from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from models.train import (LEGACY_CIRCUIT_FIELDS, CircuitConfig, RunConfig, check_run_dir,  # noqa: E402
                          load_config, train)
from models.data import DATASETS  # noqa: E402
from models.rules import RULES  # noqa: E402
from models.spec import PRESETS  # noqa: E402
from sims import cli  # noqa: E402

RULE_HELP = {"bp": "softmax cross-entropy, feedback Wᵀ (exact back-propagation)",
             "bp-h": "hinge loss (eq. 4), feedback Wᵀ",
             "frfb": "hinge, feedback through a fixed random R",
             "urfb": "hinge, feedback through R, which gets W's Hebbian increment (the paper's method)",
             "kp": "urfb plus equal weight decay on W and R (Kolen-Pollack; needs --kp-decay > 0)",
             "sign": "hinge, feedback sign(W)ᵀ (sign-symmetry)",
             "dfa": "hinge, every hidden layer gets D_l δ_L directly (direct feedback alignment; --engine fast)"}

EPILOG = ("presets (--net):\n" + "".join(f"  {k:<10} {v}\n" for k, v in PRESETS.items())
          + "\nrules (--rule):\n" + "".join(f"  {k:<10} {RULE_HELP.get(k, '')}\n" for k in RULES)
          + "\ndata (--data): " + ", ".join(DATASETS) + " (docs/data.md)\n" + """
engine and order:
  --engine fast (default) is autograd: the gradient order, with the ideal signals (eq. 6, σ').
  --engine scheduled runs the event graph of Remark 1; its default --order paper sends each layer's
  signal down with the feedback weights it has just updated (Fig. 15), so --engine scheduled alone
  CHANGES the results of every rule whose feedback weights learn (all but frfb); --engine scheduled
  --order gradient equals the fast engine. --order is refused without --engine scheduled.
circuits:
  --error-signal circuit replaces eq. 6 by the output error circuit (both engines); --readout,
  --circuit-M/-eps/-cycles/-order/-margin and --audit-every (scheduled only) configure it.
  --gate circuit (scheduled only) replaces σ' by the shutdown units; --circuit-K bounds their |δ|.
  --on-range applies to either circuit. A circuit flag given without its circuit is refused.
  Circuit parameters must satisfy M > 1 (= S), ε > 0, K > 0, 0 < μ ≤ 1 (--mu, with --error-signal circuit).
resume:
  --out DIR --resume continues the run in DIR with the settings it was started with (config.json), to
  its own epoch count or to a larger --epochs; any other flag that differs from the saved settings is
  refused (start a new run with another --out instead). Resuming a finished run says so and exits 0.
""")

# The batch size a data set is trained with when --batch-size is not given. The paper's 500 for the paper's
# data sets (CIFAR-10/100, and Fashion-MNIST and image folders alike); scikit-learn's digits have 1,137
# training images, 3 steps an epoch at 500, so simpnet ends 10 epochs at chance there: 20 gives 57 steps an
# epoch and about 8% test error after the default 10 epochs (docs/training.md).
BATCH_SIZE = {"digits": 20}


class PerDataSet:
    """The default of --batch-size: looked up in BATCH_SIZE once the data set is known (shown in --help)."""

    def __str__(self):
        return ", ".join(f"{v} for {k}" for k, v in BATCH_SIZE.items()) + f", {RunConfig().batch_size} (the " \
            "paper's) for the others"

    __repr__ = __str__


# flags that only mean something with a circuit, engine or order: flag -> (dest, needs, what is needed)
CONDITIONAL = {
    "--readout": ("readout", lambda a: a.error_signal == "circuit", "--error-signal circuit"),
    "--circuit-M": ("circuit_M", lambda a: a.error_signal == "circuit", "--error-signal circuit"),
    "--circuit-eps": ("circuit_eps", lambda a: a.error_signal == "circuit", "--error-signal circuit"),
    "--circuit-cycles": ("circuit_cycles", lambda a: a.error_signal == "circuit", "--error-signal circuit"),
    "--circuit-order": ("circuit_order", lambda a: a.error_signal == "circuit", "--error-signal circuit"),
    "--circuit-margin": ("circuit_margin", lambda a: a.error_signal == "circuit", "--error-signal circuit"),
    "--audit-every": ("audit_every", lambda a: a.error_signal == "circuit", "--error-signal circuit"),
    "--audit-target": ("audit_target", lambda a: a.audit_every > 0, "--audit-every N"),
    "--circuit-K": ("circuit_K", lambda a: a.gate == "circuit", "--gate circuit"),
    "--on-range": ("on_range", lambda a: "circuit" in (a.error_signal, a.gate),
                   "--error-signal circuit or --gate circuit"),
    "--order": ("order", lambda a: a.engine == "scheduled", "--engine scheduled"),
    "--compare-every": ("compare_every", lambda a: a.engine == "scheduled" and a.order == "paper",
                        "--engine scheduled --order paper"),
}
NOT_SETTINGS = {"out", "resume", "no_progress", "threads"}  # flags that are not part of a run's settings


def build_parser():
    d = RunConfig()
    c = d.circuit
    p = cli.parser(__doc__, epilog=EPILOG, full_doc=False)
    p.add_argument("--net", default=d.net, help="preset name (below) or a specification in the paper's notation")
    # rule and data are checked by the project (one-line errors), not by argparse choices
    p.add_argument("--rule", default=d.rule, help=f"learning rule: {', '.join(RULES)} (below)")
    p.add_argument("--data", default=d.data, help=f"data set: {', '.join(DATASETS)}")
    p.add_argument("--data-dir", default=None, help="folder or archive holding the data set's files")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="epochs to train to (with --resume: the run's own count unless given)")
    p.add_argument("--batch-size", type=int, default=PerDataSet(), help="mini-batch size B")
    p.add_argument("--lr", type=float, default=d.lr, help="SGD step η")
    p.add_argument("--seed", type=int, default=d.seed, help="weights, masks, batch order, dropout, split")
    p.add_argument("--connectivity", type=float, default=d.connectivity,
                   help="probability p of each W and R entry existing (§3.1: 0.5)")
    p.add_argument("--no-mask-output", action="store_true", help="keep the output layer fully connected")
    p.add_argument("--feedback-init", default=d.feedback_init, choices=["random", "symmetric"],
                   help="R drawn independently, or R = Wᵀ (the Zipser–Rumelhart control)")
    p.add_argument("--slope", type=float, default=d.slope, help="a of σ(h) = clip(a·h, -1, 1)")
    p.add_argument("--mu", type=float, default=None, help="off-class weight μ of the hinge loss; None: 1/(C-1)")
    p.add_argument("--kp-decay", type=float, default=d.kp_decay,
                   help="weight decay λ of the kp rule (required: kp with λ = 0 is urfb)")
    p.add_argument("--train-subset", type=int, default=None, help="train on N examples only (None: all)")
    p.add_argument("--val-size", type=int, default=None, help="validation hold-out (None: the data set's default)")
    p.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", default=d.dtype, choices=["float32", "float64"], help="floating-point type")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (None: PyTorch's choice)")
    p.add_argument("--probe-every", type=int, default=d.probe_every,
                   help="every N SGD steps of the first epoch, evaluate a fixed slice of the hold-out (0: never)")
    p.add_argument("--probe-size", type=int, default=d.probe_size, help="validation images each probe evaluates")
    g = p.add_argument_group("timing scheduler and circuits (Remark 1, Appendix 1; rules below)")
    g.add_argument("--engine", default=d.engine,
                   help="fast (autograd) or scheduled (the event graph of Remark 1, docs/spec.md §6)")
    g.add_argument("--order", default=d.order,
                   help="scheduled engine only: paper (send with the just-updated R, Fig. 15) or gradient")
    g.add_argument("--error-signal", default=c.error_signal, help="ideal (eq. 6) or circuit (Fig. 14)")
    g.add_argument("--readout", default=c.readout, help="circuit readout: veto, 'phase K', window-mean")
    g.add_argument("--gate", default=c.gate, help="ideal (σ') or circuit (shutdown units, Fig. 15; scheduled only)")
    g.add_argument("--circuit-M", type=float, default=c.M, help="bound M on |h_L| of the output circuit (M > 1)")
    g.add_argument("--circuit-eps", type=float, default=c.eps, help="ε of σ_out (> 0)")
    g.add_argument("--circuit-cycles", type=int, default=None, help="cycles of the map (None: the readout's minimum)")
    g.add_argument("--circuit-order", default=c.order, help="update order in the circuit: sequential (paper) or "
                   "simultaneous")
    g.add_argument("--circuit-margin", type=float, default=c.margin, help="σ_ctl margin, fraction of ε")
    g.add_argument("--circuit-K", type=float, default=c.K, help="bound K on |δ| of the shutdown gate (> 0)")
    g.add_argument("--on-range", default=c.on_range, help="out-of-range circuit inputs: report, error, clip")
    g.add_argument("--audit-every", type=int, default=c.audit_every,
                   help="scheduled engine: every N batches, check the circuit module against the Brian2 network "
                        "(0: never)")
    g.add_argument("--audit-target", default=c.audit_target,
                   help="Brian2 target of the audit: numpy, cython, or cpp_standalone (compiled once, then rerun "
                        "with each audited batch)")
    g.add_argument("--compare-every", type=int, default=c.compare_every,
                   help="order paper: every N batches, measure the distance to the gradient-order update (0: never)")
    p.add_argument("--out", default=None, help="run directory (None: runs/<net>-<rule>-<data>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with its saved settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def given_flags(p, argv) -> set[str]:
    """The dests of the flags given on the command line (not left at their defaults)."""
    q = copy.deepcopy(p)
    for a in q._actions:
        a.default = argparse.SUPPRESS
    return set(vars(q.parse_args(argv)))


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    args.given = given_flags(p, argv)
    return args


def config_from_args(args) -> RunConfig:
    circuit = CircuitConfig(**{new: getattr(args, old) for old, new in LEGACY_CIRCUIT_FIELDS.items()})
    batch = args.batch_size
    if isinstance(batch, PerDataSet):
        batch = BATCH_SIZE.get(str(args.data).strip().lower(), RunConfig().batch_size)
    return RunConfig(**{f.name: getattr(args, f.name) for f in fields(RunConfig)
                        if f.name not in ("mask_output", "eval_batch_size", "circuit", "batch_size")},
                     batch_size=batch, mask_output=not args.no_mask_output, circuit=circuit)


def apply_given(config: RunConfig, args) -> RunConfig:
    """``config`` (a saved run's) with every flag given on the command line applied, so that a resumed run can
    be compared with its saved settings and a difference be named."""
    d = asdict(config)
    for dest in args.given - NOT_SETTINGS:
        if dest in LEGACY_CIRCUIT_FIELDS:
            d["circuit"][LEGACY_CIRCUIT_FIELDS[dest]] = getattr(args, dest)
        elif dest == "no_mask_output":
            d["mask_output"] = not args.no_mask_output
        else:
            d[dest] = getattr(args, dest)
    return RunConfig.from_dict(d)


def prepare(args):
    """Every check that can fail, in the order a user meets them, before anything is written or printed:
    ``(config, out, dataset, network)``. Raises the project's one-line errors."""
    if args.resume:
        if args.out is None:
            raise cli.UsageError("--resume needs --out DIR, the run directory to continue")
        if "epochs" in args.given and args.epochs < 1:
            raise cli.UsageError(f"--epochs must be 1 or more, got {args.epochs}")
        config = apply_given(load_config(args.out), args)  # --epochs absent: the run's own count
    else:
        for flag, (dest, ok, needs) in CONDITIONAL.items():
            if dest in args.given and not ok(args):
                raise cli.UsageError(f"{flag} has no effect without {needs}; drop it or add {needs}")
        if args.epochs < 1:
            raise cli.UsageError(f"--epochs must be 1 or more, got {args.epochs} (a run trains at least one "
                                 "epoch; sims/evaluate.py evaluates a saved run)")
        config = config_from_args(args)
    if args.threads is not None and args.threads < 1:
        raise cli.UsageError(f"--threads must be 1 or more, got {args.threads} (leave it out for PyTorch's choice)")
    config.validate()
    import torch

    try:
        torch.device(config.device)
    except RuntimeError:
        raise cli.UsageError(f"--device {config.device!r} is not a device; use cpu, cuda or cuda:N") from None
    from models.data import load
    from models.losses import default_mu
    from models.train import build_network, make_circuits

    dataset = load(config.data, data_dir=config.data_dir, val_size=config.val_size, seed=config.seed,
                   train_subset=config.train_subset)
    network = build_network(config, dataset.x_train.shape[1:], len(dataset.classes))  # the net fits the data
    make_circuits(config, config.mu if config.mu is not None else default_mu(len(dataset.classes)))  # readout
    out = args.out
    if out is None:
        name = config.net if " " not in config.net else "custom"
        out = f"runs/{name}-{config.rule}-{config.data}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_run_dir(config, out, resume=args.resume)
    return config, out, dataset, network


def command(argv, out: str, *, resume: bool) -> str:
    """The command line that continues (``resume``) or restarts this run in the same run directory."""
    here = Path(__file__).resolve()
    try:  # sims/train.py from the checkout's root, the full path from anywhere else
        script = str(here.relative_to(Path.cwd().resolve()))
    except ValueError:
        script = str(here)
    if resume:
        return shlex.join(["python", script, "--out", str(out), "--resume"])
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", str(out)]
    return shlex.join(["python", script, *argv])


def main(argv=None) -> int:
    args = parse_args(argv)
    config, out, dataset, network = prepare(args)
    cli.writable(out)  # the first thing written: the run directory
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"run: {out}")
    print("config: " + ", ".join(f"{k}={v}" for k, v in asdict(config).items()))
    try:
        rows = train(config, out, resume=args.resume, dataset=dataset, network=network,
                     progress=not args.no_progress and sys.stderr.isatty(), log=print)
    except KeyboardInterrupt:
        if (Path(out) / "checkpoint.pt").exists():
            print(f"interrupted: the finished epochs are saved in {out}; continue with: "
                  f"{command(argv, out, resume=True)}", file=sys.stderr)
        else:
            print(f"interrupted before the first epoch finished: nothing to resume; start again with: "
                  f"{command(argv, out, resume=False)}", file=sys.stderr)
        return 130
    if rows:
        last = rows[-1]
        final = {k: last[k] for k in ("train_error", "val_error", "test_error") if k in last}
        print(f"final (epoch {last['epoch']}): " + ", ".join(f"{k.replace('_error', ' err')} {100 * v:.2f}%"
                                                             for k, v in final.items()))
    return 0


def run() -> int:
    return cli.run(main)


if __name__ == "__main__":
    sys.exit(run())
