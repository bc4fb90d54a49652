"""The results page of a budget, its raw metrics and the index of published budgets (``sims/reproduce.py``).

``write_page`` judges the claims (``models.claims``) on the finished runs and writes the page: per row the
training images, epochs, SGD steps and the commit that measured it; per claim the paper's sentence, the verdict,
the numbers behind it and the rule that made words into numbers; the figures drawn from these runs.
``write_metrics`` writes every run's per-epoch record (epoch 0 and the first epoch's probes included) as one
CSV file, so that every verdict can be recomputed without rerunning anything. ``write_index`` writes
``docs/results.md``: the verdict table of every budget published under ``docs/results/``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from models import claims as C
from models.claims import CLAIMS, judge_all
from models.experiments import TRAIN_SPLIT_SIZE, mean_sd

DEFAULT_CLAIMS = {"shallow": "simpnet", "deep": ["deepnet", "deepernet"], "plateau": ["deepnet-slope05"],
                  "untied": [["simpnet", "simpnet-untied"], ["deepnet_s", "deepnet_s-untied41"]],
                  "correlation": ["simpnet", "deepnet", "deepnet_s"], "connectivity": "simpnet",
                  "depth": ["simpnet", "deepnet", "deepernet"], "filters": ["simpnet-untied"]}

__all__ = ["DEFAULT_CLAIMS", "claim_rows", "training_images", "measure_filters", "metrics_records",
           "write_metrics", "write_page", "write_index"]


def claim_rows(matrix) -> dict:
    """Which rows decide which claim: the matrix's ``[figures.claims]`` over the defaults."""
    return {**DEFAULT_CLAIMS, **matrix.figures.get("claims", {})}


def training_images(run) -> int:
    """Training images of a run: its subset, else the training split less the validation hold-out."""
    c = run.config
    if c.train_subset is not None:
        return c.train_subset
    val = c.val_size if c.val_size is not None else (300 if run.dataset == "digits" else 5000)
    return TRAIN_SPLIT_SIZE[run.dataset] - val


def _provenance(run, root) -> list[dict]:
    path = run.path(root) / "provenance.json"
    try:
        return json.loads(path.read_text()) if path.exists() else []
    except json.JSONDecodeError:
        return []


def measure_filters(results: dict, root, rows: list[str]) -> dict:
    """Claim 9's numbers: for every finished run of ``rows`` (untied from the first layer on), the similarity of
    one channel's learned change W − W(0) across positions (``same``) against different channels at different
    positions (``control``), ``models.local.filter_similarity``; W(0) is redrawn from the run's seed. Adds
    ``results[key]["filters"]`` and returns {key: numbers}."""
    import torch

    from models.data import load
    from models.local import Local, filter_similarity
    from models.train import RunConfig, build_network

    out = {}
    for key, res in results.items():
        run = res["run"]
        if run.row not in rows:
            continue
        ckpt = run.path(root) / "checkpoint.pt"
        if not ckpt.exists():
            continue
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        cfg = RunConfig.from_dict(state["config"])
        ds = load(cfg.data, data_dir=cfg.data_dir, val_size=cfg.val_size, seed=cfg.seed,
                  train_subset=cfg.train_subset)
        shape, classes = ds.x_train.shape[1:], len(ds.classes)
        net, net0 = build_network(cfg, shape, classes), build_network(cfg, shape, classes)
        net.load_state_dict(state["model"])
        first = net.layers[0]
        if not isinstance(first, Local):  # the §4.1 rows keep a tied first layer: nothing to compare
            continue
        try:
            sim = filter_similarity(first, reference=net0.layers[0].W)
        except ValueError:  # a grid too small for two whole windows, or one channel: no measure
            continue
        res["filters"] = out[key] = {"same": sim["same"], "control": sim["shuffled"]}
    return out


# ---- the raw metrics ----------------------------------------------------------------------------------------

_KEYS = ("train_error", "train_loss", "val_error", "val_loss", "test_error", "test_loss")


def metrics_records(results: dict) -> list[dict]:
    """One record per run and point: ``kind`` is ``initial`` (epoch 0), ``probe`` (inside the first epoch, on a
    fixed slice of the hold-out) or ``epoch``; W–R correlations as ``corr_<layer>``."""
    out = []
    for key in sorted(results):
        res = results[key]
        run, rows = res["run"], res["metrics"]
        base = {"row": run.row, "protocol": run.protocol, "seed": run.seed}
        points = []
        if rows and "initial" in rows[0]:
            points.append(("initial", 0, rows[0]["initial"]))
        for p in rows[0].get("probes", []) if rows else []:
            points.append(("probe", 0, p))
        points += [("epoch", r["epoch"], r) for r in rows]
        for kind, epoch, r in points:
            rec = {**base, "kind": kind, "epoch": epoch if kind != "probe" else "", "step": r.get("step", "")}
            rec.update({k: r[k] for k in _KEYS if k in r})
            rec.update({f"corr_{layer}": v for layer, v in r.get("alignment", {}).items()})
            if "seconds" in r:
                rec["seconds"] = r["seconds"]
            out.append(rec)
    return out


