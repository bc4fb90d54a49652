"""Experiment matrices of the reproduction (§4): which runs a budget asks for, their state on disk, running one.

A *matrix* is a TOML file (``sims/experiments/<budget>.toml``): a ``[budget]`` table (name, seeds, threads per
run, what it is for), ``[defaults]`` (``RunConfig`` fields shared by every row) and ``[[rows]]``, each one
network on one data set with a list of *protocols*. A protocol is a rule name, optionally followed by the
connectivity in percent: ``urfb-50`` is URFB with 50% random connectivity (§3.1). A row may override any
``RunConfig`` field (``slope``, ``epochs``, ``train_subset``, ...) and may say ``untied = true`` to replace
every ``conv`` of its net by ``local`` and train it from scratch, or ``untie_from = "<tied row>"`` for the §4.1
protocol of Fig. 9: each run takes the first layer (W and R) of the tied row's finished run of the same
protocol and seed, freezes it, and trains the rest of the net, every other ``conv`` untied, from scratch
(``models.protocol``); such a run waits for its tied run. Every (row, protocol, seed) is one :class:`Run`, written to
``<root>/runs/<row>/<protocol>-s<seed>/`` by :func:`models.train.train` (``config.json``, ``metrics.jsonl``,
``checkpoint.pt``; atomic, resumable).

Data sets are named by what they are (``digits``, ``fashion-mnist``, ``cifar10``, ``cifar100``); where their
files lie is given at run time (``sources``: name → path), since a matrix is shared between machines. A CIFAR
path may be the official python archive (or its folder) or an image tree ``train/<class>/*.jpg`` (folder or
tar): :func:`resolve_source` tells them apart. A row whose data set has no path is *not run*, and the figures
say so.

:func:`execute` runs one run to completion (skipping, resuming or starting it) and is what a Dask worker
executes: it depends only on its arguments, so the results are the same whichever process runs it.
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .train import RunConfig, read_metrics, train

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["MatrixError", "Run", "Matrix", "load_matrix", "parse_protocol", "resolve_source", "run_state",
           "execute", "TRAIN_SPLIT_SIZE"]

# Images in the training split of each data set before the validation hold-out (for time estimates).
TRAIN_SPLIT_SIZE = {"digits": 1437, "fashion-mnist": 60000, "cifar10": 50000, "cifar100": 50000}
DATASET_NAMES = tuple(TRAIN_SPLIT_SIZE)
# Settings that identify a run: a run directory whose config differs in any other field is another run. The
# data set is fixed by the row (the loader and the path of its files may differ between machines).
_NOT_IDENTITY = {"data", "data_dir", "device", "epochs", "eval_batch_size"}
_ROW_KEYS = {"name", "dataset", "net", "protocols", "untied", "untie_from", "figures"}


class MatrixError(ValueError):
    """The matrix file is malformed, or a run directory holds a different run."""


def parse_protocol(protocol: str) -> tuple[str, float]:
    """``'urfb-50'`` → ``('urfb', 0.5)``; ``'bp-h'`` → ``('bp-h', 1.0)``."""
    from .rules import RULES

    p = protocol.strip().lower()
    if p in RULES:
        return p, 1.0
    head, _, pct = p.rpartition("-")
    if head in RULES and pct.isdigit() and 0 < int(pct) <= 100:
        return head, int(pct) / 100
    raise MatrixError(f"unknown protocol {protocol!r}: write a rule ({', '.join(RULES)}), optionally followed by "
                      "the connectivity in percent, e.g. 'urfb-50'")


@dataclass(frozen=True)
class Run:
    """One training run of a matrix: a row, a protocol and a seed."""

    row: str
    protocol: str
    seed: int
    dataset: str
    config: RunConfig = field(compare=False)
    figures: tuple = ()
    tied_from: str | None = None  # §4.1: the key of the tied run whose trained first layer this run freezes

    @property
    def key(self) -> str:
        return f"{self.row}/{self.protocol}-s{self.seed}"

    def path(self, root) -> Path:
        return Path(root) / "runs" / self.row / f"{self.protocol}-s{self.seed}"

    def estimate_seconds(self, costs: dict) -> float:
        """Seconds this run takes from scratch, from the matrix's measured costs per 1000 images."""
        c = self.config
        n_split = TRAIN_SPLIT_SIZE[self.dataset]
        val = c.val_size if c.val_size is not None else (300 if self.dataset == "digits" else 5000)
        n_train = c.train_subset if c.train_subset is not None else n_split - val
        n_test = 360 if self.dataset == "digits" else 0
        cost = costs.get(self.row, costs.get("default", {"train": 1.0, "eval": 0.3}))
        per_epoch = (n_train * cost["train"] + (val + n_test) * cost["eval"]) / 1000
        return c.epochs * per_epoch


