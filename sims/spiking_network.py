"""The whole learning machine in spikes (circuits/spiking_network.py) measured against the rate network it
approximates (circuits/learning_network.py, equal to the PyTorch scheduled engine) on digits.

Modes (docs/spiking_network.md):

    # agreement per example and per phase with the rate network, on the same weights (η = 0); each (N, phase)
    # a cpp_standalone program of its own (--target numpy: no compiler, ~100× slower); rows accumulate in
    # DIR/agreement.json, so a second sweep into the same DIR adds to the first and a rerun skips what is there
    python sims/spiking_network.py agree --N 10,30,100,300 --phase 0.04 --examples 10 --out DIR
    python sims/spiking_network.py agree --N 30 --phase 0.02,0.04,0.08 --examples 10 --out DIR
    # learning: the spiking network (cpp_standalone, built once) beside the PyTorch scheduled engine, which
    # holds the rate network's weights (equal to 1e-15, docs/brian2_network.md), same initial weights and order
    python sims/spiking_network.py learn --rule urfb --seed 0 --epochs 3 --train-subset 300 --out DIR
    # a raster of every population through one example's phases beside the rate network's slots (Fig. 15)
    python sims/spiking_network.py raster --out DIR --publish
    # Dale's law (every neuron acts with one sign; N even): add --dale to agree, learn or raster
    python sims/spiking_network.py learn --dale --rule urfb --seed 0 --epochs 10 --train-subset 300 --out DIR

``agree`` writes DIR/agreement.json and DIR/fig15_spiking_network_agreement[_<net>].png; ``learn`` writes
DIR/learn_<rule>_seed<k>.json (per epoch: test error of both, the weights' correlation) and checkpoints
after every epoch (DIR/learn_<rule>_seed<k>.ckpt): rerun the same command to resume; ``curves`` draws
fig15_spiking_network_learning.png from such files (and the rate network's summary.json files of
sims/brian2_network.py given with --rate); ``raster`` writes fig15_spiking_network_raster.png.
"""
import json
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from sims import cli  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MODES = ("agree", "learn", "curves", "raster")
M, EPS, K, MARGIN, ETA = 10.0, 0.5, 100.0, 0.5, 0.03

p = cli.parser(__doc__)
p.add_argument("mode", choices=MODES)
p.add_argument("--net", default="full 40; output", help="network (full and output layers)")
p.add_argument("--rule", default="urfb", choices=["urfb", "frfb"])
p.add_argument("--seed", type=int, default=0, help="weights, split, example order and the spiking network's seed")
p.add_argument("--N", default="30", help="neurons per population (comma-separated list in agree mode)")
p.add_argument("--phase", default="0.04", help="phase duration in s (comma-separated list in agree mode)")
p.add_argument("--settle", type=float, default=0.01, help="uncounted start of every phase (s)")
p.add_argument("--examples", type=int, default=10, help="agree: test examples compared")
p.add_argument("--pretrain", type=int, default=1, help="agree: epochs of the PyTorch engine before comparing")
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--train-subset", type=int, default=None)
p.add_argument("--lr", type=float, default=ETA)
p.add_argument("--circuit-eps", type=float, default=EPS, help="ε of the output circuit (δ_L does not depend on it)")
p.add_argument("--target", default="cpp_standalone", choices=["numpy", "cpp_standalone"],
               help="agree, learn: Brian2 target of the spiking network")
p.add_argument("--dale", action="store_true", help="agree, learn, raster: Dale's law (every neuron acts with one "
               "sign: each sign of a population in two routes of N/2 neurons; N even; docs/spiking_network.md)")
p.add_argument("--profile", action="store_true", help="agree, learn: where the spiking network's time goes "
               "(Brian2's profiling summary per code object, printed and saved with the results)")
p.add_argument("--inputs", nargs="*", default=[], help="curves: learn_*.json files and rate summary.json files; "
               "agree: an agreement.json to redraw without simulating")
cli.add_output(p, "spiking_network", what="json files and figures")
args = p.parse_args()
with cli.guard():
    Ns = [int(v) for v in args.N.split(",")]
    phases = [float(v) for v in args.phase.split(",")]
    if min(Ns) < 2 or min(phases) <= args.settle:
        raise cli.UsageError("--N must be ≥ 2 and every --phase longer than --settle")
    if args.dale and any(N % 2 for N in Ns):
        raise cli.UsageError("--dale carries each sign of a population by two routes of N/2 neurons: give an even --N")
    if args.mode == "learn" and (len(Ns) > 1 or len(phases) > 1):
        raise cli.UsageError("learn takes one --N and one --phase")
    cli.check_circuit(M=M, S=1.0, eps=args.circuit_eps, K=K)
    out_root = cli.writable(args.out)
    fig_root = cli.FIGURES if args.publish else out_root
    if args.publish:
        cli.writable(fig_root)

