"""Training with circuit-computed error signals under the rigid top-down timing (Remark 1, Fig. 15, App. 1).

Trains one network with the scheduled engine (models.schedule) and URFB in several variants that differ only
in how the error signal and the gate are computed and in the order of the top-down sequence:

    ideal, gradient order      eq. 6 and σ', propagating with pre-update R (= autograd)
    ideal, paper order         eq. 6 and σ', propagating with the just-updated R (Fig. 15)
    circuit veto               the output error circuit (veto readout) and the shutdown gate, paper order
    circuit phase K (odd)      δ after an odd number of cycles: 1+ε / -μ-ε where eq. 6 gives 0
    circuit phase K+1 (even)   δ after an even number of cycles
    circuit window-mean        the time average of the oscillation

Every variant starts from the same weights and sees the same batches and dropout masks. Per epoch it records
test error, the fraction of output units in each circuit regime, range violations, the Brian2 audit of the
circuit module (veto variant) and the distance between paper-order and gradient-order updates. Prints a
table and writes scheduler_variants.png into --out (into docs/figures with --publish).

Each variant's run directory under --out remembers its settings: a rerun with the same settings resumes or
re-prints the finished runs; a rerun with other settings (M, ε, K, data, ...) is refused before any training,
naming them; pass another --out for them. More --epochs than before continue the runs.

    python sims/scheduler_experiment.py --data fashion-mnist --train-subset 10000 --epochs 3
    python sims/scheduler_experiment.py --data digits --train-subset 500 --epochs 1 --out runs/sched-tiny
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.train import CircuitConfig, RunConfig, check_run_dir, train  # noqa: E402
from sims import cli  # noqa: E402


def variants(phase: int) -> dict[str, tuple[dict, dict]]:
    """name -> (RunConfig fields, CircuitConfig fields) of each variant."""
    circuit = dict(error_signal="circuit", gate="circuit")
    return {
        "ideal, gradient order": (dict(order="gradient"), {}),
        "ideal, paper order": (dict(order="paper"), dict(compare_every=10)),
        "circuit veto": (dict(order="paper"), dict(readout="veto", audit_every=25, **circuit)),
        f"circuit phase {phase} (odd)": (dict(order="paper"), dict(readout=f"phase {phase}", cycles=phase, **circuit)),
        f"circuit phase {phase + 1} (even)": (dict(order="paper"),
                                              dict(readout=f"phase {phase + 1}", cycles=phase + 1, **circuit)),
        "circuit window-mean": (dict(order="paper"), dict(readout="window-mean", **circuit)),
    }


def main():
    p = cli.parser(__doc__)
    p.add_argument("--data", default="fashion-mnist", help="data set (docs/data.md)")
    p.add_argument("--data-dir", default=None, help="folder or archive of the data set (None: its default place)")
    p.add_argument("--net", default="simpnet", help="preset or specification in the paper's notation")
    p.add_argument("--rule", default="urfb", help="learning rule (hinge rules only: bp-h, frfb, urfb, kp, sign)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of every variant")
    p.add_argument("--train-subset", type=int, default=10000, help="train on N examples only")
    p.add_argument("--seed", type=int, default=0, help="weights, batch order, dropout, split")
    p.add_argument("--phase", type=int, default=7, help="odd cycle count of the 'phase K' readout")
    p.add_argument("--circuit-M", type=float, default=10.0, help="bound M on |h_L| of the output circuit (> 1)")
    p.add_argument("--circuit-K", type=float, default=100.0, help="bound K on |δ| of the shutdown gate (> 0)")
    p.add_argument("--circuit-eps", type=float, default=0.1, help="ε of σ_out (> 0)")
    cli.add_output(p, "scheduler_experiment", what="variants' run directories, summary.json and the figure")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (None: PyTorch's choice)")
    args = p.parse_args()
    if args.phase < 1 or args.phase % 2 == 0:
        raise cli.UsageError(f"--phase must be a positive odd number (the even parity is run as phase+1), "
                             f"got {args.phase}")
    base = RunConfig(net=args.net, rule=args.rule, data=args.data, data_dir=args.data_dir, epochs=args.epochs,
                     seed=args.seed, train_subset=args.train_subset, engine="scheduled",
                     circuit=CircuitConfig(M=args.circuit_M, K=args.circuit_K, eps=args.circuit_eps))
    out = Path(args.out)
    plan = []
    for name, (kw, circuit_kw) in variants(args.phase).items():  # every check before any training
        cfg = replace(base, **kw, circuit=replace(base.circuit, **circuit_kw))
        cfg.validate()
        run_dir = out / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        resume = (run_dir / "checkpoint.pt").exists()
        check_run_dir(cfg, run_dir, resume=resume)
        plan.append((name, cfg, run_dir, resume))
    from models.data import load

    dataset = load(base.data, data_dir=base.data_dir, val_size=base.val_size, seed=base.seed,
                   train_subset=base.train_subset)  # once for every variant, and missing data before any work
    cli.writable(out)
    figure = cli.figure_dir(args, out_holds_only_figures=False) / "scheduler_variants.png"
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for name, cfg, run_dir, resume in plan:
        t0 = time.perf_counter()
        rows = train(cfg, run_dir, resume=resume, dataset=dataset,
                     log=lambda line, n=name: print(f"[{n}] {line}", flush=True))
        results[name] = rows
        print(f"[{name}] {time.perf_counter() - t0:.0f} s", flush=True)
    (out / "summary.json").write_text(json.dumps(results, indent=1))

    print(f"\n{args.net}, {args.rule}, {args.data} (train subset {args.train_subset}), {args.epochs} epochs, "
          f"seed {args.seed}; M={args.circuit_M}, K={args.circuit_K}, eps={args.circuit_eps}")
    head = f"{'variant':<28} " + " ".join(f"{'ep' + str(e + 1):>6}" for e in range(args.epochs))
    print(head + f" {'on-corr':>8} {'off-corr':>8} {'M viol':>7} {'K viol':>7} {'audit':>9} {'paper-grad':>10}")
    print("(test error % per epoch; regime fractions of the last epoch; violations summed; audit: mismatches/"
          "batches audited against Brian2; paper-grad: mean relative distance of the paper-order update)")
    for name, rows in results.items():
        last = rows[-1]
        err = " ".join(f"{100 * r['test_error' if 'test_error' in r else 'val_error']:6.2f}" for r in rows)
        rf = last.get("regime_fraction", {})
        audits = [r["audit"] for r in rows if "audit" in r]
        audit_s = (f"{sum(a['mismatches'] for a in audits)}/{sum(a['batches'] for a in audits)}b"
                   if audits else "-")
        dists = [r["order_distance"] for r in rows if "order_distance" in r]
        dist = f"{sum(dists) / len(dists):.2e}" if dists else "-"
        print(f"{name:<28} {err} {100 * rf.get('on-correct', 0):7.1f}% {100 * rf.get('off-correct', 0):7.1f}% "
              f"{sum(r['range_violations']['output_M'] for r in rows):7d} "
              f"{sum(r['range_violations']['gate_K'] for r in rows):7d} {audit_s:>9} {dist:>10}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    styles = ["-", "--", ":", "-.", (0, (1, 3)), (0, (5, 5))]  # identical runs overlap: tell them apart
    for (name, rows), ls in zip(results.items(), styles):
        ep = [r["epoch"] for r in rows]
        key = "test_error" if "test_error" in rows[0] else "val_error"
        ax[0].plot(ep, [100 * r[key] for r in rows], marker="o", ls=ls, label=name)
        ax[1].plot(ep, [100 * r["regime_fraction"]["on-correct"] + 100 * r["regime_fraction"]["off-correct"]
                        for r in rows], marker="o", ls=ls, label=name)
    for a in ax:
        a.set_xticks(ep)
    ax[0].set(xlabel="epoch", ylabel="test error (%)", title=f"{args.net}, {args.rule}, {args.data}")
    ax[1].set(xlabel="epoch", ylabel="output units in a 'correct' regime (%)",
              title="outputs past the margin (circuit oscillates)")
    handles, labels = ax[0].get_legend_handles_labels()  # one legend below both panels: it covers no curve
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(figure, dpi=110)
    print(f"wrote {figure}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
