"""The paper's network notation (docs/spec.md §5) parsed into a list of layer specifications.

A network is written as layers separated by semicolons, exactly as in the paper's §4:

    conv 32 5x5; maxpool 3; drop .8; full 500; drop .3; output

Tokens (one per layer):

    conv N kxk            tied convolution, N output channels, k×k kernel, stride 1, 'same' padding
    local N kxk           locally connected ("untied", §4.1) version of the same connectivity
    full N                dense layer with N units
    maxpool k [stride s]  k×k window centred on each pixel, zero padding, stride s (default 2)
    drop p                inverted dropout zeroing a fraction p of the units during training
    sum                   residual: adds the outputs of the two previous layers (docs/spec.md §4)
    output                the linear output layer, one unit per class; always last

Every conv/local/full layer applies the saturated-linear σ; ``output`` is linear.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LayerSpec", "SpecError", "PRESETS", "parse", "resolve"]

PRESETS: dict[str, str] = {
    "simpnet": "conv 32 5x5; maxpool 3; drop .8; full 500; drop .3; output",
    "deepnet": (
        "conv 32 5x5; maxpool 3; conv 32 3x3; conv 32 3x3; maxpool 3; drop .8; "
        "conv 32 3x3; conv 32 3x3; maxpool 3; drop .3; full 500; output"
    ),
    "deepernet": (
        "conv 16 3x3; conv 16 3x3; sum; conv 32 3x3; conv 32 3x3; sum; maxpool 3; drop .5; "
        "conv 64 3x3; conv 64 3x3; sum; maxpool 3; conv 128 3x3; conv 128 3x3; sum; maxpool 3; "
        "drop .8; full 500; output"
    ),
    "deepnet_s": (
        "conv 16 3x3; conv 16 3x3; sum; maxpool 3 stride 3; drop .5; "
        "conv 64 3x3; conv 64 3x3; sum; maxpool 2 stride 2; "
        "conv 64 2x2; conv 64 2x2; sum; maxpool 2 stride 2; drop .5; full 500; output"
    ),
}


class SpecError(ValueError):
    """A network specification that does not follow the notation of docs/spec.md §5."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the notation. ``kind`` is one of conv, local, full, maxpool, drop, sum, output."""

    kind: str
    units: int = 0  # output channels (conv/local) or units (full)
    kernel: int = 0  # k of a k×k kernel or pooling window
    stride: int = 1  # maxpool stride
    p: float = 0.0  # dropout probability

    def __str__(self) -> str:
        if self.kind in ("conv", "local"):
            return f"{self.kind} {self.units} {self.kernel}x{self.kernel}"
        if self.kind == "full":
            return f"full {self.units}"
        if self.kind == "maxpool":
            return f"maxpool {self.kernel} stride {self.stride}"
        if self.kind == "drop":
            return f"drop {self.p:g}"
        return self.kind


_INT = r"([1-9][0-9]*)"
_PATTERNS = [
    ("conv", re.compile(rf"conv\s+{_INT}\s+{_INT}x{_INT}")),
    ("local", re.compile(rf"local\s+{_INT}\s+{_INT}x{_INT}")),
    ("full", re.compile(rf"full\s+{_INT}")),
    ("maxpool", re.compile(rf"maxpool\s+{_INT}(?:\s*,?\s*stride\s+{_INT})?")),
    ("drop", re.compile(r"drop\s+([0-9]*\.?[0-9]+)")),
    ("sum", re.compile(r"sum")),
    ("output", re.compile(r"output")),
]


def _parse_token(token: str, index: int, offset: int) -> LayerSpec:
    where = f"layer {index} (character {offset})"
    for kind, pattern in _PATTERNS:
        m = pattern.fullmatch(token)
        if m is None:
            continue
        g = m.groups()
        if kind in ("conv", "local"):
            if g[1] != g[2]:
                raise SpecError(f"{where} {token!r}: only square kernels are supported (write e.g. 3x3)")
            return LayerSpec(kind, units=int(g[0]), kernel=int(g[1]))
        if kind == "full":
            return LayerSpec(kind, units=int(g[0]))
        if kind == "maxpool":
            return LayerSpec(kind, kernel=int(g[0]), stride=int(g[1]) if g[1] else 2)
        if kind == "drop":
            p = float(g[0])
            if not 0.0 <= p < 1.0:
                raise SpecError(f"{where} {token!r}: dropout probability must be in [0, 1), got {p}")
            return LayerSpec(kind, p=p)
        return LayerSpec(kind)
    head = token.split()[0] if token.split() else ""
    known = {k for k, _ in _PATTERNS}
    if head not in known:
        hint = f"unknown layer type {head!r}; expected one of {', '.join(sorted(known))}"
    else:
        forms = {
            "conv": "conv N kxk", "local": "local N kxk", "full": "full N",
            "maxpool": "maxpool k [stride s]", "drop": "drop p", "sum": "sum", "output": "output",
        }
        hint = f"malformed {head!r} layer; expected '{forms[head]}'"
    raise SpecError(f"{where} {token!r}: {hint}")


def parse(text: str) -> list[LayerSpec]:
    """Parse a network in the paper's notation; raises SpecError naming the offending token and position."""
    if not isinstance(text, str):
        raise SpecError(f"a network specification must be text, got {type(text).__name__} {text!r}")
    if not text.strip():
        raise SpecError("empty network specification; give a preset name "
                        f"({', '.join(PRESETS)}) or layers such as 'full 100; output'")
    layers: list[LayerSpec] = []
    offset = 0
    pieces = text.split(";")
    for i, raw in enumerate(pieces, start=1):
        token = " ".join(raw.strip().lower().split())
        start = offset + (len(raw) - len(raw.lstrip()))
        offset += len(raw) + 1
        if not token:
            if i == len(pieces):  # a trailing semicolon
                continue
            raise SpecError(f"layer {i} (character {start}): empty layer between semicolons")
        layers.append(_parse_token(token, i, start))
    outputs = [i for i, l in enumerate(layers) if l.kind == "output"]
    if outputs != [len(layers) - 1]:
        if not outputs:
            raise SpecError("the network has no 'output' layer; end the specification with '; output'")
        bad = outputs[0] if outputs[0] != len(layers) - 1 else outputs[1]
        raise SpecError(f"layer {bad + 1} 'output': the output layer must appear once, as the last layer")
    for i, layer in enumerate(layers):
        if layer.kind == "sum":
            weighted = [l for l in layers[:i] if l.kind in ("conv", "local", "full")]
            if i < 2 or layers[i - 1].kind not in ("conv", "local", "full") or \
                    layers[i - 2].kind not in ("conv", "local", "full") or len(weighted) < 2:
                raise SpecError(f"layer {i + 1} 'sum': a sum must follow two weight layers "
                                "(e.g. 'conv 16 3x3; conv 16 3x3; sum')")
    return layers


def resolve(net: str) -> tuple[str, list[LayerSpec]]:
    """A preset name or a specification → (canonical text, layers)."""
    if not isinstance(net, str):
        raise SpecError(f"a network must be text (a preset name or a specification), got {type(net).__name__} "
                        f"{net!r}")
    key = net.strip().lower()
    if key in PRESETS:
        return PRESETS[key], parse(PRESETS[key])
    if ";" not in net and " " not in key and key != "output":
        raise SpecError(f"unknown network {net!r}; use a preset ({', '.join(PRESETS)}) "
                        "or a specification such as 'conv 32 5x5; maxpool 3; full 500; output'")
    return net, parse(net)