import brian2 as b2  # noqa: E402
import torch  # noqa: E402

from circuits.learning_network import LearningNetwork  # noqa: E402
from circuits import modules  # noqa: E402
from circuits.modules import OutputErrorCircuit, ShutdownGate  # noqa: E402
from circuits.spiking_network import SpikingLearningNetwork  # noqa: E402
from models.data import load  # noqa: E402
from models.losses import default_mu, make_loss  # noqa: E402
from models.network import Network  # noqa: E402
from models.schedule import ScheduledEngine, plain_network, synapse_values  # noqa: E402
from models.train import _atomic_write, _write_json, epoch_order, evaluate  # noqa: E402

warnings.filterwarnings("ignore")
b2.BrianLogger.log_level_error()
torch.set_num_threads(1)


def supervisory(y, classes):
    """circuits.modules.supervisory for NumPy labels: +1 at each label, -1 elsewhere, float64 (n, classes)."""
    return modules.supervisory(torch.as_tensor(np.asarray(y), dtype=torch.long), classes, dtype=torch.float64).numpy()


def setup():
    ds = load("digits", seed=args.seed, train_subset=args.train_subset)
    classes = len(ds.classes)
    net = Network(args.net, ds.x_train.shape[1:], classes, rule=args.rule, seed=args.seed, dtype=torch.float64)
    mu = default_mu(classes)
    engine = ScheduledEngine(net, order="paper", mu=mu, gate=ShutdownGate(K=K),
                             error_signal=OutputErrorCircuit(M=M, mu=mu, eps=args.circuit_eps))
    return ds, classes, net, mu, engine, make_loss("urfb", mu)


def circuit(mu):
    return dict(M=M, mu=mu, eps=args.circuit_eps, K=K, margin=MARGIN)


def engine_epoch(net, engine, loss_fn, x, y, epoch):
    for idx in epoch_order(len(y), args.seed, epoch).tolist():
        engine(net, x[idx:idx + 1], y[idx:idx + 1], loss_fn, args.lr, 0.0)


# ---------------------------------------------------------------------------------------------- agree
def compare(ln_act, rate_slots, rec, phase_list, n, plain):
    """RMS error and correlation per quantity: every (example, phase) where both networks hold it."""
    P = len(phase_list)
    slot_of = {}
    for k, (kind, layer, c) in enumerate(rate_slots):
        slot_of[(kind.replace("error", "error-delta"), layer, c)] = k
        slot_of[("error-t", layer, c)] = k
    last_t = max(k for k, ph in enumerate(phase_list) if ph[0] == "error-t")  # δ_L is carried from the next phase
    pairs = {}

    def add(q, a, b):
        pairs.setdefault(q, ([], []))
        pairs[q][0].append(np.ravel(a))
        pairs[q][1].append(np.ravel(b))

    names = ["input"] + [L["name"] for L in plain["layers"]]
    for gi, gname in enumerate(names):
        v = rec[(gname, "v")]  # (rows, n*P): column e*P + p holds the measurement over phase p - 1
        rx = ln_act[(gname, "x")]  # (rows, n*slots)
        ns = len(rate_slots)
        replaced = None if gi in (0, len(names) - 1) else \
            [k for k, ph in enumerate(phase_list) if ph[:2] == ("replace", gi - 1)][0]
        forward = None if gi == 0 else [k for k, ph in enumerate(phase_list) if ph[:2] == ("forward", gi - 1)][0]
        for e in range(n):
            for pp, ph in enumerate(phase_list):
                col = e * P + pp + 1
                if col >= v.shape[1]:
                    continue
                sv, rv = v[:, col], rx[:, e * ns + slot_of[ph]]
                if gi == 0:
                    add("x_0 (input)", sv, rv)
                elif gi == len(names) - 1:
                    if pp == forward:
                        add("h_L (output)", sv, rv)
                    elif pp > last_t:
                        add("δ_L (output)", sv, rv)
                else:
                    lab = gname
                    if forward <= pp < replaced:
                        add(f"x ({lab})", sv, rv)
                    elif pp >= replaced:
                        add(f"δ ({lab})", sv, rv)
            if gi not in (0,):
                hs, hr = rec[(gname, "h")], ln_act.get((gname, "h"))
                if hr is not None:
                    add(f"h ({gname})", hs[:, e * P + forward + 1], hr[:, e * ns + slot_of[phase_list[forward]]])
    res = {}
    for q, (a, b) in pairs.items():
        a, b = np.concatenate(a), np.concatenate(b)
        corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        # bias and slope (least squares of spiking on rate) split the RMS error into what more neurons remove
        # (count noise) and what they do not (a systematic distortion of the populations' response)
        slope = float(np.cov(a, b)[0, 1] / b.var(ddof=1)) if b.std() > 0 else float("nan")
        res[q] = {"rms": float(np.sqrt(np.mean((a - b) ** 2))), "corr": corr, "n": int(a.size),
                  "rate_rms": float(np.sqrt(np.mean(b ** 2))), "bias": float(np.mean(a - b)), "slope": slope}
    return res


