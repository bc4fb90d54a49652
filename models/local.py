"""Locally connected ("untied") layers with separate feedback (§4.1), and the measures of their filters.

§4.1 of the paper replaces each convolution by the sparse matrix it implies, with one independent weight per
(output position i, output channel, input channel, kernel offset k), updated by its own Hebbian product
``δ_{l,i} x_{l-1,i+k}`` instead of the convolution's sum over positions ``Σ_i δ_{l,i} x_{l-1,i+k}`` (docs/spec.md §4).

Storage (dense per position, no sparse index tensors): ``W`` and ``R`` have shape ``(H·W, C_out, C_in·k·k)``,
position-major (row-major over the output grid), the last axis in ``F.unfold``'s (= a conv kernel's) order
``(c, dy, dx)``, so ``W[p]`` is a conv kernel ``(C_out, C_in, k, k)`` flattened. Padding is 'same' exactly as in
``models.feedback.conv2d``: ``(k-1)//2`` zeros before and ``k//2`` after (odd and even k). Weights that would
reach into the zero padding do not exist in the paper's sparse matrix: they are zero from the start and stay
zero (their product with a padded zero is exactly zero under every rule), see ``in_grid``.

Computation: the input patches are gathered once per step into ``X`` of shape ``(H·W, C_in·k·k, N)``
(batch last: one strided copy whose inner runs are whole batches), then

    forward   h[p] = W[p] X[p]                        (torch.bmm over positions)
    update    grad W[p] = -δ[p] X[p]ᵀ                 (torch.bmm; the Hebbian product of each position)
    feedback  signal to x = fold(B[p]ᵀ δ[p])          (torch.bmm, then the k·k shifted sums of a fold)

with ``B`` the rule's feedback tensor (``W``: exact back-propagation; ``R``: FRFB/URFB; ``sign(W)``), as for
``models.feedback.conv2d``. The output is returned as an (N, C, H, W) view of position-major storage, which
the next local layer reads without reordering. The large temporaries (patches, feedback) live in a per-layer
workspace reused from step to step: fresh memory of that size costs more in page faults than the copy itself.

Also here: ``untied_spec`` (a specification with ``conv`` written ``local``) and ``filter_similarity`` (Fig. 8:
how alike the filters of one channel are across space, against a shuffled baseline). Converting whole
networks (``untie``) and the §4.1 protocol, which trains them, live in ``models.protocol``.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from .layers import Conv, WeightLayer
from .spec import resolve

__all__ = ["local", "patches", "fold_patches", "in_grid", "Local", "untied_spec", "filter_similarity", "filters_at"]


def _pad(k: int) -> tuple[int, int]:
    """'same' padding (before, after) for a k×k kernel, as ``models.feedback.conv2d``."""
    return (k - 1) // 2, k // 2


def patches(x: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """The k×k input patches of every output position: ``X[p, (c, dy, dx), n] = x_pad[n, c, i+dy, j+dx]``.

    ``x`` is (N, C, H, W); the result is a contiguous (H·W, C·k·k, N) tensor (one copy), written into
    ``out`` when given (a reused buffer of that shape, dtype and device).
    """
    n, c, h, w = x.shape
    a, b = _pad(k)
    xp = x.new_zeros(h + k - 1, w + k - 1, c, n)
    xp[a:a + h, a:a + w] = x.permute(2, 3, 1, 0)
    s = xp.stride()
    windows = xp.as_strided((h, w, c, k, k, n), (s[0], s[1], s[2], s[0], s[1], s[3]))
    if out is None:
        return windows.reshape(h * w, c * k * k, n)
    out.view(h, w, c, k, k, n).copy_(windows)
    return out


def fold_patches(g: torch.Tensor, k: int, shape) -> torch.Tensor:
    """Adjoint of ``patches``: sums each patch entry back onto the input pixel it came from.

    ``g`` is (H·W, C·k·k, N); ``shape`` is the input's (N, C, H, W); returns an (N, C, H, W) view.
    """
    n, c, h, w = shape
    a, _ = _pad(k)
    g6 = g.view(h, w, c, k, k, n)
    gp = g.new_zeros(h + k - 1, w + k - 1, c, n)
    for dy in range(k):
        for dx in range(k):
            gp[dy:dy + h, dx:dx + w] += g6[:, :, :, dy, dx]
    return gp[a:a + h, a:a + w].permute(3, 2, 0, 1)


def in_grid(hw, c_in: int, k: int, device=None) -> torch.Tensor:
    """Boolean (H·W, 1, C_in·k·k): True where offset (dy, dx) of position (i, j) lands inside the input grid.

    The False entries are the connections a 'same' convolution makes to its zero padding; the paper's sparse
    matrix has no such entries, so a locally connected layer keeps them at zero.
    """
    h, w = hw
    a, _ = _pad(k)
    d = torch.arange(k, device=device) - a
    rows = (torch.arange(h, device=device)[:, None] + d[None, :])  # (h, k): input row of (i, dy)
    cols = (torch.arange(w, device=device)[:, None] + d[None, :])  # (w, k)
    ok_r = (rows >= 0) & (rows < h)
    ok_c = (cols >= 0) & (cols < w)
    ok = ok_r[:, None, :, None] & ok_c[None, :, None, :]  # (h, w, k, k)
    return ok[:, :, None].expand(h, w, c_in, k, k).reshape(h * w, 1, c_in * k * k)


def _buffer(workspace, key, shape, like):
    """A tensor of ``shape`` kept in ``workspace`` between steps (fresh memory costs page faults: measured
    ~8× slower than refilling a resident buffer for 150 MB). None: a fresh tensor."""
    if workspace is None:
        return like.new_empty(shape)
    t = workspace.get(key)
    if t is None or t.shape != shape or t.dtype != like.dtype or t.device != like.device:
        t = workspace[key] = like.new_empty(shape)
    return t


class _Local(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, B, k, workspace):
        n, c, h, w = x.shape
        # The patches buffer is reused by the next forward; it is saved for backward, and autograd's version
        # check raises (rather than computing a wrong update) if a second forward overwrote it first.
        X = patches(x, k, _buffer(workspace, "X", (h * w, c * k * k, n), x))
        out = torch.bmm(W, X)  # (H·W, C_out, N)
        ctx.save_for_backward(X, B)
        ctx.k, ctx.in_shape, ctx.workspace = k, (n, c, h, w), workspace
        return out.view(h, w, W.shape[1], n).permute(3, 2, 0, 1)

    @staticmethod
    def backward(ctx, g):
        X, B = ctx.saved_tensors
        n, c, h, w = ctx.in_shape
        gl = g.permute(2, 3, 1, 0)  # (H, W, C_out, N): -δ per position, batch last
        if gl.is_contiguous():
            G = gl.view(h * w, g.shape[1], n)
        else:
            G = _buffer(ctx.workspace, "G", (h * w, g.shape[1], n), g)
            G.view(gl.shape).copy_(gl)
        gx = gW = None
        if ctx.needs_input_grad[1]:  # each position's own product δ_i x_{i+k} (summed over the batch only)
            gW = torch.bmm(G, X.transpose(1, 2))
        if ctx.needs_input_grad[0]:  # the signal sent down through the feedback tensor B
            gX = _buffer(ctx.workspace, "gX", X.shape, X)
            torch.bmm(B.transpose(1, 2), G, out=gX)
            gx = fold_patches(gX, ctx.k, ctx.in_shape)
        return gx, gW, None, None, None


def local(x: torch.Tensor, W: torch.Tensor, B: torch.Tensor, k: int, workspace: dict | None = None):
    """Locally connected layer: ``h[n, o, i] = Σ_{c,d} W[i, o, (c, d)] x_pad[n, c, i + d]``, 'same' padding.

    ``W``, ``B``: (H·W, C_out, C_in·k·k). The signal sent down is the transposed product with ``B``
    (``B = W``: exact back-propagation); ``W`` receives each position's own Hebbian product. ``workspace``
    (a dict owned by the caller) keeps the large temporaries between calls.
    """
    if not (torch.is_grad_enabled() and (x.requires_grad or W.requires_grad)):
        workspace = None  # nothing is saved for a backward pass: let the patches go with the call
    return _Local.apply(x, W, B, k, workspace)


class Local(WeightLayer):
    """Locally connected layer with the connectivity of a k×k 'same' convolution on an (H, W) grid (§4.1).

    ``W``, ``R`` (and the masks of §3.1, drawn per entry) have shape ``(H·W, C_out, C_in·k·k)``; Glorot
    fan-in/fan-out as for the convolution (k²·C_in, k²·C_out). Entries outside the grid (``in_grid``) are 0.
    """

    def __init__(self, c_in: int, c_out: int, k: int, hw, **kw):
        h, w = (int(v) for v in hw)
        if min(c_in, c_out, k, h, w) < 1:
            raise ValueError(f"Local needs positive sizes, got c_in={c_in}, c_out={c_out}, k={k}, hw={hw}")
        super().__init__((h * w, c_out, c_in * k * k), k * k * c_in, k * k * c_out, **kw)
        self.c_in, self.c_out, self.k, self.hw = c_in, c_out, k, (h, w)
        self._workspace: dict = {}  # reused temporaries (not state: never saved, rebuilt on demand)
        with torch.no_grad():
            inside = in_grid((h, w), c_in, k).to(self.W.dtype)
            self.W.mul_(inside)
            self.R.mul_(inside)
            if self.mask_W is not None:
                self.mask_W.mul_(inside)
                if self.mask_R is not self.mask_W:
                    self.mask_R.mul_(inside)

    def _forward(self, x, B):
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.c_in, *self.hw):
            raise ValueError(f"Local layer built for inputs (N, {self.c_in}, {self.hw[0]}, {self.hw[1]}) got "
                             f"{tuple(x.shape)}; a locally connected layer is tied to its input grid, so build "
                             "the network for this input shape")
        return local(x, self.W, B, self.k, self._workspace)

    def weight_grad(self, x, g):
        """Each position's own product: ``grad W[p] = g[p] X[p]ᵀ`` summed over the batch (scheduled engine)."""
        n, _, h, w = x.shape
        X = patches(x, self.k)
        G = g.permute(2, 3, 1, 0).reshape(h * w, self.c_out, n)
        return torch.bmm(G, X.transpose(1, 2))

    def send(self, g, B, in_shape):
        """The signal sent down, ``fold(B[p]ᵀ g[p])``; needs only the input's shape (scheduled engine)."""
        n, _, h, w = in_shape
        G = g.permute(2, 3, 1, 0).reshape(h * w, self.c_out, n)
        return fold_patches(torch.bmm(B.transpose(1, 2), G), self.k, in_shape)

    def present(self) -> torch.Tensor:
        """Entries that exist: inside the input grid (and in both masks, under random connectivity)."""
        keep = in_grid(self.hw, self.c_in, self.k, device=self.W.device).expand_as(self.W)
        return keep if self.mask_W is None else keep & (self.mask_W > 0) & (self.mask_R > 0)

    def filters(self, which: str = "W") -> torch.Tensor:
        """``W`` (or ``R``) as filters: a (H, W, C_out, C_in, k, k) view, ``[i, j, o]`` the filter at (i, j)."""
        t = self.W if which == "W" else self.R
        h, w = self.hw
        return t.detach().view(h, w, self.c_out, self.c_in, self.k, self.k)

    @classmethod
    def from_conv(cls, conv: Conv, hw) -> "Local":
        """The untied copy of a tied conv layer: its kernel (W, R, masks) at every position of the grid."""
        c_out, c_in, k, _ = conv.W.shape
        h, w = hw
        # a throwaway generator: every drawn value is overwritten below
        m = cls(c_in, c_out, k, hw, generator=torch.Generator(), dtype=conv.W.dtype, slope=conv.slope,
                act=conv.act)
        inside = in_grid(hw, c_in, k, device=conv.W.device).to(conv.W.dtype)

        def spread(t):
            return (t.detach().reshape(1, c_out, c_in * k * k) * inside).contiguous()

        m.W = torch.nn.Parameter(spread(conv.W))
        m.R = spread(conv.R)
        if conv.mask_W is not None:
            m.mask_W = spread(conv.mask_W)
            m.mask_R = m.mask_W if conv.mask_R is conv.mask_W else spread(conv.mask_R)
        m.rule, m.frozen = conv.rule, conv.frozen
        return m


