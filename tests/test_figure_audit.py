"""The check behind 'no figure has an empty panel' (tests/figure_audit, used on every figure of the smoke budget
by tests/test_reproduce.py): what counts as a panel that draws data, and that the hook records saved figures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ROOT / "tests" / "figure_audit"
sys.path.insert(0, str(AUDIT))
from figure_audit import data_artists, describe  # noqa: E402


@pytest.mark.parametrize("draw", [
    lambda ax: ax.plot([0, 1], [1, 2]),
    lambda ax: ax.semilogy([1, 2], [1, 10]),
    lambda ax: ax.step([0, 1, 2], [0, 1, 0]),
    lambda ax: ax.bar([0, 1], [0.0, 2.0]),
    lambda ax: ax.scatter([1.0], [2.0]),
    lambda ax: ax.fill_between([0, 1], [0, 1], [1, 2]),
    lambda ax: ax.imshow(np.zeros((3, 3))),
    lambda ax: ax.errorbar([1], [2], yerr=[0.5]),
], ids=["plot", "semilogy", "step", "bar", "scatter", "fill_between", "imshow", "errorbar"])
def test_a_panel_with_data_counts(draw):
    fig, ax = plt.subplots()
    draw(ax)
    assert data_artists(ax) >= 1
    plt.close(fig)


def test_reference_lines_shading_text_and_nan_are_not_data():
    """A panel that only frames nothing — a chance line, a shaded band, a 'not run' label, a line of NaN, a
    line with no points — is empty."""
    fig, ax = plt.subplots()
    ax.axhline(90, ls=":")
    ax.axvline(1.0)
    ax.axvspan(0, 1, color="0.9")
    ax.text(0.5, 0.5, "not run", transform=ax.transAxes)
    ax.plot([0, 1], [np.nan, np.nan])
    ax.plot([], [])
    ax.set_title("empty")
    assert data_artists(ax) == 0
    ax.plot([0, 1], [np.nan, 3.0])  # one finite point is data
    assert data_artists(ax) == 1
    rec = describe(fig)
    assert rec == [{"title": "empty", "visible": True, "data": 1}]
    plt.close(fig)


def test_the_hook_records_every_saved_figure_of_a_subprocess(tmp_path):
    """With tests/figure_audit on PYTHONPATH and ASYMHEBB_FIGURE_AUDIT set, a script's savefig (figure method or
    pyplot's) appends one record per save, with the data count of each panel."""
    log = tmp_path / "audit.jsonl"
    script = ("import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
              "fig, ax = plt.subplots(1, 2); ax[0].plot([0, 1], [0, 1]); ax[1].axhline(0)\n"
              f"fig.savefig({str(tmp_path / 'a.png')!r}); plt.savefig({str(tmp_path / 'b.png')!r})\n")
    env = {**os.environ, "ASYMHEBB_FIGURE_AUDIT": str(log), "PYTHONPATH": str(AUDIT)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [Path(r["file"]).name for r in records] == ["a.png", "b.png"]
    assert [a["data"] for a in records[0]["axes"]] == [1, 0]
