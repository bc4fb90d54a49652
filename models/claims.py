"""The claims of §4, judged on the runs of an experiment matrix: measured numbers, a verdict and its reason.

The paper states six claims (§4; it reports no seeds or error bars):

1. With BP, the hinge loss is slightly worse than softmax but comparable.
2. Shallow net: URFB somewhat better than FRFB and converges faster; below BP but close.
3. Deeper nets: URFB close to BP; FRFB degrades significantly.
4. Untied (locally connected) layers: slightly worse overall, same ordering of methods.
5. Under URFB, W and R never become equal, but their correlation grows with iterations (more than under FRFB).
6. Even early, when W and R are weakly correlated, URFB's errors fall at rates similar to BP's.

The words of the claims are made into numbers here, once, and the page prints them with every verdict:

- an error is the last epoch's test error where the data has a test split, else its validation error, in
  percentage points (pp); a comparison of two protocols uses the per-seed (paired) differences, their mean d
  and its standard error se = sd/√n;
- "A better than B" holds when d > 2·se, fails when d < −2·se, else is undecided;
- "close" or "comparable" means |d| ≤ ``CLOSE`` (5 pp): holds when |d| ≤ CLOSE, fails when |d| − 2·se > CLOSE,
  else undecided;
- "significantly worse" means worse by more than CLOSE: holds when d > CLOSE and d > 2·se, fails when
  d + 2·se < CLOSE, else undecided;
- "slightly worse" (claim 4) means −2·se ≤ d ≤ CLOSE; "below BP" (claim 2) means d > −2·se;
- "grows" (claim 5): last-epoch minus first-epoch correlation, per layer, as "better than" and by at least
  ``GROW`` (0.02); "more than under FRFB" likewise; "never equal":
  correlation below 0.99 in every seed; the first weight layer is left out (its R never carries feedback);
- "similar rates" (claim 6): URFB's drop of training error from epoch 1 to the last epoch at which its mean
  hidden-layer correlation is below ``WEAK`` (at least epoch 2), divided by BP-H's drop over the same epochs,
  between 0.5 and 2;
- "converges faster": the mean validation error over the first half of the epochs (an area under the curve);
- a row where every protocol's mean final error is within ``CHANCE_BAND`` (3 pp) of chance decides nothing
  (the deep-net plateau at slope 0.5: "undecided at this budget").

A claim holds when every part holds, fails when any part fails, and is undecided otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .experiments import mean_sd

CLOSE = 5.0  # percentage points
WEAK = 0.5  # "weakly correlated": mean W–R correlation of the hidden layers below this
GROW = 0.02  # a correlation "grows" / is "more" only by at least this much
CHANCE_BAND = 3.0  # pp: a row whose every protocol ends this close to chance (on average) decides nothing

__all__ = ["CLOSE", "WEAK", "Verdict", "final_error", "judge_all", "combine"]


@dataclass
class Verdict:
    claim: int
    text: str
    verdict: str  # "holds", "fails", "undecided", "not run"
    reason: str
    numbers: list = field(default_factory=list)  # lines of measured numbers


def combine(parts: list[str]) -> str:
    if not parts:
        return "not run"
    if "fails" in parts:
        return "fails"
    if all(p == "holds" for p in parts):
        return "holds"
    return "undecided"


def final_error(rows: list[dict]) -> tuple[float, str]:
    """(error in %, split name) of a run's last epoch: test where it exists, else validation."""
    last = rows[-1]
    for split in ("test", "val", "train"):
        if f"{split}_error" in last:
            return 100 * last[f"{split}_error"], split
    raise ValueError("metrics hold no error")


