"""The training loop (§3, §4): plain SGD on mini-batches, per-epoch metrics, atomic checkpoints, resume.

One step (the "fast" engine): batch → ``network.forward`` → loss (softmax cross-entropy for ``bp``, the hinge
loss of eq. 4 otherwise, whose gradient is the output error of eq. 6) → autograd runs the feedback through
``W``, ``R`` or ``sign(W)`` as the rule says (``models.feedback``) → ``network.apply_update(lr)`` applies the
Hebbian increments ``ΔW = η δ xᵀ`` (and ``ΔR`` under URFB). No momentum, no weight decay, no normalisation.

A run directory holds ``config.json`` (the ``RunConfig``), ``metrics.jsonl`` (one JSON object per epoch) and
``checkpoint.pt`` (weights, RNG state and metrics after the last finished epoch). Both files are replaced
atomically at the end of each epoch, so a run killed at any moment resumes from its last finished epoch and,
on the CPU, continues bit for bit as if it had never stopped: the batch order of epoch e depends only on
(seed, e), and the dropout RNG state is saved with the weights (the masks are drawn from a seed taken from
PyTorch's global generator, ``models.layers.dropout_mask``, so its state is all there is to save).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .allocator import keep_freed_memory
from .losses import default_mu, make_loss, supervisory
from .network import Network
from .rules import get_rule

__all__ = ["RunConfig", "CircuitConfig", "train", "check_run_dir", "config_differences", "build_network", "make_loss", "evaluate", "epoch_order", "curve", "DivergenceError", "RunDirError"]


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite."""


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (exists without --resume, or has nothing to resume)."""


@dataclass
class CircuitConfig:
    """The scheduled engine's signals and the Appendix 1 circuits (docs/spec.md §7; ``circuits.modules``).

    Each field is a flag of ``sims/train.py``: ``--error-signal``, ``--readout``, ``--gate``, ``--circuit-M``,
    ``--circuit-eps``, ``--circuit-cycles``, ``--circuit-order``, ``--circuit-margin``, ``--circuit-K``,
    ``--on-range``, ``--audit-every``, ``--audit-target``, ``--compare-every``; older ``config.json`` files hold them flat in
    ``RunConfig`` under those names (``LEGACY_CIRCUIT_FIELDS``) and still load.
    """

    error_signal: str = "ideal"  # "ideal" (eq. 6) or "circuit" (the output error circuit's readout)
    readout: str = "veto"  # circuit readout: "veto", "phase K", "window-mean"
    gate: str = "ideal"  # "ideal" (σ') or "circuit" (the shutdown units), scheduled engine only
    M: float = 10.0  # bound on |h_L| the output circuit accepts
    eps: float = 0.1  # ε of σ_out
    cycles: int | None = None  # None: the fewest the readout needs
    order: str = "sequential"  # update order inside the circuit: "sequential" or "simultaneous"
    margin: float = 0.0  # σ_ctl margin, fraction of ε
    K: float = 100.0  # bound on |δ| the shutdown gate accepts
    on_range: str = "report"  # out-of-range circuit inputs: "report", "error" or "clip"
    audit_every: int = 0  # every N batches, run the Brian2 rate network on the batch and compare (0: never)
    audit_target: str = "numpy"  # Brian2 target of the audit; "cpp_standalone" compiles once, then reruns
    compare_every: int = 0  # order "paper": every N batches, measure the distance to gradient-order updates


# flat RunConfig field of older config.json files (and CLI dest) -> CircuitConfig field
LEGACY_CIRCUIT_FIELDS = {"error_signal": "error_signal", "readout": "readout", "gate": "gate", "circuit_M": "M",
                         "circuit_eps": "eps", "circuit_cycles": "cycles", "circuit_order": "order",
                         "circuit_margin": "margin", "circuit_K": "K", "on_range": "on_range",
                         "audit_every": "audit_every", "audit_target": "audit_target",
                         "compare_every": "compare_every"}


@dataclass
class RunConfig:
    """Everything that defines a run; serialised into ``config.json``. Defaults are the paper's (docs/spec.md §1–§3)."""

    net: str = "simpnet"
    rule: str = "urfb"
    data: str = "digits"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 500
    lr: float = 0.1
    seed: int = 0
    connectivity: float = 1.0
    mask_output: bool = True
    feedback_init: str = "random"
    slope: float = 0.5
    mu: float | None = None  # None: 1/(C-1)
    kp_decay: float = 0.0  # weight decay λ of the KP peer rule (W and R alike); rule kp refuses 0
    train_subset: int | None = None
    val_size: int | None = None  # None: the data set's default (5000 for CIFAR and Fashion-MNIST)
    device: str = "cpu"
    dtype: str = "float32"
    eval_batch_size: int = 1000
    # Early dynamics (docs/training.md, "What a run records"): every ``probe_every`` SGD steps of the first
    # epoch, the validation loss and error on a fixed class-stratified slice of ``probe_size`` hold-out images
    # (0: no probes). The evaluation before training (epoch 0) is always recorded.
    probe_every: int = 0
    probe_size: int = 1000
    # The timing scheduler (models.schedule; docs/spec.md §6); its signals and circuits are in ``circuit``
    engine: str = "fast"  # "fast" (autograd) or "scheduled" (the event graph of Remark 1)
    order: str = "paper"  # scheduled engine: "paper" (send with just-updated R) or "gradient"
    circuit: CircuitConfig = field(default_factory=CircuitConfig)

    def validate(self) -> None:
        get_rule(self.rule)
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.probe_every < 0 or self.probe_size < 1:
            raise ValueError(f"probe_every must be >= 0 and probe_size >= 1, got {self.probe_every} and "
                             f"{self.probe_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"the learning rate must be a positive number, got {self.lr}")
        if self.slope <= 0:
            raise ValueError(f"slope must be positive, got {self.slope}")
        if get_rule(self.rule).decay and not self.kp_decay > 0:
            raise ValueError(f"--rule kp needs --kp-decay > 0 (got {self.kp_decay}): with no decay KP is URFB under "
                             "another name; pass the decay λ as --kp-decay (a positive number), or use --rule urfb")
        if self.mu is not None and not 0 < self.mu:
            raise ValueError(f"mu must be positive, got {self.mu}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        c = self.circuit
        choices = {"engine": (self.engine, ("fast", "scheduled")), "order": (self.order, ("paper", "gradient")),
                   "error_signal": (c.error_signal, ("ideal", "circuit")), "gate": (c.gate, ("ideal", "circuit")),
                   "on_range": (c.on_range, ("report", "error", "clip"))}
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {value!r}")
        if self.engine == "scheduled" and get_rule(self.rule).feedback == "D":
            raise ValueError("--rule dfa needs --engine fast: DFA sends the output error to every layer directly, "
                             "not down the top-down sequence of Remark 1 that the scheduled engine runs")
        if self.engine == "fast" and c.gate == "circuit":
            raise ValueError("--gate circuit needs --engine scheduled (the fast engine gates with σ' in autograd)")
        if c.audit_target not in ("numpy", "cython", "cpp_standalone"):
            raise ValueError(f"--audit-target must be numpy, cython or cpp_standalone, got {c.audit_target!r}")
        if self.engine == "fast" and c.audit_every:
            raise ValueError("--audit-every needs --engine scheduled")
        if c.error_signal == "circuit" and get_rule(self.rule).loss != "hinge":
            raise ValueError(f"--error-signal circuit computes the hinge loss's error (eq. 6); rule {self.rule!r} "
                             "uses softmax cross-entropy: choose bp-h, frfb or urfb")
        from circuits.params import check_params  # imports nothing: no Brian2, no circuit modules

        # μ ≤ 1 only binds the output circuit (the hinge loss takes any μ > 0); μ unset is 1/(C-1) ≤ 1
        check_params(M=c.M, S=1.0, mu=self.mu if c.error_signal == "circuit" else None, eps=c.eps, K=c.K,
                     margin=c.margin, cycles=c.cycles)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but PyTorch sees no CUDA device; use --device cpu")

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """A config from its ``asdict`` form; also reads older files, whose circuit fields were flat
        (``circuit_M``, ``readout``, ``gate``, ... : ``LEGACY_CIRCUIT_FIELDS``)."""
        d = dict(d)
        circuit = d.pop("circuit", None)
        circuit = dict(circuit) if isinstance(circuit, dict) else {}
        for old, new in LEGACY_CIRCUIT_FIELDS.items():
            if old in d:
                value = d.pop(old)
                if new in circuit and circuit[new] != value:
                    raise ValueError(f"config gives {old}={value!r} and circuit.{new}={circuit[new]!r}")
                circuit[new] = value
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        unknown |= {f"circuit.{k}" for k in set(circuit) - {f.name for f in fields(CircuitConfig)}}
        if unknown:
            raise ValueError(f"config has unknown fields {sorted(unknown)}")
        return cls(**d, circuit=CircuitConfig(**circuit))


def build_network(config: RunConfig, in_shape, num_classes: int) -> Network:
    return Network(config.net, in_shape, num_classes, rule=config.rule, slope=config.slope,
                   connectivity=config.connectivity, mask_output=config.mask_output,
                   feedback_init=config.feedback_init, seed=config.seed,
                   dtype=getattr(torch, config.dtype))


def make_circuits(config: RunConfig, mu: float):
    """The circuit modules a config asks for: (output error circuit or None, shutdown gate or None)."""
    c = config.circuit
    out = gate = None
    if c.error_signal == "circuit" or c.gate == "circuit":
        from circuits.modules import OutputErrorCircuit, ShutdownGate  # circuits meet training only here
        if c.error_signal == "circuit":
            out = OutputErrorCircuit(M=c.M, S=1.0, mu=mu, eps=c.eps, cycles=c.cycles, readout=c.readout,
                                     order=c.order, margin=c.margin, on_range=c.on_range)
        if c.gate == "circuit":
            gate = ShutdownGate(K=c.K, on_range=c.on_range)
    return out, gate


def make_step(config: RunConfig, net: Network, mu: float):
    """The step function of the chosen engine (None: the fast engine with the ideal error signal)."""
    circuit, gate = make_circuits(config, mu)
    if config.engine == "fast":
        if circuit is None:
            return None
        error_fn = lambda out, y, mu: circuit(out.detach(), supervisory(y, out))  # noqa: E731
        return _FastCircuitStep(circuit, make_loss(config.rule, mu, error_fn))
    from .schedule import ScheduledEngine, brian2_audit

    c = config.circuit
    audit = brian2_audit(circuit, target=c.audit_target) if (c.audit_every and circuit is not None) else None
    return ScheduledEngine(net, order=config.order, error_signal=circuit, gate=gate, mu=mu,
                           compare_every=c.compare_every, audit=audit, audit_every=c.audit_every)


@torch.no_grad()
def evaluate(net: Network, x: torch.Tensor, y: torch.Tensor, loss_fn, batch_size: int) -> tuple[float, float]:
    """(mean loss, error rate) with dropout off."""
    was_training = net.training
    net.eval()
    total_loss, wrong = 0.0, 0
    for i in range(0, len(y), batch_size):
        out = net(x[i:i + batch_size])
        yb = y[i:i + batch_size]
        total_loss += float(loss_fn(out, yb)) * len(yb)
        wrong += int((out.argmax(1) != yb).sum())
    net.train(was_training)
    return total_loss / max(len(y), 1), wrong / max(len(y), 1)


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc), else set and put back."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    """Write ``path`` through a temporary file in its folder and a rename, so that a reader never sees half a
    file. ``mkstemp`` creates the file with mode 0600; it gets the mode an ordinary new file would get (0666
    less the umask, usually 0644), so that the other users of a shared run folder can read it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_json(path: Path, obj) -> None:
    _atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def _write_metrics(path: Path, rows: list[dict]) -> None:
    _atomic_write(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in rows).encode()))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The batch order of an epoch: a function of (seed, epoch) only, so resumed runs see the same batches."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def train(config: RunConfig, out_dir: str | os.PathLike | None = None, *, resume: bool = False,
          network: Network | None = None, dataset=None, progress: bool = False, log=None,
          step=None) -> list[dict]:
    """Train as ``config`` says; returns the per-epoch metrics (also written to ``out_dir`` if given).

    ``network`` replaces the network built from ``config.net`` (e.g. an untied copy, §4.1); ``dataset``
    (a ``models.data.Dataset``) replaces loading ``config.data``. ``step(net, x, y, loss_fn, lr, decay)``
    replaces the fast engine's step and returns ``(loss, output)`` of the batch (another engine, e.g. the
    scheduled one, plugs in here). ``log`` receives one line per epoch.
    """
    config.validate()
    keep_freed_memory()  # the step's large tensors reuse the previous step's memory (models.allocator)
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    state = check_run_dir(config, out, resume=resume)
    if state is not None and state["epoch"] >= config.epochs:  # resuming a finished run: nothing to train
        # but the metrics file is rewritten from the checkpoint: a run stopped between writing the checkpoint and
        # appending its epoch's row left that row only in the checkpoint
        _write_metrics(out / "metrics.jsonl", state["metrics"])
        if log is not None:
            log(f"the run in {out} is finished ({state['epoch']} of {config.epochs} epochs); nothing to train "
                f"(a larger --epochs trains further)")
        return state["metrics"]
    if state is not None and log is not None:
        for name, (was, now) in state["changed"].items():
            log(f"resuming with {name} {was!r} -> {now!r} (where the run computes, not what it computes)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    if dataset is None:
        from .data import load

        dataset = load(config.data, data_dir=config.data_dir, val_size=config.val_size, seed=config.seed,
                       train_subset=config.train_subset)
    num_classes = len(dataset.classes)
    mu = config.mu if config.mu is not None else default_mu(num_classes)
    device = torch.device(config.device)
    dtype = getattr(torch, config.dtype)
    net = network if network is not None else build_network(config, dataset.x_train.shape[1:], num_classes)
    net.set_rule(config.rule)
    net.to(device)
    loss_fn = make_loss(config.rule, mu)

    def tensors(x, y):
        if x is None or len(x) == 0:
            return None
        return torch.as_tensor(x, dtype=dtype).to(device), torch.as_tensor(y, dtype=torch.long).to(device)

    train_xy = tensors(dataset.x_train, dataset.y_train)
    val_xy = tensors(dataset.x_val, dataset.y_val)
    test_xy = tensors(dataset.x_test, dataset.y_test)
    if train_xy is None:
        raise ValueError("the training split is empty; use a larger --train-subset or a smaller --val-size")

    rows: list[dict] = []
    start = 0
    if resume:
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        _write_json(out / "config.json", asdict(config))  # the run's own record: its new epoch count
        net.load_state_dict(state["model"])
        rows = state["metrics"]
        start = state["epoch"]
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    else:
        torch.manual_seed(config.seed + 1)  # the dropout masks' stream
        if device.type == "cuda":
            torch.cuda.manual_seed(config.seed + 1)
        if out is not None:
            _write_json(out / "config.json", asdict(config))

    if out is not None and resume:
        _write_metrics(out / "metrics.jsonl", rows)  # drop rows written after the checkpoint

    step = step or make_step(config, net, mu) or _fast_step
    x_train, y_train = train_xy
    n = len(y_train)
    steps_per_epoch = -(-n // config.batch_size)
    probe_xy = _probe_slice(dataset, val_xy, config) if config.probe_every else None
    initial = None
    if start == 0:  # epoch 0: the network before any update, the first point of every curve
        initial = _initial_metrics(net, dataset, train_xy, val_xy, test_xy, loss_fn, config)
    net.train()
    for epoch in range(start, config.epochs):
        probes = []
        order = epoch_order(n, config.seed, epoch).to(device)
        t0 = time.perf_counter()
        total_loss = torch.zeros((), dtype=torch.float64, device=device)
        wrong = torch.zeros((), dtype=torch.long, device=device)
        batches = range(0, n, config.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, unit="batch")
        for i in batches:
            idx = order[i:i + config.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            loss, outb = step(net, xb, yb, loss_fn, config.lr, config.kp_decay)
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"the loss became {float(loss)} at epoch {epoch + 1}, batch {i // config.batch_size + 1}: "
                    f"training diverged; lower --lr (now {config.lr})")
            total_loss += loss.detach().double() * len(yb)
            wrong += (outb.argmax(1) != yb).sum()
            done_steps = i // config.batch_size + 1
            if probe_xy is not None and epoch == 0 and done_steps % config.probe_every == 0 \
                    and done_steps < steps_per_epoch:  # the epoch's end is recorded on the whole hold-out
                probes.append(_probe(net, probe_xy, loss_fn, config, done_steps))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "train_loss": float(total_loss) / n,
               "train_error": int(wrong) / n}
        if val_xy is not None:
            row["val_loss"], row["val_error"] = evaluate(net, *val_xy, loss_fn, config.eval_batch_size)
        if test_xy is not None:
            row["test_loss"], row["test_error"] = evaluate(net, *test_xy, loss_fn, config.eval_batch_size)
        if hasattr(step, "epoch_metrics"):
            row.update(step.epoch_metrics())
        al = net.alignment()
        row["alignment"] = {k: v["correlation"] for k, v in al.items()}
        row["angle"] = {k: v["angle"] for k, v in al.items()}
        row["seconds"] = seconds
        if epoch == 0 and initial is not None:
            row["initial"] = initial
        if probes:
            row["probes"] = probes
        rows.append(row)
        if log is not None:
            log(_format_row(row))
            if (config.circuit.error_signal == "circuit" or config.circuit.gate == "circuit") and \
                    "regime_fraction" in row:
                log(_format_circuit_row(row))
        if out is not None:
            state = {"epoch": epoch + 1, "model": net.state_dict(), "metrics": rows,
                     "rng": torch.get_rng_state(), "config": asdict(config),
                     "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
            _atomic_write(ckpt_path, lambda f: torch.save(state, f))
            _write_metrics(out / "metrics.jsonl", rows)
    return rows


# Streams of models.data.stratified_split for the slices below (0-2 are the data module's own).
_STREAM_PROBE, _STREAM_INITIAL = 11, 12
INITIAL_TRAIN_SIZE = 5000  # training images evaluated at epoch 0 (a class-stratified sample)


def _alignment(net: Network) -> dict:
    return {k: v["correlation"] for k, v in net.alignment().items()}


def _initial_metrics(net, dataset, train_xy, val_xy, test_xy, loss_fn, config) -> dict:
    """Epoch 0: losses and errors of the untrained network (dropout off) and its W–R correlations.

    The training error is measured on a fixed class-stratified sample of ``INITIAL_TRAIN_SIZE`` training
    images (all of them for smaller sets): every later epoch's training error is the running error of that
    epoch's own batches, which costs nothing extra; this one evaluation needs a pass of its own.
    """
    from .data import stratified_split

    y = dataset.y_train
    k = min(INITIAL_TRAIN_SIZE, len(y))
    _, held = stratified_split(y, k, config.seed, stream=_STREAM_INITIAL)
    idx = torch.as_tensor(held, device=train_xy[0].device)
    out = {"epoch": 0, "step": 0}
    out["train_loss"], out["train_error"] = evaluate(net, train_xy[0][idx], train_xy[1][idx], loss_fn,
                                                     config.eval_batch_size)
    for name, xy in (("val", val_xy), ("test", test_xy)):
        if xy is not None:
            out[f"{name}_loss"], out[f"{name}_error"] = evaluate(net, *xy, loss_fn, config.eval_batch_size)
    out["alignment"] = _alignment(net)
    return out


def _probe_slice(dataset, val_xy, config):
    """The fixed class-stratified slice of the validation hold-out that the first epoch's probes evaluate."""
    from .data import stratified_split

    if val_xy is None:
        return None
    k = min(config.probe_size, len(dataset.y_val))
    _, held = stratified_split(dataset.y_val, k, config.seed, stream=_STREAM_PROBE)
    idx = torch.as_tensor(held, device=val_xy[0].device)
    return val_xy[0][idx], val_xy[1][idx]


def _probe(net, probe_xy, loss_fn, config, steps: int) -> dict:
    loss, err = evaluate(net, *probe_xy, loss_fn, config.eval_batch_size)
    return {"step": steps, "val_loss": loss, "val_error": err, "alignment": _alignment(net)}


def curve(rows: list[dict], key: str, *, probes: bool = False) -> list[tuple[int, float]]:
    """``[(SGD step, value)]`` of a metric from epoch 0 on: the ``initial`` record, (with ``probes``) the first
    epoch's probes (probes hold validation metrics on their slice only), then one point per epoch."""
    out = []
    if rows and "initial" in rows[0] and key in rows[0]["initial"]:
        out.append((0, rows[0]["initial"][key]))
    if probes and rows:
        out += [(p["step"], p[key]) for p in rows[0].get("probes", []) if key in p]
    out += [(r["step"], r[key]) for r in rows if key in r and "step" in r]
    return out


# settings a resumed run may take from the caller: the epoch count (train further) and where the run computes
# (models.experiments resumes with the data source and device of the current call)
RESUME_MAY_CHANGE = ("epochs", "device", "data_dir", "eval_batch_size")


def _flat(config: RunConfig) -> dict:
    d = asdict(config)
    d.update({f"circuit.{k}": v for k, v in d.pop("circuit").items()})
    return d


def config_differences(saved: RunConfig, new: RunConfig, ignore=()) -> dict[str, tuple]:
    """``{setting: (saved value, new value)}`` for every setting (circuit ones as ``circuit.M`` ...) that differs."""
    a, b = _flat(saved), _flat(new)
    return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}


def _describe(diff: dict) -> str:
    return ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in diff.items())


