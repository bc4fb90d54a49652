"""The verdict rules of models/claims.py decide synthetic results whose answer is known by construction.

Every claim is shown deciding a case each way (holds, fails, undecided), and the scoring mistakes the rules
were written to avoid each have a case: the output layer deciding claim 5, an exact-order claim 4 overturned by
a flip inside the noise, a mean-only claim 6, a row at chance counting as "comparable", a single epoch's
reading standing for a run's error.
"""
from __future__ import annotations

import pytest

from models import claims as C
from models.claims import judge_all
from models.experiments import Run
from models.train import RunConfig

SEEDS = (0, 1, 2)
LAYERS = ("conv1", "full1", "output")


def metrics(final, *, epochs=6, start=90.0, train_gap=2.0, corr=None, corr0=0.0, layers=LAYERS, last=None,
            early=None):
    """Per-epoch rows of one run: the validation error falls linearly from ``start`` (epoch 0) to ``final`` at
    epoch ``epochs - 2`` and stays there (so the run's error, the mean of the last 3 epochs, is ``final``
    unless ``last`` overrides the last epoch alone); the training error is ``train_gap`` below it; each layer's
    correlation grows linearly from ``corr0`` to ``corr[layer]``; ``early`` replaces epoch 1's error."""
    corr = corr or {}
    knee = epochs - 2

    def val(e):
        return start + (final - start) * min(e, knee) / knee

    def align(e):
        return {x: corr0 + (corr.get(x, corr0) - corr0) * e / epochs for x in layers}

    rows = []
    for e in range(1, epochs + 1):
        v = val(e) if not (early is not None and e == 1) else early
        if last is not None and e == epochs:
            v = last
        rows.append({"epoch": e, "step": 10 * e, "train_error": (v - train_gap) / 100, "val_error": v / 100,
                     "alignment": align(e)})
    rows[0]["initial"] = {"epoch": 0, "step": 0, "train_error": start / 100, "val_error": start / 100,
                          "alignment": align(0)}
    rows[0]["probes"] = [{"step": 5, "val_error": ((start + (rows[0]["val_error"] * 100)) / 2) / 100,
                          "alignment": align(0)}]
    return rows


def add(results, row, protocol, finals, **kw):
    """Runs of one protocol, one per seed, with the given final errors (pp)."""
    per_seed_corr = kw.pop("corrs", None)
    for seed, final in zip(SEEDS, finals):
        if per_seed_corr is not None:
            kw["corr"] = per_seed_corr[seed]
        run = Run(row=row, protocol=protocol, seed=seed, dataset="cifar10",
                  config=RunConfig(rule=protocol.split("-5")[0]))
        results[run.key] = {"run": run, "metrics": metrics(final, **kw), "config": {}}
    return results


def verdicts(results, **claims):
    return {v.claim: v for v in judge_all(results, claims)}


# ---- the words ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn, d, se, want", [
    (C.better, 3.0, 1.0, "holds"), (C.better, -3.0, 1.0, "fails"), (C.better, 1.0, 1.0, "undecided"),
    (C.close, 2.0, 1.0, "holds"), (C.close, -8.0, 1.0, "fails"), (C.close, 4.0, 1.0, "undecided"),
    (C.close, 4.9, 0.0, "holds"), (C.close, 5.1, 0.01, "fails"),
    (C.slightly_worse, 2.0, 0.5, "holds"), (C.slightly_worse, -2.0, 0.5, "fails"),
    (C.slightly_worse, 8.0, 0.5, "fails"), (C.slightly_worse, 0.5, 0.5, "undecided"),
    (C.slightly_worse, 4.5, 0.5, "undecided"),
    (C.much_worse, 9.0, 1.0, "holds"), (C.much_worse, 2.0, 1.0, "fails"), (C.much_worse, 6.0, 1.0, "undecided"),
    (C.similar, 1.0, 0.1, "holds"), (C.similar, 0.2, 0.05, "fails"), (C.similar, 3.0, 0.2, "fails"),
    (C.similar, 0.52, 0.1, "undecided"),
])
def test_each_word_decides_its_interval_each_way(fn, d, se, want):
    assert fn(d, se) == want


def test_one_seed_decides_nothing():
    for fn in (C.better, C.slightly_worse, C.much_worse):
        assert fn(10.0, float("inf")) == "undecided"
    assert C.close(0.0, float("inf")) == "undecided"


def test_a_run_error_is_the_mean_of_the_last_three_epochs():
    rows = metrics(50.0, last=40.0)  # one lucky last epoch
    assert C.run_error(rows) == pytest.approx((50 + 50 + 40) / 3)