def _dale_setting():
    """{"dale": True} with --dale, else nothing: files written without the option keep their settings."""
    return {"dale": True} if args.dale else {}


def _agree_settings():
    return {"net": args.net, "seed": args.seed, "examples": args.examples, "pretrain_epochs": args.pretrain,
            "settle": args.settle, "lr": args.lr, "eps": args.circuit_eps, **_dale_setting()}


def _saved_rows(path, settings):
    """The rows already in ``path`` (an agreement.json of the same settings), refused in one line if its
    settings differ: one file, one experiment."""
    if not os.path.exists(path):
        return []
    saved = json.load(open(path))
    diff = [f"{k} {saved.get(k)!r} (asked {v!r})" for k, v in settings.items() if saved.get(k) != v]
    if diff:
        cli.fail(f"{path} holds rows of other settings: {', '.join(diff)}; give those settings to add to it, or "
                 "another --out")
    return saved["rows"]


def binary_timing():
    """On cpp_standalone, the seconds of the last compilation ('make') and of the last run of the binary (the
    simulation alone, without Python, code generation or compiler); {} on the runtime targets."""
    timers = getattr(b2.get_device(), "timers", None)
    if not timers:
        return {}
    out = {"seconds_compile": timers["compile"]["make"], "seconds_binary": timers["run_binary"]}
    return {k: float(v) for k, v in out.items() if v is not None}


# what a code object does, from the name Brian2 gives it (first match)
_KINDS = (("_stateupdater", "neurons: integrate v"), ("_spike_thresholder", "neurons: threshold and reset"),
          ("_spike_resetter", "neurons: threshold and reset"), ("_phase_reset", "neurons: reset at each phase"),
          ("_count_pre", "spikes into the counts (Synapses)"), ("summed_variable", "summed inputs (W, R, circuit)"),
          ("_hebb", "Hebbian updates"), ("_phases_", "monitors"), ("_monitor_", "monitors"), ("_spikes_", "monitors"))


def profile_summary(network, top=6):
    """Brian2's time per code object in the last run, summed by what the objects do (``_KINDS``; the rest are
    the slot operations: drives, latches, the circuit's readout) and the ``top`` largest objects:
    {"by_kind": [(kind, s)], "top": [(name, s)]}, largest first."""
    info = [(name, float(sec / b2.second)) for name, sec in network.profiling_info]
    kinds = {}
    for name, sec in info:
        kind = next((k for key, k in _KINDS if key in name), "slot operations (drives, latches, readout)")
        kinds[kind] = kinds.get(kind, 0.0) + sec
    return {"by_kind": sorted(kinds.items(), key=lambda kv: -kv[1]), "top": sorted(info, key=lambda kv: -kv[1])[:top]}


def print_profile(prof):
    total = sum(s for _, s in prof["by_kind"])
    print(f"  where the simulated time goes ({total:.2f} s in the code objects, Brian2's profiling):", flush=True)
    for name, sec in prof["by_kind"]:
        print(f"    {sec:9.3f} s  {100 * sec / total:5.1f}%  {name}", flush=True)
    print("  largest code objects: " + ", ".join(f"{name} {100 * sec / total:.1f}%" for name, sec in prof["top"]),
          flush=True)


