"""The figures and the results page of the reproduction (``sims/reproduce.py``), drawn from run directories.

Each figure is named ``fig<NN>_<what>.png`` after the paper's figure number and captioned with the budget,
its data and the seeds. Colours follow the paper: BP green, URFB blue, FRFB red; training solid, validation
dotted. Every training figure shows the mean over seeds and a band from the lowest to the highest seed.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.claims import CHANCE_BAND, CLOSE, GROW, WEAK, final_error, judge_all  # noqa: E402
from models.experiments import mean_sd  # noqa: E402

COLOURS = {"bp": "#1a9641", "bp-h": "#78c679", "urfb": "#2166ac", "frfb": "#d7301f",
           "urfb-50": "#92c5de", "frfb-50": "#f4a582", "kp": "#762a83", "sign": "#e08214", "dfa": "#8c510a"}
LABELS = {"bp": "BP (softmax)", "bp-h": "BP-H (hinge)", "urfb": "URFB", "frfb": "FRFB", "urfb-50": "URFB 50%",
          "frfb-50": "FRFB 50%"}
DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "digits": "digits (8×8)",
                  "fashion-mnist": "Fashion-MNIST"}
DEFAULT_CLAIMS = {"shallow": "simpnet", "deep": ["deepnet", "deepnet-slope05", "deepernet"],
                  "untied": [["simpnet", "simpnet-untied"], ["deepnet_s", "deepnet_s-untied"]],
                  "correlation": ["simpnet", "deepnet_s"]}


def colour(protocol: str) -> str:
    return COLOURS.get(protocol, "0.4")


def label(protocol: str) -> str:
    return LABELS.get(protocol, protocol)


def caption(fig, matrix, text: str, seeds=None) -> None:
    seeds = matrix.seeds if seeds is None else seeds
    full = (f"Budget '{matrix.name}': {matrix.description}. Seeds {', '.join(map(str, seeds))}. {text}")
    width = int(fig.get_figwidth() * 17)  # characters of 7-point text per line
    fig.text(0.01, 0.005, "\n".join(textwrap.wrap(full, width)), fontsize=7, va="bottom", ha="left", color="0.25")


def _save(fig, path: Path, bottom: float = 0.16) -> Path:
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def by_row(results: dict) -> dict:
    """{row: {protocol: {seed: metrics}}}."""
    out = {}
    for res in results.values():
        r = res["run"]
        out.setdefault(r.row, {}).setdefault(r.protocol, {})[r.seed] = res["metrics"]
    return out


def series(seed_rows: dict, key, *, scale=100.0):
    """(epochs, mean, low, high) of a per-epoch quantity over seeds (a key or a function of the row)."""
    get = key if callable(key) else (lambda r: r.get(key, np.nan))
    n = min(len(m) for m in seed_rows.values())
    a = np.array([[scale * get(m[i]) for i in range(n)] for m in seed_rows.values()], dtype=float)
    return np.arange(1, n + 1), a.mean(0), a.min(0), a.max(0)


def _rows_for(matrix, fig_id):
    return [row for row in matrix.rows if fig_id in row.get("figures", [])]


def _not_run(ax, what):
    ax.text(0.5, 0.5, f"{what}\nnot run", ha="center", va="center", transform=ax.transAxes, fontsize=11,
            color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def fig_curves(matrix, results, fig_dir, fig_id, number, what):
    """Fig. 4 / Fig. 7: training (solid) and validation (dotted) error per epoch for BP, URFB and FRFB."""
    rows = _rows_for(matrix, fig_id)
    data = by_row(results)
    if not rows:
        return []
    fig, axes = plt.subplots(1, len(rows), figsize=(6.4 * len(rows), 4.6), squeeze=False)
    for ax, row in zip(axes[0], rows):
        got = data.get(row["name"], {})
        shown = [p for p in ("bp", "urfb", "frfb") if p in got]
        if not shown:
            _not_run(ax, row["name"])
            continue
        for p in shown:
            for key, ls, tag in (("train_error", "-", "training"), ("val_error", ":", "validation")):
                x, m, lo, hi = series(got[p], key)
                ax.plot(x, m, ls, color=colour(p), lw=1.8, label=f"{label(p)} {tag}")
                ax.fill_between(x, lo, hi, color=colour(p), alpha=0.15, lw=0)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel="error (%)",
               title=f"{row['name']} on {DATASET_LABELS.get(row['dataset'], row['dataset'])}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    fig.suptitle(f"Fig. {number}: training and validation error per epoch, {what}")
    caption(fig, matrix, "Lines: mean over seeds; bands: lowest to highest seed. Training error is measured "
                         "during each epoch's training pass (dropout on); validation error after it (dropout off).")
    return [_save(fig, fig_dir / f"fig{number:02d}_error_curves_{what}.png")]


def _final(seed_rows):
    vals = {s: final_error(m)[0] for s, m in seed_rows.items()}
    split = final_error(next(iter(seed_rows.values())))[1]
    return vals, split


def _bars(ax, groups, data, title):
    """Grouped bars: groups = [(group label, row name)], bars = protocols; mean, min–max whiskers, seed dots."""
    protocols = []
    for _, name in groups:
        protocols += [p for p in data.get(name, {}) if p not in protocols]
    if not protocols:
        return None
    width = 0.8 / len(protocols)
    splits = set()
    for gi, (glabel, name) in enumerate(groups):
        got = data.get(name, {})
        for pi, p in enumerate(protocols):
            if p not in got:
                continue
            vals, split = _final(got[p])
            splits.add(split)
            v = np.array(list(vals.values()))
            x = gi + (pi - (len(protocols) - 1) / 2) * width
            ax.bar(x, v.mean(), width * 0.92, color=colour(p), label=label(p) if gi == 0 else None,
                   hatch="//" if p.endswith("-50") else None, edgecolor="white")
            ax.errorbar(x, v.mean(), yerr=[[v.mean() - v.min()], [v.max() - v.mean()]], color="k", lw=0.8,
                        capsize=2)
            ax.plot(np.full(len(v), x), v, "k.", ms=3)
    ax.set_xticks(range(len(groups)), [g for g, _ in groups])
    ax.set(ylabel=f"final {'/'.join(sorted(splits))} error (%)", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylim(0, 122)
    ax.set_yticks(range(0, 101, 20))
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    return splits


def fig_protocols(matrix, results, fig_dir, fig_id, number, what):
    """Fig. 5 / Fig. 6: final error per protocol (BP, BP-H, URFB, FRFB, URFB 50%, FRFB 50%) per data set."""
    rows = _rows_for(matrix, fig_id)
    if not rows:
        return []
    data = by_row(results)
    datasets = [d for d in ("cifar10", "cifar100") if any(r["dataset"] == d for r in rows)]
    datasets = [r["dataset"] for r in rows if r["dataset"] not in ("cifar10", "cifar100")][:1] + datasets
    if "cifar100" not in datasets:
        datasets.append("cifar100")
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.4 * len(datasets), 4.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        groups = [(_group_label(r), r["name"]) for r in rows if r["dataset"] == ds and r["name"] in data]
        title = DATASET_LABELS.get(ds, ds)
        if not groups or _bars(ax, groups, data, title) is None:
            _not_run(ax, title + (" (pass --source cifar100=PATH)" if ds == "cifar100" else ""))
            ax.set_title(title)
    fig.suptitle(f"Fig. {number}: final error per protocol, {what}")
    caption(fig, matrix, "Bars: mean over seeds; whiskers: lowest to highest seed; dots: each seed. Error of the "
                         "last epoch on the test split where the data has one, else on the validation hold-out. "
                         "Hatched: 50% random connectivity of W and R (§3.1).")
    return [_save(fig, fig_dir / f"fig{number:02d}_protocols_{what}.png")]


def _group_label(row):
    slope = row["config"].get("slope", 0.5)
    name = row["net_name"] + (" untied" if row.get("untied") else "")
    return f"{name}\nslope {slope:g}"


def fig_tied_untied(matrix, results, fig_dir):
    """Fig. 9: final error of tied vs untied networks per rule."""
    rows = _rows_for(matrix, "fig09")
    data = by_row(results)
    tied = [r for r in rows if not r.get("untied")]
    pairs = [(t, u) for t in tied for u in rows if u.get("untied") and u["net_name"] == t["net_name"]
             and u["dataset"] == t["dataset"]]
    if not pairs:
        return []
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.6 * len(pairs), 4.6), squeeze=False)
    for ax, (t, u) in zip(axes[0], pairs):
        protocols = [p for p in data.get(t["name"], {}) if p in data.get(u["name"], {})]
        if not protocols:
            _not_run(ax, t["net_name"])
            continue
        for i, p in enumerate(protocols):
            for j, (row, hatch) in enumerate(((t, None), (u, ".."))):
                vals, _ = _final(data[row["name"]][p])
                v = np.array(list(vals.values()))
                x = i + (j - 0.5) * 0.38
                ax.bar(x, v.mean(), 0.36, color=colour(p), hatch=hatch, edgecolor="white",
                       label=("tied" if j == 0 else "untied") if i == 0 else None)
                ax.errorbar(x, v.mean(), yerr=[[v.mean() - v.min()], [v.max() - v.mean()]], color="k", lw=0.8,
                            capsize=2)
                ax.plot(np.full(len(v), x), v, "k.", ms=3)
        ax.set_xticks(range(len(protocols)), [label(p) for p in protocols])
        _, split = _final(data[t["name"]][protocols[0]])
        ax.set(ylabel=f"final {split} error (%)",
               title=f"{t['net_name']} on {DATASET_LABELS.get(t['dataset'], t['dataset'])}: tied vs untied")
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, 115)
        ax.set_yticks(range(0, 101, 20))
        ax.legend(fontsize=8, ncol=2, loc="upper center")
    fig.suptitle("Fig. 9: tied (conv) vs untied (locally connected) layers, §4.1")
    caption(fig, matrix, "Plain bars: tied; dotted bars: every conv layer untied (independent weights per position, "
                         "drawn independently at the start). Mean over seeds; whiskers: lowest to highest seed.")
    return [_save(fig, fig_dir / "fig09_tied_vs_untied.png")]


def fig_correlation(matrix, results, fig_dir, fig_id, number):
    """Fig. 10 / Fig. 11: W–R correlation per layer per epoch, URFB beside FRFB."""
    rows = _rows_for(matrix, fig_id)
    data = by_row(results)
    written = []
    for row in rows:
        got = data.get(row["name"], {})
        shown = [p for p in ("urfb", "frfb") if p in got]
        if not shown:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
        layers = list(next(iter(got[shown[0]].values()))[0]["alignment"])
        cmap = plt.get_cmap("viridis")
        for ax, p in zip(axes, ("urfb", "frfb")):
            if p not in got:
                _not_run(ax, label(p))
                continue
            for li, layer in enumerate(layers):
                x, m, lo, hi = series(got[p], lambda r, layer=layer: r["alignment"][layer], scale=1.0)
                c = cmap(0.85 * li / max(len(layers) - 1, 1))  # stop before viridis' pale yellow
                ax.plot(x, m, "-o", ms=3, color=c, label=layer)
                ax.fill_between(x, lo, hi, color=c, alpha=0.2, lw=0)
            ax.axhline(0, color="0.6", lw=0.8)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set(xlabel="epoch", title=f"{label(p)}", ylim=(-0.1, 1.02))
            ax.title.set_color(colour(p))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("corr(W, R), Pearson over all entries")
        axes[0].legend(fontsize=8, title="layer (input → output)")
        fig.suptitle(f"Fig. {number}: W–R correlation per layer, {row['name']} on "
                     f"{DATASET_LABELS.get(row['dataset'], row['dataset'])}")
        caption(fig, matrix, "Lines: mean over seeds; bands: lowest to highest seed. The first layer's R carries no "
                             "feedback (nothing lies below it); under URFB its correlation only shows the shared "
                             "increments outgrowing the independent initial values.")
        written.append(_save(fig, fig_dir / f"fig{number:02d}_correlation_{row['net_name']}.png"))
    return written


def fig_filters(matrix, results, fig_dir, root):
    """Fig. 8: filters of the first untied layer at 4 grid locations, and how alike they are across space."""
    import torch

    from models.local import Local, filter_similarity, filters_at
    from models.train import RunConfig, build_network

    rows = _rows_for(matrix, "fig08")
    for row in rows:
        keys = [k for k, res in results.items() if res["run"].row == row["name"]]
        pick = sorted(keys, key=lambda k: (results[k]["run"].protocol != "urfb", results[k]["run"].seed))
        if not pick:
            continue
        res = results[pick[0]]
        run = res["run"]
        state = torch.load(run.path(root) / "checkpoint.pt", map_location="cpu", weights_only=False)
        cfg = RunConfig.from_dict(state["config"])
        shape = _input_shape(state["model"], cfg)
        net0 = build_network(cfg, shape[1:], shape[0])
        net = build_network(cfg, shape[1:], shape[0])
        net.load_state_dict(state["model"])
        first = next(m for m in net.layers if isinstance(m, Local))
        first0 = next(m for m in net0.layers if isinstance(m, Local))
        h, w = first.hw
        a = first.k // 2
        positions = [(a, a), (a, w - 1 - a), (h - 1 - a, a), (h // 2, w // 2)]
        f = filters_at(first, positions).detach()  # (P, C_out, C_in, k, k)
        f0 = filters_at(first0, positions).detach()
        blocks = (("W", f), ("W − W(0)", f - f0))  # the weights, and what learning added to them
        sim = filter_similarity(first)
        inc = filter_similarity(first, reference=first0.W)
        channels = min(6, f.shape[1])
        cols = 2 * len(positions)
        fig, axes = plt.subplots(channels, cols, figsize=(1.3 * cols + 1, 1.4 * channels + 1.8), squeeze=False)
        for b, (name, block) in enumerate(blocks):
            for c in range(channels):
                for pi, pos in enumerate(positions):
                    filt = block[pi, c] if block.shape[2] in (1, 3) else block[pi, c, :1]
                    img = filt.permute(1, 2, 0).numpy()
                    lo, hi = img.min(), img.max()
                    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
                    ax = axes[c, b * len(positions) + pi]
                    ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", interpolation="nearest")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if c == 0:
                        ax.set_title(f"{name}\nat {pos}", fontsize=8)
                    if pi == 0 and b == 0:
                        ax.set_ylabel(f"channel {c}", fontsize=8)
        fig.suptitle(f"Fig. 8: untied {row['net_name']}, first layer ({label(run.protocol)}, seed {run.seed}), "
                     f"{first.k}×{first.k} filters at 4 of the {h}×{w} positions", fontsize=9)
        caption(fig, matrix, f"Left: the weights W; right: the increments W − W(0) that learning added (W(0) "
                             f"redrawn from the run's seed). Each filter scaled to its own range. Similarity of one channel's filters across "
                             f"positions (mean correlation): weights {sim['same']:+.3f} vs {sim['shuffled']:+.3f} "
                             f"between channels; learned increments W − W(0) {inc['same']:+.3f} vs "
                             f"{inc['shuffled']:+.3f}.", seeds=[run.seed])
        return [_save(fig, fig_dir / f"fig08_untied_filters_{row['net_name']}.png", bottom=0.12)]
    return []


def _input_shape(state_dict, cfg):
    """(classes, C, H, W) of a run from its data set (kept small: read from the cache via models.data)."""
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


def seconds_table(results) -> list[str]:
    cells = {}
    for res in results.values():
        r = res["run"]
        secs = [m["seconds"] for m in res["metrics"]]
        per_k = [s / (r.config.train_subset or 1) * 1000 for s in secs] if r.config.train_subset else None
        cells.setdefault((r.row, r.protocol), []).append((sum(secs) / len(secs), per_k))
    lines = ["| row | protocol | s per epoch | s per 1000 training images |", "|---|---|---|---|"]
    for (row, p), vals in sorted(cells.items()):
        m, sd, n = mean_sd([v for v, _ in vals])
        per = [x for _, pk in vals if pk for x in pk]
        pm = f"{sum(per) / len(per):.2f}" if per else "–"
        lines.append(f"| {row} | {p} | {m:.1f} ± {sd:.1f} | {pm} |")
    return lines


def write_page(matrix, results, page: Path, fig_names: list[str], command: str) -> Path:
    claims = {**DEFAULT_CLAIMS, **matrix.figures.get("claims", {})}
    verdicts = judge_all(results, claims)
    lines = [f"# Results: the claims of §4 at the '{matrix.name}' budget", "",
             f"Written by `{command}` from the run directories; no number on this page is typed by hand.", "",
             f"**Budget:** {matrix.description}. **Seeds:** {', '.join(map(str, matrix.seeds))}. "
             f"**Runs:** {len(results)} with results. Errors are the last epoch's, on the test split where the data "
             "has one, else on the validation hold-out; mean ± s.d. over seeds; pp = percentage points.", "",
             "| claim | verdict | why |", "|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {v.claim}. {v.text} | **{v.verdict}** | {v.reason} |")
    lines += ["", "## The numbers behind each verdict", ""]
    for v in verdicts:
        lines.append(f"**Claim {v.claim}.** {v.text} — **{v.verdict}**.")
        lines.append("")
        lines += [f"- {n}" for n in v.numbers] or ["- no runs for this claim in this matrix"]
        lines.append("")
    lines += ["## How the words were made numbers", "",
              f"A comparison uses the per-seed differences (paired by seed: same initial weights, batches and "
              f"dropout for every protocol of a seed), their mean d and standard error se. *Better*: d > 2·se "
              f"(fails if d < −2·se). *Close / comparable*: |d| ≤ {CLOSE:g} pp (fails if |d| − 2·se > {CLOSE:g}). "
              f"*Significantly worse*: d > {CLOSE:g} pp and d > 2·se (fails if d + 2·se < {CLOSE:g}). *Converges "
              "faster*: mean validation error over the first half of the epochs. *Grows*: last minus first "
              f"epoch's correlation, per layer but the first, by more than 2·se and {GROW:g}. *Weakly "
              f"correlated*: mean hidden-layer correlation below {WEAK:g}; *similar rates*: URFB's drop of training "
              "error 0.5–2× BP-H's over those epochs. A row where every protocol's mean final error is within "
              f"{CHANCE_BAND:g} pp of chance decides nothing. With 2–3 seeds the standard errors are rough: an "
              "*undecided* verdict means the budget cannot tell, not that the claim is false.", "",
              "## Figures", ""]
    lines += [f"![{n}](figures/{n})" for n in fig_names]
    lines += ["", "## Seconds per epoch", "",
              f"Measured inside each run (training pass only) with {matrix.threads} PyTorch thread(s) per run. Runs "
              "shared the machine with each other and with whatever else ran, so these are noisy: compare them "
              "within a row, and use the benchmarks in bench/ for speed ratios.", ""]
    lines += seconds_table(results)
    page.write_text("\n".join(lines) + "\n")
    return page


def make_all(matrix, runs, results, fig_dir: Path, page: Path, *, only=None, circuits=None, sources=None,
             root=None, command="python sims/reproduce.py") -> list[Path]:
    """Every figure and the page (or those named in ``only``); returns the files written."""
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
        written += circuits(matrix, fig_dir, only)
    if want("results"):
        names = sorted(p.name for p in fig_dir.glob("fig*.png"))
        written.append(write_page(matrix, results, page, names, command))
        (page.parent / (page.stem + ".json")).write_text(json.dumps(
            [v.__dict__ for v in judge_all(results, {**DEFAULT_CLAIMS, **matrix.figures.get("claims", {})})],
            indent=1) + "\n")
    return written
