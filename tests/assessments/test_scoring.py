"""Scoring rules, checked without Django: properties, hand-worked examples and the v1 file."""

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assessments import scoring
from assessments.scoring import (
    Attunement,
    ItemSpec,
    Norms,
    ScoringError,
    attunement,
    band,
    change_label,
    compare,
    connection_index,
    domain_pair_category,
    domain_score,
    gap_flag,
    item_pair_category,
    key_item,
    rci,
    recommendations,
    s_diff,
    safety_level,
    score_response,
    straightlined,
    validate_answers,
)

ROOT = Path(__file__).resolve().parents[2]
INSTRUMENT_PATH = ROOT / "assessments" / "instruments" / "connection-v1.json"
DOMAIN_NORMS = Norms(sd=20, alpha=0.80)
INDEX_NORMS = Norms(sd=15, alpha=0.90)

raw_values = st.integers(min_value=1, max_value=5)
answers_or_missing = st.one_of(st.none(), raw_values)
scores = st.floats(min_value=0, max_value=100, allow_nan=False)


def make_domain(n, reverse=(), domain="communication", prefix="X"):
    return [ItemSpec(id=f"{prefix}{i}", domain=domain, reverse=i in reverse, scored=True) for i in range(1, n + 1)]


def answers_for(items, values):
    return {item.id: v for item, v in zip(items, values, strict=True)}