def agree():
    from circuits import brian

    if args.inputs:  # redraw
        saved = json.load(open(args.inputs[0]))
        agreement_figure(saved["rows"], agreement_path(saved["net"], saved.get("dale", False)), saved["examples"],
                         saved["net"], saved["seed"], saved.get("dale", False))
        print(agreement_table([dict(r, examples=saved["examples"]) for r in saved["rows"]]))
        return
    settings = _agree_settings()
    path = os.path.join(out_root, "agreement.json")
    rows = _saved_rows(path, settings)
    todo = [(N, ph) for N in Ns for ph in phases if not any(r["N"] == N and r["phase"] == ph for r in rows)]
    for N, ph in sorted(set((N, ph) for N in Ns for ph in phases) - set(todo)):
        print(f"N={N} phase={1000 * ph:.0f} ms: already in {path}", flush=True)
    ds, classes, net, mu, engine, loss_fn = setup()
    x_tr = torch.as_tensor(ds.x_train, dtype=torch.float64)
    y_tr = torch.as_tensor(ds.y_train, dtype=torch.long)
    for ep in range(args.pretrain):
        engine_epoch(net, engine, loss_fn, x_tr, y_tr, ep)
    plain = plain_network(net)
    n = args.examples
    x = ds.x_test[:n].reshape(n, -1).astype(np.float64)
    s = supervisory(ds.y_test[:n], classes)
    if todo:
        b2.prefs.codegen.target = "numpy"
        ln = LearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"],
                             n_examples=n, record_activity=True, record_weights=False, name="rate", **circuit(mu))
        ln.monitors_h = {}
        for L in plain["layers"]:  # h as well, to compare the summed input
            g = ln.groups[L["name"]]
            m = b2.StateMonitor(g, "h", record=True, when="end", name=f"{g.name}_h_activity")
            ln.network.add(m)
            ln.monitors_h[L["name"]] = m
        rr = ln.run(x, s, 0.0)
        act = ln.activity()
        act.update({(k, "h"): np.asarray(m.h) for k, m in ln.monitors_h.items()})
    for N, ph in todo:
        b2.start_scope()
        t0 = time.perf_counter()
        with brian.device(args.target, profile=args.profile):
            sn = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"],
                                        n_examples=n, N=N, phase=ph, settle=args.settle, seed=args.seed,
                                        record_phases=True, record_weights=False, name=f"sn{N}", **circuit(mu),
                                        dale=args.dale,
                                        directory=os.path.join(out_root, f"standalone_agree_N{N}_{1000 * ph:g}ms"))
            t_built = time.perf_counter()
            res = sn.run(x, s, 0.0)
            sec = time.perf_counter() - t0
            q = compare(act, ln.slots, sn.phase_record(), sn.phases, n, plain)
            prof = profile_summary(sn.network) if args.profile else None
            timing = binary_timing()
        same = float(np.mean(res["output"].argmax(1) == rr["output"].argmax(1)))
        row = {"N": N, "phase": ph, "window": ph - args.settle, "target": args.target, "seconds": sec,
               "seconds_per_example": sec / n, "seconds_objects": t_built - t0, **timing,
               "neurons": int(sum(g.N for g in sn.neuron_groups.values())), "quantities": q,
               "argmax_equal": same}
        if prof:
            row["profile"] = prof
        rows.append(row)
        rows.sort(key=lambda r: (r["phase"], r["N"]))
        _write_json(Path(path), dict(settings, rows=rows))  # after every row: an interrupted sweep keeps them
        print(f"N={N:4d} phase={1000 * ph:.0f} ms ({row['neurons']} neurons, {sec:.1f} s for {n} examples on "
              f"{args.target}, build included): " +
              "; ".join(f"{k} rms {v['rms']:.4f} r {v['corr']:.3f} slope {v['slope']:.3f}" for k, v in q.items()),
              flush=True)
        if prof:
            print_profile(prof)
    agreement_figure(rows, agreement_path(args.net, args.dale), n, args.net, args.seed, args.dale)
    print(agreement_table([dict(r, examples=n) for r in rows]))