def write_metrics(results: dict, path: Path, filters: dict | None = None) -> Path:
    records = metrics_records(results)
    cols = ["row", "protocol", "seed", "kind", "epoch", "step", *_KEYS]
    layers = sorted({k for r in records for k in r if k.startswith("corr_")}, key=_layer_order)
    cols += layers + ["seconds"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    if filters:
        fpath = path.with_name(path.stem.replace("-metrics", "") + "-filters.csv")
        with open(fpath, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run", "same", "control"])
            for key, v in sorted(filters.items()):
                w.writerow([key, f"{v['same']:.6g}", f"{v['control']:.6g}"])
    return path


def _layer_order(name: str):
    stem = name.removeprefix("corr_")
    kind = stem.rstrip("0123456789")
    num = stem[len(kind):]
    return ({"conv": 0, "local": 0, "full": 1, "output": 2}.get(kind, 3), int(num) if num else 0, kind)


# ---- the page -----------------------------------------------------------------------------------------------

def _row_table(matrix, results, root) -> list[str]:
    lines = ["| row | net | slope | training images | epochs | SGD steps | runs finished | commit |",
             "|---|---|---|---|---|---|---|---|"]
    for row in matrix.rows:
        runs = [r for r in matrix.runs() if r.row == row["name"]]
        done = [results[r.key] for r in runs if r.key in results]
        if not runs:
            continue
        run = runs[0]
        steps = sorted({res["metrics"][-1].get("step", "?") for res in done})
        commits = sorted({p.get("commit", "?")[:10] + ("+" if p.get("dirty") else "")
                          for res in done for p in _provenance(res["run"], root)})
        net = row["net_name"] + (" untied (from scratch: every layer untied, drawn independently)"
                                 if row["untied"] and not row.get("untie_from") else "") + \
            (f" (§4.1: layer 1 from {row['untie_from']}, frozen)" if row.get("untie_from") else "")
        lines.append(f"| {row['name']} | {net} | {run.config.slope:g} | {training_images(run):,} | "
                     f"{run.config.epochs} | {', '.join(map(str, steps)) or '–'} | {len(done)} of {len(runs)} | "
                     f"{', '.join(commits) or '–'} |")
    return lines


def _seconds_table(results) -> list[str]:
    cells = {}
    for res in results.values():
        r = res["run"]
        secs = [m["seconds"] for m in res["metrics"]]
        cells.setdefault((r.row, r.protocol), []).append(sum(secs) / len(secs))
    lines = ["| row | protocol | s per epoch (mean ± s.d. over seeds) |", "|---|---|---|"]
    for (row, p), vals in sorted(cells.items()):
        m, sd, _ = mean_sd(vals)
        lines.append(f"| {row} | {p} | {m:.1f} ± {sd:.1f} |")
    return lines


def rules_text() -> list[str]:
    return [
        f"- **A run's error** is the mean validation error of its last {C.LAST_EPOCHS} epochs (one epoch's reading "
        "moves by several points). Protocols of a row share each seed's initial weights, batches and dropout, so "
        "two protocols are compared by their per-seed differences: mean d, standard error se, interval d ± 2·se.",
        f"- **Better**: the interval lies above 0 (holds) or below 0 (fails). **Close / comparable**: the whole "
        f"interval inside ±{C.CLOSE:g} pp (holds) or wholly outside (fails). **Slightly worse**: worse beyond the "
        f"noise and the interval below {C.CLOSE:g} pp; fails when better beyond the noise or worse by more than "
        f"{C.CLOSE:g} pp. **Significantly worse**: the interval above {C.CLOSE:g} pp (holds) or below (fails).",
        "- **Converges faster**: the mean of the validation-error curve over the first half of the run, from "
        "epoch 0 through the first epoch's probes (area under the curve per SGD step), compared as *better*.",
        f"- **At chance**: a protocol whose mean error is within {C.CHANCE_BAND:g} pp of chance learned nothing; a "
        "comparison involving it decides nothing.",
        f"- **Grows** (claim 5): last epoch minus epoch 0, per layer, beyond the noise and by more than "
        f"{C.GROW:g}; **more than FRFB** likewise; **never equal**: below {C.EQUAL} in every seed. Judged on the "
        "layers whose R carries feedback and that are not the output layer; the output layer is reported beside "
        "them (the paper says it aligns under both rules) and decides nothing.",
        f"- **Similar rates** (claim 6): from epoch 0 to the last epoch at which URFB's mean claim-5 correlation "
        f"is below {C.WEAK:g}, URFB's drop of error ÷ BP's (softmax BP where the row has it, else BP-H), on the "
        "training and the validation error; similar "
        f"when the whole interval lies in {C.SIMILAR_LOW:g}–{C.SIMILAR_HIGH:g}×, not similar when wholly outside.",
        "- **Same ordering** (claim 4): fails only where a pair of rules is ordered in opposite directions by the "
        "tied and the untied row, each beyond its noise; holds when some pair is ordered beyond the noise and no "
        "row leans against it.",
        f"- **Plateau escape** (reported with claim 3): epochs until the validation error first falls below "
        f"{C.ESCAPE:g}%.",
        "- **Larger at 50%** (claim 7): the per-seed FRFB − URFB gap at 50% minus the gap at 100%, compared as "
        "*better*. **Grows with depth** (claim 8): the gap of each deeper net minus the one before, likewise, at "
        "every step.",
        f"- **Similar across positions** (claim 9): the mean correlation of one channel's learned change W − W(0) "
        "between positions minus the same for different channels (the control), per seed; holds when the "
        f"interval lies above 0 and the mean above {C.GROW:g}, fails when the whole interval lies below {C.GROW:g} "
        "(no more similar than different filters, by any margin that counts).",
        "- With 3 seeds the standard errors are rough: *undecided* means this budget cannot tell, not that the "
        "claim is false; *fails* is printed with the numbers that make it fail.",
    ]


def write_page(matrix, results, page: Path, figures: list[str], command: str, root, metrics_name: str,
               fig_prefix: str = "figures/") -> list:
    """Write the page; returns the verdicts (also written beside the page as JSON)."""
    verdicts = judge_all(results, claim_rows(matrix))
    lines = [f"# Results: the paper's claims at the '{matrix.name}' budget", "",
             f"Written by `{command}` from the run directories; no number on this page is typed by hand. The raw "
             f"per-epoch metrics of every run are in [{metrics_name}]({metrics_name}): every verdict below can be "
             "recomputed from them.", "",
             f"**Budget:** {matrix.description}. **Seeds:** {', '.join(map(str, matrix.seeds))}. "
             f"**Runs finished:** {len(results)} of {len(matrix.runs())}. Errors are validation errors (mean of the "
             "last 3 epochs of a run; mean ± s.d. over seeds); pp = percentage points; se = standard error.", "",
             *_row_table(matrix, results, root), "",
             "| claim | the paper's sentence | verdict | why |", "|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {v.claim}. {v.text} | “{v.quote}” ({v.where}) | **{v.verdict}** | {v.reason} |")
    lines += ["", "## The numbers behind each verdict", ""]
    for v in verdicts:
        lines += [f"**Claim {v.claim}.** {v.text} — **{v.verdict}**.", ""]
        lines += [f"- {n}" for n in v.numbers] or ["- no runs for this claim at this budget"]
        lines.append("")
    lines += ["## How the words were made numbers", "", *rules_text(), "", "## Figures", ""]
    lines += [f"![{n}]({fig_prefix}{n})" for n in figures] or ["No figure of this budget's runs yet."]
    lines += ["", "## Seconds per epoch", "",
              f"Training pass of each epoch, measured inside each run with {matrix.threads} PyTorch thread per run; "
              "runs shared the machine with each other and with whatever else ran, so these are noisy (compare "
              "within a row; bench/ measures speed ratios side by side).", "", *_seconds_table(results)]
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines) + "\n")
    page.with_suffix(".json").write_text(json.dumps(
        {"budget": matrix.name, "description": matrix.description, "runs": len(results),
         "runs_planned": len(matrix.runs()), "verdicts": [v.__dict__ for v in verdicts]}, indent=1) + "\n")
    return verdicts


