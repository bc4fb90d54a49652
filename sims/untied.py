"""Untied (locally connected) layers, Amit (2019) §4.1: Fig. 9 (tied vs untied error rates) and Fig. 8 (the
filters of an untied layer at different positions, and how alike they are).

For each net and rule, one run with the tied network (``conv``) and one with every conv layer untied
(``local``, drawn independently at every position: no sharing at the start either), from the same seed,
batch order and dropout stream; validation error per epoch. ``--protocol`` instead runs the paper's §4.1
protocol for deepnet_s: train tied, freeze the first layer, re-initialise the rest untied, retrain.

Fig. 8: the 5×5 filters of a few channels of the trained untied first layer at 4 positions of the 32×32 grid,
and the filter similarity of ``models.local.filter_similarity`` (mean correlation between one channel's
filters at different positions vs the shuffled-channel baseline), at initialisation and after training.

Paper values: CIFAR-10, 100+ epochs, batch 500 (tied) / 50 (untied, sparse tensors). Defaults here are a
short CPU budget; each run also reports seconds per epoch and the process's peak resident memory. Figures and
untied.json go to --out (default runs/untied); --publish writes the figures into docs/figures instead.

    python sims/untied.py --data images --data-dir cifar10-train-jpeg.tar.xz --train-subset 10000 --epochs 3
    python sims/untied.py --data images --data-dir cifar10-train-jpeg.tar.xz --protocol --nets deepnet_s
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from models.data import load  # noqa: E402
from models.local import Local, filter_similarity, untied_spec  # noqa: E402
from models.protocol import untie_protocol  # noqa: E402
from models.rules import get_rule  # noqa: E402
from models.spec import resolve  # noqa: E402
from models.train import RunConfig, build_network, train  # noqa: E402
from sims import cli  # noqa: E402


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--data", default="images", help="data set (images: a <split>/<class>/*.jpg tree or tar)")
    p.add_argument("--data-dir", default=None, help="folder or archive of the data set")
    p.add_argument("--nets", default="simpnet", help="comma-separated presets to compare tied vs untied")
    p.add_argument("--rules", default="bp-h,urfb,frfb", help="comma-separated rules")
    p.add_argument("--kinds", default="tied,untied", help="which of the two networks to train")
    p.add_argument("--epochs", type=int, default=3, help="epochs of every run (--protocol: of the untied stage)")
    p.add_argument("--tied-epochs", type=int, default=None,
                   help="--protocol: epochs of the tied stage (None: models.protocol's default)")
    p.add_argument("--batch-size", type=int, default=500, help="mini-batch size")
    p.add_argument("--lr", type=float, default=0.1, help="SGD step η")
    p.add_argument("--slope", type=float, default=0.5, help="a of σ(h) = clip(a·h, -1, 1)")
    p.add_argument("--seed", type=int, default=0, help="weights, batch order, dropout, split")
    p.add_argument("--train-subset", type=int, default=None, help="train on N images only")
    p.add_argument("--val-size", type=int, default=5000, help="validation hold-out")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--protocol", action="store_true", help="the §4.1 protocol (freeze layer 1, untie the rest)")
    p.add_argument("--positions", default="2,2;2,29;29,2;16,16", help="Fig. 8: grid positions i,j;...")
    p.add_argument("--channels", type=int, default=6, help="Fig. 8: channels shown")
    cli.add_output(p, "untied", what="figures and untied.json (every run's metrics)")
    p.add_argument("--tag", default="cifar10", help="figure name suffix")
    return p.parse_args(argv)


def check_args(args) -> None:
    """Every setting checked before the data is loaded (one-line errors)."""
    for kind in args.kinds.split(","):
        if kind not in ("tied", "untied"):
            raise cli.UsageError(f"--kinds takes tied and/or untied, got {kind!r}")
    for rule in args.rules.split(","):
        get_rule(rule)
    for net in args.nets.split(","):
        resolve(net)
    try:
        positions = [tuple(int(v) for v in q.split(",")) for q in args.positions.split(";")]
    except ValueError:
        raise cli.UsageError(f"--positions takes i,j;i,j;... (grid positions), got {args.positions!r}") from None
    if any(len(q) != 2 for q in positions):
        raise cli.UsageError(f"--positions takes i,j;i,j;... (grid positions), got {args.positions!r}")
    for name in ("epochs", "batch_size", "channels", "threads"):
        if getattr(args, name) < (0 if name == "epochs" else 1):
            raise cli.UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    RunConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, slope=args.slope,
              device=args.device).validate()


def peak_reset() -> None:
    try:  # Linux: reset the resident-memory high-water mark so each run reports its own peak
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(cfg, dataset, network=None):
    peak_reset()
    t0 = time.perf_counter()
    rows = train(cfg, network=network, dataset=dataset,
                 log=lambda line: print(f"  {cfg.rule:>5} {'untied' if 'local' in cfg.net else 'tied':>6} | {line}",
                                        flush=True))
    return {"rows": rows, "seconds": time.perf_counter() - t0, "peak_mb": peak_mb()}


def compare(args, dataset):
    results = {}
    base = RunConfig(data=args.data, data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size,
                     lr=args.lr, slope=args.slope, seed=args.seed, train_subset=args.train_subset,
                     val_size=args.val_size, device=args.device)
    shape, classes = dataset.x_train.shape[1:], len(dataset.classes)
    for net in args.nets.split(","):
        for rule in args.rules.split(","):
            for kind in args.kinds.split(","):
                cfg = replace(base, net=net if kind == "tied" else untied_spec(net), rule=rule)
                network = build_network(cfg, shape, classes)
                init = W0 = None
                if kind == "untied":
                    first = next(m for m in network.layers if isinstance(m, Local))
                    init, W0 = filter_similarity(first), first.W.detach().clone()
                res = run_one(cfg, dataset, network)
                if kind == "untied":
                    res["similarity_init"] = init
                    res["similarity"] = filter_similarity(first)
                    res["similarity_increment"] = filter_similarity(first, reference=W0)
                    res["relative_change"] = float((first.W.detach() - W0).norm() / W0.norm())
                    res["network"] = network
                    res["W0"] = W0
                results[(net, rule, kind)] = res
    return results


def figure_errors(results, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = args.nets.split(",")
    rules = args.rules.split(",")
    fig, axes = plt.subplots(len(nets), len(rules), figsize=(3.6 * len(rules), 3.0 * len(nets)), squeeze=False)
    for a, net in enumerate(nets):
        for b, rule in enumerate(rules):
            ax = axes[a, b]
            for kind, color in (("tied", "tab:blue"), ("untied", "tab:red")):
                if (net, rule, kind) not in results:
                    continue
                rows = results[(net, rule, kind)]["rows"]
                ep = [r["epoch"] for r in rows]
                ax.plot(ep, [100 * r["val_error"] for r in rows], "-o", color=color, label=f"{kind} val")
                ax.plot(ep, [100 * r["train_error"] for r in rows], ":", color=color, label=f"{kind} train")
            ax.set_title(f"{net}, {rule.upper()}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("error (%)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("§4.1 / Fig. 9: tied (blue) vs untied (red)")
    fig.tight_layout()
    path = args.fig_dir / f"untied_{args.tag}_errors.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure_filters(f, positions, channels, title, path):
    """Fig. 8: rows = channels, columns = positions; ``f`` is (H, W, C_out, C_in, k, k), RGB when C_in = 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(channels, len(positions), figsize=(1.3 * len(positions), 1.3 * channels),
                             squeeze=False)
    for o in range(channels):
        vals = torch.stack([f[i, j, o] for i, j in positions])
        lim = float(vals.abs().max())
        for b, (i, j) in enumerate(positions):
            img = f[i, j, o]
            img = (img / (2 * lim) + 0.5).clamp(0, 1).permute(1, 2, 0) if img.shape[0] == 3 else img[0]
            ax = axes[o, b]
            ax.imshow(img.numpy(), cmap=None if img.dim() == 3 else "gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if o == 0:
                ax.set_title(f"({i},{j})", fontsize=8)
        axes[o, 0].set_ylabel(f"ch {o}", fontsize=8)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    out = cli.writable(args.out)
    args.fig_dir = cli.figure_dir(args, out_holds_only_figures=False)
    torch.set_num_threads(args.threads)
    dataset = load(args.data, data_dir=args.data_dir, val_size=args.val_size, seed=args.seed,
                   train_subset=args.train_subset)
    print(dataset.summary(), f"| {torch.get_num_threads()} thread(s)")
    if args.protocol:
        for rule in args.rules.split(","):
            for net in args.nets.split(","):
                cfg = RunConfig(net=net, rule=rule, data=args.data, data_dir=args.data_dir, epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr, slope=args.slope, seed=args.seed,
                                train_subset=args.train_subset, val_size=args.val_size, device=args.device)
                peak_reset()
                tied, untied, _ = untie_protocol(cfg, tied_epochs=args.tied_epochs, dataset=dataset,
                                                 log=lambda line, r=rule: print(f"  {r:>5} | {line}", flush=True))
                print(f"{net} {rule}: tied val error {100 * tied[-1]['val_error']:.2f}% -> untied (layer 1 "
                      f"frozen) {100 * untied[-1]['val_error']:.2f}%; peak {peak_mb():.0f} MB")
        return 0
    results = compare(args, dataset)
    print("\nnet       rule   kind    val error per epoch (%)          s/epoch  peak MB  "
          "filter similarity same/shuffled: W at init -> W trained; increments W - W(0); |ΔW|/|W(0)|")
    for (net, rule, kind), res in results.items():
        errs = " ".join(f"{100 * r['val_error']:5.1f}" for r in res["rows"])
        sec = sum(r["seconds"] for r in res["rows"]) / len(res["rows"])
        sim = ""
        if "similarity" in res:
            s0, s1 = res["similarity_init"], res["similarity"]
            s2 = res["similarity_increment"]
            sim = (f"{s0['same']:+.3f}/{s0['shuffled']:+.3f} -> {s1['same']:+.3f}/{s1['shuffled']:+.3f}; "
                   f"{s2['same']:+.3f}/{s2['shuffled']:+.3f}; {res['relative_change']:.3f}")
        print(f"{net:<9} {rule:<6} {kind:<7} {errs:<32} {sec:7.1f} {res['peak_mb']:8.0f}  {sim}")
    print("figure:", figure_errors(results, args))
    positions = [tuple(int(v) for v in p.split(",")) for p in args.positions.split(";")]
    for (net, rule, kind), res in results.items():
        if kind == "untied":
            layer = next(m for m in res["network"].layers if isinstance(m, Local))
            s = res["similarity"]
            title = (f"{net} untied layer 1 after {len(res['rows'])} epochs, {rule.upper()}:\nsame-channel corr "
                     f"{s['same']:.2f}, shuffled {s['shuffled']:.2f}")
            path = args.fig_dir / f"untied_{args.tag}_filters_{net}_{rule}.png"
            print("figure:", figure_filters(layer.filters(), positions, args.channels, title, path))
            s = res["similarity_increment"]
            title = (f"{net} untied layer 1, increments W - W(0), {rule.upper()}:\nsame-channel corr "
                     f"{s['same']:.2f}, shuffled {s['shuffled']:.2f}")
            path = args.fig_dir / f"untied_{args.tag}_increments_{net}_{rule}.png"
            inc = layer.filters() - res["W0"].view(layer.filters().shape)
            print("figure:", figure_filters(inc, positions, args.channels, title, path))
    dump = {f"{n}|{r}|{k}": {key: v for key, v in res.items() if key not in ("network", "W0")}
            for (n, r, k), res in results.items()}
    (out / "untied.json").write_text(json.dumps(dump, indent=1))
    print("wrote", out / "untied.json")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