def agreement_table(rows):
    """Markdown: one row per (phase, N): neurons, the binary's wall seconds per example (cpp_standalone; its
    start included, and on a shared machine its waits), the CPU time per example spent in the code objects
    (with --profile: Brian2 times them with std::clock, the process's CPU time, so it does not count waits), and
    per quantity the RMS error against the rate network with the correlation r and the slope of spiking on
    rate."""
    qs = list(rows[0]["quantities"])
    lines = ["| phase | N | neurons | binary, wall s/example | CPU ms/example (profile) | " + " | ".join(qs) + " |",
             "|---" * (5 + len(qs)) + "|"]
    for r in rows:
        sec, n = r.get("seconds_binary"), r.get("examples", 1)
        per = "–" if sec is None else f"{sec / n:.3f}"
        if r.get("profile"):
            per += f" | {1000 * sum(s for _, s in r['profile']['by_kind']) / n:.0f}"
        else:
            per += " | –"
        cells = [f"{v['rms']:.3f} (r {v['corr']:.3f}, slope {v['slope']:.2f})" if "slope" in v else
                 f"{v['rms']:.3f} (r {v['corr']:.3f})" for v in (r["quantities"][q] for q in qs)]
        lines.append(f"| {1000 * r['phase']:.0f} ms | {r['N']} | {r['neurons']:,} | "
                     f"{per} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure_tag(net, dale):
    """'' for the default network without Dale's law; otherwise the layers (``full 40; full 40; output`` →
    _full40-full40-output) and _dale, so that every variant can be published beside the others."""
    tag = "" if net == p.get_default("net") else "_" + "-".join(part.replace(" ", "") for part in net.split(";"))
    return tag + ("_dale" if dale else "")


def agreement_path(net, dale=False):
    return os.path.join(fig_root, f"fig15_spiking_network_agreement{figure_tag(net, dale)}.png")


def agreement_figure(rows, path, n, net, seed, dale=False):
    qs = list(rows[0]["quantities"])
    sweeps = [(key, other) for key, other in (("N", "phase"), ("window", "N"))
              if any(len({r[key] for r in rows if r[other] == f}) > 1 for f in {r[other] for r in rows})]
    if not sweeps:
        print(f"no figure: {len(rows)} (N, phase) pair(s), no N or phase measured at two values", flush=True)
        return
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.5 * len(sweeps) + 2.5, 4.3), squeeze=False)
    axes = axes[0]
    cmap = plt.get_cmap("tab10")
    for ax, (key, other) in zip(axes, sweeps):
        fixed = {r[other] for r in rows}
        for f in sorted(fixed):
            sel = sorted([r for r in rows if r[other] == f], key=lambda r: r[key])
            if len(sel) < 2:
                continue
            xs = np.array([r[key] for r in sel], dtype=float)
            for c, q in enumerate(qs):
                ax.loglog(xs, [r["quantities"][q]["rms"] for r in sel], "o-", color=cmap(c), label=q)
            ref = sel[0]["quantities"][qs[0]]["rms"]
            ax.loglog(xs, ref * np.sqrt(xs[0] / xs), "k--", lw=1, label="∝ 1/√(N·T)")
            ax.set_title(f"{other} = {f if other == 'N' else f'{1000 * f:.0f} ms'} fixed", fontsize=9)
        ax.set_xlabel("N (neurons per population)" if key == "N" else "counting window T (s)")
        ax.set_ylabel("RMS error vs rate network (activity units)")
        ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8)
    law = ", Dale's law" if dale else ""
    fig.suptitle(f"Fig. 15 in spikes: agreement with the rate network, '{net}'{law},\ndigits, {n} test examples, "
                 f"same weights (η = 0), seed {seed}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.2 / (5.5 * len(sweeps) + 2.5), 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- learn
def _learn_settings(n_tr, n_te):
    return {"net": args.net, "rule": args.rule, "seed": args.seed, "N": Ns[0], "phase": phases[0],
            "settle": args.settle, "lr": args.lr, "eps": args.circuit_eps, "train": n_tr, "test": n_te,
            "target": args.target, **_dale_setting()}


def _resume(path, settings):
    """The checkpoint at ``path`` (None if there is none), refused in one line if it was written with other
    settings: resuming it would mix two experiments."""
    if not os.path.exists(path):
        return None
    try:
        ck = torch.load(path, weights_only=False)
        saved = ck["settings"]
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same one-line answer
        cli.fail(f"{path} is not a checkpoint of this script ({type(e).__name__}); move it away, or give another "
                 "--out to start afresh")
    diff = [f"{k} {saved.get(k)!r} (asked {v!r})" for k, v in settings.items() if saved.get(k) != v]
    if diff:
        cli.fail(f"{path} was written with other settings: {', '.join(diff)}; give those settings to resume it, or "
                 "another --out to start afresh")
    return ck


def _save(path, obj):
    """Atomically (``models.train``'s writer: a temporary file in the same folder, then a rename), so an
    interrupted save loses nothing."""
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def learn():
    """Epochs of the spiking network beside the PyTorch scheduled engine (= the rate network), same initial
    weights and order. After every epoch the state (both networks' weights, the rows) is checkpointed to
    learn_<tag>.ckpt; a rerun with the same settings and --out resumes from the last finished epoch. On
    cpp_standalone that continuation is exact: every block starts the neurons from the built initial state,
    reseeded, with the current weights, so a network rebuilt with the checkpoint's weights runs the next epoch
    as the uninterrupted one would. (On numpy the neurons' state carries over between blocks in one process;
    a resumed run starts them afresh.)"""
    from circuits import brian

    ds, classes, net, mu, engine, loss_fn = setup()
    x_tr = torch.as_tensor(ds.x_train, dtype=torch.float64)
    y_tr = torch.as_tensor(ds.y_train, dtype=torch.long)
    x_te = torch.as_tensor(ds.x_test, dtype=torch.float64)
    y_te = torch.as_tensor(ds.y_test, dtype=torch.long)
    n_tr, n_te = len(y_tr), len(y_te)
    tag = f"{args.rule}_seed{args.seed}"
    settings = _learn_settings(n_tr, n_te)
    ck_path = os.path.join(out_root, f"learn_{tag}.ckpt")
    ck = _resume(ck_path, settings)
    plain = plain_network(net)
    rows, err0 = [], None
    if ck is not None:
        net.load_state_dict(ck["net"])
        for lay, (w, r) in zip(plain["layers"], ck["spiking_weights"]):
            lay["W"]["w"], lay["R"]["w"] = np.asarray(w), np.asarray(r)
        rows, err0 = ck["rows"], ck["test_error_initial"]
        print(f"{tag}: resuming after epoch {len(rows)} of {args.epochs} from {ck_path}", flush=True)
    if len(rows) >= args.epochs:
        print(f"{tag}: {len(rows)} epochs already done (asked {args.epochs}); nothing to run", flush=True)
        return _write_learn(settings, err0, rows, tag)
    with brian.device(args.target, profile=args.profile):
        sn = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"],
                                    n_examples=n_tr + n_te, N=Ns[0], phase=phases[0], settle=args.settle,
                                    seed=args.seed, dale=args.dale,
                                    record_weights=False, name="sn", **circuit(mu),
                                    # a folder per run: runs of other seeds into the same --out may build at once
                                    directory=os.path.join(out_root, f"standalone_{tag}_N{Ns[0]}"))
        eta = np.concatenate([np.full(n_tr, args.lr), np.zeros(n_te)])
        s_te = supervisory(y_te.numpy(), classes)
        if err0 is None:
            _, err0 = evaluate(net, x_te, y_te, loss_fn, 1000)
        for epoch in range(len(rows), args.epochs):
            order = epoch_order(n_tr, args.seed, epoch)
            t0 = time.perf_counter()
            for idx in order.tolist():
                engine(net, x_tr[idx:idx + 1], y_tr[idx:idx + 1], loss_fn, args.lr, 0.0)
            sec_t = time.perf_counter() - t0
            _, err_t = evaluate(net, x_te, y_te, loss_fn, 1000)
            xs = np.concatenate([x_tr[order].reshape(n_tr, -1).numpy(), x_te.reshape(n_te, -1).numpy()])
            ss = np.concatenate([supervisory(y_tr[order].numpy(), classes), s_te])
            t0 = time.perf_counter()
            res = sn.run(xs, ss, eta)
            sec_s = time.perf_counter() - t0
            timing = binary_timing()
            prof = profile_summary(sn.network) if args.profile else None
            pred = res["output"].argmax(1)
            corr = {}
            spiking_weights = sn.weights()
            for li, ((w_s, r_s), (w_r, r_r)) in enumerate(zip(spiking_weights, synapse_values(net, plain))):
                name = plain["layers"][li]["name"]
                corr[f"W {name}"] = float(np.corrcoef(w_s, w_r)[0, 1])
                corr[f"R {name}"] = float(np.corrcoef(r_s, r_r)[0, 1])
            row = {"epoch": epoch + 1, "test_error_spiking": float((pred[n_tr:] != y_te.numpy()).mean()),
                   "train_error_spiking": float((pred[:n_tr] != y_tr[order].numpy()).mean()),
                   "test_error_rate": err_t, "weight_correlation": corr, "seconds_spiking": sec_s,
                   "seconds_rate_torch": sec_t, "seconds_per_example_spiking": sec_s / (n_tr + n_te), **timing}
            if prof:
                row["profile"] = prof
            rows.append(row)
            _save(ck_path, {"settings": settings, "rows": rows, "test_error_initial": err0, "net": net.state_dict(),
                            "spiking_weights": spiking_weights})
            print(f"{tag} epoch {epoch + 1}: test error spiking {100 * row['test_error_spiking']:.2f}% rate "
                  f"{100 * err_t:.2f}% | corr " + " ".join(f"{k} {v:.3f}" for k, v in corr.items()) +
                  f" | spiking {sec_s:.1f} s ({1000 * sec_s / (n_tr + n_te):.0f} ms/example, {args.target})",
                  flush=True)
            if prof:
                print_profile(prof)
    _write_learn(settings, err0, rows, tag)


