"""Continuous-time version of the output error circuit (Amit 2019, Appendix 1, Fig. 13, 14).

The paper's circuit is a discrete alternating map (δ → t → δ) whose correct regimes oscillate 1+ε ↔ 0.
This script runs ``circuits.continuous`` (leaky rate units, optionally with a relay-chain delay on δ → t) on a
grid of feed-forward inputs h for s = ±1, and reports its agreement with eq. 6 per regime and readout. The
spiking version is sims/spiking_circuit.py.

Figures written to --out (default runs/circuit_dynamics/; docs/figures with --publish):
  continuous_trajectories.png  δ(t), t_c(t) in the four regimes, without and with delay
  continuous_regime_map.png    readouts and mean |t_c| over h for s = ±1, with eq. 6
  continuous_gate.png          the leaky shutdown gate (Fig. 15): δ̃, u over time for a saturated unit
A table of agreement per regime is printed (the one in docs/circuit_dynamics.md), and one for the leaky
shutdown gate against eq. 3 (settled value and transient leak).

    python sims/circuit_dynamics.py
    python sims/circuit_dynamics.py --publish     # the published figures
"""
from __future__ import annotations

import os
import time

import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from circuits import continuous  # noqa: E402
from circuits.check import REGIMES, boundary_grid, regime  # noqa: E402
from circuits.output_error import rule  # noqa: E402
from sims import cli  # noqa: E402


def parse_args():
    p = cli.parser(__doc__)
    p.add_argument("--M", type=float, default=2.0, help="bound on |h| (the circuit's range)")
    p.add_argument("--S", type=float, default=1.0, help="learning threshold (§3: 1)")
    p.add_argument("--mu", type=float, default=1 / 9, help="off-class factor μ (= 1/(C-1), C = 10)")
    p.add_argument("--eps", type=float, default=0.2, help="oscillation overshoot ε")
    p.add_argument("--n-h", type=int, default=100, help="h values per sign of s (continuous)")
    p.add_argument("--tau", type=float, default=10e-3, help="time constant of the leaky units (s)")
    p.add_argument("--delays", type=float, nargs="+", default=[0.0, 10e-3, 20e-3],
                   help="δ → t delays of the continuous circuit (s)")
    p.add_argument("--rtol", type=float, default=0.1, help="agreement tolerance, fraction of the update value")
    p.add_argument("--K", type=float, default=1.0, help="bound on |δ| of the shutdown gate")
    p.add_argument("--seed", type=int, default=0, help="seed of the shutdown gate's random draws")
    cli.add_output(p, "circuit_dynamics")
    a = p.parse_args()
    cli.check_circuit(M=a.M, S=a.S, mu=a.mu, eps=a.eps, K=a.K)  # before any simulation
    for name in ("n_h",):
        if getattr(a, name) < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(a, name)}")
    if not a.tau > 0 or not a.rtol > 0 or min(a.delays) < 0:
        raise cli.UsageError("--tau and --rtol must be positive and --delays ≥ 0 (seconds)")
    a.out = str(cli.figure_dir(a))
    return a


def grid(n, M):
    """n values of h on the open interval (-M, M), for s = +1 and s = -1."""
    h = np.linspace(-M, M, n + 2)[1:-1]
    return np.concatenate([h, h]), np.concatenate([np.ones(n), -np.ones(n)])


def representative(M, S):
    """One input per regime: on-update, on-correct, off-update, off-correct."""
    h = np.array([0.0, (S + M) / 2, 0.0, -(S + M) / 2])
    s = np.array([1.0, 1.0, -1.0, -1.0])
    return h, s


def print_table(rows):
    print(f"{'model':<11} {'delay ms':>8} {'readout':<12} {'regime':<12} {'n':>4} {'agree':>6} {'%':>6} "
          f"{'mean value':>10} {'eq. 6':>7} {'mean |t|':>8}")
    for model, delay, r, name, n, a, mean, eq6, tmean in rows:
        print(f"{model:<11} {1e3 * delay:>8.0f} {r:<12} {name:<12} {n:>4d} {a:>6d} "
              f"{(100 * a / n if n else float('nan')):>6.1f} "
              f"{mean:>10.3f} {eq6:>7.3f} {tmean:>8.3f}")


def rows_for(model, delay, traj, h, s, *, mu, S, rtol):
    reg = regime(h, s, S=S)
    n_window = max(1, int(round(traj.window * traj.samples_per_cycle)))
    tmean = np.abs(traj.t_c[-n_window:]).mean(0)
    eq6 = rule(h, s, mu=mu, S=S, boundary="closed")
    rows = []
    for r in ("veto", "window-mean", "t-gate"):
        v = traj.readout(r)
        agree = continuous.agreement_of(v, h, s, mu=mu, S=S, rtol=rtol)
        for name in REGIMES:
            m = reg == name
            n, a = agree[name]
            rows.append((model, delay, r, name, n, a, float(v[m].mean()), float(eq6[m].mean()),
                         float(tmean[m].mean())))
    return rows


