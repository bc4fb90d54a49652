"""Continuous-time version of the output error circuit (Amit 2019, Appendix 1, Fig. 13, 14).

The paper's circuit is a discrete alternating map (δ → t → δ) whose correct regimes oscillate 1+ε ↔ 0.
This script runs ``circuits.continuous`` (leaky rate units, optionally with a relay-chain delay on δ → t) on a
grid of feed-forward inputs h for s = ±1, and reports its agreement with eq. 6 per regime and readout. The
spiking version is sims/spiking_circuit.py.

Figures written to --out (default runs/circuit_dynamics/; docs/figures with --publish):
  fig14_continuous_trajectories.png   δ(t), t_c(t) in the four regimes, without and with delay, with the
                                      σ_ctl thresholds, the veto and t-gate levels and the readout window
  fig14_continuous_regime_map.png     readouts and mean |t_c| over h for s = ±1, with eq. 6 and the levels
  fig14_continuous_dt_convergence.png chatter, smallest δ and agreement against the time step dt
  fig15_continuous_gate.png    the leaky shutdown gate (Fig. 15): δ̃, u over time for a saturated unit
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
    p.add_argument("--dt-divisions", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320],
                   help="time steps τ/k of the dt-convergence check of the continuous circuit")
    p.add_argument("--veto-levels", type=float, nargs="+", default=[0.25, 0.5, 0.75],
                   help="veto levels (fraction of the update value) of the delayed-veto table")
    p.add_argument("--target", choices=["numpy", "cython", "cpp_standalone"], default="cython",
                   help="Brian2 code-generation target of the continuous networks (results identical on all)")
    cli.add_output(p, "circuit_dynamics")
    a = p.parse_args()
    cli.check_circuit(M=a.M, S=a.S, mu=a.mu, eps=a.eps, K=a.K)  # before any simulation
    if min(a.dt_divisions) < 5 or not all(0 < v < 1 for v in a.veto_levels):
        raise cli.UsageError("--dt-divisions must be ≥ 5 (dt ≤ τ/5) and --veto-levels in (0, 1)")
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
            ax.axhline(0.5 * (1.0 if sign > 0 else -mu), color="C1", lw=0.7, ls=":", label="veto level")
            ax.set_title(f"{label}: s = {sign:+.0f}", fontsize=9)
            ax.set_xlabel("feed-forward input h (dimensionless)")
            ax.set_ylabel("readout δ (dimensionless)")
            ax.set_xlim(-M, M)
        axes[k, 0].legend(fontsize=7)
        ax = axes[k, 2]
        for sign, c in ((1.0, "C0"), (-1.0, "C3")):
            m = s == sign
            ax.plot(h[m], tmean[m], color=c, label=f"s = {sign:+.0f}")
        ax.axhline(0.05, color="C2", lw=0.7, ls=":", label="t-gate level")
        ax.set_title(f"{label}: window mean of |t_c|", fontsize=9)
        ax.set_xlabel("feed-forward input h (dimensionless)")
        ax.axvline(S, color="0.7", lw=0.5)
        ax.axvline(-S, color="0.7", lw=0.5)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_continuous_trajectories(path, trajs, labels, *, mu, eps, margin=0.0, veto_level=0.5, t_level=0.05,
                                 title):
    """δ(t) and t_c(t) of the leaky circuit for the four representative inputs, one pair of rows per delay,
    with σ_ctl's thresholds, the veto level and the t-gate level drawn and the readout window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["on-update (s=+1, h=0)", "on-correct (s=+1, h=(S+M)/2)", "off-update (s=-1, h=0)",
             "off-correct (s=-1, h=-(S+M)/2)"]
    signs = [1.0, 1.0, -1.0, -1.0]
    fig, axes = plt.subplots(2 * len(trajs), 4, figsize=(15, 2.3 * 2 * len(trajs)), sharex=True, squeeze=False)
    for k, (traj, label) in enumerate(zip(trajs, labels)):
        ms = 1e3 * traj.times
        n_window = max(1, int(round(traj.window * traj.samples_per_cycle)))
        w0 = ms[-n_window]
        for j in range(4):
            ax_d, ax_t = axes[2 * k, j], axes[2 * k + 1, j]
            for ax in (ax_d, ax_t):
                ax.axvspan(w0, ms[-1], color="0.9", zorder=0, label="readout window" if ax is ax_d else None)
                ax.axhline(0, color="0.6", lw=0.5)
            ax_d.plot(ms, traj.delta[:, j], color="C0", lw=0.9, label="δ_c")
            ax_d.axhline(1 + margin * eps, color="C3", lw=0.7, ls="--", label="σ_ctl thresholds (1, −μ)")
            ax_d.axhline(-mu - margin * eps, color="C3", lw=0.7, ls="--")
            lv = veto_level * (1.0 if signs[j] > 0 else -mu)
            ax_d.axhline(lv, color="C1", lw=0.7, ls=":", label=f"veto level ({veto_level:g} × update value)")
            ax_t.plot(ms, traj.t_c[:, j], color="C3", lw=0.9, label="t_c")
            ax_t.axhline(t_level, color="C2", lw=0.7, ls=":", label=f"t-gate level |t| = {t_level:g}")
            ax_t.axhline(-t_level, color="C2", lw=0.7, ls=":")
            ax_d.set_title(f"{names[j]}\n{label}", fontsize=8)
            if j == 0:
                ax_d.set_ylabel("δ_c (dimensionless)")
                ax_t.set_ylabel("t_c (dimensionless)")
        if k == 0:
            axes[0, 0].legend(fontsize=6, loc="lower right")
            axes[1, 0].legend(fontsize=6, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dt_section(a):
    """How the leaky circuit's chatter depends on the time step, and where the delayed veto agrees."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    M, S, mu, eps, tau = a.M, a.S, a.mu, a.eps, a.tau
    hr, sr = representative(M, S)
    h, s = grid(a.n_h, M)
    hb, sb = boundary_grid(M=M, S=S)
    H, Sg = np.r_[hr, h, hb], np.r_[sr, s, sb]
    nr, ng = hr.size, h.size
    rows = []
    print(f"dt convergence of the leaky circuit (τ = {1e3 * tau:g} ms; on-correct input h = (S+M)/2 = "
          f"{hr[1]:g}; agreement over {ng} grid + {hb.size} boundary inputs, veto level 0.5)")
    print(f"{'delay ms':>8} {'dt':>8} {'chatter sd':>10} {'min δ':>7} {'mean δ':>7} {'mean |t|':>8} "
          f"{'veto %':>7} {'t-gate %':>8}")
    finest = {}
    for delay in a.delays:
        for k in a.dt_divisions:
            tr = continuous.trajectory(H, Sg, M=M, S=S, mu=mu, eps=eps, tau=tau, dt=tau / k, delay=delay,
                                       target=a.target)
            n_window = max(1, int(round(tr.window * tr.samples_per_cycle)))
            w = tr.delta[-n_window:, 1]
            pct = {}
            for r in ("veto", "t-gate"):
                v = tr.readout(r)[nr:]
                ag = continuous.agreement_of(v, H[nr:], Sg[nr:], mu=mu, S=S, rtol=a.rtol)
                pct[r] = 100.0 * sum(x for _, x in ag.values()) / sum(n for n, _ in ag.values())
            rows.append((delay, k, w.std(), w.min(), w.mean(), np.abs(tr.t_c[-n_window:, 1]).mean(),
                         pct["veto"], pct["t-gate"]))
            print(f"{1e3 * delay:>8.0f} {'τ/%d' % k:>8} {w.std():>10.2e} {w.min():>7.4f} {w.mean():>7.4f} "
                  f"{rows[-1][5]:>8.3f} {pct['veto']:>7.1f} {pct['t-gate']:>8.1f}")
            if k == max(a.dt_divisions):
                finest[delay] = tr
    print(f"where the delayed veto agrees (dt = τ/{max(a.dt_divisions)}): inputs agreeing with eq. 6 within "
          f"rtol {a.rtol}, per regime, on the grid of {ng} inputs (h on (-M, M), s = ±1) plus the "
          f"{hb.size}-point boundary grid")
    print(f"{'delay ms':>8} {'veto level':>10}  " + "  ".join(f"{r:>12}" for r in REGIMES))
    for delay, tr in finest.items():
        for level in a.veto_levels:
            v = tr.readout("veto", veto_level=level)[nr:]
            ag = continuous.agreement_of(v, H[nr:], Sg[nr:], mu=mu, S=S, rtol=a.rtol)
            print(f"{1e3 * delay:>8.0f} {level:>10.2f}  " + "  ".join(f"{ag[r][1]:>5d}/{ag[r][0]:<6d}" for r in REGIMES))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    dts = np.array([1e3 * tau / k for k in a.dt_divisions])
    for i, delay in enumerate(a.delays):
        sel = [r for r in rows if r[0] == delay]
        c = f"C{i}"
        lab = f"delay {1e3 * delay:g} ms"
        axes[0].loglog(dts, [r[2] for r in sel], "o-", color=c, label=lab)
        axes[1].semilogx(dts, [r[3] for r in sel], "o-", color=c, label=lab)
        axes[2].semilogx(dts, [r[6] for r in sel], "o-", color=c, label=f"veto, {lab}")
        axes[2].semilogx(dts, [r[7] for r in sel], "s--", color=c, mfc="none", label=f"t-gate, {lab}")
    axes[0].loglog(dts, dts * (rows[0][2] / dts[0]), color="0.6", lw=0.8, ls=":", label="∝ dt")
    axes[1].axhline(0.5, color="k", lw=0.8, ls=":", label="veto level 0.5")
    axes[0].set_ylabel("chatter: s.d. of δ over the window")
    axes[1].set_ylabel("smallest δ over the window")
    axes[2].set_ylabel("inputs agreeing with eq. 6 (%)")
    for ax in axes:
        ax.set_xlabel("time step dt (ms)")
        ax.legend(fontsize=7)
    axes[0].set_title(f"on-correct input h = {hr[1]:g}, s = +1", fontsize=9)
    axes[1].set_title("the veto fires only if δ dips below its level", fontsize=9)
    axes[2].set_title(f"{ng} grid + {hb.size} boundary inputs", fontsize=9)
    fig.suptitle(f"Fig. 14 leaky circuit: convergence in the time step (τ = {1e3 * tau:g} ms, M={M:g}, S={S:g}, "
                 f"μ={mu:.3g}, ε={eps:g})", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "fig14_continuous_dt_convergence.png"), dpi=110)
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
            g = continuous.gate_trajectory(x, delta, K=K, tau=tau, tau_uv=tau_uv, lead=lead, dt=tau / 40,
                                           target=a.target)
            err = np.abs(g.final() - gate_rule(x, delta))
            g0 = continuous.gate_trajectory(np.array([1.0]), np.array([0.0]), K=K, tau=tau, tau_uv=tau_uv, lead=lead,
                                            dt=tau / 40, target=a.target)
            print(f"{1e3 * tau_uv:>9.2f} {1e3 * lead:>7.0f} {int((err <= 1e-3).sum()):>9d}/100 {err.max():>10.2e} "
                  f"{g.leak()[sat].max():>12.3f} {g0.leak()[0]:>8.3f}")
        gp = continuous.gate_trajectory(probe_x, probe_d, K=K, tau=tau, tau_uv=tau_uv, lead=tau, dt=tau / 40,
                                        target=a.target)
        ax = axes[k]
        for j, (lab, c) in enumerate((("x = 1, δ = 0.5 (eq. 3: 0)", "C3"), ("x = 1, δ = 0 (eq. 3: 0)", "C1"),
                                      ("x = 0.5, δ = 0.5 (eq. 3: 0.5)", "C0"))):
            ax.plot(1e3 * gp.times, gp.delta_tilde[:, j], color=c, label=f"δ̃, {lab}")
        ax.plot(1e3 * gp.times, gp.u[:, 0], color="0.5", ls="--", label="u (x = 1)")
        ax.axvline(1e3 * tau, color="0.7", lw=0.5)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_title(f"τ = {1e3 * tau:g} ms, τ_uv = {1e3 * tau_uv:g} ms, feedback at {1e3 * tau:g} ms", fontsize=9)
        ax.set_xlabel("time (ms)")
    axes[0].set_ylabel("activity (dimensionless)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Fig. 15 shutdown gate with leaky units, K = {K:g} (grey line: the feedback δ arrives)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "fig15_continuous_gate.png"), dpi=110)
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
        traj = continuous.trajectory(h, s, M=M, S=S, mu=mu, eps=eps, tau=tau, delay=delay, target=a.target)
        rows += rows_for("continuous", delay, traj, h, s, mu=mu, S=S, rtol=a.rtol)
        results.append((f"continuous, delay {1e3 * delay:.0f} ms", traj))
    for delay in (a.delays[0], a.delays[-1]):
        rep.append(continuous.trajectory(hr, sr, M=M, S=S, mu=mu, eps=eps, tau=tau, delay=delay, cycles=12,
                                         window=4, target=a.target))
    plot_continuous_trajectories(os.path.join(a.out, "fig14_continuous_trajectories.png"), rep,
                                 [f"delay {1e3 * d:.0f} ms" for d in (a.delays[0], a.delays[-1])], mu=mu, eps=eps,
                                 title=f"Fig. 14 circuit with leaky rate units, τ = {1e3 * tau:g} ms, dt = τ/20, "
                                       f"M={M:g}, S={S:g}, μ={mu:.3g}, ε={eps:g}; δ = t = 0 at 0 ms")
    plot_regime_map(os.path.join(a.out, "fig14_continuous_regime_map.png"), h, s, results, mu=mu, S=S, M=M,
                    title="Fig. 14 circuit with leaky rate units: readouts vs eq. 6 (dotted: decision levels)")
    t_cont = time.time() - t_start

    # boundary grid of circuits.check (0, ±S, ±S ± 1e-9, ±(M - 1e-9))
    hb, sb = boundary_grid(M=M, S=S)
    for model, delay, fn in [("continuous", d, lambda d=d: continuous.trajectory(
                                  hb, sb, M=M, S=S, mu=mu, eps=eps, tau=tau, delay=d, target=a.target))
                             for d in a.delays]:
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
    dt_section(a)
    gate_section(a)


if __name__ == "__main__":
    sys.exit(cli.run(main))