def _write_learn(settings, err0, rows, tag):
    _write_json(Path(out_root) / f"learn_{tag}.json", dict(settings, test_error_initial=err0, epochs=rows))


def learning_table(spk, rate):
    """Markdown: per rule and seed, the test error after the last epoch of the spiking network, the PyTorch
    engine and the Brian2 rate network (where a summary of that seed is given), the gap spiking − rate, the same
    gap on the mean of the last 3 epochs (a single epoch's test error moves by a few points at batch 1) and the
    weights' correlation with the rate network's; then the mean ± sd over seeds per rule."""
    def err(r):
        return 100 * r["epochs"][-1]["test_error_spiking"], 100 * r["epochs"][-1]["test_error_rate"]

    def gap3(r):
        last = r["epochs"][-3:]
        return 100 * np.mean([e["test_error_spiking"] - e["test_error_rate"] for e in last])

    lines = ["| rule | seed | epochs | spiking | PyTorch engine | Brian2 rate | spiking − rate | "
             "spiking − rate, last 3 epochs | corr. W, R (min over layers) |", "|---|---|---|---|---|---|---|---|---|"]
    by_rule = {}
    for r in sorted(spk, key=lambda r: (r["rule"] != "urfb", r["seed"])):
        e_s, e_t = err(r)
        b = [q for q in rate if q["rule"] == r["rule"] and q["seed"] == r["seed"] and
             len(q["epochs"]) >= len(r["epochs"])]
        e_b = f"{100 * b[0]['epochs'][len(r['epochs']) - 1]['test_error_brian2']:.1f}%" if b else "–"
        c = r["epochs"][-1]["weight_correlation"]
        cw = min(v for k, v in c.items() if k.startswith("W"))
        cr = min(v for k, v in c.items() if k.startswith("R"))
        lines.append(f"| {r['rule'].upper()} | {r['seed']} | {len(r['epochs'])} | {e_s:.1f}% | {e_t:.1f}% | {e_b} | "
                     f"{e_s - e_t:+.1f} | {gap3(r):+.1f} | {cw:.3f}, {cr:.3f} |")
        by_rule.setdefault((r["rule"], len(r["epochs"])), []).append((e_s, e_t, gap3(r)))
    for (rule, n_ep), v in by_rule.items():
        if len(v) < 2:  # one seed: its row says it all
            continue
        a = np.array(v)
        sd = a.std(0, ddof=1)
        lines.append(f"| {rule.upper()} mean ± sd | {len(a)} seeds | {n_ep} | {a[:, 0].mean():.1f} ± {sd[0]:.1f}% | "
                     f"{a[:, 1].mean():.1f} ± {sd[1]:.1f}% | | {(a[:, 0] - a[:, 1]).mean():+.1f} | "
                     f"{a[:, 2].mean():+.1f} | |")
    return "\n".join(lines)