def plot_trajectories(path, trajs, labels, *, title, N=None):
    spikes = N is not None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["on-update (s=+1, h=0)", "on-correct (s=+1, h=(S+M)/2)", "off-update (s=-1, h=0)",
             "off-correct (s=-1, h=-(S+M)/2)"]
    nrow = 3 if spikes else 2
    fig, axes = plt.subplots(nrow * len(trajs), 4, figsize=(15, 2.2 * nrow * len(trajs)), sharex=True,
                             squeeze=False)
    for k, (traj, label) in enumerate(zip(trajs, labels)):
        ms = 1e3 * traj.times
        for j in range(4):
            ax_d, ax_t = axes[nrow * k, j], axes[nrow * k + 1, j]
            ax_d.plot(ms, traj.delta[:, j], color="C0", lw=0.8)
            ax_d.axhline(0, color="0.6", lw=0.5)
            ax_t.plot(ms, traj.t_c[:, j], color="C3", lw=0.8)
            ax_t.axhline(0, color="0.6", lw=0.5)
            ax_d.set_title(f"{names[j]}\n{label}", fontsize=8)
            if j == 0:
                ax_d.set_ylabel("δ" if not spikes else "δ̂ (rate code)")
                ax_t.set_ylabel("t_c" if not spikes else "t̂ (rate code)")
            if spikes:
                ax_s = axes[nrow * k + 2, j]
                sp = traj.spikes
                m = sp["circuit"] == j
                ax_s.scatter(1e3 * sp["time"][m], sp["detector"][m] + (sp["neuron"][m] % N) / N, s=0.3, c="k")
                ax_s.set_yticks(np.arange(6) + 0.5)
                ax_s.set_yticklabels(["δ:<-2M-S", "δ:<-M", "δ:>M", "δ:>2M+S", "t:<-μ-mε", "t:>1+mε"], fontsize=6)
                ax_s.set_ylim(0, 6)
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_regime_map(path, h, s, results, *, mu, S, M, title):
    """results: list of (label, traj)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 3, figsize=(14, 2.8 * len(results)), squeeze=False)
    for k, (label, traj) in enumerate(results):
        n_window = max(1, int(round(traj.window * traj.samples_per_cycle)))
        tmean = np.abs(traj.t_c[-n_window:]).mean(0)
        for j, sign in enumerate((1.0, -1.0)):
            ax = axes[k, j]
            m = s == sign
            hh = h[m]
            ax.plot(hh, rule(hh, sign, mu=mu, S=S, boundary="closed"), color="k", lw=2.5, alpha=0.3, label="eq. 6")
            for r, st in (("veto", "-"), ("window-mean", "--"), ("t-gate", ":")):
                ax.plot(hh, traj.readout(r)[m], st, lw=1.2, label=r)
            for x in (S, -S):
                ax.axvline(x, color="0.7", lw=0.5)
            ax.set_title(f"{label}: s = {sign:+.0f}", fontsize=9)
            ax.set_xlabel("h")
            ax.set_ylabel("readout δ")
            ax.set_xlim(-M, M)
        axes[k, 0].legend(fontsize=7)
        ax = axes[k, 2]
        for sign, c in ((1.0, "C0"), (-1.0, "C3")):
            m = s == sign
            ax.plot(h[m], tmean[m], color=c, label=f"s = {sign:+.0f}")
        ax.set_title(f"{label}: window mean of |t_c|", fontsize=9)
        ax.set_xlabel("h")
        ax.axvline(S, color="0.7", lw=0.5)
        ax.axvline(-S, color="0.7", lw=0.5)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gate_section(a):
    """Leaky shutdown gate vs eq. 3: 100 units (50 with |x| < 1, 25 at x = 1, 25 at x = -1), |δ| < K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from circuits.shutdown import rule as gate_rule

    K, tau = a.K, a.tau
    rng = np.random.default_rng(a.seed)
    x = np.concatenate([rng.uniform(-0.99, 0.99, 50), np.ones(25), -np.ones(25)])
    delta = rng.uniform(-0.9 * K, 0.9 * K, 100)
    sat = np.abs(x) >= 1
    print("leaky shutdown gate (K = %g, tau = %g ms): settled δ̃ vs eq. 3, and the largest transient |δ̃| of "
          "saturated units (eq. 3: 0)" % (K, 1e3 * tau))
    print(f"{'tau_uv ms':>9} {'lead ms':>7} {'settled agree':>13} {'max |err|':>10} {'leak sat max':>12} "
          f"{'leak δ=0':>8}")
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.4), sharey=True)
    probe_x, probe_d = np.array([1.0, 1.0, 0.5]), np.array([0.5, 0.0, 0.5])
    for k, tau_uv in enumerate((tau, tau / 5, tau / 20)):
        for lead in (0.0, tau, 3 * tau):
            g = continuous.gate_trajectory(x, delta, K=K, tau=tau, tau_uv=tau_uv, lead=lead, dt=tau / 40)
            err = np.abs(g.final() - gate_rule(x, delta))
            g0 = continuous.gate_trajectory(np.array([1.0]), np.array([0.0]), K=K, tau=tau, tau_uv=tau_uv, lead=lead,
                                            dt=tau / 40)
            print(f"{1e3 * tau_uv:>9.2f} {1e3 * lead:>7.0f} {int((err <= 1e-3).sum()):>9d}/100 {err.max():>10.2e} "
                  f"{g.leak()[sat].max():>12.3f} {g0.leak()[0]:>8.3f}")
        gp = continuous.gate_trajectory(probe_x, probe_d, K=K, tau=tau, tau_uv=tau_uv, lead=tau, dt=tau / 40)
        ax = axes[k]
        for j, (lab, c) in enumerate((("x = 1, δ = 0.5 (eq. 3: 0)", "C3"), ("x = 1, δ = 0 (eq. 3: 0)", "C1"),
                                      ("x = 0.5, δ = 0.5 (eq. 3: 0.5)", "C0"))):
            ax.plot(1e3 * gp.times, gp.delta_tilde[:, j], color=c, label=f"δ̃, {lab}")
        ax.plot(1e3 * gp.times, gp.u[:, 0], color="0.5", ls="--", label="u (x = 1)")
        ax.axvline(1e3 * tau, color="0.7", lw=0.5)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_title(f"τ = {1e3 * tau:g} ms, τ_uv = {1e3 * tau_uv:g} ms, feedback at {1e3 * tau:g} ms", fontsize=9)
        ax.set_xlabel("time (ms)")
    axes[0].set_ylabel("activity")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"leaky shutdown gate (Fig. 15), K = {K:g}", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "continuous_gate.png"), dpi=110)
    plt.close(fig)