@pytest.fixture(scope="module")
def instrument():
    return json.loads(INSTRUMENT_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def items(instrument):
    return scoring.items_from_instrument(instrument)


@pytest.fixture(scope="module")
def norms(instrument):
    return scoring.norms_from_instrument(instrument)


# --- Properties -----------------------------------------------------------------------


@given(st.lists(answers_or_missing, min_size=1, max_size=12), st.data())
def test_domain_scores_always_lie_between_0_and_100(values, data):
    reverse = data.draw(st.sets(st.integers(1, len(values))))
    domain = make_domain(len(values), reverse=reverse)
    score = domain_score(domain, answers_for(domain, values))
    assert score is None or 0 <= score <= 100


@given(raw_values)
def test_reverse_keying_mirrors_an_answer(raw):
    assert key_item(raw, reverse=False) + key_item(raw, reverse=True) == 6


@given(st.lists(raw_values, min_size=5, max_size=5), st.integers(0, 4))
def test_flipping_one_items_keying_mirrors_its_contribution_to_the_score(values, flipped):
    plain = make_domain(5)
    flipped_items = make_domain(5, reverse={flipped + 1})
    answers = answers_for(plain, values)
    difference = domain_score(flipped_items, answers) - domain_score(plain, answers)
    # One item moves from raw to 6 - raw: the mean moves by (6 - 2 raw) / 5.
    assert difference == pytest.approx(100 * (6 - 2 * values[flipped]) / 5 / 4)


@given(st.dictionaries(st.sampled_from(scoring.COUPLE_DOMAINS), st.one_of(st.none(), scores)))
def test_the_index_lies_between_0_and_100(domain_scores):
    index = connection_index(domain_scores)
    assert index is None or 0 <= index <= 100 + 1e-9


@given(answers_or_missing, answers_or_missing)
def test_item_pair_categories_do_not_depend_on_who_is_partner_a(a, b):
    assert item_pair_category(a, b) == item_pair_category(b, a)


@given(scores, scores)
def test_domain_pair_categories_and_gaps_do_not_depend_on_who_is_partner_a(a, b):
    assert domain_pair_category(a, b) == domain_pair_category(b, a)
    assert gap_flag(a, b, DOMAIN_NORMS) == gap_flag(b, a, DOMAIN_NORMS)


@given(scores, scores)
def test_rci_changes_sign_when_the_administrations_are_swapped(x1, x2):
    assert rci(x1, x2, DOMAIN_NORMS) == -rci(x2, x1, DOMAIN_NORMS)
    mirrored = {
        "reliable_improvement": "reliable_decline",
        "reliable_decline": "reliable_improvement",
        "no_reliable_change": "no_reliable_change",
    }
    assert change_label(x2, x1, DOMAIN_NORMS) == mirrored[change_label(x1, x2, DOMAIN_NORMS)]


def instrument_shaped_items():
    """Six couple domains of 5 (2 reverse), outlook of 3 (1 reverse), personal skills of 6 (2 reverse)."""
    items = []
    for domain in scoring.COUPLE_DOMAINS:
        items += make_domain(5, reverse={4, 5}, domain=domain, prefix=domain[:3])
    items += make_domain(3, reverse={3}, domain="outlook", prefix="OUT")
    return items + make_domain(6, reverse={5, 6}, domain="personal_skills", prefix="PER")


@given(st.lists(answers_or_missing, min_size=39, max_size=39))
def test_every_response_scores_within_range_and_serialises(values):
    domain_items = instrument_shaped_items()
    result = score_response(domain_items, answers_for(domain_items, values))
    for score in [*result.domains.values(), result.connection_index]:
        assert score is None or 0 <= score <= 100
    assert json.loads(json.dumps(result.as_dict())) == result.as_dict()


# --- The 80 % rule at its boundary ----------------------------------------------------


@pytest.mark.parametrize(
    ("n_items", "n_answered", "scored"),
    [
        (5, 5, True),
        (5, 4, True),
        (5, 3, False),
        (6, 5, True),
        (6, 4, False),
        (3, 3, True),
        (3, 2, False),
    ],
)
def test_a_domain_is_scored_only_when_80_percent_of_its_items_are_answered(n_items, n_answered, scored):
    domain = make_domain(n_items)
    values = [4] * n_answered + [None] * (n_items - n_answered)
    score = domain_score(domain, answers_for(domain, values))
    assert (score is not None) is scored
    if scored:
        assert score == 75.0


def test_an_absent_answer_counts_as_missing_like_none():
    domain = make_domain(5)
    assert domain_score(domain, {"X1": 4, "X2": 4, "X3": 4}) is None
    assert domain_score(domain, {"X1": 4, "X2": 4, "X3": 4, "X4": 4}) == 75.0


def test_the_index_needs_five_of_the_six_couple_domains():
    five = dict.fromkeys(scoring.COUPLE_DOMAINS[:5], 60.0) | {"affection_balance": None}
    assert connection_index(five) == 60.0
    four = dict.fromkeys(scoring.COUPLE_DOMAINS[:4], 60.0)
    assert connection_index(four | {"outlook": 80.0, "personal_skills": 80.0}) is None


def test_the_index_ignores_outlook_and_personal_skills():
    couple = dict(zip(scoring.COUPLE_DOMAINS, [10.0, 20.0, 30.0, 40.0, 50.0, 60.0], strict=True))
    assert connection_index(couple | {"outlook": 100.0, "personal_skills": 0.0}) == 35.0


# --- Worked examples ------------------------------------------------------------------


def test_worked_example_partner_a_scores_81_25():
    domain = make_domain(5)
    assert domain_score(domain, answers_for(domain, [5, 4, 4, 4, None])) == 81.25


def test_worked_example_partner_b_scores_25():
    domain = make_domain(5)
    assert domain_score(domain, answers_for(domain, [3, 2, 2, 2, 1])) == 25.0


def test_reverse_items_are_keyed_before_averaging():
    domain = make_domain(5, reverse={4, 5})
    # Raw [5, 4, 4, 2, 1] keys to [5, 4, 4, 4, 5]: mean 4.4 -> 85.
    assert domain_score(domain, answers_for(domain, [5, 4, 4, 2, 1])) == pytest.approx(85.0)


def test_worked_example_is_different_experiences_with_a_flagged_gap():
    assert domain_pair_category(81.25, 25.0) == "different_experiences"
    assert 1.96 * s_diff(DOMAIN_NORMS) == pytest.approx(24.79, abs=0.01)
    assert gap_flag(81.25, 25.0, DOMAIN_NORMS)


def test_the_gap_flag_needs_a_difference_strictly_above_the_threshold():
    threshold = scoring.gap_threshold(DOMAIN_NORMS)
    assert not gap_flag(0.0, threshold, DOMAIN_NORMS)
    assert gap_flag(0.0, threshold + 1e-9, DOMAIN_NORMS)
    assert not gap_flag(60.0, 84.0, DOMAIN_NORMS)
    assert gap_flag(60.0, 85.0, DOMAIN_NORMS)


def test_a_rise_from_40_to_70_is_a_reliable_improvement():
    assert rci(40, 70, DOMAIN_NORMS) == pytest.approx(2.37, abs=0.005)
    assert change_label(40, 70, DOMAIN_NORMS) == "reliable_improvement"
    assert change_label(70, 40, DOMAIN_NORMS) == "reliable_decline"
    assert change_label(40, 60, DOMAIN_NORMS) == "no_reliable_change"


def test_the_index_needs_a_change_of_about_13_points():
    assert scoring.gap_threshold(INDEX_NORMS) == pytest.approx(13.15, abs=0.005)
    assert change_label(50, 63, INDEX_NORMS) == "no_reliable_change"
    assert change_label(50, 64, INDEX_NORMS) == "reliable_improvement"
    assert change_label(64, 50, INDEX_NORMS) == "reliable_decline"


def test_change_is_unknown_when_either_score_is_missing():
    assert change_label(None, 70, DOMAIN_NORMS) is None
    assert change_label(40, None, DOMAIN_NORMS) is None


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (None, None),
        (0.0, "needs_attention"),
        (49.49, "needs_attention"),
        (49.5, "mixed"),  # shown as 50
        (50.0, "mixed"),
        (69.49, "mixed"),
        (69.5, "strong"),  # shown as 70
        (70.0, "strong"),
        (100.0, "strong"),
    ],
)
def test_bands_split_at_50_and_70(score, expected):
    assert band(score) == expected