def untied_spec(spec: str, keep_first: bool = False) -> str:
    """The specification with ``conv`` layers replaced by ``local`` (all, or all but the first)."""
    _, specs = resolve(spec)
    out, seen = [], 0
    for s in specs:
        if s.kind == "conv":
            seen += 1
            if not (keep_first and seen == 1):
                s = replace(s, kind="local")
        out.append(s)
    return "; ".join(str(s) for s in out)


def filters_at(layer: Local, positions) -> torch.Tensor:
    """The (C_out, C_in, k, k) filters of ``layer`` at each (i, j) of ``positions``: (len, C_out, C_in, k, k)."""
    f = layer.filters()
    return torch.stack([f[i, j] for i, j in positions])


@torch.no_grad()
def filter_similarity(layer: Local, which: str = "W", positions=None, reference=None) -> dict:
    """How alike one channel's filters are across space (Fig. 8), as a number.

    Each filter (one output channel at one position, ``C_in·k·k`` weights) is centred and scaled to unit
    norm; ``same`` is the mean Pearson correlation between filters of the **same** channel at two different
    positions; ``shuffled`` the same statistic with the channels shuffled independently at each position,
    in expectation: the mean correlation between filters of **different** channels at different positions.
    Constant filters (no variance: e.g. the increments of a unit that never received feedback) are left out
    and counted in ``constant_filters``.
    ``positions`` (default: every position whose whole k×k window lies inside the grid, so that no filter
    has structural zeros) is a list of (i, j). At initialisation both are ≈ 0; a tied layer has ``same`` = 1.
    ``reference`` (e.g. the initial ``W``, in ``W``'s shape) measures the learned increments ``W - reference``
    instead: each position's own accumulated Hebbian products, free of the independent initial values.
    """
    f = layer.filters(which).double()
    if reference is not None:
        f = f - reference.detach().double().view(f.shape)
    h, w = layer.hw
    if positions is None:
        a, b = _pad(layer.k)
        positions = [(i, j) for i in range(a, h - b) for j in range(a, w - b)]
        if len(positions) < 2:
            raise ValueError(f"the {h}×{w} grid has fewer than two positions whose {layer.k}×{layer.k} window "
                             "lies inside the grid; pass positions= explicitly")
    idx = torch.tensor(positions, device=f.device)
    z = f[idx[:, 0], idx[:, 1]].flatten(2)  # (P, C, D)
    z = z - z.mean(2, keepdim=True)
    norm = z.norm(dim=2, keepdim=True)
    valid = (norm > 0).squeeze(2)  # constant filters (e.g. increments of a unit that never received δ)
    z = torch.where(valid[..., None], z / norm.clamp_min(1e-300), torch.zeros_like(z))
    P, C, _ = z.shape
    n_c = valid.sum(0).double()  # valid positions per channel
    m_p = valid.sum(1).double()  # valid channels per position
    n = n_c.sum()
    per_channel = z.sum(0)  # (C, D): Σ_positions
    per_position = z.sum(1)  # (P, D): Σ_channels
    total = z.sum((0, 1))
    same_pairs = float((n_c * (n_c - 1)).sum())
    cross_pairs = float(n * n - (n_c ** 2).sum() - (m_p ** 2).sum() + n)
    if same_pairs == 0 or cross_pairs == 0:
        raise ValueError("fewer than two non-constant filters per channel, or a single channel: the similarity "
                         "is undefined; pass more positions or a layer with more than one output channel")
    same_sum = (per_channel ** 2).sum() - n  # Σ_c Σ_{p≠q} <z_pc, z_qc>
    cross_sum = (total ** 2).sum() - (per_channel ** 2).sum() - (per_position ** 2).sum() + n  # p≠q, c≠c'
    same = float(same_sum / same_pairs)
    shuffled = float(cross_sum / cross_pairs)
    return {"same": same, "shuffled": shuffled, "positions": len(positions), "channels": C,
            "constant_filters": int((~valid).sum())}
