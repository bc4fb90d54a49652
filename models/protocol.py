"""Untying whole networks and the §4.1 protocol of Fig. 9, which trains them.

``untie`` turns a tied network into the untied one with every kernel copied to every position (the same
outputs); ``untie_protocol`` trains the tied network, freezes its first layer, re-initialises the rest with
every other conv layer untied (``models.local``), and retrains. This module sits above the layers, the
network and the trainer; none of them imports it.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch

from .data import load
from .layers import Conv
from .local import Local, untied_spec
from .network import Network
from .train import build_network, train

__all__ = ["untie", "untie_protocol", "freeze_first_layer"]


def untie(network: Network, which=None) -> Network:
    """An untied copy of ``network``: each selected ``conv`` layer becomes a ``Local`` holding its kernel at
    every position (so the copy computes the same outputs); other layers are copied unchanged.

    ``which``: names (``'conv2'``) or indices of the conv layers to untie; ``None`` unties all of them.
    Layer names and the specification text follow (``conv`` → ``local``).
    """
    convs = {i for i, m in enumerate(network.layers) if isinstance(m, Conv)}
    if which is None:
        chosen = convs
    else:
        chosen = set()
        for key in which:
            i = network.names.index(key) if isinstance(key, str) and key in network.names else key
            if not isinstance(i, int) or i not in convs:
                raise ValueError(f"cannot untie {key!r}: not a conv layer of this network; conv layers are "
                                 f"{[network.names[j] for j in sorted(convs)]}")
            chosen.add(i)
    new = copy.deepcopy(network)
    for i in sorted(chosen):
        hw = new.shapes[i][1:]
        new.layers[i] = Local.from_conv(new.layers[i], hw)
        new.specs[i] = replace(new.specs[i], kind="local")
    _rename(new)
    return new


def _rename(net: Network) -> None:
    counts: dict[str, int] = {}
    names = []
    for s in net.specs:
        counts[s.kind] = counts.get(s.kind, 0) + 1
        names.append(s.kind if s.kind == "output" else f"{s.kind}{counts[s.kind]}")
    net.names = names
    net.spec_text = "; ".join(str(s) for s in net.specs)


def freeze_first_layer(tied: Network, untied: Network) -> None:
    """Give ``untied`` the first layer of ``tied`` (W, R and masks) and freeze it: it keeps its weights and
    receives no update (its ``W`` needs no gradient, so no feedback is computed below layer 2)."""
    src, dst = tied.layers[0], untied.layers[0]
    if not (isinstance(src, Conv) and isinstance(dst, Conv)) or src.W.shape != dst.W.shape:
        raise ValueError("the §4.1 protocol moves a first conv layer between nets that share it: "
                         f"{tied.names[0]} {tuple(src.W.shape)} vs {untied.names[0]} {tuple(dst.W.shape)}")
    with torch.no_grad():
        dst.W.copy_(src.W)
        dst.R.copy_(src.R)
        if src.mask_W is not None:
            dst.mask_W.copy_(src.mask_W)
            dst.mask_R.copy_(src.mask_R)
    dst.frozen = True
    dst.W.requires_grad_(False)


def untie_protocol(config, *, tied_epochs: int | None = None, out_dir=None, dataset=None, log=None,
                   progress: bool = False):
    """The §4.1 protocol of Fig. 9: train the tied network, then freeze its first layer, re-initialise the
    rest with every other conv layer untied, and retrain.

    ``config`` is a ``models.train.RunConfig``; ``tied_epochs`` (default ``config.epochs``) trains the tied
    network, ``config.epochs`` the untied one. The first layer keeps its trained ``W`` and ``R`` and receives
    no update (its ``W`` needs no gradient, so no feedback is computed below layer 2). The untied network is
    drawn with ``config.seed`` exactly as ``Network(untied_spec(config.net, keep_first=True), ...)``.
    Returns ``(tied_rows, untied_rows, untied_network)``; with ``out_dir`` the runs go to ``out_dir/tied`` and
    ``out_dir/untied``.
    """
    if dataset is None:
        dataset = load(config.data, data_dir=config.data_dir, val_size=config.val_size, seed=config.seed,
                       train_subset=config.train_subset)
    sub = (lambda name: Path(out_dir) / name) if out_dir is not None else (lambda name: None)
    tied_cfg = replace(config, epochs=config.epochs if tied_epochs is None else tied_epochs)
    in_shape, num_classes = dataset.x_train.shape[1:], len(dataset.classes)
    tied = build_network(tied_cfg, in_shape, num_classes)
    first = next(iter(tied.weight_layers()))
    if not isinstance(tied.layers[tied.names.index(first)], Conv):
        raise ValueError(f"the §4.1 protocol freezes a first conv layer, but {config.net!r} starts with "
                         f"'{first}'")
    tied_rows = train(tied_cfg, sub("tied"), network=tied, dataset=dataset, log=log, progress=progress)

    untied_cfg = replace(config, net=untied_spec(config.net, keep_first=True))
    untied = build_network(untied_cfg, in_shape, num_classes)
    freeze_first_layer(tied, untied)
    untied_rows = train(untied_cfg, sub("untied"), network=untied, dataset=dataset, log=log, progress=progress)
    return tied_rows, untied_rows, untied
