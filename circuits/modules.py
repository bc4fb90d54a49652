"""PyTorch equivalent-behaviour modules of the Appendix 1 circuits (Fig. 13–15), for use inside training.

``OutputErrorCircuit`` runs the output error circuit's map (docs/spec.md §7.1) on a whole batch at once and returns
the readout δ (eq. 6 with the default ``veto`` readout); ``ShutdownGate`` applies the shutdown circuit
(docs/spec.md §7.2, eq. 3 for |δ| < K). Both are thin state-holding wrappers around the pure functions of
``circuits.transfer`` and the readouts of ``circuits.output_error`` (the same code the Brian2 networks are
tested against), batched, device-agnostic (they follow the input's device and dtype) and loop-free over
examples (the only Python loop is over the few cycles of the map).

In float64 they reproduce the Brian2 rate networks' trajectories exactly. In float32 (training), the sums
h + 2M s − 2M t round: an input within about ``(3M)·2⁻²³`` of ±S or of ±M can fall on the other side of a
threshold of σ_out (measured in ``tests/test_circuit_modules.py``; see docs/circuits.md). Near ±S that is the
measure-zero boundary where the hinge loss is flat; near ±M the range check reports it (``enforce_range``
counts |h| within 16 float32 epsilons of M as a violation).

Per-batch information (counts; Python ints) is kept in ``module.last_info`` after each forward, and
cumulative violation counts in ``module.total_out_of_range``; range violations warn once per module in
``on_range="report"`` mode, raise in ``"error"`` mode, and are clipped into range in ``"clip"`` mode.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from circuits import output_error, shutdown, transfer
from circuits.params import check_params
from circuits.regimes import CircuitRangeWarning, ON_RANGE_MODES, _check_s, enforce_range, regime_counts

__all__ = ["supervisory", "OutputErrorCircuit", "ShutdownGate"]


def supervisory(labels: torch.Tensor, classes: int, *, dtype=torch.float32) -> torch.Tensor:
    """The supervisory signals s (batch, classes): +1 at each example's label, -1 elsewhere."""
    if labels.dim() != 1:
        raise ValueError(f"labels must be a 1-D tensor of class indices, got shape {tuple(labels.shape)}.")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"labels must lie in [0, {classes}); got values in [{int(labels.min())}, {int(labels.max())}].")
    s = torch.full((labels.shape[0], classes), -1.0, dtype=dtype, device=labels.device)
    s.scatter_(1, labels.long().unsqueeze(1), 1.0)
    return s


def _record_violations(module, report, what: str, fix: str) -> None:
    """Count a batch's range violations on ``module``; in "report" mode warn once per module."""
    if not report.n_violations:
        return
    module.total_out_of_range += report.n_violations
    if module.on_range == "report" and not module._warned:
        module._warned = True
        warnings.warn(f"{report.n_violations} of {report.n} {what}. Counted in last_info['n_out_of_range'] (this "
                      f"warning is shown once per module). Fix: {fix}.", CircuitRangeWarning, stacklevel=4)