def check_run_dir(config: RunConfig, out_dir, *, resume: bool = False) -> dict | None:
    """Check, before any work, that ``out_dir`` can hold this run; ``RunDirError`` (one line) otherwise.

    A new run needs a directory without a run in it. A resumed run needs a checkpoint and the settings it
    was started with (``config.json``): any other difference than ``RESUME_MAY_CHANGE`` is refused, naming
    the settings, and so is an epoch count below the epochs already trained. Returns None for a new run, else
    ``{"epoch": epochs done, "metrics": rows, "changed": {setting: (saved, new)}}``.
    """
    if out_dir is None:
        if resume:
            raise RunDirError("--resume needs --out DIR, the run directory to continue")
        return None
    out = Path(out_dir)
    ckpt_path = out / "checkpoint.pt"
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a run directory; choose another --out")
    if not resume:
        if ckpt_path.exists() or (out / "metrics.jsonl").exists():
            saved = load_config(out) if (out / "config.json").exists() else None
            diff = config_differences(saved, config, ignore=("epochs",)) if saved is not None else {}
            if diff:
                raise RunDirError(f"run directory {out} already holds a run with other settings ({_describe(diff)});"
                                  " choose another --out for the new settings")
            raise RunDirError(f"run directory {out} already holds a run; pass --resume to continue it or "
                              "choose another --out")
        return None
    if not ckpt_path.exists():
        raise RunDirError(f"nothing to resume in {out}: no checkpoint.pt there; start a new run without --resume")
    try:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        done, rows = int(state["epoch"]), state["metrics"]
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one line
        raise RunDirError(f"{ckpt_path} cannot be read ({type(e).__name__}); start a new run in another --out") \
            from None
    saved = load_config(out) if (out / "config.json").exists() else RunConfig.from_dict(state["config"])
    diff = config_differences(saved, config, ignore=RESUME_MAY_CHANGE)
    if diff:
        raise RunDirError(f"the run in {out} was started with other settings ({_describe(diff)}); continue it with "
                          "its own settings (only --epochs may change) or use another --out for the new ones")
    if config.epochs < done:
        raise RunDirError(f"the run in {out} has already trained {done} epochs; --epochs {config.epochs} is fewer: "
                          f"pass --epochs {done} or more, or leave --epochs out")
    changed = {k: v for k, v in config_differences(saved, config).items() if k != "epochs"}
    return {"epoch": done, "metrics": rows, "changed": changed}


