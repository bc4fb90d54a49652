"""Spiking output error circuit and shutdown gate (Amit 2019, Appendix 1, Fig. 13-15; ``circuits.spiking``).

Runs the LIF step-detector circuits with spiking input populations on random draws and on the boundary grid
of ``circuits.check``, for several seeds and Brian2 targets, and prints their agreement with eq. 6 (output
circuit) and eq. 3 (shutdown gate) as mean ± s.d. over seeds; optionally times one simulation per target
(first run, compilation included, and a repeated run).

Figures written to --out (default runs/spiking_circuit/; docs/figures with --publish):
  fig14_spiking_calibration.png     a detector population's measured f(x), and the open-loop δ̂(H) vs σ_out(H)
  fig14_spiking_trajectories.png    spike rasters and δ̂(t), t̂(t) in the four regimes (Fig. 14's circuit)
  fig14_spiking_membrane.png        membrane potential and input of one detector neuron
  fig14_spiking_regime_map.png      readouts over h for s = ±1 (mean ± s.d. over the seeds) with eq. 6
  fig15_spiking_gate.png            the spiking shutdown gate's δ̃ over x (mean ± s.d. over the seeds) with eq. 3

    python sims/spiking_circuit.py                         # numpy, 5 seeds, 10,000 draws
    python sims/spiking_circuit.py --target numpy cython cpp_standalone --timing
    python sims/spiking_circuit.py --publish               # the published figures
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from circuits import spiking, transfer  # noqa: E402
from circuits.check import REGIMES, boundary_grid, random_draws, regime  # noqa: E402
from circuits.output_error import rule  # noqa: E402
from circuits.shutdown import rule as gate_rule  # noqa: E402
from sims import cli  # noqa: E402

VARIANTS = {"regular": dict(inputs="regular", dale=False), "regular, Dale": dict(inputs="regular", dale=True),
            "poisson": dict(inputs="poisson", dale=False), "constant": dict(inputs="constant", dale=False)}


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--M", type=float, default=2.0, help="bound on |h| (the circuit's range)")
    p.add_argument("--S", type=float, default=1.0, help="learning threshold (§3: 1)")
    p.add_argument("--mu", type=float, default=1 / 9, help="off-class factor μ (= 1/(C-1), C = 10)")
    p.add_argument("--eps", type=float, default=0.2, help="oscillation overshoot ε")
    p.add_argument("--K", type=float, default=1.0, help="bound on |δ| of the shutdown gate")
    p.add_argument("--target", nargs="+", default=["numpy"], choices=spiking.TARGETS,
                   help="Brian2 targets to run the agreement check on")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds of the spiking networks")
    p.add_argument("--draws", type=int, default=10_000, help="random draws (h, s) and (x, δ) per seed")
    p.add_argument("--variants", nargs="+", default=["regular", "regular, Dale", "poisson"], choices=list(VARIANTS),
                   help="input/Dale variants checked on the first target (the others run 'regular')")
    p.add_argument("--cycles", type=int, default=8, help="cycles of 2τ_s per run (readout window: the last 3)")
    p.add_argument("--n-h", type=int, default=50, help="h values per sign of s for the regime map")
    p.add_argument("--rtol", type=float, default=0.1, help="eq. 6 tolerance, fraction of the update value")
    p.add_argument("--atol-gate", type=float, default=0.05, help="eq. 3 tolerance, fraction of K")
    p.add_argument("--timing", action="store_true",
                   help="time one simulation per target: first run (fresh caches, compilation included) and repeat")
    p.add_argument("--timing-circuits", type=int, default=1000, help="circuits in the timed simulation")
    cli.add_output(p, "spiking_circuit")
    a = p.parse_args(argv)
    cli.check_circuit(M=a.M, S=a.S, mu=a.mu, eps=a.eps, K=a.K)  # before any simulation
    for name in ("draws", "cycles", "n_h", "timing_circuits"):
        if getattr(a, name) < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(a, name)}")
    if a.cycles < 3:
        raise cli.UsageError(f"--cycles must be at least 3 (the readout window), got {a.cycles}")
    if len(set(a.seeds)) < len(a.seeds):
        raise cli.UsageError("--seeds must be distinct")
    if not a.rtol > 0 or not a.atol_gate > 0:
        raise cli.UsageError("--rtol and --atol-gate must be positive")
    a.out = str(cli.figure_dir(a))
    return a


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ms(v):
    """'mean ± s.d.' of a list of numbers (s.d. over seeds, ddof=1; 0 for one seed)."""
    v = np.asarray(v, dtype=np.float64)
    return f"{v.mean():6.2f} ± {v.std(ddof=1) if v.size > 1 else 0.0:4.2f}"


def circuit_agreement(a, target, variant, seed, h, s):
    P = dict(M=a.M, S=a.S, mu=a.mu, eps=a.eps)
    tr = spiking.trajectory(h, s, **P, cycles=a.cycles, window=3, seed=seed, target=target,
                            on_range="error", **VARIANTS[variant])
    reg = regime(h, s, S=a.S)
    eq6 = rule(h, s, mu=a.mu, S=a.S, boundary="closed")
    tol = a.rtol * np.where(s > 0, 1.0, a.mu)
    out = {}
    for r in ("t-gate", "veto"):
        ok = np.abs(tr.readout(r) - eq6) <= tol
        out[r] = {name: 100.0 * ok[reg == name].mean() for name in REGIMES}
        out[r]["all"] = 100.0 * ok.mean()
        out[r + " ok"] = ok
    return out


def gate_draws(n, K, seed):
    rng = np.random.default_rng(1000 + seed)
    x = np.clip(rng.uniform(-1.3, 1.3, n), -1, 1)
    d = rng.uniform(-K, K, n) * (1 - 1e-9)
    return x, d


def gate_edges(K):
    x = np.array([1.0, -1.0, 1 - 1e-9, -(1 - 1e-9)])
    d = np.array([K, -K]) * (1 - 1e-9)
    return np.repeat(x, 2), np.tile(d, 4)


def gate_agreement(a, target, inputs, seed, x, d):
    g = spiking.gate_simulate(x, d, K=a.K, seed=seed, target=target, inputs=inputs)
    err = np.abs(g.delta_tilde - gate_rule(x, d))
    ok = err <= a.atol_gate * a.K
    sat = np.abs(x) >= 1
    band = (np.abs(x) > 0.9) & ~sat
    def pct(m):
        return 100.0 * ok[m].mean() if m.any() else float("nan")

    return {"saturated": pct(sat), "open": pct(~sat), "open |x|≤0.9": pct(~sat & ~band), "all": pct(sat | ~sat),
            "ok": ok,
            "worst |x| of a miss": float(np.abs(x[~ok]).min()) if (~ok).any() else float("nan")}


def agreement_section(a):
    hd, sd = random_draws(a.draws, M=a.M, seed=0)
    hb, sb = boundary_grid(M=a.M, S=a.S)
    print(f"\n== output circuit vs eq. 6: {a.draws} random draws (h uniform on (-M, M), s = ±1) + "
          f"{hb.size} boundary-grid inputs; seeds {a.seeds}; agreement in % (mean ± s.d. over seeds), "
          f"tolerance {a.rtol} × update value; readout window the last 3 of {a.cycles} cycles")
    print(f"{'target':<15} {'variant':<14} {'readout':<7} " + " ".join(f"{n:>15}" for n in (*REGIMES, "all draws"))
          + f" {'boundary grid':>15} {'s/run':>6}")
    rows = []
    for ti, target in enumerate(a.target):
        for variant in (a.variants if ti == 0 else ["regular"]):
            res, bres, secs = [], [], []
            for seed in a.seeds:
                t0 = time.time()
                res.append(circuit_agreement(a, target, variant, seed, hd, sd))
                secs.append(time.time() - t0)
                bres.append(circuit_agreement(a, target, variant, seed, hb, sb))
            for r in ("t-gate", "veto"):
                print(f"{target:<15} {variant:<14} {r:<7} " + " ".join(
                    f"{ms([x[r][n] for x in res]):>15}" for n in (*REGIMES, "all"))
                      + f" {ms([x[r]['all'] for x in bres]):>15} {np.mean(secs):>6.1f}")
                rows.append((target, variant, r, res, bres))
            misses = sorted({(float(h), float(s)) for x in bres for h, s, ok in zip(hb, sb, x["t-gate ok"]) if not ok})
            if misses:
                print(f"{'':<15} {'':<14} t-gate misses on the boundary grid (h, s), any seed: "
                      + ", ".join(f"({h:+.10g}, {s:+.0f})" for h, s in misses))
    xg, dg = gate_draws(a.draws, a.K, 0)
    xe, de = gate_edges(a.K)
    print(f"\n== shutdown gate vs eq. 3: {a.draws} draws (x = clip(U(-1.3, 1.3), -1, 1), δ uniform on (-K, K)) "
          f"+ {xe.size} edge points (x = ±1, ±(1 - 1e-9); δ = ±(K - 1e-9)); tolerance {a.atol_gate} K; "
          f"% (mean ± s.d. over seeds)")
    print(f"{'target':<15} {'inputs':<8} " + " ".join(f"{n:>15}" for n in ("saturated", "open", "open |x|≤0.9",
                                                                            "all draws", "edge points"))
          + f" {'min |x| miss':>12} {'s/run':>6}")
    for ti, target in enumerate(a.target):
        for inputs in (("regular", "poisson") if ti == 0 else ("regular",)):
            res, eres, secs = [], [], []
            for seed in a.seeds:
                t0 = time.time()
                res.append(gate_agreement(a, target, inputs, seed, *gate_draws(a.draws, a.K, seed)))
                secs.append(time.time() - t0)
                eres.append(gate_agreement(a, target, inputs, seed, xe, de))
            print(f"{target:<15} {inputs:<8} " + " ".join(f"{ms([x[n] for x in res]):>15}" for n in
                                                           ("saturated", "open", "open |x|≤0.9", "all"))
                  + f" {ms([x['all'] for x in eres]):>15} {min(x['worst |x| of a miss'] for x in res):>12.3f}"
                  + f" {np.mean(secs):>6.1f}")
    return rows


def timing_section(a):
    """One simulation of ``--timing-circuits`` circuits × ``--cycles`` per target: first run with fresh caches
    (the cython cache and the standalone project in new temporary folders, so compilation is included, and a
    new calibration) and a repeated run in the same process."""
    import brian2 as b2

    h, s = random_draws(a.timing_circuits, M=a.M, seed=0)
    P = dict(M=a.M, S=a.S, mu=a.mu, eps=a.eps)
    print(f"\n== time of one simulation of {a.timing_circuits} output circuits × {a.cycles} cycles "
          f"({a.timing_circuits * 6 * 20 + a.timing_circuits * 4 * 20} neurons, {a.cycles * 50} ms) and of "
          f"{a.timing_circuits} shutdown gates; seconds")
    print(f"{'target':<15} {'circuit first':>13} {'circuit repeat':>14} {'gate first':>10} {'gate repeat':>11}")
    for target in a.target:
        tmp = tempfile.mkdtemp(prefix="spiking-timing-")
        old_cache = b2.prefs.codegen.runtime.cython.cache_dir
        b2.prefs.codegen.runtime.cython.cache_dir = os.path.join(tmp, "cython")
        spiking.calibrate.cache_clear()
        try:
            times = []
            for fn in (lambda d: spiking.simulate(h, s, **P, cycles=a.cycles, window=3, target=target, seed=0,
                                                  directory=d + "-circuit"),
                       lambda d: spiking.gate_simulate(np.clip(h / a.M * 1.3, -1, 1), s * 0.5 * a.K, K=a.K,
                                                       target=target, seed=0, directory=d + "-gate")):
                for rep in range(2):
                    t0 = time.time()
                    fn(os.path.join(tmp, "standalone"))
                    times.append(time.time() - t0)
            print(f"{target:<15} {times[0]:>13.1f} {times[1]:>14.1f} {times[2]:>10.1f} {times[3]:>11.1f}")
        finally:
            b2.prefs.codegen.runtime.cython.cache_dir = old_cache
            spiking.calibrate.cache_clear()
            shutil.rmtree(tmp, ignore_errors=True)


def plot_calibration(path, cal, H, d_open, *, M, S, mu, eps):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].plot(cal.x, cal.f, "o-", ms=3, label="measured (PopulationRateMonitor)")
    axes[0].axvline(cal.x50, color="C3", lw=0.8, label=f"x₅₀ = {cal.x50:.4f}")
    axes[0].set_xlabel("drive x = d (X − θ) (units of X)")
    axes[0].set_ylabel("rate / r_sat")
    axes[0].set_title(f"one step-detector population (N = 20), r_sat = {cal.r_sat:.1f} Hz, seed 0", fontsize=9)
    axes[0].legend(fontsize=8)
    Hf = np.linspace(H.min(), H.max(), 2001)
    axes[1].plot(Hf, transfer.sigma_out(Hf, M=M, S=S, mu=mu, eps=eps), color="k", lw=2.5, alpha=0.3,
                 label="σ_out (circuits.transfer)")
    axes[1].plot(H, d_open, ".", ms=4, label="spiking δ̂, open loop (t̂ = 0)")
    axes[1].set_xlabel("H")
    axes[1].set_ylabel("δ")
    axes[1].set_title("Fig. 13: calibrated δ unit of 4 step detectors", fontsize=9)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


NAMES = ["on-update (s=+1, h=0)", "on-correct (s=+1, h=1.5)", "off-update (s=−1, h=0)",
         "off-correct (s=−1, h=−1.5)"]
LABELS = ["δ:<−2M−S", "δ:<−M", "δ:>M", "δ:>2M+S", "t:<−μ−mε", "t:>1+mε"]


def plot_trajectories(path, tr, N, title):
    plt = _plt()
    fig, axes = plt.subplots(3, 4, figsize=(15, 6.6), sharex=True)
    t_ms = 1e3 * tr.times
    for j in range(4):
        axes[0, j].plot(t_ms, tr.delta[:, j], color="C0", lw=0.8, label="δ̂ (rate code)")
        axes[1, j].plot(t_ms, tr.t_c[:, j], color="C3", lw=0.8, label="t̂ (rate code)")
        for ax in axes[:2, j]:
            ax.axhline(0, color="0.6", lw=0.5)
            ax.axvspan(t_ms[-1] - 150, t_ms[-1], color="0.9", zorder=0)
        axes[0, j].set_title(NAMES[j], fontsize=9)
        sp = tr.spikes
        m = sp["circuit"] == j
        axes[2, j].scatter(1e3 * sp["time"][m], sp["detector"][m] + sp["neuron"][m] / N, s=0.3, c="k")
        axes[2, j].set_yticks(np.arange(6) + 0.5)
        axes[2, j].set_yticklabels(LABELS, fontsize=6)
        axes[2, j].set_ylim(0, 6)
        axes[2, j].set_xlabel("time (ms)")
    axes[0, 0].set_ylabel("δ̂")
    axes[1, 0].set_ylabel("t̂")
    axes[2, 0].set_ylabel("detector population")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    axes[1, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_membrane(path, tr, title):
    plt = _plt()
    mem = tr.membrane
    t_ms = 1e3 * mem["times"]
    fig, axes = plt.subplots(2, 1, figsize=(11, 4.8), sharex=True)
    axes[0].plot(t_ms, mem["v"][:, 0], color="C0", lw=0.7, label="membrane potential v")
    axes[0].axhline(1.0, color="C3", lw=0.8, ls="--", label="threshold v = 1 (reset to 0)")
    sp = tr.spikes
    m = (sp["circuit"] == 1) & (sp["detector"] == 3) & (sp["neuron"] == 0)
    axes[0].plot(1e3 * sp["time"][m], np.full(m.sum(), 2.45), "|", color="k", ms=8, label="spikes")
    axes[0].set_ylabel("v (dimensionless)")
    axes[0].set_ylim(-0.05, 2.6)
    axes[0].legend(fontsize=7, loc="lower right", ncol=3)
    axes[1].plot(t_ms, mem["I"][:, 0], color="C2", lw=0.7, label="input I = 1 + clip(g (x_in − θ' + ξ), −1, I_max − 1)")
    axes[1].axhline(1.0, color="C3", lw=0.8, ls="--", label="I = 1 (the potential's fixed point at threshold)")
    axes[1].set_ylabel("I (dimensionless)")
    axes[1].set_xlabel("time (ms)")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_regime_map(path, a, target):
    plt = _plt()
    hh = np.linspace(-a.M, a.M, a.n_h + 2)[1:-1]
    h, s = np.concatenate([hh, hh]), np.concatenate([np.ones(a.n_h), -np.ones(a.n_h)])
    P = dict(M=a.M, S=a.S, mu=a.mu, eps=a.eps)
    variants = ["regular", "regular, Dale", "poisson"]
    fig, axes = plt.subplots(len(variants), 2, figsize=(12, 2.9 * len(variants)), squeeze=False)
    for k, variant in enumerate(variants):
        vals = {r: [] for r in ("t-gate", "veto")}
        for seed in a.seeds:
            tr = spiking.trajectory(h, s, **P, cycles=a.cycles, window=3, seed=seed, target=target,
                                    **VARIANTS[variant])
            for r in vals:
                vals[r].append(tr.readout(r))
        for j, sign in enumerate((1.0, -1.0)):
            ax = axes[k, j]
            m = s == sign
            ax.plot(hh, rule(hh, sign, mu=a.mu, S=a.S, boundary="closed"), color="k", lw=3, alpha=0.25, label="eq. 6")
            for r, c in (("t-gate", "C0"), ("veto", "C1")):
                v = np.array(vals[r])[:, m]
                ax.plot(hh, v.mean(0), color=c, lw=1.0, label=f"{r} readout (mean)")
                ax.fill_between(hh, v.min(0), v.max(0), color=c, alpha=0.3, lw=0,
                                label=f"{r}: min–max over seeds")
            for x in (a.S, -a.S):
                ax.axvline(x, color="0.7", lw=0.5, ls=":")
            ax.set_xlim(-a.M, a.M)
            ax.set_xlabel("h (feed-forward input)")
            ax.set_ylabel("readout δ")
            ax.set_title(f"{variant} inputs: s = {sign:+.0f}", fontsize=9)
        axes[k, 0].legend(fontsize=6)
    fig.suptitle(f"Fig. 14 circuit with spiking neurons vs eq. 6 ({target}), {len(a.seeds)} seeds {a.seeds}, {a.n_h} h per sign, "
                 f"{a.cycles} cycles, margin 0.5", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gate(path, a, target):
    plt = _plt()
    x = np.linspace(-1, 1, 81)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for k, inputs in enumerate(("regular", "poisson")):
        ax = axes[k]
        for dval, c in ((0.5 * a.K, "C0"), (-0.8 * a.K, "C3")):
            d = np.full(x.size, dval)
            v = np.array([spiking.gate_simulate(x, d, K=a.K, seed=seed, target=target, inputs=inputs).delta_tilde
                          for seed in a.seeds])
            ax.plot(x, gate_rule(x, d), color=c, lw=3, alpha=0.25, label=f"eq. 3, δ = {dval:+.1f}")
            ax.plot(x, v.mean(0), "o-", color=c, ms=2.5, lw=0.8, label=f"spiking δ̃ (mean), δ = {dval:+.1f}")
            ax.fill_between(x, v.min(0), v.max(0), color=c, alpha=0.3, lw=0, label="min–max over seeds")
        ax.axvline(0.95, color="0.6", lw=0.5, ls=":")
        ax.axvline(-0.95, color="0.6", lw=0.5, ls=":", label="control thresholds ±(1 − x_band)")
        ax.set_xlabel("feed-forward activity x")
        ax.set_title(f"{inputs} input populations (N_in = 20)", fontsize=9)
    axes[0].set_ylabel("gated feedback δ̃")
    axes[0].legend(fontsize=6, loc="center left")
    fig.suptitle(f"Fig. 15: spiking shutdown gate vs eq. 3 ({target}), K = {a.K:g}, {len(a.seeds)} seeds {a.seeds}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figures_section(a):
    target = a.target[0]
    M, S, mu, eps = a.M, a.S, a.mu, a.eps
    params = spiking.DetectorParams()
    cal = spiking.calibrate(params, target=target)
    H = np.linspace(-2 * M - S - 1.5, 2 * M + S + 1.5, 121)
    d_open = spiking.transfer_curve(H, M=M, S=S, mu=mu, eps=eps, params=params, target=target)
    plot_calibration(os.path.join(a.out, "fig14_spiking_calibration.png"), cal, H, d_open, M=M, S=S, mu=mu, eps=eps)
    far = np.min(np.abs(H[:, None] - np.array([-2 * M - S, -M, M, 2 * M + S])[None]), 1) > 0.1
    err = np.abs(d_open - transfer.sigma_out(H, M=M, S=S, mu=mu, eps=eps))[far]
    print(f"calibration ({target}): r_sat = {cal.r_sat:.2f} Hz, x50 = {cal.x50:.4f}; open-loop |δ̂ - σ_out| "
          f"(|H - breakpoint| > 0.1, {far.sum()} values): max {err.max():.4f}, mean {err.mean():.4f}")
    hr = np.array([0.0, (S + M) / 2, 0.0, -(S + M) / 2])
    sr = np.array([1.0, 1.0, -1.0, -1.0])
    neuron = (1 * 6 + 3) * params.N  # circuit 1 (on-correct), detector δ:>2M+S (bursts), neuron 0
    tr = spiking.trajectory(hr, sr, M=M, S=S, mu=mu, eps=eps, cycles=a.cycles, window=3, seed=a.seeds[0],
                            target=target, record_spikes=True, record_neurons=[neuron])
    plot_trajectories(os.path.join(a.out, "fig14_spiking_trajectories.png"), tr, params.N,
                      f"Fig. 14 circuit with spiking neurons ({target}): regular input populations, N = {params.N}, "
                      f"τ_s = {1e3 * params.tau_s:g} ms, margin 0.5, seed {a.seeds[0]}; grey: readout window")
    plot_membrane(os.path.join(a.out, "fig14_spiking_membrane.png"), tr,
                  f"Fig. 14 circuit, one detector neuron (population δ:>2M+S, neuron 0) of the on-correct circuit (s = +1, h = "
                  f"{hr[1]:g}), {target}, seed {a.seeds[0]}")
    plot_regime_map(os.path.join(a.out, "fig14_spiking_regime_map.png"), a, target)
    plot_gate(os.path.join(a.out, "fig15_spiking_gate.png"), a, target)


def main(argv=None):
    a = parse_args(argv)
    t0 = time.time()
    print(f"M={a.M:g} S={a.S:g} mu={a.mu:.4g} eps={a.eps:g} K={a.K:g}; targets {a.target}; seeds {a.seeds}")
    figures_section(a)
    agreement_section(a)
    if a.timing:
        timing_section(a)
    print(f"\ntotal {time.time() - t0:.0f} s; figures in {a.out}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
