"""Where the spiking circuits' step detectors switch (``circuits.spiking.switching_points``; docs/spiking.md).

Every detector population of the spiking output circuit (δ detectors at ±M and ±(2M+S), t detectors at
-μ-mε and 1+mε) and of the spiking shutdown gate (u, v at ±(1 - x_band)) is held at fixed drives on a fine
grid around its breakpoint, with the calibrated threshold the circuits give it, and its rate is counted.
The script prints, per detector parameter set and Brian2 target, the drive x½ at which each population is
half active and its distance past the breakpoint, d (x½ - θ), in units of the drive, of the breakpoint's own
scale (M for ±M, S for ±(2M+S), ε for the t detectors, x_band for u and v) and of the calibration's x₅₀
(a threshold applied with the wrong sign puts every population at 2 x₅₀).

Detector parameter sets (``--params``):
  default   circuits.spiking.DetectorParams(): τ_m = 2.5 ms, t_ref = 10 ms, gain 200, dt = 0.5 ms (x₅₀ ≈ 0.0015)
  slow      τ_m = 10 ms, t_ref = 2 ms, gain 100, dt = 0.2 ms: an f-I curve that is far from a step, x₅₀ ≈ 0.03

    python sims/switching_points.py                                   # numpy, both parameter sets
    python sims/switching_points.py --target numpy cpp_standalone
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout
from circuits import spiking  # noqa: E402
from sims import cli  # noqa: E402

PARAMS = {"default": spiking.DetectorParams(),
          "slow": spiking.DetectorParams(tau_m=10e-3, t_ref=2e-3, dt=0.2e-3, gain=100.0)}


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--M", type=float, default=2.0, help="bound on |h| (the circuit's range)")
    p.add_argument("--S", type=float, default=1.0, help="learning threshold (§3: 1)")
    p.add_argument("--mu", type=float, default=1 / 9, help="off-class factor μ (= 1/(C-1), C = 10)")
    p.add_argument("--eps", type=float, default=0.2, help="oscillation overshoot ε")
    p.add_argument("--margin", type=float, default=0.5, help="σ_ctl margin m (the spiking circuits' default)")
    p.add_argument("--x-band", type=float, default=0.05, help="the gate's control band (u, v at ±(1 - x_band))")
    p.add_argument("--params", nargs="+", default=list(PARAMS), choices=list(PARAMS), help="detector parameter sets")
    p.add_argument("--target", nargs="+", default=["numpy"], choices=spiking.TARGETS, help="Brian2 targets")
    p.add_argument("--n-grid", type=int, default=41, help="drives per population (grid around the breakpoint)")
    p.add_argument("--duration", type=float, default=0.3, help="counting window per drive (s), after 50 ms")
    p.add_argument("--seed", type=int, default=0, help="seed of the spiking networks")
    a = p.parse_args(argv)
    cli.check_circuit(M=a.M, S=a.S, mu=a.mu, eps=a.eps, margin=a.margin)
    if a.n_grid < 3:
        raise cli.UsageError(f"--n-grid must be at least 3, got {a.n_grid}")
    if not a.duration > 0:
        raise cli.UsageError(f"--duration must be positive (seconds), got {a.duration}")
    if not 0 < a.x_band < 0.5:
        raise cli.UsageError(f"--x-band must be in (0, 0.5), got {a.x_band}")
    return a


def table(res: spiking.Switching) -> str:
    x50 = res.calibration.x50
    lines = ["| circuit | detector | θ | scale | x½ | d (x½ − θ) | / scale | / x₅₀ |",
             "|---|---|---|---|---|---|---|---|"]
    for p in res.points:
        lines.append(f"| {p.circuit} | {p.detector} | {p.theta:+.4f} | {p.scale:g} | {p.x_half:+.5f} | "
                     f"{p.distance:+.5f} | {p.relative:+.4f} | {p.distance / x50:+.2f} |")
    return "\n".join(lines)


def main(argv=None):
    a = parse_args(argv)
    print(f"M={a.M:g} S={a.S:g} mu={a.mu:.4g} eps={a.eps:g} margin={a.margin:g} x_band={a.x_band:g}; "
          f"{a.n_grid} drives per population, {a.duration:g} s counted after 50 ms; seed {a.seed}")
    for name in a.params:
        for target in a.target:
            t0 = time.time()
            res = spiking.switching_points(PARAMS[name], M=a.M, S=a.S, mu=a.mu, eps=a.eps, margin=a.margin,
                                           x_band=a.x_band, n_grid=a.n_grid, duration=a.duration, seed=a.seed,
                                           target=target)
            cal = res.calibration
            print(f"\n== params {name} ({PARAMS[name]}), target {target}: r_sat = {cal.r_sat:.1f} Hz, "
                  f"x50 = {cal.x50:.5f}, grid step {res.spacing:.5f}; {time.time() - t0:.1f} s")
            print(table(res))
            worst = max(abs(p.distance) for p in res.points)
            print(f"largest |d (x½ − θ)| = {worst:.5f} = {worst / abs(cal.x50):.2f} |x50|")


if __name__ == "__main__":
    sys.exit(cli.run(main))