def test_a_mean_keyed_answer_of_3_8_lands_exactly_on_strong():
    domain = make_domain(5)
    score = domain_score(domain, answers_for(domain, [4, 4, 4, 4, 3]))
    assert score == 70.0
    assert band(score) == "strong"


def test_band_labels_cover_every_band_and_say_they_are_not_norms():
    assert set(scoring.BAND_LABELS) == {"strong", "mixed", "needs_attention"}
    assert "not norms" in scoring.BAND_NOTE


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (5, 4, "shared_strength"),
        (1, 2, "shared_concern"),
        (5, 1, "different_views"),
        (2, 4, "different_views"),
        (3, 3, "unsure"),
        (3, 5, "unsure"),
        (1, 3, "unsure"),
        (None, 5, None),
        (4, None, None),
    ],
)
def test_item_pair_categories(a, b, expected):
    assert item_pair_category(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (70.0, 95.0, "shared_strength"),
        (49.4, 10.0, "shared_growth_area"),
        (70.0, 49.4, "different_experiences"),
        (69.4, 30.0, "mixed"),
        (69.5, 30.0, "different_experiences"),  # 69.5 is shown, and read, as 70
        (50.0, 90.0, "mixed"),
        (55.0, 60.0, "mixed"),
    ],
)
def test_domain_pair_categories(a, b, expected):
    assert domain_pair_category(a, b) == expected


# --- Safety ---------------------------------------------------------------------------

SAFETY_ITEMS = [
    ItemSpec(id=f"SAF{n}", domain=None, reverse=False, scored=False, safety_code=f"S{n}") for n in range(1, 8)
]


def safety(**codes):
    return safety_level(SAFETY_ITEMS, {f"SAF{code[1:]}": value for code, value in codes.items()})


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ({}, "none"),
        (dict.fromkeys(("S1", "S2", "S3", "S4", "S5", "S6", "S7")), "none"),
        (dict.fromkeys(("S1", "S2", "S3", "S4", "S5", "S6", "S7"), 1), "none"),
        ({"S1": 2}, "urgent"),
        ({"S2": 2}, "urgent"),
        ({"S4": 2}, "urgent"),
        ({"S3": 2}, "concern"),
        ({"S3": 3}, "urgent"),
        ({"S5": 2, "S6": 2, "S7": 2}, "none"),
        ({"S5": 3}, "concern"),
        ({"S6": 3}, "concern"),
        ({"S7": 5}, "concern"),
        ({"S5": 5, "S1": 2}, "urgent"),
    ],
)
def test_safety_levels_at_their_boundaries(codes, expected):
    assert safety(**codes) == expected


def test_a_skipped_safety_item_never_triggers_and_is_not_read_as_never():
    # Everything else answered "Never" and S3 skipped: no flag from the skip itself...
    answered_never = {f"S{n}": 1 for n in (1, 2, 4, 5, 6, 7)}
    assert safety(**answered_never, S3=None) == "none"
    # ...and a skipped S3 does not hide a flag raised by another item.
    assert safety(S3=None, S6=3) == "concern"


def test_safety_answers_off_the_scale_are_rejected():
    with pytest.raises(ScoringError, match="SAF1"):
        safety(S1=6)


# --- Attunement -----------------------------------------------------------------------