def main():
    a = parse_args()
    M, S, mu, eps, tau = a.M, a.S, a.mu, a.eps, a.tau
    rows, boundary_rows = [], []
    t_start = time.time()

    # ---- continuous ----
    h, s = grid(a.n_h, M)
    hr, sr = representative(M, S)
    results, rep = [], []
    for delay in a.delays:
        traj = continuous.trajectory(h, s, M=M, S=S, mu=mu, eps=eps, tau=tau, delay=delay)
        rows += rows_for("continuous", delay, traj, h, s, mu=mu, S=S, rtol=a.rtol)
        results.append((f"continuous, delay {1e3 * delay:.0f} ms", traj))
    for delay in (a.delays[0], a.delays[-1]):
        rep.append(continuous.trajectory(hr, sr, M=M, S=S, mu=mu, eps=eps, tau=tau, delay=delay, cycles=12,
                                         window=4))
    plot_trajectories(os.path.join(a.out, "continuous_trajectories.png"), rep,
                      [f"delay {1e3 * d:.0f} ms" for d in (a.delays[0], a.delays[-1])],
                      title=f"leaky rate circuit, τ = {1e3 * tau:g} ms, M={M:g}, S={S:g}, μ={mu:.3g}, ε={eps:g}")
    plot_regime_map(os.path.join(a.out, "continuous_regime_map.png"), h, s, results, mu=mu, S=S, M=M,
                    title="continuous circuit: readouts vs eq. 6")
    t_cont = time.time() - t_start

    # boundary grid of circuits.check (0, ±S, ±S ± 1e-9, ±(M - 1e-9))
    hb, sb = boundary_grid(M=M, S=S)
    for model, delay, fn in [("continuous", d, lambda d=d: continuous.trajectory(
                                  hb, sb, M=M, S=S, mu=mu, eps=eps, tau=tau, delay=d)) for d in a.delays]:
        tr = fn()
        for r in ("veto", "t-gate"):
            v = tr.readout(r)
            eq6 = rule(hb, sb, mu=mu, S=S, boundary="closed")
            bad = np.abs(v - eq6) > a.rtol * np.where(sb > 0, 1.0, mu)
            boundary_rows.append((model, delay, r, int((~bad).sum()), hb.size,
                                  ", ".join(f"(h={x:+.10g}, s={y:+.0f}: {z:.3f})" for x, y, z in
                                            zip(hb[bad], sb[bad], v[bad]))))

    print(f"M={M:g} S={S:g} mu={mu:.4g} eps={eps:g}; continuous tau={1e3 * tau:g} ms, {2 * a.n_h} inputs; "
          f"rtol={a.rtol}")
    print_table(rows)
    print("boundary grid (circuits.check.boundary_grid): agreement and the disagreeing inputs (readout value)")
    for model, delay, r, a_, n, bad in boundary_rows:
        print(f"  {model:<10} delay {1e3 * delay:>3.0f} ms {r:<7} {a_:>2d}/{n:<2d} {bad}")
    print(f"time: continuous {t_cont:.1f} s")
    gate_section(a)


if __name__ == "__main__":
    sys.exit(cli.run(main))
