"""Ideal or circuit error signals? The same network trained from the same initial weights four ways, side by side.

The toggle of ``sims/train.py`` (``--error-signal ideal|circuit``, ``--gate ideal|circuit``, ``--readout``) made
visible, on scikit-learn's digits (they ship with scikit-learn; nothing is downloaded):

    ideal                  eq. 6 gives the output error, σ' gates the feedback: the formulas
    circuit veto           the output error circuit of Fig. 14, read out with the veto readout (0 if δ was 0 in
                           the last period of its oscillation, else δ), and the shutdown units of Fig. 15 gating
                           the feedback: the circuits of Appendix 1 as the paper means them
    circuit phase K        the same circuits read out after an odd number K of cycles. Where an output is already
                           right (h > S on the presented class, h < -S on the others) the circuit oscillates, and
                           after an odd number of cycles δ is at the top of its swing: 1+ε (or -μ-ε) where eq. 6
                           says 0, so the outputs that are right are pushed further, past the circuit's range M
    circuit window-mean    the mean of δ over one period of the oscillation: (1+ε)/2 (or -(μ+ε)/2) where eq. 6
                           says 0, the same mistake at half the size

Every variant runs the scheduled engine (the top-down timing of Remark 1, ``--order``) with one seed: the same
initial W and R (checked), the same batches and the same dropout masks; only the signals differ. It prints one
table (test error per epoch from epoch 0, the share of output units in each regime of the circuit, the inputs
outside the circuits' ranges, the Brian2 audit of the circuit module, and how far each variant's final weights
are from the ideal variant's) and draws one figure of the learning curves. docs/circuits.md explains the
regimes and readouts; ``python sims/output_circuit.py`` shows them.

    python sims/error_signals.py             # digits, 5 epochs, about a minute; figure in runs/error_signals/
    python sims/error_signals.py --publish   # the published docs/figures/error_signals_digits.png
"""
from __future__ import annotations

import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from sims import cli  # noqa: E402

# the network of the comparison: simpnet's layers, smaller (8×8 digits), so that four runs take a minute
NET = "conv 16 3x3; maxpool 2; drop .5; full 100; output"
COLOURS = {"ideal": "k", "circuit veto": "#2166ac", "phase": "#d7301f", "window-mean": "#e08214"}


def variants(phase: int) -> dict[str, dict]:
    """name -> CircuitConfig fields of each variant (the rest of the settings are shared)."""
    circuit = dict(error_signal="circuit", gate="circuit")
    return {"ideal": {},
            "circuit veto": dict(readout="veto", **circuit),
            f"circuit phase {phase}": dict(readout=f"phase {phase}", cycles=phase, **circuit),
            "circuit window-mean": dict(readout="window-mean", **circuit)}