def test_claim5_layers_are_those_whose_R_carries_feedback_below_the_output():
    assert C.feedback_layers(["conv1", "full1", "output"]) == ["full1"]
    assert C.feedback_layers(["conv1", "conv2", "conv3", "full1", "output"]) == ["conv2", "conv3", "full1"]


# ---- claim 1 ------------------------------------------------------------------------------------------------

def _claim1(bph):
    r = add({}, "s", "bp", [50.0, 51.0, 49.0])
    return verdicts(add(r, "s", "bp-h", bph), shallow="s")[1]


def test_claim1_each_way():
    assert _claim1([52.0, 53.2, 50.9]).verdict == "holds"  # worse by ≈ 2 pp, tightly
    assert _claim1([46.0, 47.1, 44.8]).verdict == "fails"  # hinge better beyond the noise: not "slightly worse"
    assert _claim1([60.0, 61.2, 58.9]).verdict == "fails"  # worse by 10 pp: not comparable
    assert _claim1([50.5, 50.0, 50.0]).verdict == "undecided"  # ≈ equal: the direction is not shown


def test_claim1_a_row_at_chance_decides_nothing():
    r = add({}, "s", "bp", [50.0, 51.0, 49.0])
    add(r, "s", "bp-h", [52.0, 53.2, 50.9])
    add(r, "d", "bp", [89.9, 90.0, 90.0])  # BP at chance on the deep row: "comparable" would be vacuous there
    add(r, "d", "bp-h", [70.0, 71.0, 69.0])
    v = verdicts(r, shallow="s", deep=["d"])[1]
    assert v.verdict == "holds" and any("at chance" in line for line in v.numbers)
    only = verdicts(add(add({}, "d", "bp", [90.0, 89.8, 90.1]), "d", "bp-h", [70.0, 71.0, 69.0]), deep=["d"])[1]
    assert only.verdict == "not run"


# ---- claim 2 ------------------------------------------------------------------------------------------------

def _shallow(urfb, frfb, bph=(55.0, 55.5, 54.5), **kw):
    r = add({}, "s", "bp-h", list(bph))
    add(r, "s", "urfb", list(urfb), **kw)
    add(r, "s", "frfb", list(frfb))
    return r


def test_claim2_each_way():
    assert verdicts(_shallow([57.0, 57.4, 56.7], [64.0, 64.5, 63.6]), shallow="s")[2].verdict == "holds"
    v = verdicts(_shallow([64.0, 64.5, 63.6], [57.0, 57.4, 56.7]), shallow="s")[2]
    assert v.verdict == "fails" and "better than FRFB: fails" in v.reason
    assert verdicts(_shallow([60.0, 61.0, 59.0], [60.5, 60.0, 61.0]), shallow="s")[2].verdict == "undecided"


def test_claim2_converges_faster_reads_the_early_curve_from_epoch_0():
    # equal final errors; URFB's first epoch far lower: faster holds, "better" undecided
    r = _shallow([60.0, 60.4, 59.8], [60.1, 60.2, 59.9], early=65.0)
    v = verdicts(r, shallow="s")[2]
    assert "URFB converges faster: holds" in "\n".join(v.numbers)


# ---- claim 3 ------------------------------------------------------------------------------------------------

def _deep(urfb, frfb, bph=(60.0, 60.5, 59.5)):
    r = add({}, "d", "bp-h", list(bph))
    add(r, "d", "urfb", list(urfb))
    return add(r, "d", "frfb", list(frfb))


def test_claim3_each_way():
    assert verdicts(_deep([61.0, 61.4, 60.8], [75.0, 75.5, 74.0]), deep=["d"])[3].verdict == "holds"
    assert verdicts(_deep([72.0, 72.4, 71.8], [80.0, 80.5, 79.0]), deep=["d"])[3].verdict == "fails"
    assert verdicts(_deep([61.0, 61.4, 60.8], [62.0, 62.5, 61.0]), deep=["d"])[3].verdict == "fails"
    assert verdicts(_deep([64.0, 66.5, 62.0], [75.0, 75.5, 74.0]), deep=["d"])[3].verdict == "undecided"


def test_claim3_plateau_rows_report_the_escape_and_decide_nothing():
    r = _deep([61.0, 61.4, 60.8], [75.0, 75.5, 74.0])
    add(r, "p", "urfb", [70.0, 70.0, 70.0], epochs=8)  # falls below 85% at epoch 2 of a 6-epoch descent
    add(r, "p", "frfb", [90.0, 90.0, 90.0], start=90.0, epochs=8)
    v = verdicts(r, deep=["d"], plateau=["p"])[3]
    assert v.verdict == "holds"
    line = next(x for x in v.numbers if x.startswith("p "))
    assert "frfb s0: never" in line and "urfb s0: 2" in line
    assert C.plateau_escape(C._Row("p", r))["urfb"] == {0: 2, 1: 2, 2: 2}


