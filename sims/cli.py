"""What the scripts of sims/ and bench/ share: one kind of error, where outputs go, help that shows defaults.

- ``run(main)`` / ``guard()``: the project's errors (bad parameters, missing data, a run directory that
  cannot be used, an unwritable output folder) become one line ``error: ...`` on stderr and exit status 2;
  anything else is a bug and keeps its traceback.
- ``add_output(parser, script)``: ``--out`` (default ``runs/<script>``) and ``--publish`` (write the figures
  into the committed docs/figures instead), the same two flags in every script, as in sims/reproduce.py.
- ``writable(path)``: create an output folder and check that it can be written, before any work.
- ``caption(fig, text)`` / ``save(fig, path, bottom=...)``: a figure's caption (what is drawn, from which
  settings and seeds) under its panels, and the layout that leaves room for it.
- ``HelpFormatter``: the script's docstring as written, and every flag's default in ``--help``.
- ``parser(doc)``: an ``ArgumentParser`` whose own errors (a malformed value such as ``--lr abc``, an unknown
  flag, a missing argument) are one line ``error: ...`` and exit status 2, like the project's errors, instead
  of argparse's usage block.

Cheap to import: the project's error classes are imported only when an error is being reported.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"  # the published figures; written only with --publish

__all__ = ["UsageError", "HelpFormatter", "OneLineParser", "parser", "add_output", "figure_dir", "writable", "run", "guard",
           "fail", "caption", "save", "check_circuit", "parse_shape", "check_bench"]


class UsageError(ValueError):
    """A command line that cannot work (conflicting flags, an unwritable folder, ...)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description and epilog as written; ``(default: X)`` after every flag's help."""


class OneLineParser(argparse.ArgumentParser):
    """argparse's own errors as one line on stderr and exit status 2 (argparse prints the whole usage block
    first, 18 lines for sims/train.py, and the problem last)."""

    def error(self, message):
        _report(UsageError(f"{message} (see {self.prog} --help)"))
        sys.exit(2)


def parser(doc: str, *, epilog: str | None = None, full_doc: bool = True) -> argparse.ArgumentParser:
    """An ArgumentParser whose help is ``doc`` (whole, or its first paragraph) and shows every default, and whose
    errors are one line (``OneLineParser``)."""
    return OneLineParser(description=doc if full_doc else doc.split("\n\n")[0], epilog=epilog,
                         formatter_class=HelpFormatter)


class _Given(argparse.Action):
    """Stores the value and records that the flag was given (``args.<dest>_given``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, self.dest + "_given", True)


def add_output(p: argparse.ArgumentParser, script: str, *, what: str = "figures", publish: bool = True) -> None:
    """``--out`` (default runs/<script>) and, for scripts that draw published figures, ``--publish``."""
    p.add_argument("--out", default=f"runs/{script}", action=_Given, help=f"folder for the {what} (created if missing)")
    p.set_defaults(out_given=False)
    if publish:
        p.add_argument("--publish", action="store_true",
                       help="write the figures into docs/figures, replacing the published ones")


def writable(path) -> Path:
    """``path`` as a folder that exists and can be written (``UsageError`` otherwise), before any work."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot write to --out {path} ({e.strerror or e}); choose a writable folder") from None
    return path


def figure_dir(args, *, out_holds_only_figures: bool = True) -> Path:
    """Where a script writes its figures: docs/figures with ``--publish``, else ``--out``; checked writable.

    For a script whose ``--out`` holds nothing but figures, giving both ``--out`` and ``--publish`` is refused
    (one of them would be ignored)."""
    if getattr(args, "publish", False):
        if out_holds_only_figures and getattr(args, "out_given", False):
            raise UsageError("--publish writes the figures into docs/figures; give either --out or --publish")
        return writable(FIGURES)
    return writable(args.out)


def caption(fig, text: str, *, fontsize: float = 7) -> float:
    """Write ``text`` under the figure's panels, wrapped to its width in small grey type; returns the share of
    the figure's height it takes, the ``bottom`` to leave free in ``save``."""
    import textwrap

    width = int(fig.get_figwidth() * 72 / (0.6 * fontsize))  # characters per line: ~0.55 em each, and a margin
    lines = textwrap.wrap(text, width)
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=fontsize, va="bottom", ha="left", color="0.25")
    return (len(lines) * 1.3 * fontsize + 6) / (72 * fig.get_figheight())


def save(fig, path, *, bottom: float = 0.0, dpi: int = 110) -> Path:
    """Lay the panels out above ``bottom`` (the caption's share of the height), write the PNG, close the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def check_circuit(**params) -> None:
    """``circuits.params.check_params`` under the script's own flag names (one line, before any work)."""
    from circuits.params import check_params

    check_params(**params)



def parse_shape(text: str) -> tuple:
    """``"C,H,W"`` → ``(C, H, W)``, three positive integers (``UsageError`` otherwise)."""
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise UsageError(f"--shape takes C,H,W (three integers), got {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(f"--shape takes C,H,W (three positive integers), got {text!r}")
    return shape


def check_bench(args, *, rules, nets, device="cpu"):
    """A step-time benchmark's settings checked before any timing (one-line errors); returns the input shape."""
    import torch

    from models.rules import get_rule
    from models.spec import resolve

    for r in rules:
        get_rule(r)
    for n in nets:
        resolve(n)
    shape = parse_shape(args.shape)
    for name in ("batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but PyTorch sees no CUDA device; use --device cpu")
    return shape


def _project_errors() -> tuple[type[BaseException], ...]:
    from models.data import DataError
    from models.train import DivergenceError, RunDirError

    # ValueError covers SpecError, CircuitParamError, MatrixError and RunConfig.validate's messages
    return (UsageError, ValueError, DataError, RunDirError, DivergenceError, FileNotFoundError, PermissionError)


def _report(e: BaseException) -> None:
    print("error: " + " ".join(str(e).split()), file=sys.stderr)


def fail(message: str) -> None:
    """Print ``error: message`` (one line) on stderr and exit with status 2."""
    _report(UsageError(message))
    sys.exit(2)


def run(main, *args) -> int:
    """``main(*args)``'s status, with the project's errors as one line and status 2 (130 on Ctrl-C)."""
    try:
        return main(*args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - re-raised unless it is one of the project's errors
        if isinstance(e, _project_errors()):
            _report(e)
            return 2
        raise


@contextlib.contextmanager
def guard():
    """For scripts written at module level: the project's errors inside the block exit with one line and 2."""
    try:
        yield
    except Exception as e:  # noqa: BLE001
        if isinstance(e, _project_errors()):
            _report(e)
            sys.exit(2)
        raise
