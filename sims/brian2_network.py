"""The whole learning machine of Amit (2019), "Deep learning with asymmetric connections and Hebbian updates",
as one Brian2 simulation that learns digits, side by side with the PyTorch scheduled engine.

Rate units per layer hold their feed-forward activity x until the feedback δ replaces it (Remark 1); W and R
are separate synapses; the output error circuit of Fig. 14 computes δ_L (eq. 6) and the shutdown units of
Fig. 15 gate the feedback at every hidden unit (eq. 3); each synapse changes by η·δ_post·x_pre of the two
units it connects, in the slot the top-down schedule allows (circuits/learning_network.py). The schedule is
the event order of models/schedule.py (order ``paper``: a layer sends with the weights it has just updated),
passed on as plain data; an order that breaks Remark 1 is refused before anything runs.

Examples are presented one at a time (batch 1). The same initial W and R and the same example order go to
``models.schedule.ScheduledEngine`` (circuit signals, float64); after every training example the two
simulators' weights are compared. Each epoch is one ``Network.run`` of the training examples (η) followed by
the test examples (η = 0, for the test error).

    python sims/brian2_network.py --net "full 40; output" --rule urfb --epochs 1 --out runs/brian2_network
    python sims/brian2_network.py --rule urfb,frfb,symmetric --epochs 5   # one folder per rule, curves overlaid

Writes DIR/summary.json (examples, max_weight_diff, test_error_brian2, test_error_torch, seconds_brian2,
seconds_torch, per-epoch rows), DIR/fig15_network_timeline.png (every population through one example's
slots) and DIR/brian2_network_learning_curves.png. See docs/brian2_network.md.
"""
import json
import os
import sys
import time
import warnings

import matplotlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from sims import cli  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# parameters (the defaults of the command line)
NET = "full 40; output"
RULES = ("urfb", "frfb", "symmetric")  # symmetric: URFB from R = Wᵀ, the Zipser–Rumelhart control (= BP-H)
ETA = 0.03  # learning rate of one example (batch 1): docs/brian2_network.md says why
EPOCHS = 1
SEED = 0
M, EPS, K = 10.0, 0.1, 100.0  # output circuit bound and increment; shutdown gate bound (RunConfig defaults)

p = cli.parser(__doc__)
p.add_argument("--net", default=NET, help="network in the paper's notation: full N / local N kxk layers, output")
p.add_argument("--rule", default="urfb", help=f"one or more of {', '.join(RULES)}, comma-separated")
p.add_argument("--epochs", type=int, default=EPOCHS, help="passes over the digits training split")
p.add_argument("--target", default="numpy", choices=["numpy", "cython", "cpp_standalone"],
               help="Brian2 code generation target (cpp_standalone: built once, rerun per epoch)")
p.add_argument("--lr", type=float, default=ETA, help="η of one example (batch 1)")
p.add_argument("--order", default="paper", choices=["paper", "gradient"], help="the top-down order (Remark 1)")
p.add_argument("--seed", type=int, default=SEED, help="seed of the weights, the split and the example order")
p.add_argument("--train-subset", type=int, default=None, help="use this many training examples (default: all)")
p.add_argument("--circuit-M", type=float, default=M, help="bound on |h_L| of the output error circuit")
p.add_argument("--circuit-eps", type=float, default=EPS, help="ε of the output error circuit")
p.add_argument("--circuit-K", type=float, default=K, help="bound on |δ| of the shutdown gate")
cli.add_output(p, "brian2_network", what="summary.json and figures")
args = p.parse_args()
with cli.guard():  # every setting checked before any simulation
    from models.spec import resolve

    _, specs = resolve(args.net)
    other = [str(sp) for sp in specs if sp.kind not in ("full", "local", "output")]
    if other:
        raise cli.UsageError(f"--net {args.net!r}: the network of neurons has full, local and output layers only, "
                             f"not {', '.join(other)} (a tied conv shares one weight among many synapses: write it "
                             "'local')")
    rules = [r.strip() for r in args.rule.split(",") if r.strip()]
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise cli.UsageError(f"--rule takes {', '.join(RULES)} (comma-separated), got {args.rule!r}")
    if args.epochs < 1:
        raise cli.UsageError(f"--epochs must be a positive integer, got {args.epochs}")
    if not args.lr > 0:
        raise cli.UsageError(f"--lr must be positive, got {args.lr}")
    if args.train_subset is not None and args.train_subset < 1:
        raise cli.UsageError(f"--train-subset must be a positive integer, got {args.train_subset}")
    if args.target == "cpp_standalone" and len(rules) > 1:
        raise cli.UsageError("--target cpp_standalone builds one project per process: give one --rule")
    cli.check_circuit(M=args.circuit_M, S=1.0, eps=args.circuit_eps, K=args.circuit_K)
    out_root = cli.writable(args.out)
    fig_root = cli.FIGURES if args.publish else out_root
    if args.publish:
        cli.writable(fig_root)