# ---- claim 4 ------------------------------------------------------------------------------------------------

def _untied(tied, untied):
    r = {}
    for row, spec in (("t", tied), ("u", untied)):
        for p, finals in spec.items():
            add(r, row, p, finals)
    return verdicts(r, untied=[["t", "u"]])[4]


TIED = {"bp-h": [50.0, 50.5, 49.5], "urfb": [52.0, 52.6, 51.5], "frfb": [60.0, 60.4, 59.7]}


def test_claim4_each_way():
    same = {"bp-h": [52.0, 52.5, 51.5], "urfb": [54.0, 54.6, 53.5], "frfb": [62.0, 62.4, 61.7]}
    assert _untied(TIED, same).verdict == "holds"
    swapped = {"bp-h": [52.0, 52.5, 51.5], "urfb": [62.0, 62.4, 61.7], "frfb": [54.0, 54.6, 53.5]}
    assert _untied(TIED, swapped).verdict == "fails"
    much = {p: [e + 12 for e in v] for p, v in TIED.items()}  # same order, 12 pp worse: not "slightly"
    assert _untied(TIED, much).verdict == "fails"


def test_claim4_a_flip_inside_the_noise_does_not_fail_the_ordering():
    # untied URFB and FRFB 0.2 pp apart in the other order, with a 7-point seed spread
    flip = {"bp-h": [52.0, 52.5, 51.5], "urfb": [58.2, 51.0, 65.0], "frfb": [58.0, 58.5, 57.5]}
    v = _untied(TIED, flip)
    assert v.verdict != "fails", v.numbers
    assert "same ordering: fails" not in "\n".join(v.numbers)


def test_same_ordering_rule_each_way():
    t = {("a", "b"): (5.0, 1.0)}
    assert C.same_ordering(t, {("a", "b"): (4.0, 1.0)})[0] == "holds"
    assert C.same_ordering(t, {("a", "b"): (-4.0, 1.0)})[0] == "fails"
    assert C.same_ordering(t, {("a", "b"): (-0.2, 3.0)})[0] == "undecided"
    assert C.same_ordering({("a", "b"): (0.1, 1.0)}, {("a", "b"): (0.2, 1.0)})[0] == "undecided"


# ---- claim 5 ------------------------------------------------------------------------------------------------

def _corr(urfb_hidden, frfb_hidden, urfb_out=0.5, frfb_out=0.6, layers=LAYERS):
    def per_seed(hidden, out):
        return [{**{x: hidden + 0.01 * s for x in layers[1:-1]}, layers[0]: 0.9, layers[-1]: out + 0.01 * s}
                for s in SEEDS]
    r = add({}, "s", "urfb", [60.0] * 3, corrs=per_seed(urfb_hidden, urfb_out), layers=layers)
    add(r, "s", "frfb", [65.0] * 3, corrs=per_seed(frfb_hidden, frfb_out), layers=layers)
    return verdicts(r, correlation=["s"])[5]


def test_claim5_each_way():
    assert _corr(0.3, 0.0).verdict == "holds"
    assert _corr(0.05, 0.3).verdict == "fails"  # FRFB's hidden layer more aligned than URFB's
    assert _corr(0.015, 0.0).verdict == "undecided"  # grows, but by less than GROW
    assert _corr(0.995, 0.0).verdict == "fails"  # W and R became equal


def test_claim5_the_output_layer_is_reported_and_does_not_decide():
    v = _corr(0.3, 0.0, urfb_out=0.5, frfb_out=0.9)  # FRFB ahead at the output, as the paper says it can be
    assert v.verdict == "holds"
    assert any("output layer, reported" in line and "URFB more: fails" in line for line in v.numbers)
    assert not any(line.startswith("s conv1") for line in v.numbers)  # the first layer's R carries nothing


def test_claim5_judges_every_hidden_layer_of_a_deep_net():
    layers = ("conv1", "conv2", "conv3", "full1", "output")
    v = _corr(0.3, 0.0, layers=layers)
    judged = [line.split(":")[0] for line in v.numbers if "reported" not in line]
    assert judged == ["s conv2", "s conv3", "s full1"]


# ---- claim 6 ------------------------------------------------------------------------------------------------

def _early(ratio_finals):
    r = add({}, "s", "bp-h", [50.0, 50.0, 50.0])
    return add(r, "s", "urfb", ratio_finals, corr={"full1": 0.1})


