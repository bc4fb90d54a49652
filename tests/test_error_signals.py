"""sims/error_signals.py, the toggle between ideal and circuit error signals: one network, one set of initial
weights, four signal variants side by side (Appendix 1; docs/circuits.md)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path, *args, timeout=900):
    p = subprocess.run([sys.executable, str(ROOT / "sims" / "error_signals.py"), "--out", str(tmp_path / "o"),
                        "--threads", "1", *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-3000:]
    rows = {}
    for line in p.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in ("ideal", "circuit veto", "circuit phase 7", "circuit window-mean"):
            rows[cells[0]] = cells
    return p, rows


def test_veto_and_shutdown_circuits_train_exactly_as_the_ideal_signals_and_the_other_readouts_do_not(tmp_path):
    """From the same initial weights and batches, the veto readout with the shutdown gate gives the ideal
    signals (eq. 6, σ') at every step, so the final weights are equal bit for bit, and the Brian2 rate network
    agrees with the circuit module on every audited batch; phase 7 and window-mean read 1+ε or (1+ε)/2 where
    eq. 6 is 0, and their weights end elsewhere."""
    p, rows = run(tmp_path, "--net", "full 32; output", "--train-subset", "200", "--epochs", "2", "--audit-every",
                  "4")
    assert set(rows) == {"ideal", "circuit veto", "circuit phase 7", "circuit window-mean"}, p.stdout
    ncol = len(rows["ideal"])
    assert all(len(r) == ncol for r in rows.values())
    assert rows["ideal"][-1] == "0 (reference)" and rows["circuit veto"][-1] == "0"
    assert rows["circuit veto"][1:4] == rows["ideal"][1:4]  # test error at epochs 0, 1, 2
    assert float(rows["circuit phase 7"][-1]) > 0 and float(rows["circuit window-mean"][-1]) > 0
    for name in ("circuit veto", "circuit phase 7", "circuit window-mean"):
        mismatches, batches = rows[name][-2].split(" mismatches in ")
        assert mismatches == "0" and int(batches.split()[0]) > 0, rows[name]
    assert (tmp_path / "o" / "error_signals_digits.png").exists()


@pytest.mark.slow
def test_the_default_comparison_learns_far_below_chance_with_ideal_and_circuit_signals(tmp_path):
    """The command as the README gives it: ideal and veto-circuit signals end far below chance (90%) and
    equal; the odd-phase readout does not learn."""
    p, rows = run(tmp_path, timeout=3600)
    final = {name: float(r[6]) for name, r in rows.items()}  # test error (%) after epoch 5
    assert final["ideal"] == final["circuit veto"] < 30, final
    assert final["circuit phase 7"] > 60, final