import brian2 as b2  # noqa: E402
import torch  # noqa: E402

from circuits.learning_network import LearningNetwork  # noqa: E402
from circuits import modules  # noqa: E402
from circuits.modules import OutputErrorCircuit, ShutdownGate  # noqa: E402
from models.data import load  # noqa: E402
from models.losses import default_mu, make_loss  # noqa: E402
from models.network import Network  # noqa: E402
from models.schedule import ScheduledEngine, plain_network, synapse_values  # noqa: E402
from models.train import epoch_order, evaluate  # noqa: E402  (the trainer's own example order)

warnings.filterwarnings("ignore", module="brian2")
b2.BrianLogger.log_level_error()
torch.set_num_threads(1)


def supervisory(y, classes):
    """circuits.modules.supervisory for NumPy labels: +1 at each label, -1 elsewhere, float64 (n, classes)."""
    return modules.supervisory(torch.as_tensor(np.asarray(y), dtype=torch.long), classes, dtype=torch.float64).numpy()


def make_net(rule, shape, classes):
    return Network(args.net, shape, classes, rule="urfb" if rule == "symmetric" else rule, seed=args.seed,
                   dtype=torch.float64, feedback_init="symmetric" if rule == "symmetric" else "random")


def builder(plain, n_examples, mu, **kw):
    return LearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"],
                           n_examples=n_examples, M=args.circuit_M, mu=mu, eps=args.circuit_eps, K=args.circuit_K,
                           **kw)


def pick_example(net, x, y):
    """The first example whose forward pass saturates a hidden unit and puts an output in a correct regime
    (|h| > S, so that the shutdown units and the circuit's oscillation both show), else the first one."""
    with torch.no_grad():
        hidden = net.layers[0](x)
        h = net(x)
    s = torch.full_like(h, -1.0).scatter_(1, y[:, None], 1.0)
    good = ((hidden.abs() >= 1).flatten(1).any(1) & ((s * h) > 1).any(1)).nonzero().flatten()
    return int(good[0]) if len(good) else 0


