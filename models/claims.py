"""The claims of the paper, judged on the runs of an experiment matrix: measured numbers, a verdict and its reason.

Each claim quotes the paper's sentence it judges (``Claim.quote``, ``Claim.where``): the six statements of §4's
list and three more the paper makes elsewhere (50% connectivity, depth, the untied filters of Fig. 8). The words
of the claims are made into numbers here, once, and the results page prints these rules with every verdict.

Which BP
    The paper names back-propagation with the softmax loss "BP" and with the hinge loss "BP-H" (the captions of
    Fig. 5 and 6), and Fig. 4, the figure of claim 2, draws BP, URFB and FRFB. So where a claim says "BP" (claims
    2, 3 and 6) the reference is the row's ``bp`` runs; a row without them is compared with ``bp-h`` and the line
    says so. The other one is reported beside it, deciding nothing: BP-H isolates the feedback rule from the
    loss, BP is what the sentence says.

Measurements
    * A run's **error** is the mean of its last ``LAST_EPOCHS`` (3) epochs' validation error, in percentage
      points (pp): one epoch's reading moves by several points from epoch to epoch, the size of the effects
      judged. (A run with fewer epochs averages the ones it has.)
    * Protocols of one row share their seeds' initial weights, batches and dropout masks, so two protocols are
      compared by the per-seed (paired) differences: their mean ``d`` and standard error ``se = sd/√n``. The
      interval of a difference is ``d ± 2·se``.
    * A protocol whose mean error lies within ``CHANCE_BAND`` (3 pp) of chance has learned nothing: a
      comparison that involves it decides nothing ("at chance"), and the row says so.

Words
    * **better** (A better than B): the interval of B − A lies above 0: holds; below 0: fails; else undecided.
    * **close / comparable**: the whole interval lies inside ±``CLOSE`` (5 pp): holds; the whole interval lies
      outside: fails; else undecided.
    * **slightly worse** (A slightly worse than B): A − B is *worse* (interval above 0) and *close* (interval
      inside ±CLOSE): holds; fails when A is better beyond the noise (interval below 0) or when the interval
      lies wholly above CLOSE; else undecided. It is judged in its direction: "slightly worse" is not "equal".
    * **significantly worse**: the interval of A − B lies above ``CLOSE``: holds; below CLOSE: fails.
    * **converges faster**: the mean of the validation-error curve over the first half of the run, from
      epoch 0 and through the first epoch's probes (an area under the curve per SGD step), compared as *better*.
    * **grows** (a correlation): last epoch minus epoch 0, per layer, by more than 2·se and more than
      ``GROW`` (0.02); **more than FRFB** likewise at the last epoch; **never equal**: below 0.99 in every seed.
      Claim 5 is judged on the layers whose R carries feedback and that are not the output layer (every weight
      layer but the first, whose R reaches nothing, and the last, which the paper says aligns under both rules);
      the output layer is reported beside them and decides nothing.
    * **similar rates** (claim 6): over the early window (epoch 0 to the last epoch at which URFB's mean
      correlation over the claim-5 layers is below ``WEAK``, at least epoch 1), URFB's drop of error divided by
      BP's (see Which BP); similar when the whole interval ratio ± 2·se lies inside [``SIMILAR_LOW``, ``SIMILAR_HIGH``]
      (0.5–2), not similar when it lies wholly outside; on the training and on the validation error.
    * **same ordering** (claim 4): for every pair of protocols, fails when the tied and the untied row order
      the pair in opposite directions, each beyond its noise; holds when at least one pair is ordered beyond
      the noise in some row and the other row's mean difference has the same sign for every such pair.
    * **plateau escape** (deep nets at slope 0.5, reported beside claim 3): epochs until the validation error
      first falls below ``ESCAPE`` (85%), per protocol and seed.
    * **similar across positions** (claim 9): ``exceeds`` on the per-seed difference between the same channel's
      and different channels' similarity of W − W(0) across positions: holds as ``better`` with ``GROW``; fails
      when the whole interval lies below ``GROW`` (the rule's own words: "no more similar than different
      filters"). Decided after seeing a long-budget run where both were 0.002 with a tiny interval, which
      ``better`` called undecided although the measurement settles it; recorded here so the reader can weigh it.

A claim holds when every part holds, fails when any part fails, and is undecided otherwise; a claim with no
row to judge is "not run".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .experiments import mean_sd

CLOSE = 5.0  # pp: "close", "comparable", the upper end of "slightly"
WEAK = 0.5  # "weakly correlated": mean W–R correlation of the claim-5 layers below this
GROW = 0.02  # a correlation "grows" / is "more" only by at least this much
CHANCE_BAND = 3.0  # pp: a protocol whose mean error is this close to chance has learned nothing
LAST_EPOCHS = 3  # a run's error: the mean validation error of its last epochs
SIMILAR_LOW, SIMILAR_HIGH = 0.5, 2.0  # "similar rates": the ratio of error drops within a factor 2
ESCAPE = 85.0  # pp: a deep net has left its initial plateau when its validation error first falls below this
EQUAL = 0.99  # "never the same": a correlation at or above this counts as equal weights

__all__ = ["CLOSE", "WEAK", "GROW", "CHANCE_BAND", "LAST_EPOCHS", "SIMILAR_LOW", "SIMILAR_HIGH", "ESCAPE", "reference",
           "CLAIMS", "Claim", "Verdict", "run_error", "final_error", "judge_all", "combine", "better", "close", "slightly_worse",
           "much_worse", "similar", "same_ordering", "feedback_layers"]


@dataclass(frozen=True)
class Claim:
    number: int
    text: str  # the claim in the project's words
    quote: str  # the paper's sentence it judges
    where: str  # where the sentence is


CLAIMS = {c.number: c for c in (
    Claim(1, "With BP, the hinge loss is slightly worse than softmax but comparable.",
          "With regular back-propagation (BP) hinge loss performs slightly worse than the softmax loss but results "
          "are comparable.", "§4, list item 1"),
    Claim(2, "Shallow net: URFB somewhat better than FRFB and converges faster; below BP but close.",
          "For shallow networks URFB performs somewhat better than FRFB but mainly converges faster. It never "
          "performs as well as BP but is close.", "§4, list item 2"),
    Claim(3, "Deeper nets: URFB close to BP; FRFB degrades significantly.",
          "For deeper networks URFB again performs close to BP but FRFB performance degrades significantly.",
          "§4, list item 3"),
    Claim(4, "Untied (locally connected) layers: slightly worse overall, same ordering of methods.",
          "With locally connected - untied - layers instead of convolutional layers results are slightly worse "
          "overall but the relationship between the different methods is maintained.", "§4, list item 4"),
    Claim(5, "Under URFB, W and R never become equal, but their correlation grows with iterations (more than "
             "under FRFB).",
          "In URFB the feedback weights are never the same as the feedforward weights, although the correlation "
          "between the two sets of weights increases with iteration.", "§4, list item 5 (and §4.2: \"the "
                                                                       "alignment is much stronger for the URFB\")"),
    Claim(6, "Even early, when W and R are weakly correlated, URFB's training and validation errors fall at rates "
             "similar to BP's.",
          "Even in initial iterations, when the weights are far from being aligned, training and validation error "
          "rates decrease at similar rates to back propagation.", "§4, list item 6"),
    Claim(7, "The URFB–FRFB gap is larger at 50% connectivity than at full connectivity.",
          "For CIFAR10 the difference between R fixed - FRFB - and R updated - URFB - is small, but becomes more "
          "significant when connectivity is reduced to 50%", "§4, after Fig. 4"),
    Claim(8, "URFB's advantage over FRFB grows with depth (simpnet → deepnet → deepernet).",
          "With fixed feedback weights as proposed in [17] performance degrades quickly as the depth of the "
          "network increases.", "Abstract"),
    Claim(9, "Untied first-layer filters are similar across positions (Fig. 8).",
          "Despite the fact that the weights are updated without being tied across space, the final connectivity "
          "matrix retains a strong spatial homogeneity.", "§4.1"),
)}


@dataclass
class Verdict:
    claim: int
    text: str
    verdict: str  # "holds", "fails", "undecided", "not run"
    reason: str
    numbers: list = field(default_factory=list)  # lines of measured numbers
    quote: str = ""
    where: str = ""


def _verdict(number: int, verdict: str, reason: str, numbers: list) -> Verdict:
    c = CLAIMS[number]
    return Verdict(number, c.text, verdict, reason, numbers, c.quote, c.where)


def combine(parts: list[str]) -> str:
    if not parts:
        return "not run"
    if "fails" in parts:
        return "fails"
    if all(p == "holds" for p in parts):
        return "holds"
    return "undecided"


# ---- the words, as functions of a paired difference d and its standard error se ----------------------------

def better(d: float, se: float, least: float = 0.0) -> str:
    """A better than B, with d = B − A (> 0 when A is better), by more than ``least``."""
    if d - 2 * se > 0 and d > least:
        return "holds"
    return "fails" if d + 2 * se < 0 else "undecided"


def exceeds(d: float, se: float, least: float) -> str:
    """d is an effect of at least ``least``: holds when the interval lies above 0 and d > ``least`` (as ``better``);
    fails when the whole interval lies below ``least`` (the effect, if any, is smaller than the least that counts),
    which ``better`` would call undecided. Claim 9 ("strong spatial homogeneity"): a similarity known to be below
    ``least`` beyond the control is "no more similar than different filters"."""
    if d - 2 * se > 0 and d > least:
        return "holds"
    return "fails" if d + 2 * se < least else "undecided"


def close(d: float, se: float, band: float = CLOSE) -> str:
    if abs(d) + 2 * se <= band:
        return "holds"
    return "fails" if abs(d) - 2 * se > band else "undecided"


def slightly_worse(d: float, se: float, band: float = CLOSE) -> str:
    """A slightly worse than B, with d = A − B: worse beyond the noise, and by less than ``band``."""
    if d + 2 * se < 0 or d - 2 * se > band:
        return "fails"
    return "holds" if (d - 2 * se > 0 and d + 2 * se <= band) else "undecided"


def much_worse(d: float, se: float, band: float = CLOSE) -> str:
    """A significantly worse than B, with d = A − B: by more than ``band`` beyond the noise."""
    if d - 2 * se > band:
        return "holds"
    return "fails" if d + 2 * se < band else "undecided"


def similar(ratio: float, se: float) -> str:
    lo, hi = ratio - 2 * se, ratio + 2 * se
    if SIMILAR_LOW <= lo and hi <= SIMILAR_HIGH:
        return "holds"
    return "fails" if (hi < SIMILAR_LOW or lo > SIMILAR_HIGH) else "undecided"


def same_ordering(tied: dict, untied: dict) -> tuple[str, list[str]]:
    """``tied``/``untied``: {(a, b): (d, se)} with d = error(b) − error(a), for the same pairs of protocols.

    Fails when a pair is ordered in opposite directions by the two rows, each beyond its noise; holds when at
    least one pair is ordered beyond the noise and, for every pair ordered beyond the noise in one row, the
    other row's mean difference has the same sign; undecided otherwise.
    """
    notes, ordered, clash, doubt = [], 0, False, False
    for pair, (dt, st) in tied.items():
        if pair not in untied:
            continue
        du, su = untied[pair]
        sig_t, sig_u = abs(dt) > 2 * st, abs(du) > 2 * su
        opposite = (dt > 0) != (du > 0)
        if sig_t and sig_u and opposite:
            clash = True
            notes.append(f"{pair[0]} vs {pair[1]} reversed beyond the noise")
        elif (sig_t or sig_u) and opposite:
            doubt = True
            notes.append(f"{pair[0]} vs {pair[1]} ordered in one row, leaning the other way in the other")
        elif sig_t or sig_u:
            ordered += 1
    if clash:
        return "fails", notes
    return ("holds" if ordered and not doubt else "undecided"), notes


def feedback_layers(layers: list[str]) -> list[str]:
    """The weight layers whose R carries feedback and that are not the output layer (claim 5's layers)."""
    return list(layers[1:-1])


# ---- the runs of one row --------------------------------------------------------------------------------------

def run_error(rows: list[dict], last: int = LAST_EPOCHS) -> float:
    """The error of a run (pp): the mean validation error of its last ``last`` epochs."""
    tail = rows[-last:]
    key = "val_error" if all("val_error" in r for r in tail) else "test_error"
    if not all(key in r for r in tail):
        raise ValueError("a run's metrics hold no validation error")
    return 100 * sum(r[key] for r in tail) / len(tail)


def final_error(rows: list[dict]) -> tuple[float, str]:
    """(a run's error in pp, what it is): the figures' bars show the error the verdicts use."""
    return run_error(rows), f"validation error, mean of the last {min(LAST_EPOCHS, len(rows))} epochs"


def _curve(rows: list[dict], key: str) -> list[tuple[int, float]]:
    """[(step, value)] from epoch 0 on, the first epoch's probes included for validation keys."""
    out = []
    first = rows[0] if rows else {}
    if key in first.get("initial", {}):
        out.append((0, first["initial"][key]))
    out += [(p["step"], p[key]) for p in first.get("probes", []) if key in p]
    out += [(r.get("step", r["epoch"]), r[key]) for r in rows if key in r]
    return out


def _mean_early(rows: list[dict], key: str = "val_error") -> float:
    """Mean of a curve over the first half of the run, per SGD step (trapezoid from epoch 0), in pp."""
    pts = _curve(rows, key)
    half_epoch = max(1, len(rows) // 2)
    end = rows[half_epoch - 1].get("step", half_epoch)
    pts = [(s, v) for s, v in pts if s <= end]
    if len(pts) < 2:
        return 100 * pts[0][1]
    area = sum((s1 - s0) * (v0 + v1) / 2 for (s0, v0), (s1, v1) in zip(pts, pts[1:]))
    return 100 * area / (pts[-1][0] - pts[0][0])


def reference(row) -> str:
    """The protocol a claim's "BP" is judged against on ``row``: ``bp`` where the row has it, else ``bp-h``."""
    return "bp" if row.has("bp") else "bp-h"


def _label(protocol: str) -> str:
    return {"bp": "BP", "bp-h": "BP-H"}.get(protocol, protocol)


class _Row:
    """The runs of one matrix row, by protocol and seed."""

    def __init__(self, name, results, num_classes=10):
        self.name = name
        self.by: dict = {}
        self.extra: dict = {}
        for res in results.values():
            r = res["run"]
            if r.row == name:
                self.by.setdefault(r.protocol, {})[r.seed] = res["metrics"]
                if "filters" in res:
                    self.extra.setdefault(r.protocol, {})[r.seed] = res["filters"]
        self.chance = 100 * (1 - 1 / num_classes)

    def has(self, *protocols) -> bool:
        return all(p in self.by for p in protocols)

    def errors(self, protocol) -> dict:
        return {s: run_error(m) for s, m in self.by[protocol].items()}

    def mean(self, protocol) -> float:
        return mean_sd(self.errors(protocol).values())[0]

    def at_chance(self, protocol) -> bool:
        return abs(self.mean(protocol) - self.chance) <= CHANCE_BAND

    def chance_among(self, *protocols) -> list[str]:
        return [p for p in protocols if self.at_chance(p)]

    def epochs(self) -> str:
        n = {len(m) for per in self.by.values() for m in per.values()}
        return "/".join(str(x) for x in sorted(n))


def _paired(a: dict, b: dict) -> tuple[float, float, int]:
    """Mean and standard error of a[s] − b[s] over the seeds both have (se is infinite for one seed)."""
    seeds = sorted(set(a) & set(b))
    m, sd, n = mean_sd([a[s] - b[s] for s in seeds])
    return m, (sd / math.sqrt(n) if n > 1 else float("inf")), n


def _fmt(m, sd, n, digits=1):
    return f"{m:.{digits}f} ± {sd:.{digits}f}" if n > 1 else f"{m:.{digits}f}"


def _pm(values: dict, digits=1) -> str:
    return _fmt(*mean_sd(values.values()), digits=digits)


def _d(d, se, n, unit=" pp", digits=1):
    if n > 1:
        return f"{d:+.{digits}f}{unit} (±2se {d - 2 * se:+.{digits}f} to {d + 2 * se:+.{digits}f}, {n} seeds)"
    return f"{d:+.{digits}f}{unit} (1 seed: undecidable)"


def _chance_note(row: _Row, protocols) -> str:
    return (f"{row.name}: {', '.join(protocols)} at chance ({row.chance:.0f}%, within {CHANCE_BAND:.0f} pp): "
            "decides nothing")


# ---- the claims ---------------------------------------------------------------------------------------------

def claim1(rows: list[_Row]) -> Verdict:
    parts, nums = [], []
    for row in rows:
        if not row.has("bp", "bp-h"):
            continue
        if row.chance_among("bp", "bp-h"):
            nums.append(_chance_note(row, row.chance_among("bp", "bp-h")))
            continue
        d, se, n = _paired(row.errors("bp-h"), row.errors("bp"))
        v = slightly_worse(d, se)
        parts.append(v)
        nums.append(f"{row.name}: BP {_pm(row.errors('bp'))}%, BP-H {_pm(row.errors('bp-h'))}%; BP-H − BP = "
                    f"{_d(d, se, n)} → slightly worse but comparable: {v}")
    verdict = combine(parts)
    reason = {"holds": "BP-H worse than BP beyond the noise, by less than 5 pp",
              "fails": "BP-H better than BP beyond the noise, or worse by more than 5 pp",
              "undecided": "the difference's interval reaches 0 or 5 pp",
              "not run": "no row with bp and bp-h away from chance"}[verdict]
    return _verdict(1, verdict, reason, nums)


def claim2(row: _Row | None) -> Verdict:
    if row is None or not row.has("urfb", "frfb") or not (row.has("bp") or row.has("bp-h")):
        return _verdict(2, "not run", "the shallow row needs urfb, frfb and bp (or bp-h)", [])
    ref = reference(row)
    chance = row.chance_among("urfb", "frfb", ref)
    if chance:
        return _verdict(2, "undecided", "a protocol at chance", [_chance_note(row, chance)])
    d1, se1, n = _paired(row.errors("frfb"), row.errors("urfb"))
    early = lambda p: {s: _mean_early(m) for s, m in row.by[p].items()}  # noqa: E731
    d2, se2, _ = _paired(early("frfb"), early("urfb"))
    d3, se3, _ = _paired(row.errors("urfb"), row.errors(ref))
    v1, v2, v3 = better(d1, se1), better(d2, se2), slightly_worse(d3, se3)
    shown = [p for p in ("bp", "bp-h") if row.has(p)]
    nums = [f"{row.name}: URFB {_pm(row.errors('urfb'))}%, FRFB {_pm(row.errors('frfb'))}%, "
            + ", ".join(f"{_label(p)} {_pm(row.errors(p))}%" for p in shown),
            f"FRFB − URFB: {_d(d1, se1, n)} → URFB somewhat better: {v1}",
            f"FRFB − URFB, mean validation error over the first half of the run from epoch 0: {_d(d2, se2, n)} → "
            f"URFB converges faster: {v2}",
            f"URFB − {_label(ref)}: {_d(d3, se3, n)} → never as good as BP but close: {v3}"]
    for other in shown:
        if other != ref:
            d, se, m = _paired(row.errors("urfb"), row.errors(other))
            nums.append(f"URFB − {_label(other)} (reported, decides nothing): {_d(d, se, m)} → "
                        f"{slightly_worse(d, se)}")
    verdict = combine([v1, v2, v3])
    names = ("better than FRFB", "faster than FRFB", f"below {_label(ref)} but close")
    reason = "every part holds" if verdict == "holds" else "; ".join(
        f"{name}: {v}" for name, v in zip(names, (v1, v2, v3)) if v != "holds")
    return _verdict(2, verdict, reason, nums)


def plateau_escape(row: _Row) -> dict:
    """{protocol: {seed: epochs until the validation error first falls below ESCAPE (None: never)}}."""
    out = {}
    for p, per in row.by.items():
        out[p] = {}
        for s, m in per.items():
            out[p][s] = next((r["epoch"] for r in m if 100 * r["val_error"] < ESCAPE), None)
    return out


def claim3(rows: list[_Row], plateau: list[_Row] = ()) -> Verdict:
    parts, nums, notes = [], [], []
    for row in rows:
        if not row.has("urfb", "frfb") or not (row.has("bp") or row.has("bp-h")):
            continue
        ref = reference(row)
        if row.chance_among("urfb", ref):
            nums.append(_chance_note(row, row.chance_among("urfb", ref)))
            notes.append(f"{row.name} at chance")
            continue
        d1, se1, n = _paired(row.errors("urfb"), row.errors(ref))
        d2, se2, _ = _paired(row.errors("frfb"), row.errors("urfb"))
        v1, v2 = close(d1, se1), much_worse(d2, se2)
        parts += [v1, v2]
        shown = [p for p in ("bp", "bp-h") if row.has(p)]
        nums.append(f"{row.name}: " + ", ".join(f"{_label(p)} {_pm(row.errors(p))}%" for p in shown)
                    + f", URFB {_pm(row.errors('urfb'))}%, FRFB {_pm(row.errors('frfb'))}%; URFB − {_label(ref)} "
                    f"{_d(d1, se1, n)} → close: {v1}; FRFB − URFB {_d(d2, se2, n)} → significantly worse: {v2}"
                    + ("" if ref == "bp" else " (this row has no softmax BP: judged against BP-H)"))
        for other in shown:
            if other != ref:
                d, se, m = _paired(row.errors("urfb"), row.errors(other))
                nums.append(f"{row.name}: URFB − {_label(other)} (reported, decides nothing): {_d(d, se, m)} → "
                            f"close: {close(d, se)}")
        if v1 != "holds" or v2 != "holds":
            notes.append(f"{row.name}: close {v1}, FRFB significantly worse {v2}")
    for row in plateau:  # reported, not judged: the slope-0.5 plateau is a matter of budget
        esc = plateau_escape(row)
        shown = "; ".join(f"{p} " + ", ".join(f"s{s}: {'never' if e is None else e}" for s, e in sorted(per.items()))
                          for p, per in esc.items())
        nums.append(f"{row.name} (reported, decides nothing): epochs until the validation error first falls below "
                    f"{ESCAPE:.0f}%: {shown} (of {row.epochs()} epochs)")
    verdict = combine(parts)
    reason = "holds in every deep row" if verdict == "holds" else ("; ".join(notes) or "no deep row")
    return _verdict(3, verdict, reason, nums)


def claim4(pairs: list[tuple[_Row, _Row]]) -> Verdict:
    parts, nums = [], []
    for tied, untied in pairs:
        common = [p for p in tied.by if p in untied.by]
        if len(common) < 2:
            continue
        chance = tied.chance_among(*common) + untied.chance_among(*common)
        if chance:
            nums.append(f"{tied.name} vs {untied.name}: at chance ({', '.join(sorted(set(chance)))}): decides "
                        "nothing")
            continue
        seeds = sorted(set.intersection(*(set(tied.errors(p)) & set(untied.errors(p)) for p in common)))
        per_seed = {s: sum(untied.errors(p)[s] - tied.errors(p)[s] for p in common) / len(common) for s in seeds}
        d, sd, n = mean_sd(per_seed.values())
        se = sd / math.sqrt(n) if n > 1 else float("inf")
        worse = slightly_worse(d, se)
        order = {}
        for which in (tied, untied):
            e = {p: which.errors(p) for p in common}
            order[which.name] = {(a, b): _paired(e[b], e[a])[:2] for i, a in enumerate(common)
                                 for b in common[i + 1:]}
        same, notes = same_ordering(order[tied.name], order[untied.name])
        parts += [worse, same]
        rank = lambda row: " < ".join(sorted(common, key=row.mean))  # noqa: E731
        nums.append(f"{tied.name} → {untied.name}: " + ", ".join(
            f"{p} {_pm(tied.errors(p))}% → {_pm(untied.errors(p))}%" for p in common)
                    + f"; untied − tied, mean over protocols {_d(d, se, n)} → slightly worse: {worse}; ranking "
                      f"tied {rank(tied)}, untied {rank(untied)} → same ordering: {same}"
                    + (f" ({'; '.join(notes)})" if notes else ""))
    verdict = combine(parts)
    reason = {"holds": "untied worse by less than 5 pp, no pair of rules reordered",
              "fails": "see the numbers", "undecided": "see the numbers",
              "not run": "no tied/untied pair"}[verdict]
    return _verdict(4, verdict, reason, nums)


def _corr(rows_of_seed: list[dict], layer: str, at: int) -> float:
    """A layer's W–R correlation at epoch ``at`` (0: before training; -1: the last epoch)."""
    if at == 0:
        if "initial" not in rows_of_seed[0]:
            raise ValueError("claim 5 needs the epoch-0 evaluation (metrics rows[0]['initial'])")
        return rows_of_seed[0]["initial"]["alignment"][layer]
    return rows_of_seed[at - 1 if at > 0 else at]["alignment"][layer]


def claim5(rows: list[_Row]) -> Verdict:
    parts, nums = [], []
    for row in rows:
        if not row.has("urfb", "frfb"):
            continue
        urfb, frfb = row.by["urfb"], row.by["frfb"]
        layers = list(next(iter(urfb.values()))[-1]["alignment"])
        judged = feedback_layers(layers)
        for layer in judged + [layers[-1]]:
            first = {s: _corr(m, layer, 0) for s, m in urfb.items()}
            last = {s: _corr(m, layer, -1) for s, m in urfb.items()}
            last_f = {s: _corr(m, layer, -1) for s, m in frfb.items()}
            g, se_g, n = _paired(last, first)
            d, se_d, _ = _paired(last, last_f)
            grows, more = better(g, se_g, least=GROW), better(d, se_d, least=GROW)
            equal = "holds" if max(last.values()) < EQUAL else "fails"
            line = (f"URFB corr {_pm(first, 3)} at epoch 0 → {_pm(last, 3)} at the end (grows: {grows}); FRFB "
                    f"{_pm(last_f, 3)} (URFB more: {more}); never equal: {equal}")
            if layer in judged:
                parts += [grows, more, equal]
                nums.append(f"{row.name} {layer}: {line}")
            else:
                nums.append(f"{row.name} {layer} (output layer, reported, decides nothing): {line}")
    verdict = combine(parts)
    reason = {"holds": "in every layer whose R carries feedback below the output",
              "fails": "not in every judged layer: see the numbers",
              "undecided": "not decided in every judged layer: see the numbers",
              "not run": "no row with urfb and frfb"}[verdict]
    return _verdict(5, verdict, reason, nums)


def _early_window(urfb_rows: list[dict]) -> int:
    """The last epoch at which URFB's mean claim-5 correlation is below WEAK (at least 1)."""
    layers = feedback_layers(list(urfb_rows[-1]["alignment"])) or list(urfb_rows[-1]["alignment"])
    k = 1
    for r in urfb_rows:
        if sum(r["alignment"][x] for x in layers) / len(layers) < WEAK:
            k = max(k, r["epoch"])
        else:
            break
    return k


def _drop(rows: list[dict], key: str, k: int) -> float:
    start = rows[0].get("initial", {}).get(key)
    if start is None:
        raise ValueError("claim 6 needs the epoch-0 evaluation (metrics rows[0]['initial'])")
    return 100 * (start - rows[k - 1][key])


def claim6(rows: list[_Row]) -> Verdict:
    parts, nums = [], []
    for row in rows:
        if not row.has("urfb") or not (row.has("bp") or row.has("bp-h")):
            continue
        ref = reference(row)
        if row.chance_among("urfb", ref):
            nums.append(_chance_note(row, row.chance_among("urfb", ref)))
            continue
        for key, what in (("train_error", "training"), ("val_error", "validation")):
            ratios, windows = [], []
            for s, m in row.by["urfb"].items():
                bp = row.by[ref].get(s)
                if bp is None or "initial" not in m[0] or "initial" not in bp[0]:
                    continue
                k = min(_early_window(m), len(bp))
                drop_b = _drop(bp, key, k)
                if drop_b > 1.0:  # BP must itself have learned something over the window
                    ratios.append(_drop(m, key, k) / drop_b)
                    windows.append(k)
            if not ratios:
                continue
            mr, sdr, n = mean_sd(ratios)
            se = sdr / math.sqrt(n) if n > 1 else float("inf")
            v = similar(mr, se)
            parts.append(v)
            span = f"{min(windows)}" if min(windows) == max(windows) else f"{min(windows)}–{max(windows)}"
            nums.append(f"{row.name}, {what} error: from epoch 0 to epoch {span} (URFB's mean correlation below "
                        f"{WEAK} throughout), URFB's error fell {_d(mr, se, n, unit='×', digits=2)} as much as "
                        f"{_label(ref)}'s → similar ({SIMILAR_LOW}–{SIMILAR_HIGH}×, whole interval): {v}")
    verdict = combine(parts)
    reason = {"holds": "URFB's early drop within 0.5–2× of BP's, training and validation",
              "fails": "URFB's early drop is not within a factor 2 of BP's", "undecided":
              "the ratio's interval reaches outside 0.5–2×", "not run": "no row with urfb and bp learning"}[verdict]
    return _verdict(6, verdict, reason, nums)


def claim7(row: _Row | None) -> Verdict:
    need = ("urfb", "frfb", "urfb-50", "frfb-50")
    if row is None or not row.has(*need):
        return _verdict(7, "not run", "needs a row with urfb, frfb, urfb-50 and frfb-50", [])
    chance = row.chance_among(*need)
    if chance:
        return _verdict(7, "undecided", "a protocol at chance", [_chance_note(row, chance)])
    e = {p: row.errors(p) for p in need}
    seeds = sorted(set.intersection(*(set(v) for v in e.values())))
    gap = {s: e["frfb"][s] - e["urfb"][s] for s in seeds}
    gap50 = {s: e["frfb-50"][s] - e["urfb-50"][s] for s in seeds}
    d, se, n = _paired(gap50, gap)
    v = better(d, se)
    nums = [f"{row.name}: FRFB − URFB {_pm(gap)} pp at 100%, {_pm(gap50)} pp at 50%; difference of the gaps "
            f"{_d(d, se, n)} → larger at 50%: {v}"]
    return _verdict(7, v, {"holds": "the gap grows at 50% beyond the noise", "fails": "the gap shrinks at 50%",
                           "undecided": "the gaps' difference is within the noise"}[v], nums)


def claim8(rows: list[_Row]) -> Verdict:
    rows = [r for r in rows if r.has("urfb", "frfb")]
    if len(rows) < 2:
        return _verdict(8, "not run", "needs two or more nets of increasing depth with urfb and frfb", [])
    gaps, nums = [], []
    for row in rows:
        if row.at_chance("urfb"):
            nums.append(_chance_note(row, ["urfb"]) + " (left out of the depth comparison)")
            continue
        g = {s: row.errors("frfb")[s] - row.errors("urfb")[s] for s in row.errors("urfb") if s in row.errors("frfb")}
        m, sd, n = mean_sd(g.values())
        gaps.append((row, m, sd / math.sqrt(n) if n > 1 else float("inf"), n))
        nums.append(f"{row.name}: FRFB − URFB {_fmt(m, sd, n)} pp" + (" (FRFB at chance)" if row.at_chance("frfb")
                                                                      else ""))
    parts = []
    for (ra, ma, sa, _), (rb, mb, sb, _) in zip(gaps, gaps[1:]):
        d, se = mb - ma, math.sqrt(sa ** 2 + sb ** 2)  # different nets: not paired
        v = better(d, se)
        parts.append(v)
        nums.append(f"{ra.name} → {rb.name}: the gap changes by {d:+.1f} pp (±2se {d - 2 * se:+.1f} to "
                    f"{d + 2 * se:+.1f}) → grows: {v}")
    verdict = combine(parts)
    return _verdict(8, verdict, {"holds": "the gap grows at every step of depth", "fails": "the gap shrinks with depth "
                                 "somewhere", "undecided": "not every step is beyond the noise",
                                 "not run": ""}[verdict], nums)


def claim9(rows: list[_Row]) -> Verdict:
    parts, nums = [], []
    for row in rows:
        for p, per in row.extra.items():
            same = {s: f["same"] for s, f in per.items()}
            control = {s: f["control"] for s, f in per.items()}
            d, se, n = _paired(same, control)
            v = exceeds(d, se, least=GROW)
            parts.append(v)
            nums.append(f"{row.name} {p}: correlation of the learned change W − W(0) between positions, same filter "
                        f"{_pm(same, 3)}, different filters (control) {_pm(control, 3)}; difference "
                        f"{_d(d, se, n, unit='', digits=3)} → similar across positions: {v}")
    verdict = combine(parts)
    return _verdict(9, verdict, {"holds": "the same filter's change agrees across positions beyond the control",
                                 "fails": "no more similar than different filters", "undecided": "within the noise",
                                 "not run": "no untied run with filter measurements"}[verdict], nums)


def judge_all(results: dict, claims: dict) -> list[Verdict]:
    """The verdicts of claims 1–9. ``claims`` names the rows: ``shallow``; ``deep`` (rows deciding claim 3);
    ``plateau`` (slope-0.5 rows, escape reported); ``untied`` (list of [tied, untied] pairs); ``correlation``;
    ``connectivity`` (the row with the 50% protocols); ``depth`` (rows in order of depth); ``filters`` (untied
    rows whose results carry ``filters``); ``classes`` ({row: number of classes}) where not 10."""
    classes = claims.get("classes", {})
    present = {res["run"].row for res in results.values()}
    row = lambda name: _Row(name, results, classes.get(name, 10))  # noqa: E731
    rows = lambda key: [row(n) for n in claims.get(key, []) if n in present]  # noqa: E731
    one = lambda key: row(claims[key]) if claims.get(key) in present else None  # noqa: E731
    shallow = one("shallow")
    pairs = [(row(p[0]), row(p[1])) for p in claims.get("untied", []) if p[0] in present and p[1] in present]
    return [claim1(([shallow] if shallow else []) + rows("deep")), claim2(shallow),
            claim3(rows("deep"), rows("plateau")), claim4(pairs), claim5(rows("correlation")),
            claim6(([shallow] if shallow else []) + rows("deep")), claim7(one("connectivity")), claim8(rows("depth")),
            claim9(rows("filters"))]
