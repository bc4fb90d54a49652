"""The figures and the results page of the reproduction (``sims/reproduce.py``), drawn from run directories.

Each figure is named ``fig<NN>_<what>.png`` after the paper's figure number. Colours follow the paper: BP
green (BP-H a lighter green), URFB blue, FRFB red; training solid, validation dotted; in Fig. 9 tied blue and
untied red. Every training figure shows the mean over seeds with a band (or whiskers) from the lowest to the
highest seed, starts at epoch 0 (the network before any update), draws the chance level where errors come near
it, and has a caption naming, per row, the training images, epochs, SGD steps and seeds of the runs it shows,
read from the runs' own configs and metrics. A row without finished runs gets no panel (the caption says so).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.claims import LAST_EPOCHS  # noqa: E402
from models.claims import run_error as final_error  # noqa: E402 - the error the verdicts use
from models.experiments import TRAIN_SPLIT_SIZE  # noqa: E402
from models.train import curve  # noqa: E402

COLOURS = {"bp": "#1a9641", "bp-h": "#8cc43f", "urfb": "#2166ac", "frfb": "#d7301f",
           "urfb-50": "#92c5de", "frfb-50": "#f4a582", "kp": "#762a83", "sign": "#e08214", "dfa": "#8c510a"}
MARKERS = {"bp": "o", "bp-h": "^", "urfb": "s", "frfb": "D", "urfb-50": "s", "frfb-50": "D"}
LABELS = {"bp": "BP (softmax)", "bp-h": "BP-H (hinge)", "urfb": "URFB", "frfb": "FRFB", "urfb-50": "URFB 50%",
          "frfb-50": "FRFB 50%"}
ORDER = ("bp", "bp-h", "urfb", "frfb", "urfb-50", "frfb-50")
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "digits": "digits (8×8)",
                  "fashion-mnist": "Fashion-MNIST"}
CLASSES = {"cifar100": 100}  # classes per data set; 10 for the others
DEFAULT_VAL = {"digits": 300}  # validation hold-out when a run's config leaves it unset (models.data)
INPUT_SHAPES = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "digits": (1, 8, 8), "fashion-mnist": (1, 28, 28)}
ESCAPE = 5.0  # pp below chance: a rule has "left chance" once its validation error falls below chance − 5 pp
TIED, UNTIED = "#2166ac", "#d7301f"  # Fig. 9 (the paper's): tied blue, untied red
LAYER_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#333333")
LAYER_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def colour(protocol: str) -> str:
    return COLOURS.get(protocol, "0.4")


def label(protocol: str) -> str:
    return LABELS.get(protocol, protocol)


def chance(dataset: str) -> float:
    """Error (%) of guessing: 100·(1 − 1/C)."""
    return 100.0 * (1 - 1 / CLASSES.get(dataset, 10))


def caption(fig, matrix, text: str) -> None:
    """The caption under a figure: the budget's name and ``text`` (which names the rows' runs: ``facts``)."""
    full = f"Budget '{matrix.name}'. {text}"
    width = int(fig.get_figwidth() * 17)  # characters of 7-point text per line
    lines = textwrap.wrap(full, width, break_on_hyphens=False)  # row names such as deepnet_s-untied stay whole
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=7, va="bottom", ha="left", color="0.25")


def _caption_height(fig, text: str) -> float:
    """Fraction of the figure's height that ``caption`` needs for ``text`` (7-point lines, with a margin)."""
    width = int(fig.get_figwidth() * 17)
    lines = len(textwrap.wrap(f"Budget 'x'. {text}", width, break_on_hyphens=False))
    return min(0.6, (lines * 7 * 1.25 + 10) / 72 / fig.get_figheight())


def _save(fig, path: Path, bottom: float = 0.16) -> Path:
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _finish(fig, matrix, text: str, path: Path) -> Path:
    """Caption ``text`` under the figure, lay the axes out above it, save."""
    caption(fig, matrix, text)
    return _save(fig, path, bottom=_caption_height(fig, text))


def by_row(results: dict) -> dict:
    """{row: {protocol: {seed: metrics}}}."""
    out = {}
    for res in results.values():
        r = res["run"]
        out.setdefault(r.row, {}).setdefault(r.protocol, {})[r.seed] = res["metrics"]
    return out


def _ordered(protocols) -> list:
    known = [p for p in ORDER if p in protocols]
    return known + sorted(p for p in protocols if p not in ORDER)


def _rows_for(matrix, fig_id):
    return [row for row in matrix.rows if fig_id in row.get("figures", [])]


# --- what a row's runs were: training images, epochs, SGD steps, seeds ---------------------------------------

def _setting(res, name):
    cfg = res.get("config") or {}
    return cfg[name] if name in cfg else getattr(res["run"].config, name, None)


def training_images(res) -> int:
    """Training images of a run: its ``train_subset``, else the data set's training split less the hold-out."""
    subset = _setting(res, "train_subset")
    if subset:
        return int(subset)
    ds = res["run"].dataset
    val = _setting(res, "val_size")
    return TRAIN_SPLIT_SIZE[ds] - (val if val is not None else DEFAULT_VAL.get(ds, 5000))


def validation_images(res) -> int:
    val = _setting(res, "val_size")
    return int(val) if val is not None else DEFAULT_VAL.get(res["run"].dataset, 5000)


def steps_per_epoch(rows: list[dict]) -> int:
    """SGD steps of one epoch, from the metrics (``step`` of the first epoch; 1 for records without steps)."""
    return int(rows[0].get("step", 1)) if rows else 1


