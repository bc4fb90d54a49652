"""What a figure's panels show: for each axes, how many artists draw data (tests only).

An artist draws data when it is placed in the axes' data coordinates and has at least one finite point: a
line, a bar, a filled band, a scatter, an image. Reference lines and shading (``axhline``, ``axvspan``: placed
partly in axes coordinates), text, legends and titles are not data, so a panel holding only those, or a line
of NaN, counts as empty.
"""
from __future__ import annotations

import numpy as np

__all__ = ["data_artists", "describe"]


def _in_data_coords(transform, ax) -> bool:
    try:
        return bool(transform.contains_branch(ax.transData))
    except (AttributeError, ValueError):
        return False


def _finite(points) -> bool:
    a = np.asarray(points, dtype=float)
    return a.size > 0 and bool(np.isfinite(a).any())


def data_artists(ax) -> int:
    """The number of artists of ``ax`` that draw data."""
    n = 0
    for line in ax.lines:
        if _in_data_coords(line.get_transform(), ax):
            x, y = (np.asarray(v, dtype=float) for v in line.get_data(orig=False))
            n += x.size > 0 and bool((np.isfinite(x) & np.isfinite(y)).any())
    for c in ax.collections:
        offsets = c.get_offsets()
        if len(offsets) and _in_data_coords(c.get_offset_transform(), ax):
            n += _finite(offsets)
        elif _in_data_coords(c.get_transform(), ax):
            n += any(_finite(p.vertices) for p in c.get_paths())
    for p in ax.patches:
        if _in_data_coords(p.get_transform(), ax):
            n += _finite(p.get_path().vertices)
    for im in ax.images:
        a = im.get_array()
        n += a is not None and np.size(a) > 0
    return int(n)


def describe(fig) -> list[dict]:
    """One record per axes of ``fig``: its title (or y label), whether it is drawn, and its data artists."""
    return [{"title": ax.get_title() or ax.get_ylabel() or ax.get_label(), "visible": ax.get_visible(),
             "data": data_artists(ax)} for ax in fig.axes]
