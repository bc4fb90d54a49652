"""Test-only hook (tests/test_reproduce.py): record every figure a Python process saves.

With this folder first on PYTHONPATH and ``ASYMHEBB_FIGURE_AUDIT`` naming a file, every Python process started
with that environment (sims/reproduce.py and the scripts it runs) wraps ``matplotlib.figure.Figure.savefig``:
after each save it appends one JSON line ``{"file": ..., "axes": [{"title", "visible", "data"}, ...]}``
(``figure_audit.describe``) to the file. Without the variable it does nothing.
"""
import os

if os.environ.get("ASYMHEBB_FIGURE_AUDIT"):
    import json

    import matplotlib.figure

    from figure_audit import describe

    _savefig = matplotlib.figure.Figure.savefig

    def _audited_savefig(self, fname, *args, **kwargs):
        result = _savefig(self, fname, *args, **kwargs)
        if isinstance(fname, (str, os.PathLike)):
            record = {"file": os.path.abspath(os.fspath(fname)), "axes": describe(self)}
            with open(os.environ["ASYMHEBB_FIGURE_AUDIT"], "a") as f:
                f.write(json.dumps(record) + "\n")
        return result

    matplotlib.figure.Figure.savefig = _audited_savefig