def _fast_step(net: Network, x, y, loss_fn, lr: float, decay: float):
    out = net(x)
    loss = loss_fn(out, y)
    loss.backward()
    net.apply_update(lr, decay)
    return loss.detach(), out.detach()


def _format_row(row: dict) -> str:
    """The epoch line: the loss, then error rates (the share of misclassified examples) of each split."""
    parts = [f"epoch {row['epoch']:>3}", f"loss {row['train_loss']:.4f}", f"train err {100 * row['train_error']:5.2f}%"]
    if "val_error" in row:
        parts.append(f"val err {100 * row['val_error']:5.2f}%")
    if "test_error" in row:
        parts.append(f"test err {100 * row['test_error']:5.2f}%")
    al = " ".join(f"{k}={v:+.2f}" for k, v in row["alignment"].items())
    parts.append(f"corr(W,R) {al}")
    parts.append(f"{row['seconds']:.1f}s")
    return " | ".join(parts)


def _format_circuit_row(row: dict) -> str:
    """The circuits' epoch line: output units per regime, range violations, Brian2 audit, order distance."""
    rf = row.get("regime_fraction", {})
    parts = ["  circuits: regimes " + " ".join(f"{k} {100 * v:.1f}%" for k, v in rf.items())]
    rv = row.get("range_violations", {})
    if rv:
        names = {"output_M": "|h|>=M", "gate_K": "|delta|>=K"}
        parts.append("out of range " + ", ".join(f"{names.get(k, k)} {v}" for k, v in rv.items()))
    if "audit" in row:
        a = row["audit"]
        parts.append(f"Brian2 audit {a['mismatches']} mismatches in {a['batches']} batches")
    if "order_distance" in row:
        parts.append(f"paper vs gradient order {row['order_distance']:.2e}")
    return " | ".join(parts)