def curves():
    from sims.figures import colour

    runs = [json.load(open(f)) for f in args.inputs]
    spk = [r for r in runs if "test_error_spiking" in r["epochs"][0]]
    rate = [r for r in runs if "test_error_brian2" in r["epochs"][0]]
    kinds = {(r["net"], r["N"], r["phase"], r.get("dale", False)) for r in spk}
    if len(kinds) > 1:
        cli.fail(f"--inputs mix spiking runs of different networks, N, phases or Dale's law ({sorted(kinds)}); "
                 "draw each experiment with its own files")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for rule in ("urfb", "frfb"):
        c = colour(rule)
        for k, r in enumerate(sorted([r for r in spk if r["rule"] == rule], key=lambda r: r["seed"])):
            ep = [0] + [e["epoch"] for e in r["epochs"]]
            ax.plot(ep, [100 * r["test_error_initial"]] + [100 * e["test_error_rate"] for e in r["epochs"]],
                    color=c, lw=2.5, alpha=0.4, label=f"{rule}: PyTorch engine (= rate network)" if k == 0 else None)
            ax.plot(ep, [100 * r["test_error_initial"]] + [100 * e["test_error_spiking"] for e in r["epochs"]],
                    color=c, ls="--", marker="o", ms=4, label=f"{rule}: spiking network" if k == 0 else None)
        for k, r in enumerate([r for r in rate if r["rule"] == rule]):
            ax.plot([e["epoch"] for e in r["epochs"]], [100 * e["test_error_brian2"] for e in r["epochs"]],
                    color=c, ls=":", marker="x", label=f"{rule}: Brian2 rate network" if k == 0 else None)
    s0 = spk[0]
    law = ", Dale's law" if s0.get("dale") else ""
    ax.axhline(90, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("digits test error (%)")
    ax.set_title(f"Fig. 15 in spikes: learning curves, '{s0['net']}', {s0['train']} training digits, batch 1, "
                 f"η = {s0['lr']}\nspiking N = {s0['N']}{law}, "
                 f"phase {1000 * s0['phase']:.0f} ms, seeds "
                 f"{sorted({r['seed'] for r in spk})} (one line per seed); {s0['test']} test digits; chance 90%",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    print(learning_table(spk, rate))
    path = os.path.join(fig_root, f"fig15_spiking_network_learning{figure_tag(s0['net'], s0.get('dale'))}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", path)


# ---------------------------------------------------------------------------------------------- raster
def raster():
    ds, classes, net, mu, engine, loss_fn = setup()
    x_tr = torch.as_tensor(ds.x_train, dtype=torch.float64)
    y_tr = torch.as_tensor(ds.y_train, dtype=torch.long)
    engine_epoch(net, engine, loss_fn, x_tr, y_tr, 0)
    plain = plain_network(net)
    k = 4
    x = ds.x_test[k:k + 1].reshape(1, -1).astype(np.float64)
    s = supervisory(ds.y_test[k:k + 1], classes)
    b2.prefs.codegen.target = "numpy"
    sn = SpikingLearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"],
                                n_examples=1, N=Ns[0], phase=phases[0], settle=args.settle, seed=args.seed,
                                record_spikes=True, record_weights=False, name="raster", dale=args.dale,
                                **circuit(mu))
    sn.run(x, s, args.lr)
    ln = LearningNetwork(plain["n_in"], plain["layers"], plain["events"], learn_R=plain["learn_R"], n_examples=1,
                         record_activity=True, record_weights=False, name="rate", **circuit(mu))
    ln.run(x, s, args.lr)
    act = ln.activity()
    spikes = sn.spikes()
    groups = list(spikes)
    T = sn.phase
    fig, axes = plt.subplots(len(groups), 2, figsize=(14, 1.2 * len(groups) + 2.5), sharex="col",
                             gridspec_kw={"width_ratios": [3, 1]})
    names = [f"{kd} {plain['layers'][ly]['name'] if ly is not None else ''}".strip() +
             (f" c{c}" if kd.startswith("error") else "") for kd, ly, c in sn.phases]
    for ax, ax2, gname in zip(axes[:, 0], axes[:, 1], groups):
        i, t = spikes[gname]
        ng = sn.neuron_groups[gname]
        ax.plot(1000 * t, i, "|", ms=1.5, color="k")
        ax.set_ylim(ng.N, 0)
        ax.set_ylabel(gname.replace("raster_", ""), rotation=0, ha="right", va="center", fontsize=8)
        for p_ in range(len(sn.phases) + 1):
            ax.axvline(1000 * p_ * T, color="0.6", lw=0.5)
        key = gname.replace("raster_", "")
        v = act.get((key, "x"))
        if v is None and key.endswith("_uv"):
            v = np.vstack([act[(key[:-3] + "_u", "u")], act[(key[:-3] + "_v", "v")]])
        if v is None and key == "detectors":
            v = act[("output", "d")]
        if v is not None:
            lim = max(1.0, float(np.abs(v).max()))
            ax2.imshow(v, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                       extent=[-0.5, v.shape[1] - 0.5, v.shape[0] - 0.5, -0.5])
        ax2.set_yticks([])
    axes[-1, 0].set_xticks([1000 * (p_ + 0.5) * T for p_ in range(len(sn.phases))])
    axes[-1, 0].set_xticklabels(names, rotation=50, ha="right", fontsize=7)
    axes[-1, 0].set_xlabel("time (ms); one phase per slot (error cycles: a δ and a t phase)")
    axes[-1, 1].set_xticks(range(ln.n_slots))
    axes[-1, 1].set_xticklabels([f"{kd} {plain['layers'][ly]['name'] if ly is not None else ''}" for kd, ly, _ in
                                 ln.slots], rotation=60, ha="right", fontsize=6)
    axes[-1, 1].set_xlabel("rate network: slot (1 ms each)")
    axes[0, 0].set_title("spiking network: every neuron's spikes (rows: neurons, ON then OFF per unit)", fontsize=9)
    axes[0, 1].set_title("rate network, same example and weights", fontsize=9)
    fig.suptitle(f"Fig. 15 in spikes: test digit {k} (label {int(ds.y_test[k])}) after one PyTorch epoch of "
                 f"{args.rule}, '{args.net}', N = {Ns[0]}, phase {1000 * T:.0f} ms, seed {args.seed}", fontsize=10)
    fig.tight_layout()
    path = os.path.join(fig_root, f"fig15_spiking_network_raster{figure_tag(args.net, args.dale)}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print("wrote", path)


start = time.time()
{"agree": agree, "learn": learn, "curves": curves, "raster": raster}[args.mode]()
print(f"total time {time.time() - start:.1f} s")