def test_attunement_worked_example():
    targets = make_domain(4, prefix="T")
    predictions = [
        ItemSpec(id=f"P{n}", domain=None, reverse=False, scored=False, predicts=f"T{n}") for n in range(1, 5)
    ]
    items = targets + predictions
    partner = {"T1": 4, "T2": 2, "T3": 5, "T4": None}
    predictor = {"P1": 4, "P2": 3, "P3": 2, "P4": 5}
    # Pairs: T1 exact, T2 off by one, T3 off by three; T4 unanswered by the partner.
    result = attunement(items, predictor, partner)
    assert result == Attunement(within_one=pytest.approx(200 / 3), exact=pytest.approx(100 / 3), pairs=3)


def test_attunement_is_none_without_a_single_pair():
    items = make_domain(1, prefix="T") + [ItemSpec(id="P1", domain=None, reverse=False, scored=False, predicts="T1")]
    assert attunement(items, {"P1": None}, {"T1": 3}) == Attunement(None, None, 0)
    assert attunement(items, {"P1": 3}, {}) == Attunement(None, None, 0)


def test_attunement_compares_raw_answers_even_for_reverse_items():
    items = [
        ItemSpec(id="T1", domain="communication", reverse=True, scored=True),
        ItemSpec(id="P1", domain=None, reverse=False, scored=False, predicts="T1"),
    ]
    assert attunement(items, {"P1": 5}, {"T1": 5}).exact == 100.0


def test_attunement_rejects_a_prediction_of_an_unknown_item():
    items = [ItemSpec(id="P1", domain=None, reverse=False, scored=False, predicts="NOPE")]
    with pytest.raises(ScoringError, match="NOPE"):
        attunement(items, {"P1": 3}, {})


# --- Straight-lining ------------------------------------------------------------------


def test_the_same_answer_everywhere_is_flagged_as_straightlining():
    domain = make_domain(5, reverse={4, 5})
    assert straightlined(domain, answers_for(domain, [4, 4, 4, 4, 4]))
    assert straightlined(domain, answers_for(domain, [3, 3, 3, 3, None]))


def test_varied_or_too_sparse_answers_are_not_straightlining():
    domain = make_domain(5, reverse={4, 5})
    assert not straightlined(domain, answers_for(domain, [4, 4, 4, 2, 2]))
    assert not straightlined(domain, answers_for(domain, [4, 4, 4, None, None]))
    assert not straightlined(make_domain(1), {"X1": 4})


def test_unscored_items_do_not_count_towards_straightlining():
    items = make_domain(3) + [ItemSpec(id="H1", domain=None, reverse=False, scored=False)]
    assert straightlined(items, {"X1": 2, "X2": 2, "X3": 2, "H1": 5})


# --- Errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [0, 6, -1, 2.5, "3", True])
def test_key_item_rejects_values_off_the_scale(raw):
    with pytest.raises(ScoringError):
        key_item(raw, reverse=False)


def test_key_item_passes_prefer_not_to_answer_through():
    assert key_item(None, reverse=True) is None


def test_validate_answers_names_an_unknown_item():
    with pytest.raises(ScoringError, match="ZZZ9"):
        validate_answers(make_domain(2), {"X1": 3, "ZZZ9": 3})


def test_validate_answers_names_an_out_of_range_item():
    with pytest.raises(ScoringError, match="X2"):
        validate_answers(make_domain(2), {"X1": 3, "X2": 7})


def test_validate_answers_allows_none_and_absent_items():
    validate_answers(make_domain(3), {"X1": None, "X2": 5})


def test_scoring_errors_are_value_errors():
    assert issubclass(ScoringError, ValueError)


def test_answers_from_another_instrument_version_are_refused():
    scoring.require_same_version(1, 1)
    with pytest.raises(ScoringError, match="version"):
        scoring.require_same_version(1, 2)


def test_scores_are_comparable_only_under_one_known_scoring_key():
    assert scoring.same_scoring("a1", "a1")
    assert not scoring.same_scoring("a1", "b2")
    assert not scoring.same_scoring("", "")  # a key not yet computed proves nothing
    assert not scoring.same_scoring()


def test_norms_reject_impossible_values():
    with pytest.raises(ScoringError):
        Norms(sd=0, alpha=0.8)
    with pytest.raises(ScoringError):
        Norms(sd=20, alpha=1.0)


def test_score_response_refuses_norms_that_miss_a_domain(items, norms):
    with pytest.raises(ScoringError, match="outlook"):
        score_response(items, {}, {k: v for k, v in norms.items() if k != "outlook"})