def test_claim6_each_way():
    # BP-H falls 40 pp; URFB's falls give the ratios
    assert verdicts(_early([51.0, 50.5, 51.5]), shallow="s")[6].verdict == "holds"  # ≈ 0.98×
    assert verdicts(_early([82.0, 81.5, 82.5]), shallow="s")[6].verdict == "fails"  # ≈ 0.2×
    v = verdicts(_early([69.2, 66.0, 72.4]), shallow="s")[6]  # mean ≈ 0.52×, spread ±0.08
    assert v.verdict == "undecided", v.numbers


def test_claim6_reads_training_and_validation_from_epoch_0():
    v = verdicts(_early([51.0, 50.5, 51.5]), shallow="s")[6]
    text = "\n".join(v.numbers)
    assert "training error: from epoch 0" in text and "validation error: from epoch 0" in text
    no_initial = _early([51.0, 50.5, 51.5])
    for res in no_initial.values():
        del res["metrics"][0]["initial"]
    assert verdicts(no_initial, shallow="s")[6].verdict == "not run"


# ---- claims 7, 8, 9 -----------------------------------------------------------------------------------------

def _fifty(gap100, gap50):
    r = add({}, "s", "urfb", [55.0, 55.3, 54.8])
    add(r, "s", "frfb", [55.0 + gap100, 55.2 + gap100, 54.9 + gap100])
    add(r, "s", "urfb-50", [58.0, 58.3, 57.8])
    add(r, "s", "frfb-50", [58.0 + gap50, 58.4 + gap50, 57.7 + gap50])
    return verdicts(r, connectivity="s")[7]


def test_claim7_each_way():
    assert _fifty(1.0, 6.0).verdict == "holds"
    assert _fifty(6.0, 1.0).verdict == "fails"
    assert _fifty(2.0, 2.2).verdict == "undecided"


def _depth(gaps):
    r = {}
    for i, g in enumerate(gaps):
        add(r, f"n{i}", "urfb", [60.0, 60.3, 59.8])
        add(r, f"n{i}", "frfb", [60.0 + g, 60.5 + g, 59.6 + g])
    return verdicts(r, depth=[f"n{i}" for i in range(len(gaps))])[8]


def test_claim8_each_way():
    assert _depth([2.0, 8.0, 15.0]).verdict == "holds"
    assert _depth([8.0, 2.0]).verdict == "fails"
    assert _depth([2.0, 2.1]).verdict == "undecided"


def _filters(same, control):
    r = add({}, "u", "urfb", [60.0, 60.0, 60.0])
    for s, res in enumerate(r.values()):
        res["filters"] = {"same": same[s], "control": control[s]}
    return verdicts(r, filters=["u"])[9]


def test_claim9_each_way():
    assert _filters([0.4, 0.45, 0.42], [0.01, 0.0, 0.02]).verdict == "holds"
    assert _filters([0.0, 0.01, 0.0], [0.3, 0.31, 0.29]).verdict == "fails"
    assert _filters([0.05, -0.02, 0.1], [0.02, 0.0, 0.03]).verdict == "undecided"
    # as alike as the control, measured tightly: the similarity is surely below the least that counts (GROW)
    assert _filters([0.002, 0.003, 0.002], [0.002, 0.002, 0.002]).verdict == "fails"


def test_every_verdict_names_the_papers_sentence():
    for v in judge_all({}, {}):
        assert v.verdict == "not run"
        assert v.quote and v.where and v.quote in C.CLAIMS[v.claim].quote


def test_bp_in_a_claim_is_the_papers_softmax_bp_where_the_row_has_it():
    # URFB ties BP-H and is 2 pp behind softmax BP: "never as good as BP but close" holds against BP
    r = _shallow([57.0, 57.4, 56.7], [64.0, 64.5, 63.6], bph=(57.1, 57.3, 56.8))
    add(r, "s", "bp", [55.0, 55.3, 54.8])
    v = verdicts(r, shallow="s")[2]
    assert v.verdict == "holds", v.numbers
    assert any(line.startswith("URFB − BP:") for line in v.numbers)
    assert any("URFB − BP-H (reported, decides nothing)" in line for line in v.numbers)
    # without softmax BP the row is judged against BP-H, which it ties: undecided, and the line says which
    r = _shallow([57.0, 57.4, 56.7], [64.0, 64.5, 63.6], bph=(57.1, 57.3, 56.8))
    v = verdicts(r, shallow="s")[2]
    assert v.verdict == "undecided" and "below BP-H but close" in v.reason
    d = verdicts(_deep([61.0, 61.4, 60.8], [75.0, 75.5, 74.0]), deep=["d"])[3]
    assert "judged against BP-H" in d.numbers[0]