@dataclass
class Matrix:
    """A budget's experiment matrix, parsed (see the module docstring)."""

    name: str
    description: str
    seeds: list
    threads: int
    rows: list  # dicts, as in the file, with defaults merged
    costs: dict
    figures: dict  # per-figure settings (e.g. the circuit scripts' arguments)
    path: Path | None = None

    def runs(self) -> list[Run]:
        out = []
        for row in self.rows:
            for protocol in row["protocols"]:
                rule, connectivity = parse_protocol(protocol)
                for seed in self.seeds:
                    cfg = dict(row["config"], rule=rule, connectivity=connectivity, seed=seed)
                    tied = row.get("untie_from")
                    out.append(Run(row=row["name"], protocol=protocol, seed=seed, dataset=row["dataset"],
                                   config=RunConfig(**cfg), figures=tuple(row.get("figures", ())),
                                   tied_from=f"{tied}/{protocol}-s{seed}" if tied else None))
        return out


def load_matrix(path) -> Matrix:
    """Parse and check a matrix file; every mistake is a one-line :class:`MatrixError` naming the fix."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise MatrixError(f"matrix file {path} not found: pass --budget smoke|cpu|paper or --matrix FILE") from None
    except tomllib.TOMLDecodeError as e:
        raise MatrixError(f"{path} is not valid TOML ({e})") from None
    where = path.name
    budget = doc.get("budget", {})
    seeds = budget.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)):
        raise MatrixError(f"{where}: [budget] seeds must be a non-empty list of non-negative integers")
    defaults = doc.get("defaults", {})
    config_names = {f.name for f in fields(RunConfig)}
    rows, names = [], set()
    for i, raw in enumerate(doc.get("rows", []), 1):
        name = raw.get("name")
        if not name or not isinstance(name, str) or "/" in name:
            raise MatrixError(f"{where}: row {i} needs a name (a word, no '/')")
        if name in names:
            raise MatrixError(f"{where}: two rows are named {name!r}; names must be unique")
        names.add(name)
        merged = {**defaults, **raw}
        dataset = merged.get("dataset", "digits")
        if dataset not in DATASET_NAMES:
            raise MatrixError(f"{where}: row {name!r}: unknown dataset {dataset!r}; choose one of "
                              f"{', '.join(DATASET_NAMES)}")
        unknown = set(merged) - config_names - _ROW_KEYS
        if unknown:
            raise MatrixError(f"{where}: row {name!r}: unknown settings {sorted(unknown)}; a row takes "
                              f"{', '.join(sorted(_ROW_KEYS))} and RunConfig fields")
        for banned in ("rule", "seed", "connectivity", "data", "data_dir"):
            if banned in merged:
                raise MatrixError(f"{where}: row {name!r} sets {banned!r}; it comes from the protocols, the seeds "
                                  "and the data sources")
        protocols = merged.get("protocols")
        if not protocols or not isinstance(protocols, list):
            raise MatrixError(f"{where}: row {name!r} needs protocols = [\"bp\", \"urfb\", ...]")
        for p in protocols:
            parse_protocol(p)
        net = merged.get("net", "simpnet")
        tied_row = merged.get("untie_from")
        if tied_row is not None:
            if merged.get("untied"):
                raise MatrixError(f"{where}: row {name!r} sets both untied and untie_from; untied = true trains the "
                                  "untied net from scratch, untie_from the §4.1 protocol: choose one")
            src = next((r for r in rows if r["name"] == tied_row), None)
            if src is None:
                raise MatrixError(f"{where}: row {name!r}: untie_from = {tied_row!r} names no earlier row; write the "
                                  "tied row first")
            if src["untied"] or src.get("untie_from") or src["net_name"] != net or src["dataset"] != dataset:
                raise MatrixError(f"{where}: row {name!r}: untie_from = {tied_row!r} must be a tied row of the same "
                                  "net and data set")
            missing = [p for p in protocols if p not in src["protocols"]]
            if missing:
                raise MatrixError(f"{where}: row {name!r}: the tied row {tied_row!r} has no {missing} runs to take "
                                  "the first layer from; add them there")
        if merged.get("untied") or tied_row is not None:
            from .local import untied_spec

            net = untied_spec(net, keep_first=tied_row is not None)
        config = {k: v for k, v in merged.items() if k in config_names}
        config.update(net=net, data=dataset)
        try:
            RunConfig(**config, rule=parse_protocol(protocols[0])[0]).validate()
            from .spec import resolve

            resolve(net)
        except Exception as e:  # noqa: BLE001 - SpecError, ValueError: report as the matrix's mistake
            raise MatrixError(f"{where}: row {name!r}: {e}") from None
        rows.append({"name": name, "dataset": dataset, "protocols": list(protocols), "config": config,
                     "figures": list(merged.get("figures", [])), "net_name": merged.get("net", "simpnet"),
                     "untied": bool(merged.get("untied", False)), "untie_from": tied_row})
    if not rows:
        raise MatrixError(f"{where}: no [[rows]]; add at least one")
    return Matrix(name=budget.get("name", path.stem), description=budget.get("description", ""), seeds=seeds,
                  threads=int(budget.get("threads", 1)), rows=rows, costs=doc.get("costs", {}),
                  figures=doc.get("figures", {}), path=path)


def resolve_source(dataset: str, path) -> tuple[str, str | None]:
    """The ``models.data`` loader and path for ``dataset`` found at ``path``.

    CIFAR-10/100 come as the official python archive (``cifar-10-python.tar.gz`` or the extracted
    ``cifar-10-batches-py/``) or as an image tree (``train/<class>/*.jpg``, folder or tar archive).
    """
    if dataset == "digits":
        return "digits", None
    if path is None:
        raise MatrixError(f"no files for {dataset}: pass --source {dataset}=PATH")
    p = Path(path).expanduser()
    if dataset in ("cifar10", "cifar100"):
        from .data import _CIFAR

        spec = _CIFAR[dataset]
        official = (p.name in (spec["archive"], spec["folder"])
                    or (p.is_dir() and ((p / spec["archive"]).is_file() or (p / spec["folder"]).is_dir()
                                        or all((p / m).is_file() for m in spec["train"]))))
        return (dataset if official else "images"), str(p)
    return dataset, str(p)


def _identity(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in _NOT_IDENTITY}


def run_state(run: Run, root) -> tuple[str, int]:
    """``('new' | 'partial' | 'done', epochs finished)`` of ``run`` under ``root``.

    Raises :class:`MatrixError` if the run directory holds a run with other settings (a changed matrix):
    results of other settings are never mixed in silently.
    """
    d = run.path(root)
    cfg_path = d / "config.json"
    if not cfg_path.exists():
        return "new", 0
    try:  # through RunConfig.from_dict, so that config files of earlier versions compare by meaning
        saved = asdict(RunConfig.from_dict(json.loads(cfg_path.read_text())))
    except (json.JSONDecodeError, TypeError, ValueError):
        return "new", 0
    want = asdict(run.config)
    diff = sorted(k for k in set(_identity(saved)) | set(_identity(want)) if saved.get(k) != want.get(k))
    if diff:
        shown = ", ".join(f"{k}: {saved.get(k)!r} there, {want.get(k)!r} now" for k in diff)
        raise MatrixError(f"run directory {d} holds a run with other settings ({shown}); use another --out, or "
                          "delete that directory to rerun it")
    if not (d / "checkpoint.pt").exists():
        return "new", 0
    try:
        done = len(read_metrics(d))
    except (OSError, json.JSONDecodeError):
        done = 0
    return ("done" if done >= run.config.epochs else "partial"), done


def execute(run: Run, root, sources: dict | None = None, device: str | None = None,
            threads: int | None = None, after=None) -> dict:
    """Bring ``run`` to completion under ``root``: skip it if done, resume it if interrupted, else start it.

    ``sources`` maps data set names to paths; ``device`` defaults to ``$ASYMHEBB_DEVICE`` (so each Dask
    worker may have its own) and then ``cpu``; ``threads`` sets PyTorch's CPU threads (results on the CPU
    depend on it, so a matrix fixes it). Returns ``{"key", "state", "epochs", "seconds", "error"}`` where
    ``state`` is what was done: ``skipped``, ``resumed``, ``started``. ``after`` is ignored: a Dask caller
    passes the future of the run this one waits for (a §4.1 run's tied run) there, so that Dask orders them.
    """
    import time

    import torch

    if threads:
        torch.set_num_threads(threads)
    state, done = run_state(run, root)
    d = run.path(root)
    if state == "done":
        return {"key": run.key, "state": "skipped", "epochs": done, "seconds": 0.0}
    loader, data_dir = resolve_source(run.dataset, (sources or {}).get(run.dataset))
    device = device or os.environ.get("ASYMHEBB_DEVICE") or "cpu"
    cfg = replace(run.config, data=loader, data_dir=data_dir, device=device)
    if state == "new" and d.exists():
        shutil.rmtree(d)  # killed before its first checkpoint: nothing worth keeping
    t0 = time.perf_counter()
    code = code_version()
    if run.tied_from is None:
        rows = train(cfg, d, resume=(state == "partial"))
    else:
        rows = _train_from_tied(run, cfg, root, d, resume=(state == "partial"))
    _record_provenance(d, code, len(rows))
    return {"key": run.key, "state": "resumed" if state == "partial" else "started", "epochs": len(rows),
            "seconds": time.perf_counter() - t0,
            "final": {k: rows[-1][k] for k in ("train_error", "val_error", "test_error") if k in rows[-1]}}


def _train_from_tied(run: Run, cfg: RunConfig, root, d: Path, resume: bool) -> list[dict]:
    """The second stage of the §4.1 protocol: the tied run's trained first layer, frozen, under an untied rest."""
    import torch

    from .data import load
    from .protocol import freeze_first_layer
    from .train import build_network

    tied_dir = Path(root) / "runs" / run.tied_from
    ckpt = tied_dir / "checkpoint.pt"
    tied_cfg_path = tied_dir / "config.json"
    if not (ckpt.exists() and tied_cfg_path.exists()):
        raise MatrixError(f"run {run.key} (§4.1 protocol) needs the tied run {run.tied_from} finished first; run the "
                          "matrix again once it is")
    tied_cfg = replace(RunConfig.from_dict(json.loads(tied_cfg_path.read_text())), data=cfg.data,
                       data_dir=cfg.data_dir, device="cpu")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    if state["epoch"] < tied_cfg.epochs:
        raise MatrixError(f"run {run.key} (§4.1 protocol) needs the tied run {run.tied_from} finished first "
                          f"({state['epoch']} of {tied_cfg.epochs} epochs now); run the matrix again once it is")
    dataset = load(cfg.data, data_dir=cfg.data_dir, val_size=cfg.val_size, seed=cfg.seed,
                   train_subset=cfg.train_subset)
    shape, classes = dataset.x_train.shape[1:], len(dataset.classes)
    tied = build_network(tied_cfg, shape, classes)
    tied.load_state_dict(state["model"])
    untied = build_network(cfg, shape, classes)
    freeze_first_layer(tied, untied)
    return train(cfg, d, resume=resume, network=untied, dataset=dataset)


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """The commit of the code that runs (and whether the checkout differs from it), or {} outside git.

    Read once per process, when its first run starts: the code a worker has imported is the code of that
    moment, whatever is committed later while it runs."""
    import subprocess

    here = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "models", "sims"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": bool(dirty)} if commit else {}


def _record_provenance(run_dir: Path, code: dict, epochs: int) -> None:
    """``provenance.json``: which commit trained which epochs (a resumed run may span several commits)."""
    path = run_dir / "provenance.json"
    try:
        entries = json.loads(path.read_text()) if path.exists() else []
    except json.JSONDecodeError:
        entries = []
    entries.append({**code, "until_epoch": epochs})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, path)


def load_results(runs, root) -> dict:
    """``{run.key: {"run": run, "config": dict, "metrics": [rows]}}`` for every finished run (``run_state``
    ``done``: an interrupted run would mix shorter curves into the means over seeds). Raises
    :class:`MatrixError`, as ``run_state`` does, where a run directory holds a run with other settings: its
    curves are never drawn as this matrix's."""
    out = {}
    for r in runs:
        if run_state(r, root)[0] == "done":
            d = r.path(root)
            out[r.key] = {"run": r, "metrics": read_metrics(d), "config": json.loads((d / "config.json").read_text())}
    return out


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of ``values`` (NaNs dropped)."""
    v = [float(x) for x in values if x is not None and not math.isnan(x)]
    if not v:
        return float("nan"), float("nan"), 0
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd, len(v)