class _Row:
    """The runs of one matrix row, by protocol and seed."""

    def __init__(self, name, results, num_classes=10):
        self.name = name
        self.by = {}
        for res in results.values():
            r = res["run"]
            if r.row == name:
                self.by.setdefault(r.protocol, {})[r.seed] = res["metrics"]
        self.chance = 100 * (1 - 1 / num_classes)

    def has(self, *protocols) -> bool:
        return all(p in self.by for p in protocols)

    def errors(self, protocol) -> dict:
        return {s: final_error(m)[0] for s, m in self.by[protocol].items()}

    def split(self) -> str:
        any_rows = next(iter(next(iter(self.by.values())).values()))
        return final_error(any_rows)[1]

    def early(self, protocol) -> dict:
        out = {}
        for s, m in self.by[protocol].items():
            half = m[:max(1, len(m) // 2)]
            out[s] = 100 * sum(r.get("val_error", r["train_error"]) for r in half) / len(half)
        return out

    def at_chance(self) -> bool:
        """Every protocol's mean final error within ``CHANCE_BAND`` of chance: the row learned nothing."""
        return all(abs(mean_sd(self.errors(p).values())[0] - self.chance) <= CHANCE_BAND for p in self.by)


def _paired(a: dict, b: dict) -> tuple[float, float, int]:
    """Mean and standard error of a[s] − b[s] over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    m, sd, n = mean_sd([a[s] - b[s] for s in seeds])
    return m, (sd / math.sqrt(n) if n > 1 else float("inf")), n


def _better(d, se, least=0.0):  # d = error(B) - error(A) > 0 means A is better (by at least ``least``)
    return "holds" if (d > 2 * se and d > least) else "fails" if d < -2 * se else "undecided"


def _close(d, se):
    return "holds" if abs(d) <= CLOSE else "fails" if abs(d) - 2 * se > CLOSE else "undecided"


def _much_worse(d, se):
    return "holds" if (d > CLOSE and d > 2 * se) else "fails" if d + 2 * se < CLOSE else "undecided"


def _fmt(m, sd, n, digits=1):
    return f"{m:.{digits}f} ± {sd:.{digits}f}" if n > 1 else f"{m:.{digits}f}"


def _pm(values: dict, digits=1) -> str:
    return _fmt(*mean_sd(values.values()), digits=digits)


def _d(d, se, n):
    return f"{d:+.1f} pp (se {se:.1f}, {n} seeds)" if n > 1 else f"{d:+.1f} pp (1 seed)"


def claim1(rows: list[_Row]) -> Verdict:
    text = "With BP, the hinge loss is slightly worse than softmax but comparable."
    parts, nums = [], []
    for row in rows:
        if not row.has("bp", "bp-h"):
            continue
        d, se, n = _paired(row.errors("bp-h"), row.errors("bp"))
        v = _close(d, se)
        parts.append(v)
        nums.append(f"{row.name}: BP {_pm(row.errors('bp'))}%, BP-H {_pm(row.errors('bp-h'))}% "
                    f"({row.split()} error); BP-H − BP = {_d(d, se, n)}: comparable {v}")
    verdict = combine(parts)
    reason = ("BP-H within 5 pp of BP in every net" if verdict == "holds" else
              "BP-H more than 5 pp behind BP beyond the seed spread" if verdict == "fails" else
              "the difference is near 5 pp within the seed spread" if parts else "no row has both bp and bp-h")
    return Verdict(1, text, verdict, reason, nums)


def claim2(row: _Row | None) -> Verdict:
    text = "Shallow net: URFB somewhat better than FRFB and converges faster; below BP but close."
    if row is None or not row.has("urfb", "frfb", "bp-h"):
        return Verdict(2, text, "not run", "the shallow row needs bp-h, urfb and frfb")
    d1, se1, n = _paired(row.errors("frfb"), row.errors("urfb"))
    d2, se2, _ = _paired(row.early("frfb"), row.early("urfb"))
    d3, se3, _ = _paired(row.errors("urfb"), row.errors("bp-h"))
    v1, v2 = _better(d1, se1), _better(d2, se2)
    below = "holds" if d3 > -2 * se3 else "fails"
    v3 = combine([below, _close(d3, se3)])
    nums = [f"{row.name}: URFB {_pm(row.errors('urfb'))}%, FRFB {_pm(row.errors('frfb'))}%, "
            f"BP-H {_pm(row.errors('bp-h'))}% ({row.split()} error)",
            f"FRFB − URFB at the end: {_d(d1, se1, n)} → URFB better: {v1}",
            f"FRFB − URFB, mean validation error over the first half of the epochs: {_d(d2, se2, n)} → "
            f"URFB converges faster: {v2}",
            f"URFB − BP-H: {_d(d3, se3, n)} → below BP but close: {v3}"]
    verdict = combine([v1, v2, v3])
    failed = [name for name, v in zip(("better than FRFB", "faster than FRFB", "below BP but close"),
                                      (v1, v2, v3)) if v != "holds"]
    reason = "every part holds" if verdict == "holds" else ("not shown: " + ", ".join(failed))
    return Verdict(2, text, verdict, reason, nums)


def claim3(rows: list[_Row]) -> Verdict:
    text = "Deeper nets: URFB close to BP; FRFB degrades significantly."
    parts, nums, notes = [], [], []
    for row in rows:
        if not row.has("urfb", "frfb", "bp-h"):
            continue
        if row.at_chance():
            nums.append(f"{row.name}: every protocol at chance ({row.chance:.0f}%) at the end: decides nothing "
                        "at this budget (no rule has left the initial plateau, BP included)")
            notes.append(f"{row.name} at chance")
            parts.append("undecided")
            continue
        d1, se1, n = _paired(row.errors("urfb"), row.errors("bp-h"))
        d2, se2, _ = _paired(row.errors("frfb"), row.errors("urfb"))
        v1, v2 = _close(d1, se1), _much_worse(d2, se2)
        parts += [v1, v2]
        nums.append(f"{row.name}: BP-H {_pm(row.errors('bp-h'))}%, URFB {_pm(row.errors('urfb'))}%, FRFB "
                    f"{_pm(row.errors('frfb'))}%; URFB − BP-H {_d(d1, se1, n)} (close: {v1}); FRFB − URFB "
                    f"{_d(d2, se2, n)} (significantly worse: {v2})")
        if v1 != "holds" or v2 != "holds":
            notes.append(f"{row.name}: close {v1}, FRFB worse {v2}")
    verdict = combine(parts)
    reason = "holds in every deep row" if verdict == "holds" else "; ".join(notes) or "no deep row"
    return Verdict(3, text, verdict, reason, nums)


def claim4(pairs: list[tuple[_Row, _Row]]) -> Verdict:
    text = "Untied (locally connected) layers: slightly worse overall, same ordering of methods."
    parts, nums = [], []
    for tied, untied in pairs:
        common = [p for p in tied.by if p in untied.by]
        if len(common) < 2:
            continue
        diffs = []
        for p in common:
            d, se, n = _paired(untied.errors(p), tied.errors(p))
            diffs.append((p, d, se, n))
        d_all = sum(d for _, d, _, _ in diffs) / len(diffs)
        se_all = math.sqrt(sum(se ** 2 for *_, se, _ in diffs)) / len(diffs)
        worse = "holds" if -2 * se_all <= d_all <= CLOSE else "fails" if (d_all < -2 * se_all or
                                                                           d_all - 2 * se_all > CLOSE) else "undecided"
        order_t = sorted(common, key=lambda p: mean_sd(tied.errors(p).values())[0])
        order_u = sorted(common, key=lambda p: mean_sd(untied.errors(p).values())[0])
        same = "holds" if order_t == order_u else "fails"
        parts += [worse, same]
        nums.append(f"{tied.name} vs {untied.name}: " + ", ".join(
            f"{p} {_pm(tied.errors(p))}% → {_pm(untied.errors(p))}%" for p in common)
                    + f"; mean untied − tied {d_all:+.1f} pp (se {se_all:.1f}): slightly worse {worse}; "
                      f"ordering tied {' < '.join(order_t)}, untied {' < '.join(order_u)}: same {same}")
    verdict = combine(parts)
    reason = ("untied within 0–5 pp of tied and the same ranking" if verdict == "holds" else
              "see the numbers" if parts else "no tied/untied pair")
    return Verdict(4, text, verdict, reason, nums)


def _corr(rows_of_seed: list[dict], layer: str, epoch_index: int) -> float:
    return rows_of_seed[epoch_index]["alignment"][layer]


def claim5(rows: list[_Row]) -> Verdict:
    text = "Under URFB, W and R never become equal, but their correlation grows with iterations (more than under FRFB)."
    parts, nums = [], []
    for row in rows:
        if not row.has("urfb", "frfb"):
            continue
        urfb, frfb = row.by["urfb"], row.by["frfb"]
        layers = list(next(iter(urfb.values()))[0]["alignment"])
        # the first weight layer's R never carries feedback (nothing lies below it): judge the others
        for layer in layers[1:]:
            first = {s: _corr(m, layer, 0) for s, m in urfb.items()}
            last = {s: _corr(m, layer, -1) for s, m in urfb.items()}
            last_f = {s: _corr(m, layer, -1) for s, m in frfb.items()}
            g, se_g, n = _paired(last, first)
            d, se_d, _ = _paired(last, last_f)
            grows = _better(g, se_g, least=GROW)
            more = _better(d, se_d, least=GROW)
            equal = "holds" if max(last.values()) < 0.99 else "fails"
            parts += [grows, more, equal]
            nums.append(f"{row.name} {layer}: URFB corr {_pm(first, 3)} at epoch 1 → {_pm(last, 3)} at the end "
                        f"(grows: {grows}); FRFB {_pm(last_f, 3)} (URFB more: {more}); never equal: {equal}")
    verdict = combine(parts)
    reason = ("in every layer whose R carries feedback" if verdict == "holds" else
              "not in every layer: see the numbers" if parts else "no row with urfb and frfb")
    return Verdict(5, text, verdict, reason, nums)


def claim6(rows: list[_Row]) -> Verdict:
    text = "Even early, when W and R are weakly correlated, URFB's errors fall at rates similar to BP's."
    parts, nums = [], []
    for row in rows:
        if not row.has("urfb", "bp-h") or row.at_chance():
            continue
        ratios, epochs_used, corrs = [], [], []
        for s, m in row.by["urfb"].items():
            bp = row.by["bp-h"].get(s)
            if bp is None or len(m) < 2 or len(bp) < len(m):
                continue
            hidden = lambda r: [v for k, v in list(r["alignment"].items())[1:-1]] or list(r["alignment"].values())  # noqa: E731
            weak = [i for i, r in enumerate(m) if sum(hidden(r)) / len(hidden(r)) < WEAK]
            k = max(weak) if weak else 0
            k = max(k, 1)
            drop_u = 100 * (m[0]["train_error"] - m[k]["train_error"])
            drop_b = 100 * (bp[0]["train_error"] - bp[k]["train_error"])
            if drop_b > 1:
                ratios.append(drop_u / drop_b)
                epochs_used.append(k + 1)
                corrs.append(sum(hidden(m[k])) / len(hidden(m[k])))
        if not ratios:
            continue
        mr, sdr, n = mean_sd(ratios)
        v = "holds" if 0.5 <= mr <= 2 else "fails" if n > 1 and (mr + 2 * sdr / math.sqrt(n) < 0.5) else "undecided"
        parts.append(v)
        span = str(min(epochs_used)) if min(epochs_used) == max(epochs_used) else \
            f"{min(epochs_used)}–{max(epochs_used)}"
        nums.append(f"{row.name}: from epoch 1 to epoch {span} (URFB's hidden-layer "
                    f"correlation still {min(corrs):.2f}–{max(corrs):.2f}), URFB's training error fell "
                    f"{_fmt(mr, sdr, n, digits=2)}× as much as BP-H's (similar: 0.5–2×): {v}")
    verdict = combine(parts)
    reason = ("URFB's early drop is within 0.5–2× of BP-H's while weakly correlated" if verdict == "holds" else
              "see the numbers" if parts else "no row where BP-H learns early")
    return Verdict(6, text, verdict, reason, nums)


def judge_all(results: dict, claims: dict) -> list[Verdict]:
    """The six verdicts. ``claims`` names the rows: ``shallow``, ``deep`` (list), ``untied`` (list of
    [tied, untied] pairs), ``correlation`` (list); ``num_classes`` per row may be given as ``classes``."""
    classes = claims.get("classes", {})
    row = lambda name: _Row(name, results, classes.get(name, 10))  # noqa: E731
    present = {res["run"].row for res in results.values()}
    shallow = row(claims["shallow"]) if claims.get("shallow") in present else None
    deep = [row(n) for n in claims.get("deep", []) if n in present]
    pairs = [(row(a), row(b)) for a, b in claims.get("untied", []) if a in present and b in present]
    corr = [row(n) for n in claims.get("correlation", []) if n in present]
    early = ([shallow] if shallow else []) + deep
    return [claim1(([shallow] if shallow else []) + deep), claim2(shallow), claim3(deep), claim4(pairs),
            claim5(corr), claim6(early)]