class OutputErrorCircuit(nn.Module):
    """The output error circuit (Fig. 14) for a batch: ``forward(h, s) -> δ`` (docs/spec.md §7.1).

    Parameters (keyword-only; no learnable parameters):
        M: bound on |h| (the circuit needs |h| < M).   S: learning threshold (1 in §3).
        mu: off-class error value μ (hinge default 1/(C-1)).   eps: the oscillation increment ε > 0.
        cycles: cycles of the map per example (default: the fewest the readout needs: 2 sequential,
            4 simultaneous for ``veto``/``window-mean``; K for ``"phase K"``).
        readout: ``"veto"`` (default; equals eq. 6), ``"phase K"``, ``"window-mean"`` (``circuits.output_error``).
        order: ``"sequential"`` (paper, period 2) or ``"simultaneous"`` (period 4).
        margin: σ_ctl threshold margin as a fraction of ε (0 = paper).
        on_range: ``"report"`` (count, warn once per module), ``"error"`` (raise ValueError), ``"clip"``
            (clip h into (-M, M)) for inputs with |h| ≥ M.

    ``forward(h, s)``: ``h`` the output layer's feed-forward input h_L, shape (batch, classes), any float
    dtype and device; ``s`` the supervisory signals of the same shape, +1 for the presented class and -1
    elsewhere (``supervisory(labels, classes)`` builds it). Every circuit starts from δ = t = 0 (t_c reset
    per example). Returns the readout δ, same shape, dtype and device as ``h``; no gradient flows through
    it (the circuit is a step function). After the call ``self.last_info`` holds
    ``{"n": int, "regimes": {name: int for the four regimes of circuits.check}, "n_out_of_range": int}``.
    ``trajectory(h, s)`` returns the states δ, t after each cycle, shape (cycles, batch, classes).
    """

    def __init__(self, *, M: float, S: float = 1.0, mu: float, eps: float, cycles: int | None = None,
                 readout="veto", order: str = "sequential", margin: float = 0.0, on_range: str = "report"):
        super().__init__()
        output_error._check_order(order)
        need = output_error.min_cycles(readout, order)
        cycles = need if cycles is None else cycles
        output_error._check_params(M=M, S=S, mu=mu, eps=eps, margin=margin, cycles=cycles)
        if cycles < need:
            raise ValueError(f"readout {readout!r} with order {order!r} needs cycles ≥ {need}, got {cycles}.")
        if on_range not in ON_RANGE_MODES:
            raise ValueError(f"on_range must be one of {ON_RANGE_MODES}, got {on_range!r}.")
        self.M, self.S, self.mu, self.eps = float(M), float(S), float(mu), float(eps)
        self.cycles, self.readout, self.order = int(cycles), readout, order
        self.margin, self.on_range = float(margin), on_range
        self._last, self._last_info = None, None
        self.total_out_of_range = 0
        self._warned = False

    def extra_repr(self) -> str:
        return (f"M={self.M}, S={self.S}, mu={self.mu}, eps={self.eps}, cycles={self.cycles}, "
                f"readout={self.readout!r}, order={self.order!r}, margin={self.margin}, on_range={self.on_range!r}")

    def _check(self, h, s):
        if not (torch.is_tensor(h) and torch.is_tensor(s)):
            raise TypeError("h and s must be torch tensors; use circuits.output_error.simulate for NumPy arrays.")
        if h.shape != s.shape:
            raise ValueError(f"h has shape {tuple(h.shape)} but s has shape {tuple(s.shape)}; both are (batch, classes).")
        if not h.is_floating_point():
            raise TypeError(f"h must be a floating-point tensor, got {h.dtype}.")
        h = h.detach()
        s = s.detach().to(h.dtype)
        _check_s(s)
        h, report = enforce_range(h, bound=self.M, on_range=self.on_range, name="h", fix=output_error.RANGE_FIX,
                                  warn=False)
        _record_violations(self, report, f"inputs have |h| ≥ M = {self.M:g}; the circuit does not compute eq. 6 "
                                          f"there", output_error.RANGE_FIX)
        self._last = (h, s, report)
        self._last_info = None
        return h, s

    @property
    def last_info(self) -> dict:
        """Counts of the last batch: ``{"n", "regimes": {name: count}, "n_out_of_range"}`` (computed on first
        access after each forward, so a training loop that never reads it does not pay for the counts)."""
        if self._last_info is None:
            if self._last is None:
                return {}
            h, s, report = self._last
            self._last_info = {"n": report.n, "regimes": regime_counts(h, s, S=self.S),
                               "n_out_of_range": report.n_violations}
        return self._last_info

    def _iterate(self, h, s):
        return output_error.iterate_map(h, s, M=self.M, S=self.S, mu=self.mu, eps=self.eps, cycles=self.cycles,
                                        order=self.order, margin=self.margin)

    def trajectory(self, h: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States (δ, t) after each cycle, each of shape (cycles, *h.shape); range handled as in forward."""
        h, s = self._check(h, s)
        return self._iterate(h, s)

    def forward(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h, s = self._check(h, s)
        delta, _ = self._iterate(h, s)
        return output_error.apply_readout(delta, self.readout, order=self.order)


class ShutdownGate(nn.Module):
    """The shutdown circuit (Fig. 15): ``forward(x, delta) -> δ̃`` (docs/spec.md §7.2, eq. 3 for |δ| < K).

    Parameters: ``K`` the bound on |δ| the circuit assumes; ``on_range`` as in ``OutputErrorCircuit``
    (for |δ| ≥ K; ``"clip"`` clips δ into (-K, K) before gating).

    ``forward(x, delta)``: ``x`` the layer's feed-forward activity σ(h) (any shape), ``delta`` the incoming
    feedback (R δ from the layer above) of the same shape, dtype and device. Returns δ̃ = δ where |x| < 1
    and 0 where the unit is saturated (|x| = 1). The slope factor a of σ' is not applied here. Gradients do
    not flow. After the call ``self.last_info`` holds ``{"n": int, "n_gated": int (units shut off),
    "n_out_of_range": int}``.
    """

    def __init__(self, *, K: float, on_range: str = "report"):
        super().__init__()
        check_params(K=K)
        if on_range not in ON_RANGE_MODES:
            raise ValueError(f"on_range must be one of {ON_RANGE_MODES}, got {on_range!r}.")
        self.K, self.on_range = float(K), on_range
        self.last_info: dict = {}
        self.total_out_of_range = 0
        self._warned = False

    def extra_repr(self) -> str:
        return f"K={self.K}, on_range={self.on_range!r}"

    def forward(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        if not (torch.is_tensor(x) and torch.is_tensor(delta)):
            raise TypeError("x and delta must be torch tensors; use circuits.shutdown.simulate for NumPy arrays.")
        if x.shape != delta.shape:
            raise ValueError(f"x has shape {tuple(x.shape)} but delta has shape {tuple(delta.shape)}; pass one δ per unit.")
        delta, report = enforce_range(delta.detach(), bound=self.K, on_range=self.on_range, name="delta",
                                      fix=shutdown.RANGE_FIX, warn=False)
        _record_violations(self, report, f"feedback values have |δ| ≥ K = {self.K:g}; the gate does not compute "
                                          f"eq. 3 there", shutdown.RANGE_FIX)
        x = x.detach().to(delta.dtype)
        self.last_info = {"n": report.n, "n_gated": int(torch.count_nonzero(x.abs() >= 1.0)),
                          "n_out_of_range": report.n_violations}
        return transfer.gate(x, delta, K=self.K)