def _seeds(seeds) -> str:
    s = sorted(seeds)
    return f"seed {s[0]}" if len(s) == 1 else "seeds " + ", ".join(map(str, s))


def facts(results: dict, row: str, protocols=None) -> str:
    """'simpnet: 45,000 training images, 10 epochs = 900 SGD steps of batch 500, seeds 0, 1, 2' for the runs of
    ``row`` (those of ``protocols`` only, if given), from each run's config and metrics; runs that differ are
    listed group by group."""
    groups = {}
    for res in results.values():
        r = res["run"]
        if r.row != row or (protocols is not None and r.protocol not in protocols):
            continue
        rows = res["metrics"]
        steps = int(rows[-1]["step"]) if rows and "step" in rows[-1] else None
        key = (training_images(res), len(rows), steps, _setting(res, "batch_size"))
        groups.setdefault(key, {}).setdefault(r.protocol, set()).add(r.seed)
    parts = []
    for (n, epochs, steps, batch), by_p in sorted(groups.items(), key=lambda kv: kv[0][:2]):
        seeds = set().union(*by_p.values())
        who = "" if len(groups) == 1 else " (" + ", ".join(label(p) for p in _ordered(by_p)) + ")"
        step_text = f" = {steps:,} SGD steps" if steps is not None else ""
        parts.append(f"{n:,} training images, {epochs} epochs{step_text} of batch {batch}, {_seeds(seeds)}{who}")
        missing = {p: sorted(seeds - s) for p, s in by_p.items() if s != seeds}
        if missing:
            parts[-1] += " (not finished: " + "; ".join(f"{label(p)} {_seeds(m)}" for p, m in missing.items()) + ")"
    return f"{row}: " + "; ".join(parts) if parts else f"{row}: no finished runs"


def _evaluation_text(results: dict, row: str) -> str:
    """How the row's validation error was measured (hold-out size, the first epoch's probes)."""
    res = next((x for x in results.values() if x["run"].row == row), None)
    if res is None:
        return ""
    val = validation_images(res)
    every = _setting(res, "probe_every") or 0
    size = min(_setting(res, "probe_size") or 1000, val)
    text = f"validation on {val:,} held-out images"
    if every:
        text += f", and every {every} SGD steps of the first epoch on a fixed slice of {size:,} of them"
    return text


def _finished_rows(rows, data):
    """(rows with runs, caption text naming the rows without)."""
    shown = [r for r in rows if data.get(r["name"])]
    missing = [r["name"] for r in rows if not data.get(r["name"])]
    note = (" Not drawn (no finished runs at this budget): " + ", ".join(missing) + ".") if missing else ""
    return shown, note


# --- per-run numbers -----------------------------------------------------------------------------------------

def _points(rows: list[dict], key, *, probes: bool = False, layer=None) -> dict:
    """{SGD step: value} of a metric from epoch 0 on (``models.train.curve``); records without SGD steps use
    the epoch number. ``layer`` picks one entry of a per-layer metric (the alignment)."""
    if rows and "step" in rows[0]:
        pts = curve(rows, key, probes=probes)
    else:
        pts = [(r["epoch"], r[key]) for r in rows if key in r]
    if layer is not None:
        pts = [(s, v[layer]) for s, v in pts if layer in v]
    return {s: v for s, v in pts}


def stats(seed_rows: dict, key, *, probes: bool = False, layer=None, scale: float = 100.0):
    """(steps, mean, lowest, highest) over seeds at the steps every seed recorded."""
    per = [_points(rows, key, probes=probes, layer=layer) for rows in seed_rows.values()]
    if not per:
        return (np.array([]),) * 4
    xs = sorted(set.intersection(*(set(p) for p in per)))
    a = np.array([[scale * p[x] for x in xs] for p in per], dtype=float).reshape(len(per), len(xs))
    return np.array(xs, dtype=float), a.mean(0), a.min(0), a.max(0)


def escape_epoch(rows: list[dict], level: float):
    """The first epoch whose validation error is below ``level`` % (0: already before training), else None."""
    pts = _points(rows, "val_error")
    spe = steps_per_epoch(rows)
    for s in sorted(pts):
        if 100 * pts[s] < level:
            return int(round(s / spe))
    return None


def _chance_text(results, rows, data, shown_protocols) -> str:
    """Where each rule leaves chance: per row and protocol, the epoch at which each seed's validation error first
    falls ESCAPE pp below chance, or that it never does (still at chance at the end)."""
    parts = []
    for row in rows:
        got = data.get(row["name"], {})
        c = chance(row["dataset"])
        protocols = _ordered([p for p in got if p in shown_protocols])
        if not protocols:
            continue
        seeds = sorted(set().union(*(got[p] for p in protocols)))
        bits = []
        for p in protocols:
            ep = {s: escape_epoch(m, c - ESCAPE) for s, m in sorted(got[p].items())}
            own = "" if sorted(ep) == seeds else f" ({_seeds(ep)})"
            if all(e is None for e in ep.values()):
                epochs = len(next(iter(got[p].values())))
                bits.append(f"{label(p)} never: still at chance after {epochs} epochs{own}")
            else:
                bits.append(f"{label(p)} " + ", ".join("never" if e is None else str(e) for e in ep.values()) + own)
        parts.append(f"{row['name']}: the epoch at which the validation error first falls below {c - ESCAPE:.0f}% "
                     f"({ESCAPE:g} pp under chance, {c:.0f}%), {_seeds(seeds)}: " + "; ".join(bits) + ".")
    return " ".join(parts)


# --- Fig. 4 and Fig. 7: error curves -------------------------------------------------------------------------