def timeline_figure(plain, mu, x0, y0, classes, path, which):
    """Every population through the slots of one example (the whole-network version of Fig. 15's timeline)."""
    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    ln = builder(plain, 1, mu, record_activity=True, record_weights=False, name="timeline")
    ln.run(x0[None], supervisory([y0], classes), args.lr)
    act = ln.activity()
    order = [k for k in act if k[0] == "input"] + [k for k in act if k[0] not in ("input", "s", "t")] + \
        [k for k in act if k[0] in ("s", "t")]
    labels = {"x": "x, then δ", "fb": "fb: R δ arrived", "d": "δ_c: error unit", "u": "u = 1[x ≥ 1]",
              "v": "v = −1[x ≤ −1]", "s": "s_c: supervisory", "t_c": "t_c: control"}
    heights = [1.0 + 0.25 * min(act[k].shape[0], 64) ** 0.5 for k in order]
    fig, axes = plt.subplots(len(order), 1, figsize=(10, 0.55 * sum(heights) + 2.0), sharex=True,
                             gridspec_kw={"height_ratios": heights})
    n = ln.n_slots
    lname = {i: L["name"] for i, L in enumerate(plain["layers"])}
    names = ["present"] + [f"{kind} {lname[layer]}" + (f" (cycle {c})" if c else "") for kind, layer, c in ln.slots[1:]]
    for ax, key in zip(axes, order):
        v = act[key]
        lim = max(1.0, float(np.abs(v).max()))
        im = ax.imshow(v, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                       extent=[-0.5, n - 0.5, v.shape[0] - 0.5, -0.5])
        label = "x_0 (input)" if key[0] == "input" else labels.get(key[1], key[1])
        ax.set_ylabel(f"{key[0]} ({v.shape[0]})\n{label}", rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        for k in range(n + 1):
            ax.axvline(k - 0.5, color="0.6", lw=0.4)
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.02)
    axes[-1].set_xticks(range(n))
    axes[-1].set_xticklabels(names, rotation=50, ha="right", fontsize=8)
    axes[-1].set_xlabel("slot of one example (time step, dt = 1 ms; state at the end of the step)")
    fig.suptitle(f"Fig. 15, whole network: every population of '{args.net}' through one example's slots\n"
                 f"(order {args.order}; {which}; seed {args.seed}; colour: activity, rows: units)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_figure(results, path):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    from sims.figures import colour  # the project's (and the paper's) colour per rule

    for rule, summary in results.items():
        c = colour("bp-h" if rule == "symmetric" else rule)  # R = Wᵀ under URFB is back-propagation (BP-H)
        rows = summary["epochs"]
        ep = [r["epoch"] for r in rows]
        ax.plot(ep, [100 * r["test_error_torch"] for r in rows], color=c, lw=2.5, alpha=0.5,
                label=f"{rule}: PyTorch scheduled engine")
        ax.plot(ep, [100 * r["test_error_brian2"] for r in rows], color=c, ls="--", marker="o", ms=4,
                label=f"{rule}: Brian2 network")
    ax.set_xlabel("epoch")
    ax.set_ylabel("digits test error (%)")
    ax.set_title(f"Learning curves, '{args.net}', batch 1, η = {args.lr:g}, order {args.order}, seed {args.seed}\n"
                 f"(360 test digits; Brian2 {args.target} vs PyTorch, same initial weights and example order)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_rule(rule, out_dir, ds, draw_timeline):
    classes = len(ds.classes)
    mu = default_mu(classes)
    x_tr = torch.as_tensor(ds.x_train, dtype=torch.float64)
    y_tr = torch.as_tensor(ds.y_train, dtype=torch.long)
    x_te = torch.as_tensor(ds.x_test, dtype=torch.float64)
    y_te = torch.as_tensor(ds.y_test, dtype=torch.long)
    n_tr, n_te = len(y_tr), len(y_te)
    net = make_net(rule, ds.x_train.shape[1:], classes)
    with cli.guard():
        plain = plain_network(net, args.order)  # the schedule is checked here, before any simulation
    engine = ScheduledEngine(net, order=args.order, mu=mu, gate=ShutdownGate(K=args.circuit_K),
                             error_signal=OutputErrorCircuit(M=args.circuit_M, mu=mu, eps=args.circuit_eps))
    loss_fn = make_loss("urfb", mu)
    b2.start_scope()
    if args.target == "cpp_standalone":
        b2.set_device("cpp_standalone", build_on_run=False)
    else:
        b2.prefs.codegen.target = args.target
    ln = builder(plain, n_tr + n_te, mu, name="ln", directory=os.path.join(out_dir, "standalone")
                 if args.target == "cpp_standalone" else None)
    eta = np.concatenate([np.full(n_tr, args.lr), np.zeros(n_te)])
    s_te = supervisory(y_te.numpy(), classes)
    rows, sec_b, sec_t, first_run = [], 0.0, 0.0, None
    worst = 0.0
    for epoch in range(args.epochs):
        order = epoch_order(n_tr, args.seed, epoch)
        snap = [np.empty((n_tr, len(L[k]["w"]))) for L in plain["layers"] for k in ("W", "R")]
        wrong_t = 0
        for k, idx in enumerate(order.tolist()):
            t0 = time.perf_counter()
            _, h = engine(net, x_tr[idx:idx + 1], y_tr[idx:idx + 1], loss_fn, args.lr, 0.0)
            sec_t += time.perf_counter() - t0
            wrong_t += int(h.argmax(1)[0] != y_tr[idx])
            for a, v in zip(snap, (v for wr in synapse_values(net, plain) for v in wr)):
                a[k] = v
        _, test_err_t = evaluate(net, x_te, y_te, loss_fn, 1000)
        xs = np.concatenate([x_tr[order].reshape(n_tr, -1).numpy(), x_te.reshape(n_te, -1).numpy()])
        ss = np.concatenate([supervisory(y_tr[order].numpy(), classes), s_te])
        t0 = time.perf_counter()
        res = ln.run(xs, ss, eta)
        dt_b = time.perf_counter() - t0
        sec_b += dt_b
        first_run = dt_b if first_run is None else first_run
        got = [a[:n_tr] for L_W, L_R in zip(res["W"], res["R"]) for a in (L_W, L_R)]
        diff = max(float(np.abs(g - s).max()) if s.size else 0.0 for g, s in zip(got, snap))
        worst = max(worst, diff)
        pred = res["output"].argmax(1)
        row = {"epoch": epoch + 1, "max_weight_diff": diff,
               "train_error_brian2": float((pred[:n_tr] != y_tr[order].numpy()).mean()),
               "train_error_torch": wrong_t / n_tr,
               "test_error_brian2": float((pred[n_tr:] != y_te.numpy()).mean()), "test_error_torch": test_err_t,
               "seconds_brian2": dt_b}
        rows.append(row)
        print(f"{rule} epoch {epoch + 1}: test error Brian2 {100 * row['test_error_brian2']:.2f}% PyTorch "
              f"{100 * test_err_t:.2f}% | train error {100 * row['train_error_brian2']:.2f}% / "
              f"{100 * row['train_error_torch']:.2f}% | max |ΔW|,|ΔR| after every example {diff:.2e} | "
              f"Brian2 {dt_b:.1f} s", flush=True)
    if draw_timeline:  # after training: some units saturated, some output circuits oscillating
        if args.target == "cpp_standalone":
            b2.device.reinit()
            b2.device.activate()
            b2.set_device("runtime")
        k = pick_example(net, x_te, y_te)
        timeline_figure(plain_network(net, args.order), mu, x_te[k].reshape(-1).numpy(), int(y_te[k]), classes,
                        os.path.join(fig_root, "fig15_network_timeline.png"),
                        f"test example {k} (label {int(y_te[k])}) after {args.epochs} epoch(s) of {rule}")
    summary = {"net": args.net, "rule": rule, "order": args.order, "lr": args.lr, "target": args.target,
               "seed": args.seed, "examples": n_tr * args.epochs, "test_examples": n_te,
               "synapses": int(sum(len(L[k]["w"]) for L in plain["layers"] for k in ("W", "R"))),
               "slots_per_example": ln.n_slots, "max_weight_diff": worst,
               "test_error_brian2": rows[-1]["test_error_brian2"], "test_error_torch": rows[-1]["test_error_torch"],
               "seconds_brian2": sec_b, "seconds_torch": sec_t,
               "seconds_brian2_first_run": first_run,
               "examples_per_second_brian2": (n_tr + n_te) * args.epochs / sec_b,
               "examples_per_second_torch": n_tr * args.epochs / sec_t, "epochs": rows}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


start = time.time()
with cli.guard():
    ds = load("digits", seed=args.seed, train_subset=args.train_subset)
results = {}
for c, rule in enumerate(rules):
    folder = out_root if len(rules) == 1 else cli.writable(out_root / rule)
    results[rule] = run_rule(rule, str(folder), ds, draw_timeline=c == 0)
curves = os.path.join(fig_root, "brian2_network_learning_curves.png")
curves_figure(results, curves)
for rule, s in results.items():
    print(f"{rule}: {s['examples']} examples, max_weight_diff {s['max_weight_diff']:.2e}, test error Brian2 "
          f"{100 * s['test_error_brian2']:.2f}% PyTorch {100 * s['test_error_torch']:.2f}%, Brian2 "
          f"{s['seconds_brian2']:.1f} s ({s['examples_per_second_brian2']:.0f} examples/s incl. test), PyTorch "
          f"{s['seconds_torch']:.1f} s ({s['examples_per_second_torch']:.0f} examples/s)")
print("wrote", os.path.relpath(os.path.join(out_root, "summary.json")) if len(rules) == 1 else
      ", ".join(os.path.relpath(os.path.join(out_root, r, "summary.json")) for r in rules))
print("wrote", os.path.relpath(os.path.join(fig_root, "fig15_network_timeline.png")), os.path.relpath(curves))
print(f"total time {time.time() - start:.1f} s")