class _FastCircuitStep:
    """The fast engine's step with the output circuit's δ in place of eq. 6; counts the circuit's regimes and
    range violations per epoch (``epoch_metrics``, the keys the scheduled engine writes)."""

    def __init__(self, circuit, loss_fn):
        self.circuit, self.loss_fn = circuit, loss_fn
        self.reset_metrics()

    def reset_metrics(self) -> None:
        self._n, self._out = 0, 0
        self._regimes = {k: 0 for k in ("on-update", "on-correct", "off-update", "off-correct")}

    def __call__(self, net, x, y, _loss, lr, decay):
        loss, out = _fast_step(net, x, y, self.loss_fn, lr, decay)
        info = self.circuit.last_info
        self._n += info.get("n", 0)
        self._out += info.get("n_out_of_range", 0)
        for k, v in info.get("regimes", {}).items():
            self._regimes[k] = self._regimes.get(k, 0) + v
        return loss, out

    def epoch_metrics(self) -> dict:
        n = max(self._n, 1)
        row = {"regime_fraction": {k: v / n for k, v in self._regimes.items()},
               "range_violations": {"output_M": self._out}}  # the fast engine has no shutdown gate
        self.reset_metrics()
        return row


def load_config(run_dir: str | os.PathLike) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunDirError(f"{path} not found: {run_dir} is not a run directory")
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise RunDirError(f"{path} is corrupt ({e}); start a new run in another --out") from None


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