def _legend_handles(protocols, extra=()):
    from matplotlib.lines import Line2D

    h = [Line2D([], [], color=colour(p), marker=MARKERS.get(p, "o"), ms=4, lw=1.8, label=label(p))
         for p in protocols]
    return h + [Line2D([], [], color="k", lw=1.4, ls=ls, label=t) for ls, t in extra]


def fig_curves(matrix, results, fig_dir, fig_id, number, what):
    """Fig. 4 / Fig. 7: training (solid) and validation (dotted) error from epoch 0 for BP, BP-H, URFB, FRFB;
    beside it the first epoch over SGD steps, with the validation probes."""
    data = by_row(results)
    rows, not_drawn = _finished_rows(_rows_for(matrix, fig_id), data)
    rows = [r for r in rows if any(p in data[r["name"]] for p in ("bp", "bp-h", "urfb", "frfb"))]
    if not rows:
        return []
    first_rows = [m[0] for r in rows for runs in data[r["name"]].values() for m in runs.values() if m]
    probed = any(x.get("probes") for x in first_rows)  # a first-epoch panel only where probes were recorded
    fig, axes = plt.subplots(len(rows), 1 + probed, figsize=(12.5 if probed else 9, 4.4 * len(rows) + 1.6),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 2] if probed else [1]})
    shown_all, texts = [], []
    for (ax, *ax1), row in zip(axes, rows):
        ax1 = ax1[0] if ax1 else None
        got = data[row["name"]]
        shown = [p for p in ("bp", "bp-h", "urfb", "frfb") if p in got]
        shown_all += [p for p in shown if p not in shown_all]
        spe = steps_per_epoch(next(iter(got[shown[0]].values())))
        c = chance(row["dataset"])
        for p in shown:
            for key, ls in (("train_error", "-"), ("val_error", ":")):
                x, m, lo, hi = stats(got[p], key)
                ax.plot(x / spe, m, ls, color=colour(p), lw=1.8, marker=MARKERS.get(p, "o"), ms=3.5)
                ax.fill_between(x / spe, lo, hi, color=colour(p), alpha=0.13, lw=0)
            if ax1 is None:
                continue
            x, m, lo, hi = stats(got[p], "val_error", probes=True)
            keep = x <= spe
            ax1.plot(x[keep], m[keep], ":", color=colour(p), lw=1.8, marker=MARKERS.get(p, "o"), ms=3.5)
            ax1.fill_between(x[keep], lo[keep], hi[keep], color=colour(p), alpha=0.13, lw=0)
        for a in (ax, ax1) if ax1 is not None else (ax,):
            a.axhline(c, color="0.35", lw=1.0, ls="--", zorder=0)
            a.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set(xlabel="epoch (0: before training)", ylabel="error (%)",
               title=f"{row['name']} on {DATASET_LABELS.get(row['dataset'], row['dataset'])}, per epoch")
        top = ax.secondary_xaxis("top", functions=(lambda e, s=spe: e * s, lambda t, s=spe: t / s))
        top.set_xlabel("SGD steps", fontsize=8)
        top.tick_params(labelsize=7)
        if ax1 is not None:
            ax1.set(xlabel="SGD steps of the first epoch", ylabel="validation error (%)", xlim=(0, spe),
                    title=f"{row['name']}: the first epoch ({spe} SGD steps)")
            ax1.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        texts.append(f"{facts(results, row['name'], shown)}; {_evaluation_text(results, row['name'])}")
    handles = _legend_handles(shown_all, (("-", "training"), (":", "validation")))
    from matplotlib.lines import Line2D

    handles.append(Line2D([], [], color="0.35", lw=1.0, ls="--", label="chance"))
    axes[0, -1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(f"Fig. {number}: training and validation error of {what} from epoch 0")
    start = ("Epoch 0 is the network before any update: training error on a class-stratified sample of up to "
             "5,000 training images, dropout off." if all("initial" in x for x in first_rows) else
             "Runs recorded without an epoch-0 evaluation start at epoch 1.")
    inside = ("Right: validation error inside the first epoch (the probes on their fixed slice; step 0 and the "
              "epoch's end on the whole hold-out)." if probed else "No evaluation inside the first epoch was "
              "recorded (probe_every = 0).")
    text = (" ".join(t + "." for t in texts) + f" Lines: mean over seeds; bands: lowest to highest seed. {start} "
            "Later training errors are the running error of each epoch's own batches (dropout on); validation "
            f"errors are measured after each epoch (dropout off). {inside} Dashed: chance. "
            + _chance_text(results, rows, data, shown_all) + not_drawn)
    return [_finish(fig, matrix, text, fig_dir / f"fig{number:02d}_error_curves_{what}.png")]


# --- Fig. 5, Fig. 6 and Fig. 9: final errors as bars ---------------------------------------------------------

def _finals(seed_rows: dict) -> dict:
    return {s: final_error(m) for s, m in seed_rows.items()}


def _paired(a: dict, b: dict):
    """Mean and standard error of the per-seed differences b − a, and the number of common seeds."""
    common = sorted(set(a) & set(b))
    d = np.array([b[s] - a[s] for s in common], dtype=float)
    if not len(d):
        return float("nan"), float("nan"), 0
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return float(d.mean()), float(se), len(d)


def _zoom(ax, values, c):
    """An error axis fitted to ``values`` (so 1–8 point differences show), reaching up to chance when it is
    near; returns the axis' bottom (where the bars start)."""
    lo_v, hi_v = min(values), max(values)
    span = max(hi_v - lo_v, 4.0)
    lo = max(0.0, np.floor(lo_v - 0.5 * span))
    hi = hi_v + 0.35 * span
    near = c <= hi_v + 0.6 * span
    if near:
        hi = max(hi, c + 0.12 * span)
    ax.set_ylim(lo, min(hi, 100.0 + 0.05 * span))
    if near:
        ax.axhline(c, color="0.35", lw=1.0, ls="--", zorder=0.5)
        ax.text(1.0, c, f" chance {c:.0f}%", transform=ax.get_yaxis_transform(), va="center", ha="left",
                fontsize=7, color="0.35", clip_on=False)
    return lo, near


def _bar(ax, x, vals, c, width, lo, hatch=None, edge="white"):
    v = np.array(list(vals.values()), dtype=float)
    ax.bar(x, v.mean() - lo, width, bottom=lo, color=c, hatch=hatch, edgecolor=edge, lw=0.6)
    ax.errorbar(x, v.mean(), yerr=[[v.mean() - v.min()], [v.max() - v.mean()]], color="k", lw=0.8, capsize=2)
    ax.plot(np.full(len(v), x), v, "k.", ms=3)
    ax.annotate(f"{v.mean():.1f}", (x, v.max()), xytext=(0, 3), textcoords="offset points", ha="center",
                va="bottom", fontsize=7)


def _row_title(row):
    cfg = row.get("config", {})
    slope = cfg.get("slope", 0.5)
    name = row.get("net_name", row["name"])
    kind = _untied_kind(row)
    return (f"{name}{' ' + kind if kind else ''}, slope {slope:g}, "
            f"{DATASET_LABELS.get(row['dataset'], row['dataset'])}\n(row '{row['name']}')")


def fig_protocols(matrix, results, fig_dir, fig_id, number, what):
    """Fig. 5 / Fig. 6: the error of each protocol, one panel per row (network or data set) that has runs; the
    tick labels give each protocol's paired difference to BP-H."""
    data = by_row(results)
    rows, not_drawn = _finished_rows(_rows_for(matrix, fig_id), data)
    if not rows:
        return []
    # the paper's panels (one per network) first, then variants of a network (e.g. deepnet at slope 0.5)
    rows = sorted(rows, key=lambda r: r["name"] != r.get("net_name", r["name"]))
    fig, axes = plt.subplots(1, len(rows), figsize=(max(5.2 * len(rows), 7.5), 5.4), squeeze=False)
    texts, above, hatched = [], [], False
    for ax, row in zip(axes[0], rows):
        got = data[row["name"]]
        protocols = _ordered(got)
        finals = {p: _finals(got[p]) for p in protocols}
        c = chance(row["dataset"])
        lo, near = _zoom(ax, [v for f in finals.values() for v in f.values()], c)
        ref = "bp-h" if "bp-h" in finals else ("bp" if "bp" in finals else None)
        hatched |= any(p.endswith("-50") for p in protocols)
        ticks = []
        for i, p in enumerate(protocols):
            _bar(ax, i, finals[p], colour(p), 0.7, lo, hatch="//" if p.endswith("-50") else None)
            tick = label(p).replace(" (", "\n(")
            if ref and p != ref:
                d, se, n = _paired(finals[ref], finals[p])
                if n == 0:  # no seed finished under both: nothing to pair
                    tick += "\n(no shared seed)"
                else:
                    tick += f"\n{d:+.1f}" + (f" ± {se:.1f}" if n > 1 else "")
            ticks.append(tick)
        ax.set_xticks(range(len(protocols)), ticks, fontsize=7)
        ax.set(ylabel=f"validation error (%), mean of last {LAST_EPOCHS} epochs", title=_row_title(row))
        ax.grid(axis="y", alpha=0.3)
        texts.append(facts(results, row["name"]))
        if near:
            above.append(row["name"])
        if ref:
            texts[-1] += f" (differences to {label(ref)})"
    fig.suptitle(f"Fig. {number}: error per protocol, {what}")
    text = (" ".join(t + "." for t in texts) + " Bars: mean over seeds of each run's validation error averaged "
            f"over its last {LAST_EPOCHS} epochs; whiskers: lowest to highest seed; dots: each seed; the number "
            "above: the mean. Under each protocol: its mean paired difference (same seed: same initial weights, "
            "batches and dropout) to the reference named with its row, ± its standard error, in percentage "
            "points. The error axis starts near the lowest value, not at 0."
            + (" Hatched: 50% random connectivity of W and R (§3.1)." if hatched else "")
            + (" Dashed: chance." if above else "") + not_drawn)
    return [_finish(fig, matrix, text, fig_dir / f"fig{number:02d}_protocols_{what}.png")]


def _untied_kind(row) -> str:
    """'§4.1 protocol' for rows named ``*-untied41`` (first layer trained tied, frozen, the rest untied),
    'untied from scratch' for the other untied rows, '' for tied ones."""
    if row["name"].endswith("-untied41"):
        return "§4.1 protocol"
    if row.get("untied") or row["name"].endswith("-untied"):
        return "untied from scratch"
    return ""


def _untied_partners(tied, rows) -> list:
    """The untied rows that pair with ``tied``: named after it, else the untied rows of its network and data."""
    named = [r for r in rows if r["name"] in (tied["name"] + "-untied", tied["name"] + "-untied41")]
    if named:
        return named
    return [r for r in rows if _untied_kind(r) and r.get("net_name") == tied.get("net_name")
            and r["dataset"] == tied["dataset"]]


def fig_tied_untied(matrix, results, fig_dir):
    """Fig. 9: the error of tied (convolutional) and untied (locally connected) networks per rule: tied blue,
    untied red (§4.1 protocol plain, from scratch hatched)."""
    from matplotlib.patches import Patch

    data = by_row(results)
    rows = _rows_for(matrix, "fig09")
    tied_rows = [r for r in rows if not _untied_kind(r)]
    pairs = [(t, [u for u in _untied_partners(t, rows) if data.get(u["name"])]) for t in tied_rows
             if data.get(t["name"])]
    pairs = [(t, us) for t, us in pairs if us]
    if not pairs:
        return []
    fig, axes = plt.subplots(1, len(pairs), figsize=(max(5.6 * len(pairs), 7.5), 5.0), squeeze=False)
    kinds_shown, texts = {}, []
    styles = {"": (TIED, None, "tied (convolutional)"),
              "§4.1 protocol": (UNTIED, None, "untied, §4.1 protocol (layer 1 trained tied, frozen)"),
              "untied from scratch": (UNTIED, "///", "untied from scratch")}
    for ax, (t, us) in zip(axes[0], pairs):
        group = [t] + sorted(us, key=lambda r: _untied_kind(r) != "§4.1 protocol")
        protocols = [p for p in _ordered(data[t["name"]]) if any(p in data[u["name"]] for u in us)]
        finals = {(r["name"], p): _finals(data[r["name"]][p]) for r in group for p in protocols
                  if p in data[r["name"]]}
        c = chance(t["dataset"])
        lo, _ = _zoom(ax, [v for f in finals.values() for v in f.values()], c)
        width = 0.8 / len(group)
        for i, p in enumerate(protocols):
            for j, r in enumerate(group):
                if (r["name"], p) not in finals:
                    continue
                kind = _untied_kind(r)
                col, hatch, name = styles[kind]
                kinds_shown[kind] = (col, hatch, name)
                _bar(ax, i + (j - (len(group) - 1) / 2) * width, finals[(r["name"], p)], col, width * 0.92, lo,
                     hatch=hatch, edge="white")
        ax.set_xticks(range(len(protocols)), [label(p) for p in protocols], fontsize=8)
        ax.set(ylabel=f"validation error (%), mean of last {LAST_EPOCHS} epochs",
               title=f"{t.get('net_name', t['name'])} on {DATASET_LABELS.get(t['dataset'], t['dataset'])}")
        ax.grid(axis="y", alpha=0.3)
        texts += [facts(results, r["name"]) + (f" ({_untied_kind(r)})" if _untied_kind(r) else " (tied)")
                  for r in group]
    order = ("", "§4.1 protocol", "untied from scratch")
    handles = [Patch(facecolor=col, hatch=hatch, edgecolor="white", label=name)
               for _, (col, hatch, name) in sorted(kinds_shown.items(), key=lambda kv: order.index(kv[0]))]
    axes[0, -1].legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(1.02, 0.0), borderaxespad=0)
    fig.suptitle("Fig. 9: tied (convolutional) vs untied (locally connected) layers, §4.1")
    text = (" ".join(x + "." for x in texts) + " Blue: tied; red: untied, either by the §4.1 protocol (the first "
            "layer trained tied, then frozen, the rest untied and trained) or from scratch (every convolution "
            "untied, drawn independently at the start; hatched). Bars: mean over seeds of each run's validation "
            f"error averaged over its last {LAST_EPOCHS} epochs; whiskers: lowest to highest seed; dots: each seed. "
            "The error axis starts near the lowest value, not at 0; dashed: chance where errors come near it.")
    return [_finish(fig, matrix, text, fig_dir / "fig09_tied_vs_untied.png")]