def build_parser():
    p = cli.parser(__doc__)
    p.add_argument("--data", default="digits", help="data set (docs/data.md)")
    p.add_argument("--data-dir", default=None, help="folder or archive of the data set (None: its default place)")
    p.add_argument("--net", default=NET, help="preset or specification in the paper's notation")
    p.add_argument("--rule", default="urfb", help="learning rule (hinge rules: bp-h, frfb, urfb, kp, sign)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of every variant")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (None: the data set's default of sims/train.py, 20 for digits)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD step η")
    p.add_argument("--train-subset", type=int, default=None, help="train on N examples only (None: all)")
    p.add_argument("--seed", type=int, default=0, help="weights, batch order, dropout, split: one for every variant")
    p.add_argument("--order", default="paper", help="scheduled engine order of every variant: paper or gradient")
    p.add_argument("--phase", type=int, default=7, help="odd cycle count K of the 'phase K' readout")
    p.add_argument("--circuit-M", type=float, default=10.0, help="bound M on |h_L| of the output circuit (> 1)")
    p.add_argument("--circuit-K", type=float, default=100.0, help="bound K on |δ| of the shutdown gate (> 0)")
    p.add_argument("--circuit-eps", type=float, default=0.1, help="ε of σ_out (> 0)")
    p.add_argument("--audit-every", type=int, default=20,
                   help="every N batches, run the Brian2 rate network on the batch and compare it with the "
                        "circuit module (0: never)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for PyTorch (the layers are small: more threads only add waiting)")
    cli.add_output(p, "error_signals")
    return p


def prepare(args):
    """Every setting checked, the data loaded and each variant's network built, before anything is written:
    ``[(name, config, network)], dataset``."""
    from models.data import load
    from models.losses import default_mu
    from models.train import CircuitConfig, RunConfig, build_network, make_circuits
    from sims.train import BATCH_SIZE

    if args.epochs < 1:
        raise cli.UsageError(f"--epochs must be 1 or more, got {args.epochs}")
    if args.phase < 1 or args.phase % 2 == 0:
        raise cli.UsageError(f"--phase must be a positive odd number (δ at the top of the oscillation), got "
                             f"{args.phase}")
    if args.audit_every < 0:
        raise cli.UsageError(f"--audit-every must be 0 or more, got {args.audit_every}")
    if args.threads < 1:
        raise cli.UsageError(f"--threads must be 1 or more, got {args.threads}")
    batch = args.batch_size if args.batch_size is not None else BATCH_SIZE.get(args.data, RunConfig().batch_size)
    base = RunConfig(net=args.net, rule=args.rule, data=args.data, data_dir=args.data_dir, epochs=args.epochs,
                     batch_size=batch, lr=args.lr, seed=args.seed, train_subset=args.train_subset,
                     engine="scheduled", order=args.order,
                     circuit=CircuitConfig(M=args.circuit_M, K=args.circuit_K, eps=args.circuit_eps))
    configs = []
    for name, kw in variants(args.phase).items():
        audit = dict(audit_every=args.audit_every) if kw and args.audit_every else {}
        cfg = replace(base, circuit=replace(base.circuit, **kw, **audit))
        cfg.validate()
        configs.append((name, cfg))
    dataset = load(base.data, data_dir=base.data_dir, val_size=base.val_size, seed=base.seed,
                   train_subset=base.train_subset)
    classes = len(dataset.classes)
    mu = default_mu(classes)
    runs = []
    for name, cfg in configs:
        make_circuits(cfg, mu)  # the readout and circuit parameters, before any training
        runs.append((name, cfg, build_network(cfg, dataset.x_train.shape[1:], classes)))
    first = runs[0][2].state_dict()
    for name, _, net in runs[1:]:  # one seed, one network: the comparison is only about the signals
        same = net.state_dict()
        if any(not (first[k] == same[k]).all() for k in first):
            raise RuntimeError(f"variant {name!r} starts from other weights than the ideal one")
    return runs, dataset


def weight_distance(net, ref) -> float:
    """max |W − W_ideal| (and R) over every weight tensor at the end of training."""
    a, b = net.state_dict(), ref.state_dict()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def table(results: dict, epochs: int, classes: int) -> list[str]:
    """The side-by-side table, in Markdown."""
    head = ["variant"] + [f"ep {e}" for e in range(epochs + 1)] + [
        "on-update / on-correct / off-update / off-correct (%)", "|h| ≥ M", "|δ| ≥ K", "Brian2 audit",
        "max abs(W − W_ideal)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, res in results.items():
        rows = res["rows"]
        key = "test_error" if "test_error" in rows[-1] else "val_error"
        errs = [rows[0]["initial"][key]] + [r[key] for r in rows]
        rf = rows[-1].get("regime_fraction", {})
        regimes = " / ".join(f"{100 * rf.get(k, 0):.1f}" for k in ("on-update", "on-correct", "off-update",
                                                                     "off-correct"))
        circuit = name != "ideal"
        m_viol = sum(r["range_violations"]["output_M"] for r in rows) if circuit else "–"
        k_viol = sum(r["range_violations"]["gate_K"] for r in rows) if circuit else "–"
        audits = [r["audit"] for r in rows if "audit" in r]
        audit = (f"{sum(a['mismatches'] for a in audits)} mismatches in {sum(a['batches'] for a in audits)} batches"
                 if audits else "–")
        dist = "0 (reference)" if name == "ideal" else f"{res['distance']:.3g}"
        lines.append("| " + " | ".join([name] + [f"{100 * e:.1f}" for e in errs]
                                        + [regimes, str(m_viol), str(k_viol), audit, dist]) + " |")
    return lines


def figure(results: dict, args, classes: int, n_train: int, path: Path, caption: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {"ideal": dict(ls="-", lw=3.5, alpha=0.35, marker="o", ms=8),
              "circuit veto": dict(ls="--", lw=1.6, marker="x", ms=7)}
    for name, res in results.items():
        rows = res["rows"]
        key = "test_error" if "test_error" in rows[-1] else "val_error"
        colour = next(c for k, c in COLOURS.items() if k in name)
        style = styles.get(name, dict(ls="-", lw=1.6, marker="s", ms=4))
        ep = [0] + [r["epoch"] for r in rows]
        errs = [100 * rows[0]["initial"][key]] + [100 * r[key] for r in rows]
        lab = name + (" (weights equal ideal's)" if name != "ideal" and res["distance"] == 0 else "")
        axes[0].plot(ep, errs, color=colour, label=lab, **style)
        if name != "ideal":
            out = [100 * r["range_violations"]["output_M"] / (n_train * classes) for r in rows]
            axes[1].plot(ep[1:], out, color=colour, label=name, **style)
    chance = 100 * (1 - 1 / classes)
    axes[0].axhline(chance, color="0.5", lw=1, ls=":")
    axes[0].text(0.02, chance, f"chance ({chance:.0f}%)", color="0.4", fontsize=8, va="bottom",
                 transform=axes[0].get_yaxis_transform())
    axes[0].set(xlabel="epoch (0: the initial weights)", ylabel=f"test error (%), {args.data}", ylim=(0, 100),
                title="same network, same initial weights: test error")
    axes[1].set(xlabel="epoch", ylabel="output inputs with |h| ≥ M (% of the epoch's)",
                title=f"outputs past the output circuit's range M = {args.circuit_M:g}")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_xticks(range(args.epochs + 1))
    axes[1].set_xlim(axes[0].get_xlim())
    fig.suptitle("Ideal error signals (eq. 6, σ') vs the Appendix 1 circuits' signals, and two readouts that "
                 "break learning", fontsize=10)
    bottom = cli.caption(fig, caption)
    handles, labels = axes[0].get_legend_handles_labels()  # one legend below the panels: it covers no curve
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, bottom))
    return cli.save(fig, path, bottom=bottom + 0.07)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    runs, dataset = prepare(args)
    fig_dir = cli.figure_dir(args)
    import torch

    from models.train import train

    from circuits.regimes import CircuitRangeWarning

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", CircuitRangeWarning)  # counted per epoch and shown in the table instead
    classes = len(dataset.classes)
    cfg0 = runs[0][1]
    print(f"{args.net} on {args.data} ({len(dataset.y_train)} training images, batch {cfg0.batch_size}), rule "
          f"{args.rule}, scheduled engine, order {args.order}, {args.epochs} epochs, seed {args.seed}; "
          f"M={args.circuit_M:g}, K={args.circuit_K:g}, ε={args.circuit_eps:g}; the same initial weights "
          f"(checked) for every variant", flush=True)
    results = {}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for name, cfg, net in runs:
        t0 = time.perf_counter()
        rows = train(cfg, dataset=dataset, network=net)
        results[name] = {"rows": rows, "net": net}
        print(f"[{name}] {args.epochs} epochs in {time.perf_counter() - t0:.1f} s: test error "
              f"{100 * rows[-1].get('test_error', rows[-1]['val_error']):.1f}%", flush=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ref = results["ideal"]["net"]
    for res in results.values():
        res["distance"] = weight_distance(res["net"], ref)

    print("\ntest error (%) per epoch (ep 0: before training); regime shares of the output units in the last "
          "epoch; inputs outside the circuits' ranges over all epochs; Brian2 audit: batches where the Brian2 rate "
          f"network was run beside the circuit module (every {args.audit_every} batches) and the entries where "
          "they differ; the largest difference of any final weight from the ideal variant's\n")
    for line in table(results, args.epochs, classes):
        print(line)
    chance = 1 - 1 / classes
    print(f"\nchance is {100 * chance:.0f}% test error. Training: {wall:.1f} s wall clock, {cpu:.1f} s of CPU "
          f"time ({torch.get_num_threads()} PyTorch thread{'s' if torch.get_num_threads() > 1 else ''}).")
    caption = (f"{args.net} on {args.data} ({len(dataset.y_train)} training images, batch {cfg0.batch_size}), "
               f"{args.rule}, lr {args.lr:g}, scheduled engine (order {args.order}), seed {args.seed} for every "
               f"variant; circuits M = {args.circuit_M:g}, K = {args.circuit_K:g}, ε = {args.circuit_eps:g}. Left: "
               "test error per epoch. Right: share of output units whose input h lies outside the output "
               "circuit's range (|h| ≥ M), where it no longer computes eq. 6. Written by sims/error_signals.py.")
    path = figure(results, args, classes, len(dataset.y_train), fig_dir / f"error_signals_{args.data}.png",
                  caption)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