def test_a_domain_with_mixed_scales_is_refused():
    items = [
        ItemSpec(id="A", domain="d", reverse=False, scored=True),
        ItemSpec(id="B", domain="d", reverse=False, scored=True, scale_max=7),
    ]
    with pytest.raises(ScoringError):
        domain_score(items, {"A": 1, "B": 1})


# --- A whole couple on the real instrument --------------------------------------------


def couple_answers(items):
    """Partner A is upbeat about communication, partner B is not; elsewhere they roughly agree."""
    a, b = {}, {}
    for item in items:
        if not item.scored:
            continue
        if item.domain == "communication":
            a_keyed, b_keyed = 5, 2
        elif item.domain == "affection_balance":
            a_keyed, b_keyed = 2, 2
        else:
            a_keyed, b_keyed = 4, 4
        a[item.id] = 6 - a_keyed if item.reverse else a_keyed
        b[item.id] = 6 - b_keyed if item.reverse else b_keyed
    b["COM1"] = None
    return a, b


def test_a_couple_on_the_real_instrument(items, norms, instrument):
    a_answers, b_answers = couple_answers(items)
    a_answers.update({"SAF3": 2, "KYP1": 3})
    b_answers.update({"SAF1": 1})
    a = score_response(items, a_answers, norms)
    b = score_response(items, b_answers, norms)

    assert set(a.domains) == {*scoring.COUPLE_DOMAINS, "outlook", "personal_skills"}
    assert a.domains["communication"] == 100.0
    assert b.domains["communication"] == 25.0
    assert a.domains["affection_balance"] == b.domains["affection_balance"] == 25.0
    assert a.connection_index == pytest.approx((100 + 75 * 4 + 25) / 6)
    assert a.safety_level == "concern"
    assert b.safety_level == "none"
    assert not a.straightlined

    comparison = compare(items, a_answers, b_answers, a, b, norms)
    categories = [row.category for row in comparison.items]
    assert len(comparison.items) == 30
    assert categories == sorted(categories, key=scoring.ITEM_CATEGORY_ORDER.index)
    assert categories[:4] == ["different_views"] * 4
    assert categories[-1] is None
    assert comparison.items[-1].item_id == "COM1"
    assert "personal_skills" not in [row.key for row in comparison.domains]

    communication = comparison.domain("communication")
    assert (communication.category, communication.gap) == (
        "different_experiences",
        True,
    )
    affection = comparison.domain("affection_balance")
    assert (affection.category, affection.gap) == ("shared_growth_area", False)
    assert comparison.index.key == "connection_index"
    assert comparison.index.gap is False
    json.dumps(comparison.as_dict())

    recs = recommendations(comparison, scoring.remedies_from_instrument(instrument))
    assert recs == [
        (
            "communication",
            "needs_attention",
            ("vulnerability_listening", "emotional_regulation"),
        ),
        (
            "affection_balance",
            "needs_attention",
            ("vulnerability_listening", "professional_help"),
        ),
    ]


def test_a_gap_without_a_low_score_is_recommended_for_the_gap():
    comparison = scoring.Comparison(
        items=[],
        domains=[
            scoring.DomainRow("friendship", 95.0, 55.0, "mixed", True),
            scoring.DomainRow("outlook", 10.0, 90.0, "different_experiences", True),
            scoring.DomainRow("communication", None, 40.0, None, None),
        ],
        index=scoring.DomainRow("connection_index", 75.0, 55.0, "mixed", True),
    )
    recs = recommendations(comparison, {"friendship": ["tough_times"]})
    assert recs == [
        ("friendship", "gap", ("tough_times",)),
        ("communication", "needs_attention", ()),
    ]


def test_compare_marks_missing_scores_as_uncategorised(items, norms):
    empty = score_response(items, {}, norms)
    comparison = compare(items, {}, {}, empty, empty, norms)
    assert all(row.category is None and row.gap is None for row in comparison.domains)
    assert comparison.index.a is None
    assert recommendations(comparison, {}) == []


# --- The instrument file --------------------------------------------------------------


def test_the_instrument_file_has_the_agreed_header(instrument):
    assert (instrument["slug"], instrument["version"], instrument["title"]) == (
        "connection",
        1,
        "Connection Assessment",
    )
    assert set(instrument["scales"]) == {"agreement", "frequency"}
    for scale in instrument["scales"].values():
        assert (scale["min"], scale["max"]) == (1, 5)
        assert list(scale["labels"]) == ["1", "2", "3", "4", "5"]