def write_index(results_dir: Path, index: Path) -> Path:
    """``docs/results.md``: the verdicts of every budget published in ``results_dir`` (from their JSON files)."""
    budgets = []
    for p in sorted(results_dir.glob("*.json")):
        try:
            d = json.loads(p.read_text())
            budgets.append((p.stem, d))
        except (json.JSONDecodeError, OSError):
            continue
    order = {"cpu": 0, "long": 1, "paper": 2}
    budgets.sort(key=lambda b: (order.get(b[0], 9), b[0]))
    lines = ["# Results: the paper's claims, decided", "",
             "Written by `sims/reproduce.py --publish` from the published budgets' pages; no number here is typed by "
             "hand. Each budget's page has the numbers behind every verdict, the rules, the figures and the raw "
             "metrics. [reproduce](reproduce.md) says how to rerun any of them.", ""]
    if not budgets:
        lines.append("No budget has been published yet.")
    else:
        head = "| claim | " + " | ".join(f"[{name}](results/{name}.md)" for name, _ in budgets) + " |"
        lines += [head, "|---|" + "---|" * len(budgets)]
        for n, claim in CLAIMS.items():
            cells = []
            for _, d in budgets:
                v = next((x for x in d["verdicts"] if x["claim"] == n), None)
                cells.append(f"**{v['verdict']}**" if v else "–")
            lines.append(f"| {n}. {claim.text} | " + " | ".join(cells) + " |")
        lines += ["", *[f"- **{name}**: {d['description']}; {d['runs']} of {d.get('runs_planned', d['runs'])} runs "
                        "finished" + (" (the budget is still running: its verdicts may change)"
                                      if d["runs"] < d.get("runs_planned", d["runs"]) else "") + "."
                        for name, d in budgets]]
    index.write_text("\n".join(lines) + "\n")
    return index
