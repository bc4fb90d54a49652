"""circuits.check: regime names, agreement with eq. 6 per regime, range checks, and the grid/random checker."""
import numpy as np
import pytest
import torch

from circuits import check
from circuits.output_error import rule

M, S, MU = 3.0, 1.0, 0.25


def test_regime_names_follow_the_spec_table_including_the_closed_edges():
    h = np.array([S, S + 1e-9, -S, -S - 1e-9, 0.0, 0.0])
    s = np.array([1, 1, -1, -1, 1, -1])
    assert list(check.regime(h, s, S=S)) == ["on-update", "on-correct", "off-update", "off-correct",
                                            "on-update", "off-update"]
    assert check.regime_counts(h, s, S=S) == {"on-update": 2, "on-correct": 1, "off-update": 2, "off-correct": 1}
    assert check.regime_counts(torch.from_numpy(h), torch.from_numpy(s), S=S) == check.regime_counts(h, s, S=S)


def test_agreement_by_regime_counts_disagreements_where_they_are():
    h = np.array([0.0, 2.0, 0.0, -2.0])
    s = np.array([1, 1, -1, -1])
    good = rule(h, s, mu=MU, S=S)
    assert check.agreement_by_regime(good, h, s, mu=MU, S=S) == {name: (1, 1) for name in check.REGIMES}
    bad = good.copy()
    bad[1] = 1.0  # the presented class, sufficiently correct, but updated
    res = check.agreement_by_regime(bad, h, s, mu=MU, S=S)
    assert res["on-correct"] == (1, 0) and res["on-update"] == (1, 1)


def test_bad_s_raises_naming_the_fix():
    with pytest.raises(ValueError, match="supervisory"):
        check.regime(np.zeros(2), np.array([1, 0]))


@pytest.mark.parametrize("as_torch", [False, True])
def test_enforce_range_modes(as_torch):
    x = np.array([0.0, 2.9, 3.0, -3.5])
    if as_torch:
        x = torch.from_numpy(x)
    with pytest.warns(check.CircuitRangeWarning, match="2 of 4"):
        y, rep = check.enforce_range(x, bound=M, on_range="report", name="h", fix="scale h")
    assert rep.n_violations == 2 and list(np.asarray(rep.mask)) == [False, False, True, True]
    assert (np.asarray(y) == np.asarray(x)).all()
    with pytest.raises(ValueError, match="2 of 4 .*Fix: scale h"):
        check.enforce_range(x, bound=M, on_range="error", name="h", fix="scale h")
    y, rep = check.enforce_range(x, bound=M, on_range="clip", name="h", fix="scale h")
    y = np.asarray(y)
    assert rep.n_violations == 2 and (np.abs(y) < M).all() and y[1] == 2.9
    _, rep2 = check.enforce_range(torch.as_tensor(y) if as_torch else y, bound=M, on_range="error", name="h", fix="")
    assert rep2.ok  # clipped values are in range


def test_nan_is_an_error_in_every_mode():
    for mode in check.ON_RANGE_MODES:
        with pytest.raises(ValueError, match="NaN"):
            check.enforce_range(np.array([np.nan]), bound=M, on_range=mode, name="h", fix="")


def test_boundary_grid_holds_the_edges_and_stays_in_range():
    h, s = check.boundary_grid(M=M, S=S)
    for edge in (S, -S, S + 1e-9, S - 1e-9, -S + 1e-9, -S - 1e-9, M - 1e-9, -M + 1e-9):
        assert ((h == edge) & (s == 1)).any() and ((h == edge) & (s == -1)).any()
    assert (np.abs(h) < M).all()


def test_check_rule_finds_a_wrong_circuit_and_passes_the_rule_itself():
    ok = check.check_rule(lambda h, s: rule(h, s, mu=MU, S=S, boundary="closed"), M=M, S=S, mu=MU, n_random=500)
    assert ok.all_agree and ok.n == ok.n_grid + 500
    # the strict form of eq. 6 differs from the closed one exactly at h = +S (s=+1) and h = -S (s=-1)
    assert ok.strict_differs == 2
    strict = check.check_rule(lambda h, s: rule(h, s, mu=MU, S=S), M=M, S=S, mu=MU, n_random=500)
    assert strict.n - strict.n_agree == 2
    assert sorted((r[0], r[1]) for r in strict.disagreements) == [(-S, -1.0), (S, 1.0)]
    wrong = check.check_rule(lambda h, s: np.where(s > 0, 1.0, -MU), M=M, S=S, mu=MU, n_random=500)
    assert wrong.by_regime["on-update"][0] == wrong.by_regime["on-update"][1]
    assert wrong.by_regime["on-correct"][1] == 0 and not wrong.all_agree