def test_the_instrument_has_six_couple_domains_then_outlook_and_personal_skills(
    instrument,
):
    domains = instrument["domains"]
    assert [d["key"] for d in domains] == [
        *scoring.COUPLE_DOMAINS,
        "outlook",
        "personal_skills",
    ]
    assert [d["kind"] for d in domains] == ["couple"] * 6 + ["outlook", "personal"]
    assert set(instrument["norms"]) == {d["key"] for d in domains} | {"connection_index"}
    for domain in domains:
        assert domain["title"] and domain["meaning"]
        assert domain["remedies"]
        assert set(domain["remedies"]) <= set(instrument["remedies"])
    assert set(instrument["remedies"]) == {
        "emotional_regulation",
        "tough_times",
        "vulnerability_listening",
        "professional_help",
    }


@pytest.mark.parametrize(
    ("domain", "n_items", "n_reverse"),
    [
        *[(key, 5, 2) for key in scoring.COUPLE_DOMAINS],
        ("outlook", 3, 1),
        ("personal_skills", 6, 2),
    ],
)
def test_each_domain_has_its_items_and_reverse_keyed_warning_signs(items, domain, n_items, n_reverse):
    in_domain = [item for item in items if item.domain == domain]
    assert len(in_domain) == n_items
    assert all(item.scored for item in in_domain)
    assert sum(item.reverse for item in in_domain) == n_reverse


def test_item_ids_are_unique_and_prefixed_by_section(instrument, items):
    ids = [item.id for item in items]
    assert len(ids) == len(set(ids)) == 55
    prefixes = {
        "communication": "COM",
        "safety_support": "SUP",
        "friendship": "FRI",
        "attention_effort": "ATT",
        "accountability_repair": "ACC",
        "affection_balance": "AFF",
        "outlook": "OUT",
        "personal_skills": "PER",
        "help_seeking": "HLP",
        "know_your_partner": "KYP",
        "safety": "SAF",
    }
    assert [s["key"] for s in instrument["sections"]] == list(prefixes)
    for section in instrument["sections"]:
        assert section["title"] and section["intro"]
        for n, item in enumerate(section["items"], start=1):
            assert item["id"] == f"{prefixes[section['key']]}{n}"
            assert item["text"].strip()


def test_private_sections_are_marked(instrument):
    private = {s["key"] for s in instrument["sections"] if s.get("private")}
    assert private == {"personal_skills", "safety"}


def test_know_your_partner_predicts_eight_different_couple_items_across_all_domains(
    items,
):
    by_id = {item.id: item for item in items}
    predictions = [item for item in items if item.predicts]
    assert [item.id for item in predictions] == [f"KYP{n}" for n in range(1, 9)]
    targets = [by_id[item.predicts] for item in predictions]
    assert len({t.id for t in targets}) == 8
    assert all(t.scored and t.domain in scoring.COUPLE_DOMAINS for t in targets)
    assert {t.domain for t in targets} == set(scoring.COUPLE_DOMAINS)
    assert all(not p.scored and p.domain is None for p in predictions)


def test_the_safety_section_has_seven_unscored_frequency_items(instrument, items):
    section = next(s for s in instrument["sections"] if s["key"] == "safety")
    assert section["private"] is True and section["shuffle"] is False
    assert [i["safety_code"] for i in section["items"]] == [f"S{n}" for n in range(1, 8)]
    assert all(i["scale"] == "frequency" and i["scored"] is False and i["domain"] is None for i in section["items"])
    assert [i.id for i in items if i.safety_code] == [f"SAF{n}" for n in range(1, 8)]


def test_the_help_seeking_item_is_unscored(items):
    (item,) = [i for i in items if i.id.startswith("HLP")]
    assert (item.scored, item.domain) == (False, None)


def test_only_the_scored_domains_carry_scored_items(items):
    assert scoring.scored_domains(items) == [
        *scoring.COUPLE_DOMAINS,
        "outlook",
        "personal_skills",
    ]
    assert sum(item.scored for item in items) == 39


# --- Purity ---------------------------------------------------------------------------


def test_scoring_imports_nothing_from_django():
    tree = ast.parse(Path(scoring.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not any(name.split(".")[0] == "django" for name in imported)
    assert {name.split(".")[0] for name in imported} <= {
        "__future__",
        "collections",
        "dataclasses",
        "decimal",
        "math",
        "typing",
    }


def test_scores_carry_the_scoring_version(items):
    assert scoring.SCORING_VERSION == "1"
    assert score_response(items, {}).as_dict()["scoring_version"] == "1"