# --- Fig. 10 and Fig. 11: W–R correlation --------------------------------------------------------------------

def _sqrt_steps(ax, last: int, spe: int):
    """A square-root axis of SGD steps (the first epoch's probes get room), ticked at round numbers."""
    ax.set_xscale("function", functions=(lambda s: np.sqrt(np.clip(s, 0, None)), lambda r: np.square(r)))
    ax.set_xlim(0, last * 1.02)
    nice = [m * 10 ** e for e in range(0, 7) for m in (1, 2, 5)]
    ticks, room = [0], 0.1 * np.sqrt(last)  # labels at least a tenth of the axis apart
    for t in nice:
        if np.sqrt(t) - np.sqrt(ticks[-1]) >= room and np.sqrt(last) - np.sqrt(t) >= room:
            ticks.append(t)
    ticks.append(last)
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    for e in range(1, int(last // spe) + 1):
        ax.axvline(e * spe, color="0.85", lw=0.6, zorder=0)


def _layer_title(layers, li):
    name = layers[li]
    if li == 0:
        return f"{name} (first layer: its R carries no feedback)"
    if li == len(layers) - 1:
        return f"{name} (output layer)"
    return name


def fig_correlation(matrix, results, fig_dir, fig_id, number):
    """Fig. 10 / Fig. 11: W–R correlation per layer from epoch 0 (probes included) under URFB and FRFB. Top: the
    paper's layout (URFB | FRFB, every layer in its own colour, on a symmetric-log axis where small
    correlations show); below: one panel per layer, with its own scale, URFB beside FRFB."""
    from matplotlib.lines import Line2D

    data = by_row(results)
    written = []
    for row in _rows_for(matrix, fig_id):
        got = data.get(row["name"], {})
        shown = [p for p in ("urfb", "frfb") if p in got]
        if not shown:
            continue
        first_rows = next(iter(got[shown[0]].values()))
        layers = list((first_rows[0].get("initial") or first_rows[0])["alignment"])
        spe = steps_per_epoch(first_rows)
        last = int(first_rows[-1].get("step", len(first_rows)))
        ncols = min(4, len(layers))
        nrows = -(-len(layers) // ncols)
        fig = plt.figure(figsize=(3.4 * ncols + 1.6, 4.2 + 2.5 * nrows + 1.8))
        grid = fig.add_gridspec(1 + nrows, 2 * ncols, height_ratios=[1.6] + [1] * nrows)
        half = ncols
        tops = [fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])]
        curves = {(p, layer): stats(got[p], "alignment", probes=True, layer=layer, scale=1.0)
                  for p in shown for layer in layers}
        lowest = min(float(np.min(v[2])) for v in curves.values() if len(v[2]))
        bottom = -0.03 if lowest > -0.025 else 1.25 * lowest  # below every band, on the symmetric log scale
        for ax, p in zip(tops, ("urfb", "frfb")):
            if p not in got:
                ax.remove()
                continue
            for li, layer in enumerate(layers):
                x, m, lo, hi = curves[(p, layer)]
                col = LAYER_COLOURS[li % len(LAYER_COLOURS)]
                ax.plot(x, m, "-", color=col, marker=LAYER_MARKERS[li % len(LAYER_MARKERS)], ms=3, lw=1.5,
                        label=layer)
                ax.fill_between(x, lo, hi, color=col, alpha=0.08 if len(layers) > 4 else 0.15, lw=0)
            ax.set_yscale("symlog", linthresh=0.01, linscale=1.0)
            ax.set_ylim(bottom, 1.05)
            ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(
                [t for t in (-1, -0.3, -0.1, -0.03, -0.01, 0, 0.01, 0.03, 0.1, 0.3, 1) if t >= bottom]))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.axhline(0, color="0.5", lw=0.8)
            _sqrt_steps(ax, last, spe)
            ax.set(xlabel="SGD steps (square-root scale; grey lines: epoch ends)", title=label(p))
            ax.title.set_color(colour(p))
            ax.grid(axis="y", alpha=0.3)
        tops[0].set_ylabel("corr(W, R) (symmetric log scale)")
        tops[-1].legend(fontsize=7, title="layer (input → output)", title_fontsize=7, loc="upper left",
                        bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        for li, layer in enumerate(layers):
            ax = fig.add_subplot(grid[1 + li // ncols, 2 * (li % ncols):2 * (li % ncols) + 2])
            for p in shown:
                x, m, lo, hi = curves[(p, layer)]
                ax.plot(x, m, "-", color=colour(p), lw=1.5, marker=MARKERS[p], ms=2.5)
                ax.fill_between(x, lo, hi, color=colour(p), alpha=0.18, lw=0)
            ax.axhline(0, color="0.5", lw=0.8)
            _sqrt_steps(ax, last, spe)
            ax.set_title(_layer_title(layers, li), fontsize=8, color=LAYER_COLOURS[li % len(LAYER_COLOURS)])
            ax.tick_params(labelsize=7)
            ax.grid(axis="y", alpha=0.3)
            if li % ncols == 0:
                ax.set_ylabel("corr(W, R)", fontsize=8)
            if li // ncols == nrows - 1:
                ax.set_xlabel("SGD steps", fontsize=8)
            if li == len(layers) - 1:
                ax.legend(handles=[Line2D([], [], color=colour(p), marker=MARKERS[p], ms=3, label=label(p))
                                   for p in shown], fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                          borderaxespad=0)
        fig.suptitle(f"Fig. {number}: W–R correlation per layer, {row['name']} on "
                     f"{DATASET_LABELS.get(row['dataset'], row['dataset'])}, from epoch 0")
        ends = "; ".join(f"{label(p)} " + ", ".join(f"{layer} {curves[(p, layer)][1][-1]:+.3f}" for layer in layers)
                         for p in shown)
        text = (f"{facts(results, row['name'], shown)}. Pearson correlation of W and R over all their entries, "
                "before training (step 0), every few SGD steps of the first epoch (the probes) and after each "
                "epoch. Lines: mean over seeds; bands: lowest to highest seed. Top: the paper's layout, on a "
                "symmetric log scale (linear within ±0.01). Below: one panel per layer, each with its own scale. "
                "The first layer's R carries no feedback (nothing lies below it): under URFB its correlation only "
                f"shows the shared increments outgrowing the independent initial values. At the end: {ends}.")
        written.append(_finish(fig, matrix, text, fig_dir / f"fig{number:02d}_correlation_{row['net_name']}.png"))
    return written


# --- Fig. 8: the untied filters ------------------------------------------------------------------------------

def _signed_image(filt: np.ndarray, scale: float) -> np.ndarray:
    """A (C, k, k) filter as an image on a shared scale: value v ↦ 0.5 + v / (2·scale) per colour channel, so
    zero is mid-grey whatever the filter (never stretched to the filter's own range)."""
    img = np.clip(0.5 + filt / (2 * scale), 0, 1)
    return img[0] if img.shape[0] == 1 else np.transpose(img[:3], (1, 2, 0))


def fig_filters(matrix, results, fig_dir, root):
    """Fig. 8: filters of the first (untied) layer at 4 grid positions, W and W − W(0), each block on one shared
    scale with its colour bar, and how alike one channel's filters are across space."""
    import torch

    from models.local import Local, filter_similarity, filters_at
    from models.train import RunConfig, build_network

    for row in _rows_for(matrix, "fig08"):
        keys = [k for k, res in results.items() if res["run"].row == row["name"]]
        pick = sorted(keys, key=lambda k: (results[k]["run"].protocol != "urfb", results[k]["run"].seed))
        if not pick:
            continue
        res = results[pick[0]]
        run = res["run"]
        state = torch.load(run.path(root) / "checkpoint.pt", map_location="cpu", weights_only=False)
        cfg = RunConfig.from_dict(state["config"])
        classes, *shape = _input_shape(state["model"], cfg, run.dataset)
        net0 = build_network(cfg, shape, classes)
        net = build_network(cfg, shape, classes)
        net.load_state_dict(state["model"])
        weights = [m for m in net.layers if hasattr(m, "W")]
        if not weights or not isinstance(weights[0], Local):  # e.g. the §4.1 protocol: layer 1 is tied
            continue
        first, first0 = weights[0], next(m for m in net0.layers if hasattr(m, "W"))
        h, w = first.hw
        a = first.k // 2
        positions = [(a, a), (a, w - 1 - a), (h - 1 - a, a), (h // 2, w // 2)]
        f = filters_at(first, positions).detach().double().numpy()  # (P, C_out, C_in, k, k)
        f0 = filters_at(first0, positions).detach().double().numpy()
        blocks = (("W", f), ("W − W(0)", f - f0))  # the weights, and what learning added to them
        sim = _similarity(filter_similarity, first)
        inc = _similarity(filter_similarity, first, reference=first0.W)
        channels = min(6, f.shape[1])
        npos = len(positions)
        fig = plt.figure(figsize=(1.25 * 2 * npos + 3.4, 1.3 * channels + 2.2))
        # per block: its filters, its colour bar, room for the bar's ticks and label
        grid = fig.add_gridspec(channels, 2 * (npos + 2), width_ratios=([1] * npos + [0.12, 0.55]) * 2,
                                wspace=0.08, hspace=0.08)
        rgb = f.shape[2] == 3
        for b, (name, block) in enumerate(blocks):
            shown = block[:, :channels, :3 if rgb else 1]
            scale = float(np.abs(shown).max()) or 1.0  # one scale for the whole block: zeros stay mid-grey
            im = None
            for c in range(channels):
                for pi, pos in enumerate(positions):
                    ax = fig.add_subplot(grid[c, b * (npos + 2) + pi])
                    im = ax.imshow(_signed_image(shown[pi, c], scale), cmap=None if rgb else "RdBu_r",
                                   vmin=0, vmax=1, interpolation="nearest")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if c == 0:
                        ax.set_title(f"{name}\nat {pos}", fontsize=8)
                    if pi == 0 and b == 0:
                        ax.set_ylabel(f"channel {c}", fontsize=8)
            cax = fig.add_subplot(grid[:, b * (npos + 2) + npos])
            bar = fig.colorbar(matplotlib.cm.ScalarMappable(
                norm=matplotlib.colors.Normalize(-scale, scale), cmap="gray" if rgb else "RdBu_r"), cax=cax)
            bar.set_label(f"{name}" + (" (each colour channel; mid-grey = 0)" if rgb else " (white = 0)"), fontsize=7)
            bar.ax.tick_params(labelsize=6)
            del im
        epochs = len(res["metrics"])
        fig.suptitle(f"Fig. 8: untied {row['net_name']}, first layer ({label(run.protocol)}, seed {run.seed}), "
                     f"{first.k}×{first.k} filters at 4 of the {h}×{w} positions", fontsize=9)
        one = {k: v for k, v in results.items() if k == pick[0]}
        text = (f"{facts(one, row['name'])}, after {epochs} epochs. Left: the weights W; right: the increments "
                "W − W(0) that learning added (W(0) redrawn from the run's seed). Each block is drawn on one scale "
                "shared by all its filters (colour bar), so a filter learning left unchanged is flat mid-grey. "
                "Similarity of one channel's filters across positions (mean correlation over positions whose "
                f"window lies inside the grid): weights {sim} between channels (the control); increments {inc}.")
        caption(fig, matrix, text)
        fig.subplots_adjust(left=0.05, right=0.99, top=0.9, bottom=_caption_height(fig, text) + 0.02)
        path = fig_dir / f"fig08_untied_filters_{row['net_name']}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return [path]
    return []


def _similarity(measure, layer, reference=None) -> str:
    """'+0.412 vs +0.003' (same channel vs between channels), or why the measure is undefined."""
    try:
        sim = measure(layer, reference=reference)
    except ValueError:  # fewer than two non-constant filters per channel (e.g. increments that never came)
        return "undefined (fewer than two filters per channel that are not constant) vs undefined"
    return f"{sim['same']:+.3f} vs {sim['shuffled']:+.3f}"


def _input_shape(state_dict, cfg, dataset=None):
    """(classes, C, H, W) of a run: from the data set's name where it is known, else read from its cache."""
    if dataset in INPUT_SHAPES:
        return (CLASSES.get(dataset, 10), *INPUT_SHAPES[dataset])
    from models.data import load

    ds = load(cfg.data, data_dir=cfg.data_dir, val_size=cfg.val_size, seed=cfg.seed, train_subset=cfg.train_subset)
    return (len(ds.classes), *ds.x_train.shape[1:])


def _steps(ax, f, lo, hi, breaks, colour, label):
    """A step function drawn as flat pieces, with a filled dot where each breakpoint's value lies and an open
    dot on the level it does not take (the closed and open ends of the paper's intervals)."""
    edges = [lo, *breaks, hi]
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        ax.plot([a, b], [f((a + b) / 2)] * 2, color=colour, lw=2.2, label=label if k == 0 else None)
    for x in breaks:
        left, right, at = f(x - 1e-9), f(x + 1e-9), f(x)
        ax.plot([x, x], [left, right], color=colour, lw=0.8, ls=":")
        ax.plot(x, at, "o", color=colour, ms=5, zorder=3)
        ax.plot(x, right if at == left else left, "o", mfc="white", mec=colour, ms=5, zorder=3)


def fig_transfer(matrix, fig_dir, M=2.0, S=1.0, mu=0.25, eps=0.2):
    """Fig. 13: σ_δ (σ_out) of the error unit and σ_t (σ_ctl) of the control unit, breakpoints labelled, with
    the error unit's input H of each regime marked."""
    from circuits.transfer import sigma_ctl, sigma_out

    from sims.cli import caption as write_caption

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw=dict(width_ratios=[1.45, 1]))
    ax = axes[0]
    lo, hi = -3 * M - 1, 3 * M + 1
    ticks = [-2 * M - S, -M, M, 2 * M + S]
    # the input H = h + 2M·s − 2M·t of each regime before t switches (t = 0), with h in (−M, M)
    bands = (("off-correct", -3 * M, -2 * M - S, "#c6dbef"), ("off-update", -2 * M - S, -M, "#fde0c5"),
             ("correct regimes\nonce t = ±1", -M, M, "#e5e5e5"), ("on-update", M, 2 * M + S, "#fde0c5"),
             ("on-correct", 2 * M + S, 3 * M, "#c6dbef"))
    for name, a, b, shade in bands:
        ax.axvspan(a, b, color=shade, alpha=0.7, lw=0, zorder=0)
        ax.text((a + b) / 2, 1.28 + eps, name, ha="center", va="center", fontsize=7.5, color="0.25")
    _steps(ax, lambda H: float(sigma_out(H, M=M, S=S, mu=mu, eps=eps)), lo, hi, ticks, "#2166ac", "σ_δ(H)")
    ax.set_xticks(ticks, ["−2M−S", "−M", "M", "2M+S"])
    ax.set_yticks([-mu - eps, -mu, 0, 1, 1 + eps], ["−μ−ε", "−μ", "0", "1", "1+ε"])
    ax.set_xlim(lo, hi)
    ax.set_ylim(-mu - eps - 0.25, 1.45 + eps)
    ax.set(xlabel="error-unit input H = h + 2M·s − 2M·t (a.u.)", ylabel="error-unit output δ (a.u.)",
           title="σ_δ: the error unit (Fig. 13, left)")
    ax.grid(axis="y", alpha=0.2)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(0.0, 0.62))
    ax = axes[1]
    _steps(ax, lambda d: float(sigma_ctl(d, mu=mu, eps=eps)), -mu - 1, 2.2, [-mu, 1.0], "#d7301f", "σ_t(δ)")
    ax.set_xticks([-mu, 0, 1], ["−μ", "0", "1"])
    ax.set_yticks([-1, 0, 1])
    ax.set_ylim(-1.3, 1.3)
    ax.set(xlabel="error-unit output δ (a.u.)", ylabel="control-unit output t (a.u.)",
           title="σ_t: the control unit (Fig. 13, right)")
    ax.grid(alpha=0.2)
    ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Fig. 13: the transfer functions of the output error circuit (M = {M:g}, S = {S:g}, μ = {mu:g}, "
                 f"ε = {eps:g})")
    bottom = write_caption(fig, "Drawn from circuits.transfer, the one definition the Brian2 networks and the PyTorch "
                                "modules use. Filled dots: the value at a breakpoint; open dots: the level it does "
                                "not take (at H = ±M the outer value, where the paper's intervals overlap). Shading "
                                "on the left: where the input H of each regime lies before the control unit "
                                "switches (t = 0, h in (−M, M)); in the correct regimes δ > 1 or δ < −μ then "
                                "switches t to ±1 (right), which moves H by ∓2M into (−M, M), where δ = 0: the "
                                "oscillation. No training runs or seeds.", fontsize=8)
    return [_save(fig, fig_dir / "fig13_transfer_functions.png", bottom=bottom)]


def make_all(matrix, runs, results, fig_dir: Path, page: Path, *, only=None, circuits=None, sources=None,
             root=None, command="python sims/reproduce.py", circuit_dir: Path | None = None) -> list[Path]:
    """Every figure (or those named in ``only``) into ``fig_dir``, the circuit and theory scripts' figures into
    ``circuit_dir`` (default ``fig_dir``); returns the files written. The page: ``sims.results_page``."""
    want = (lambda name: only is None or name in only)  # noqa: E731
    written = []
    if want("fig04"):
        written += fig_curves(matrix, results, fig_dir, "fig04", 4, "simpnet")
    if want("fig05"):
        written += fig_protocols(matrix, results, fig_dir, "fig05", 5, "simpnet")
    if want("fig06"):
        written += fig_protocols(matrix, results, fig_dir, "fig06", 6, "deepnets")
    if want("fig07"):
        written += fig_curves(matrix, results, fig_dir, "fig07", 7, "deepernet")
    if want("fig08") and root is not None:
        written += fig_filters(matrix, results, fig_dir, root)
    if want("fig09"):
        written += fig_tied_untied(matrix, results, fig_dir)
    if want("fig10"):
        written += fig_correlation(matrix, results, fig_dir, "fig10", 10)
    if want("fig11"):
        written += fig_correlation(matrix, results, fig_dir, "fig11", 11)
    if want("fig13"):
        written += fig_transfer(matrix, fig_dir)
    if circuits is not None and (want("fig12") or want("circuits")):
        written += circuits(matrix, circuit_dir or fig_dir, only)
    return written
