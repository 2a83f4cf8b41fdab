"""Statistics: the worked examples of spec/validation.md to the digits given, and hand-computed 2x2s."""
from __future__ import annotations

import math

import pytest

from portal.validation import statistics as st

FLEISS_1971 = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(81, 263, "0.2553", "0.3662"), (15, 148, "0.0624", "0.1605"), (0, 20, "0.0000", "0.1611")],
)
def test_wilson_reproduces_the_published_examples(k, n, low, high):
    result = st.wilson(k, n)
    assert f"{result['low']:.4f}" == low
    assert f"{result['high']:.4f}" == high


def _wilson_by_hand(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_binary_metrics_match_a_hand_computed_2x2():
    # tp 8, fp 2, fn 4, tn 6
    m = st.binary_metrics(tp=8, fp=2, fn=4, tn=6)
    expected = {"ppv": (8, 10), "sensitivity": (8, 12), "specificity": (6, 8), "npv": (6, 10), "accuracy": (14, 20)}
    for name, (k, n) in expected.items():
        assert (m[name]["k"], m[name]["n"]) == (k, n)
        assert m[name]["estimate"] == pytest.approx(k / n)
        low, high = _wilson_by_hand(k, n)
        assert m[name]["low"] == pytest.approx(low, abs=1e-12)
        assert m[name]["high"] == pytest.approx(high, abs=1e-12)
    # 8/10 by hand: 0.4902 - 0.9433
    assert (f"{m['ppv']['low']:.4f}", f"{m['ppv']['high']:.4f}") == ("0.4902", "0.9433")


def test_picked_cells_metrics_give_ppv_only_and_empty_groups_give_none():
    m = st.binary_metrics(tp=3, fp=0)
    assert set(m) == {"ppv"} and m["ppv"]["estimate"] == 1.0
    assert st.wilson(0, 0)["estimate"] is None


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        st.wilson(5, 3)


def test_cohens_kappa_reproduces_the_worked_example():
    result = st.cohen([[20, 5], [10, 15]])
    assert f"{result['kappa']:.3f}" == "0.400"
    # asymptotic SE of statsmodels (Fleiss, Cohen & Everitt 1969) and the normal interval around kappa
    assert result["se"] == pytest.approx(0.126996, abs=1e-6)
    assert result["low"] == pytest.approx(0.4 - 1.959964 * result["se"], abs=1e-5)
    assert result["high"] == pytest.approx(0.4 + 1.959964 * result["se"], abs=1e-5)


def test_cohens_kappa_of_a_hand_computed_table():
    # po = 17/20 = 0.85, pe = (10*9 + 10*11)/400 = 0.5, kappa = 0.7
    assert st.cohen([[8, 2], [1, 9]])["kappa"] == pytest.approx(0.7)


def test_cohens_kappa_is_undefined_when_every_call_is_the_same():
    result = st.cohen([[12, 0], [0, 0]])
    assert result["kappa"] is None and "undefined" in result["note"]


def test_fleiss_kappa_reproduces_fleiss_1971():
    result = st.fleiss(FLEISS_1971, seed=7, draws=200)
    assert f"{result['kappa']:.3f}" == "0.210"
    assert result["low"] < 0.210 < result["high"]
    assert (result["seed"], result["draws"]) == (7, 200)


def test_fleiss_bootstrap_is_reproducible_from_its_seed():
    a = st.fleiss(FLEISS_1971, seed=123, draws=300)
    b = st.fleiss(FLEISS_1971, seed=123, draws=300)
    c = st.fleiss(FLEISS_1971, seed=124, draws=300)
    assert (a["low"], a["high"]) == (b["low"], b["high"])
    assert (a["low"], a["high"]) != (c["low"], c["high"])


def test_fleiss_refuses_unequal_numbers_of_ratings():
    with pytest.raises(ValueError):
        st.fleiss([[2, 1], [1, 1]], seed=1, draws=100)


@pytest.mark.parametrize(
    ("prm1", "pna", "rule", "truth"),
    [
        ("pos", "na", "either", True), ("na", "pos", "either", True), ("neg", "neg", "either", False),
        ("neg", "na", "either", None), ("na", "na", "either", None), ("missing", "pos", "either", True),
        ("pos", "pos", "both", True), ("pos", "neg", "both", False), ("pos", "na", "both", None),
        ("neg", "na", "both", None), ("pos", "na", "prm1", True), ("na", "pos", "prm1", None),
        ("na", "neg", "pna", False), ("conflict", "neg", "prm1", None),
    ],
)
def test_ground_truth_rules_combine_not_assessable_as_stated(prm1, pna, rule, truth):
    assert st.ground_truth(prm1, pna, rule)[0] is truth


def test_excluded_cells_give_their_reason():
    assert st.ground_truth("neg", "na", "either") == (None, "stain not assessable")
    assert st.ground_truth("conflict", "pos", "both") == (None, "stain entries disagree")


def _cell(i, *, model_positive, truth_prm1, ratings, center="CA", from_model=True, from_embryologist=False):
    return {"id": f"c{i}", "center": center, "from_model": from_model, "from_embryologist": from_embryologist,
            "from_validator": False, "model_positive": model_positive, "prm1": truth_prm1, "pna": "na",
            "ratings": ratings}


def test_study_statistics_whole_field_bookkeeping():
    cells = [
        _cell(1, model_positive=True, truth_prm1="pos", ratings={"v1": "yes", "v2": "yes"}),
        _cell(2, model_positive=True, truth_prm1="neg", ratings={"v1": "no", "v2": "yes"}),
        _cell(3, model_positive=False, truth_prm1="pos", ratings={"v1": "yes", "v2": "unsure"}),
        _cell(4, model_positive=False, truth_prm1="neg", ratings={"v1": "no", "v2": "no"}, center="CB"),
        _cell(5, model_positive=False, truth_prm1="na", ratings={"v1": "no", "v2": "no"}),
    ]
    r = st.study_statistics(cells=cells, raters=["v1", "v2"], design="whole_field", rule="prm1",
                            validators_per_cell=2, bootstrap_seed=1, bootstrap_draws=100)
    assert r["ground_truth"] == {"positive": 2, "negative": 2, "excluded": 1,
                                 "excluded_reasons": {"stain not assessable": 1}}
    assert r["model"]["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    v2 = r["validators"]["per_validator"][1]
    assert v2["confusion"] == {"tp": 1, "fp": 1, "fn": 0, "tn": 1} and v2["unsure"] == 1
    assert r["agreement"]["method"] == "cohen"
    assert r["agreement"]["table"] == [[1, 0], [1, 2]]  # rows v1 (yes, no), columns v2
    assert r["agreement"]["left_out"] == {"count": 1, "reasons": {"scored unsure by at least one validator": 1}}
    assert [c["center"] for c in r["per_center"]] == ["CA", "CB"]
    assert r["per_center"][1]["model"]["confusion"] == {"tp": 0, "fp": 0, "fn": 0, "tn": 1}


def test_study_statistics_picked_cells_compares_model_and_embryologist_ppv():
    cells = [_cell(i, model_positive=True, truth_prm1="pos" if i < 8 else "neg", ratings={"v1": "yes"})
             for i in range(10)]
    cells += [_cell(10 + i, model_positive=False, truth_prm1="pos" if i < 2 else "neg", ratings={"v1": "no"},
                    from_model=False, from_embryologist=True) for i in range(4)]
    r = st.study_statistics(cells=cells, raters=["v1"], design="picked_cells", rule="prm1",
                            validators_per_cell=1, bootstrap_seed=1, bootstrap_draws=100)
    assert r["model"]["metrics"]["ppv"]["estimate"] == pytest.approx(0.8)
    assert r["embryologist"]["metrics"]["ppv"]["estimate"] == pytest.approx(0.5)
    assert r["ppv_difference"]["difference"] == pytest.approx(0.3)
    assert r["ppv_difference"]["low"] < 0.3 < r["ppv_difference"]["high"]
    assert r["agreement"]["method"] is None


def test_study_statistics_uses_fleiss_for_three_validators_and_reports_left_out_cells():
    ratings = [{"a": "yes", "b": "yes", "c": "yes"}, {"a": "no", "b": "no", "c": "yes"},
               {"a": "no", "b": "no", "c": "no"}, {"a": "yes", "b": "unsure", "c": "yes"},
               {"a": "yes", "b": "yes", "c": ""}, {"a": "yes", "b": "yes", "c": "no"}]
    cells = [_cell(i, model_positive=True, truth_prm1="pos", ratings=r) for i, r in enumerate(ratings)]
    r = st.study_statistics(cells=cells, raters=["a", "b", "c"], design="whole_field", rule="either",
                            validators_per_cell=3, bootstrap_seed=42, bootstrap_draws=500)
    agreement = r["agreement"]
    assert agreement["method"] == "fleiss" and agreement["n"] == 4
    assert agreement["left_out"]["count"] == 2
    assert (agreement["seed"], agreement["draws"]) == (42, 500)
    from statsmodels.stats.inter_rater import fleiss_kappa

    assert agreement["kappa"] == pytest.approx(fleiss_kappa([[3, 0], [1, 2], [0, 3], [2, 1]]))
