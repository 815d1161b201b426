"""Scoring for the Connection Assessment: plain values in, plain results out.

This module is pure. It imports nothing from Django, does no I/O, reads no
clock and keeps no state beyond the frozen constants below, so every result
can be recomputed from the stored answers at any time. The design it
implements is ``research/psychometrics.md`` section 7; ``docs/scoring.md``
explains it in plain words for counselors.

Conventions:

* A raw answer is an ``int`` on the item's scale (1..5) or ``None`` for
  "prefer not to answer". ``None`` is missing, never zero and never "Never".
* ``keyed`` answers point the same way for every item: higher is healthier.
* Scores are floats on 0..100 and are never rounded here; round for display.
* Thresholds are provisional until the instrument is validated on pilot data.

Bump ``SCORING_VERSION`` whenever a formula or threshold here changes, so
stored scores can be traced to the rules that produced them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

SCORING_VERSION = "1"

SCALE_MIN, SCALE_MAX = 1, 5
MIN_ANSWERED_FRACTION = 0.80
BAND_STRONG = 70.0  # provisional, descriptive
BAND_ATTENTION = 50.0  # provisional, descriptive
# A stored score below this shows (rounded half up by whole()) as less than 50, for SQL filters.
SHOWN_BELOW_ATTENTION = BAND_ATTENTION - 0.5
Z = 1.96  # two-sided 95 %
MIN_SCORED_COUPLE_DOMAINS = 5

COUPLE_DOMAINS = (
    "communication",
    "safety_support",
    "friendship",
    "attention_effort",
    "accountability_repair",
    "affection_balance",
)
OUTLOOK_DOMAIN = "outlook"
PERSONAL_DOMAIN = "personal_skills"
# Personal skills are seen by the respondent and the counselor only, so they
# never appear in a couple comparison.
PRIVATE_DOMAINS = frozenset({PERSONAL_DOMAIN})
INDEX_KEY = "connection_index"


def gettext_noop(text):
    """Marks a text for the translation catalogue (makemessages finds the name) and returns it as is.

    Scoring stays free of Django; the pages translate these texts where they show them.
    """
    return text


# Marked for translation but kept plain strings (exports and codebooks use them as they are); a
# page translates them where it shows them (gettext on the value).
BAND_LABELS = {
    "strong": gettext_noop("Strong (70 or more)"),
    "mixed": gettext_noop("Mixed (50 to 69)"),
    "needs_attention": gettext_noop("Needs attention (below 50)"),
}
BAND_NOTE = gettext_noop(
    "Bands describe where a score falls on the 0-100 range. They are not "
    "norms and do not compare anyone with other couples."
)

ITEM_CATEGORY_ORDER = (
    "different_views",
    "unsure",
    "shared_concern",
    "shared_strength",
    None,
)

SAFETY_LEVELS = ("none", "concern", "urgent")


class ScoringError(ValueError):
    """Answers or instrument data that cannot be scored (bad value, unknown item, wrong version)."""


@dataclass(frozen=True)
class ItemSpec:
    """One item as the scoring rules see it.

    ``domain`` is ``None`` for unscored items (help-seeking, predictions,
    safety). ``predicts`` names the item a "know your partner" prediction is
    about; ``safety_code`` is S1..S7 for safety items.
    """

    id: str
    domain: str | None
    reverse: bool
    scored: bool
    scale_min: int = SCALE_MIN
    scale_max: int = SCALE_MAX
    predicts: str | None = None
    safety_code: str | None = None


@dataclass(frozen=True)
class Norms:
    """Reference SD and reliability (Cronbach's alpha) of one score, per instrument version."""

    sd: float
    alpha: float

    def __post_init__(self) -> None:
        if not self.sd > 0:
            raise ScoringError(f"norms sd must be positive, got {self.sd!r}")
        if not 0 <= self.alpha < 1:
            raise ScoringError(f"norms alpha must be in [0, 1), got {self.alpha!r}")


Answers = Mapping[str, int | None]


# --- Loading plain instrument data -------------------------------------------------


def items_from_instrument(instrument: Mapping[str, Any]) -> list[ItemSpec]:
    """Build ``ItemSpec``s from a parsed instrument file (``connection-v<N>.json``), in file order."""
    scales = instrument["scales"]
    specs = []
    for section in instrument["sections"]:
        for item in section["items"]:
            scale = scales[item["scale"]]
            specs.append(
                ItemSpec(
                    id=item["id"],
                    domain=item.get("domain"),
                    reverse=bool(item.get("reverse", False)),
                    scored=bool(item.get("scored", False)),
                    scale_min=int(scale["min"]),
                    scale_max=int(scale["max"]),
                    predicts=item.get("predicts"),
                    safety_code=item.get("safety_code"),
                )
            )
    return specs


def norms_from_instrument(instrument: Mapping[str, Any]) -> dict[str, Norms]:
    """Build the ``{score key: Norms}`` map from a parsed instrument file."""
    return {key: Norms(sd=float(n["sd"]), alpha=float(n["alpha"])) for key, n in instrument["norms"].items()}


def remedies_from_instrument(instrument: Mapping[str, Any]) -> dict[str, list[str]]:
    """Map each domain key to its remedy keys, as ``recommendations`` expects."""
    return {d["key"]: list(d.get("remedies", [])) for d in instrument["domains"]}


def require_same_version(*versions: object) -> None:
    """Raise ``ScoringError`` unless all instrument versions given are equal.

    Call before comparing the two partners of one administration, who always
    answer the same version. Across administrations use ``same_scoring``.
    """
    if len(set(versions)) > 1:
        raise ScoringError(f"answers belong to different instrument versions: {versions!r}")


def same_scoring(*keys: str) -> bool:
    """True when every scoring key given is the same, known key.

    A scoring key hashes everything a score depends on (scored items, their
    domains, keying and scale range, the domains, the norms and
    ``SCORING_VERSION``), so two instrument versions that differ only in
    wording share it and their scores may be compared over time. An empty key
    (not yet computed) is never comparable.
    """
    return bool(keys) and all(keys) and len(set(keys)) == 1


# --- Single answers ----------------------------------------------------------------


def _check_value(item_id: str, raw: object, lo: int, hi: int) -> None:
    # bool is an int subclass; True must not pass as a 1.
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ScoringError(f"{item_id}: answer must be an integer or None, got {raw!r}")
    if not lo <= raw <= hi:
        raise ScoringError(f"{item_id}: answer {raw} is outside {lo}..{hi}")


def key_item(raw: int | None, reverse: bool, lo: int = SCALE_MIN, hi: int = SCALE_MAX) -> int | None:
    """Keyed answer: ``raw`` if not reversed, else ``lo + hi - raw`` (6 - raw on 1..5).

    ``None`` (prefer not to answer) stays ``None``. Raises ``ScoringError``
    for a value outside ``lo..hi``.
    """
    if raw is None:
        return None
    _check_value("answer", raw, lo, hi)
    return lo + hi - raw if reverse else raw


def validate_answers(items: Iterable[ItemSpec], answers: Answers) -> None:
    """Raise ``ScoringError`` naming the item for an unknown id or an off-scale value.

    ``None`` is allowed for every item; items may also be absent.
    """
    by_id = {item.id: item for item in items}
    for item_id, raw in answers.items():
        item = by_id.get(item_id)
        if item is None:
            raise ScoringError(f"{item_id}: unknown item id")
        if raw is not None:
            _check_value(item_id, raw, item.scale_min, item.scale_max)


# --- Per-respondent scores ---------------------------------------------------------


def min_answered(n_items: int) -> int:
    """Answers needed to score a domain of ``n_items``: ceil(0.80 x n)."""
    # Round first so float noise (0.8 * 5 = 4.000000000000001) cannot add one.
    return math.ceil(round(MIN_ANSWERED_FRACTION * n_items, 9))


def domain_score(items: Sequence[ItemSpec], answers: Answers) -> float | None:
    """Domain score on 0..100 (POMP): ``100 x (mean keyed - 1) / 4``.

    ``items`` are the scored items of one domain. The mean is over answered
    items only (person-mean proration), and the score exists only when at
    least ceil(0.80 x number of items) are answered; otherwise ``None``.
    All items of a domain must share one scale.
    """
    if not items:
        return None
    scales = {(item.scale_min, item.scale_max) for item in items}
    if len(scales) != 1:
        raise ScoringError("items of one domain must share one scale")
    ((lo, hi),) = scales
    keyed = []
    for item in items:
        raw = answers.get(item.id)
        if raw is not None:
            _check_value(item.id, raw, lo, hi)
            keyed.append(lo + hi - raw if item.reverse else raw)
    if len(keyed) < min_answered(len(items)):
        return None
    # One division of exact integers, so band boundaries (e.g. 70.0) are exact.
    return 100 * (sum(keyed) - lo * len(keyed)) / ((hi - lo) * len(keyed))


def connection_index(domain_scores: Mapping[str, float | None]) -> float | None:
    """Connection Index: mean of the six couple-domain scores, if at least 5 are scored.

    Keys other than the six couple domains (outlook, personal skills) are
    ignored; a missing key counts as not scored.
    """
    values = [domain_scores.get(key) for key in COUPLE_DOMAINS]
    scored = [v for v in values if v is not None]
    if len(scored) < MIN_SCORED_COUPLE_DOMAINS:
        return None
    return math.fsum(scored) / len(scored)


def whole(score: float) -> int:
    """The one rounding rule for every score a person reads: half up to a whole number.

    52.5 is 53 (and -2.5 is -3) on the results page, the caseload, the comparison, the summary,
    the charts and the PDF alike. Python's round() would give 52 (it rounds halves to even).
    """
    return int(Decimal(repr(float(score))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def band(score: float | None) -> str | None:
    """Descriptive band of the score as shown: ``strong`` (>= 70), ``mixed`` (>= 50), ``needs_attention`` (< 50).

    The band is read from ``whole(score)``, the number a person sees, so 69.5 (shown as 70) is
    strong and 49.5 (shown as 50) is mixed: a label never disagrees with its number.
    Not norms; see ``BAND_NOTE``. ``None`` for a missing score.
    """
    if score is None:
        return None
    score = whole(score)
    if score >= BAND_STRONG:
        return "strong"
    if score >= BAND_ATTENTION:
        return "mixed"
    return "needs_attention"


def straightlined(items: Iterable[ItemSpec], answers: Answers) -> bool:
    """True when every answered scored item has the same raw value (reverse items included).

    Decision: the flag needs at least 2 answered scored items and at least
    ceil(0.80 x scored items) answered, the same rule as domain scoring, so a
    respondent cannot avoid it by skipping one item while an almost empty
    form is never flagged. The flag marks answers that may not reflect the
    respondent's views; it does not change any score.
    """
    scored = [item for item in items if item.scored]
    values = [answers.get(item.id) for item in scored]
    answered = [v for v in values if v is not None]
    if len(answered) < max(2, min_answered(len(scored))):
        return False
    return len(set(answered)) == 1


def safety_level(items: Iterable[ItemSpec], answers: Answers) -> str:
    """Respondent-level safety level from the S1..S7 frequency items (1 Never .. 5 Frequently).

    ``urgent`` if S1, S2 or S4 >= 2 (any physical harm, threat or sexual
    coercion) or S3 >= 3 (afraid at least sometimes); otherwise ``concern``
    if S5, S6 or S7 >= 3 or S3 == 2; otherwise ``none``. A skipped item is
    not counted as "Never" but can never trigger a level either.
    The result is private to the respondent (and a consenting clinician).
    """
    by_code: dict[str, int] = {}
    for item in items:
        if item.safety_code is None:
            continue
        raw = answers.get(item.id)
        if raw is None:
            continue
        _check_value(item.id, raw, item.scale_min, item.scale_max)
        by_code[item.safety_code] = raw

    def at_least(code: str, threshold: int) -> bool:
        value = by_code.get(code)
        return value is not None and value >= threshold

    if any(at_least(code, 2) for code in ("S1", "S2", "S4")) or at_least("S3", 3):
        return "urgent"
    if any(at_least(code, 3) for code in ("S5", "S6", "S7")) or by_code.get("S3") == 2:
        return "concern"
    return "none"


@dataclass(frozen=True)
class Attunement:
    """How well one partner predicted the other's answers (percentages 0..100)."""

    within_one: float | None
    exact: float | None
    pairs: int


def attunement(items: Iterable[ItemSpec], predictor_answers: Answers, partner_answers: Answers) -> Attunement:
    """Share of predictions within one point of (and equal to) the partner's raw answer.

    For every prediction item (``predicts`` set) where the predictor answered
    and the partner answered the predicted item: ``within_one = 100 x
    #(|prediction - actual| <= 1) / pairs`` and ``exact = 100 x
    #(prediction == actual) / pairs``. Raw values are compared, not keyed
    ones. Both percentages are ``None`` when there is no pair.
    """
    items = list(items)
    by_id = {item.id: item for item in items}
    close = same = pairs = 0
    for item in items:
        if item.predicts is None:
            continue
        target = by_id.get(item.predicts)
        if target is None:
            raise ScoringError(f"{item.id}: predicts unknown item {item.predicts}")
        guess = predictor_answers.get(item.id)
        actual = partner_answers.get(target.id)
        if guess is None or actual is None:
            continue
        _check_value(item.id, guess, item.scale_min, item.scale_max)
        _check_value(target.id, actual, target.scale_min, target.scale_max)
        pairs += 1
        close += abs(guess - actual) <= 1
        same += guess == actual
    if pairs == 0:
        return Attunement(within_one=None, exact=None, pairs=0)
    return Attunement(within_one=100 * close / pairs, exact=100 * same / pairs, pairs=pairs)


@dataclass(frozen=True)
class ResponseScores:
    """Everything scored for one respondent.

    ``safety_level`` is private to the respondent: never show it, or anything
    derived from it, to the partner or in a shared report.
    """

    domains: dict[str, float | None]
    connection_index: float | None
    straightlined: bool
    safety_level: str
    scoring_version: str = SCORING_VERSION

    @property
    def bands(self) -> dict[str, str | None]:
        """Descriptive band of every domain and of the index (key ``connection_index``)."""
        bands = {key: band(score) for key, score in self.domains.items()}
        bands[INDEX_KEY] = band(self.connection_index)
        return bands

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy (floats unrounded, missing scores as ``None``)."""
        return {
            "scoring_version": self.scoring_version,
            "domains": dict(self.domains),
            "connection_index": self.connection_index,
            "straightlined": self.straightlined,
            "safety_level": self.safety_level,
        }


def scored_domains(items: Iterable[ItemSpec]) -> list[str]:
    """Domain keys of the scored items, in instrument order."""
    keys: list[str] = []
    for item in items:
        if item.scored and item.domain is not None and item.domain not in keys:
            keys.append(item.domain)
    return keys


def score_response(
    items: Sequence[ItemSpec],
    answers: Answers,
    norms: Mapping[str, Norms] | None = None,
) -> ResponseScores:
    """Score one respondent: every scored domain, the Connection Index, flags.

    Validates the answers first (``ScoringError`` on an unknown item or an
    off-scale value). When ``norms`` is given it must hold an entry for every
    scored domain and for ``connection_index``, so an incomplete instrument
    file fails here rather than later at comparison time.
    """
    validate_answers(items, answers)
    keys = scored_domains(items)
    if norms is not None:
        missing = [k for k in [*keys, INDEX_KEY] if k not in norms]
        if missing:
            raise ScoringError(f"norms missing for: {', '.join(missing)}")
    domains = {key: domain_score([i for i in items if i.scored and i.domain == key], answers) for key in keys}
    return ResponseScores(
        domains=domains,
        connection_index=connection_index(domains),
        straightlined=straightlined(items, answers),
        safety_level=safety_level(items, answers),
    )


# --- Comparing two partners --------------------------------------------------------


def stance(keyed: int | None) -> str | None:
    """``positive`` (keyed 4-5), ``negative`` (keyed 1-2), ``unsure`` (3), ``None`` if missing."""
    if keyed is None:
        return None
    if keyed >= 4:
        return "positive"
    if keyed <= 2:
        return "negative"
    return "unsure"


def item_pair_category(a_keyed: int | None, b_keyed: int | None) -> str | None:
    """Item-level couple category from the two stances.

    both positive -> ``shared_strength``; both negative -> ``shared_concern``;
    one positive and one negative -> ``different_views``; otherwise (at least
    one unsure) ``unsure``; ``None`` if either answer is missing.
    """
    a, b = stance(a_keyed), stance(b_keyed)
    if a is None or b is None:
        return None
    if a == b == "positive":
        return "shared_strength"
    if a == b == "negative":
        return "shared_concern"
    if {a, b} == {"positive", "negative"}:
        return "different_views"
    return "unsure"


def standard_error(norms: Norms) -> float:
    """Standard error of measurement: ``SE = sd x sqrt(1 - alpha)``."""
    return norms.sd * math.sqrt(1 - norms.alpha)


def s_diff(norms: Norms) -> float:
    """Standard error of a difference of two scores: ``S_diff = sqrt(2) x SE``."""
    return math.sqrt(2) * standard_error(norms)


def gap_threshold(norms: Norms) -> float:
    """Smallest difference larger than measurement error: ``1.96 x S_diff``.

    About 24.8 points for a domain (sd 20, alpha .80) and 13.15 for the
    index (sd 15, alpha .90).
    """
    return Z * s_diff(norms)


def domain_pair_category(a: float, b: float) -> str:
    """Domain-level couple category from two 0..100 scores.

    ``shared_strength`` if min >= 70; ``shared_growth_area`` if max < 50;
    ``different_experiences`` if max >= 70 and min < 50; otherwise ``mixed``.
    Read from the whole numbers shown (``whole``), like ``band``.
    """
    lo, hi = whole(min(a, b)), whole(max(a, b))
    if lo >= BAND_STRONG:
        return "shared_strength"
    if hi < BAND_ATTENTION:
        return "shared_growth_area"
    if hi >= BAND_STRONG and lo < BAND_ATTENTION:
        return "different_experiences"
    return "mixed"


def gap_flag(a: float, b: float, norms: Norms) -> bool:
    """True when the partners differ by more than error: ``|a - b| > 1.96 x sqrt(2) x SE``."""
    return abs(a - b) > gap_threshold(norms)


@dataclass(frozen=True)
class ItemRow:
    """One scored couple-domain item side by side. Holds raw answers: counselor view only."""

    item_id: str
    domain: str
    a_raw: int | None
    b_raw: int | None
    a_keyed: int | None
    b_keyed: int | None
    category: str | None


@dataclass(frozen=True)
class DomainRow:
    """One score side by side; ``category`` and ``gap`` are ``None`` unless both scores exist."""

    key: str
    a: float | None
    b: float | None
    category: str | None
    gap: bool | None


@dataclass(frozen=True)
class Comparison:
    """Partner A and partner B side by side, for the counselor's comparison page."""

    items: list[ItemRow]
    domains: list[DomainRow]
    index: DomainRow
    scoring_version: str = field(default=SCORING_VERSION)

    def domain(self, key: str) -> DomainRow:
        """The row for one domain key (or ``connection_index``)."""
        if key == INDEX_KEY:
            return self.index
        for row in self.domains:
            if row.key == key:
                return row
        raise KeyError(key)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy."""
        return asdict(self)


def _domain_row(key: str, a: float | None, b: float | None, norms: Mapping[str, Norms]) -> DomainRow:
    if key not in norms:
        raise ScoringError(f"norms missing for: {key}")
    if a is None or b is None:
        return DomainRow(key=key, a=a, b=b, category=None, gap=None)
    return DomainRow(
        key=key,
        a=a,
        b=b,
        category=domain_pair_category(a, b),
        gap=gap_flag(a, b, norms[key]),
    )


def compare(
    items: Sequence[ItemSpec],
    a_answers: Answers,
    b_answers: Answers,
    a_scores: ResponseScores,
    b_scores: ResponseScores,
    norms: Mapping[str, Norms],
) -> Comparison:
    """Compare two partners who answered the same instrument version.

    Item rows: every scored couple-domain item with both raw and keyed
    answers and ``item_pair_category``, ordered different_views, unsure,
    shared_concern, shared_strength, then unanswered (``None``); instrument
    order within a category. Domain rows: the six couple domains and the
    outlook, each with ``domain_pair_category`` and ``gap_flag``; personal
    skills are private and left out. ``index`` is the same row for the
    Connection Index. Check versions first with ``require_same_version``.
    """
    validate_answers(items, a_answers)
    validate_answers(items, b_answers)
    rows = []
    for item in items:
        if not item.scored or item.domain not in COUPLE_DOMAINS:
            continue
        a_raw, b_raw = a_answers.get(item.id), b_answers.get(item.id)
        a_keyed = key_item(a_raw, item.reverse, item.scale_min, item.scale_max)
        b_keyed = key_item(b_raw, item.reverse, item.scale_min, item.scale_max)
        rows.append(
            ItemRow(
                item_id=item.id,
                domain=item.domain,
                a_raw=a_raw,
                b_raw=b_raw,
                a_keyed=a_keyed,
                b_keyed=b_keyed,
                category=item_pair_category(a_keyed, b_keyed),
            )
        )
    rows.sort(key=lambda row: ITEM_CATEGORY_ORDER.index(row.category))
    keys = [k for k in scored_domains(items) if k not in PRIVATE_DOMAINS]
    domain_rows = [_domain_row(key, a_scores.domains.get(key), b_scores.domains.get(key), norms) for key in keys]
    index = _domain_row(INDEX_KEY, a_scores.connection_index, b_scores.connection_index, norms)
    return Comparison(items=rows, domains=domain_rows, index=index)


class Recommendation(NamedTuple):
    """A couple domain worth working on, why, and the remedies to suggest."""

    domain: str
    reason: str  # "needs_attention" or "gap"
    remedies: tuple[str, ...]


def recommendations(comparison: Comparison, remedies_by_domain: Mapping[str, Sequence[str]]) -> list[Recommendation]:
    """Remedies for each couple domain that needs attention or shows a gap.

    A domain is listed (once, in instrument order) when either partner's
    score is below 50 (reason ``needs_attention``, which wins when both
    apply) or the gap flag is set (reason ``gap``). Remedy keys come from
    ``remedies_by_domain``; the outlook and the index are not listed.
    """
    result = []
    for row in comparison.domains:
        if row.key not in COUPLE_DOMAINS:
            continue
        if "needs_attention" in (band(row.a), band(row.b)):
            reason = "needs_attention"
        elif row.gap:
            reason = "gap"
        else:
            continue
        result.append(Recommendation(row.key, reason, tuple(remedies_by_domain.get(row.key, ()))))
    return result


# --- Change over time --------------------------------------------------------------


def rci(x1: float, x2: float, norms: Norms) -> float:
    """Jacobson-Truax reliable change index: ``(x2 - x1) / S_diff``."""
    return (x2 - x1) / s_diff(norms)


def change_label(x1: float | None, x2: float | None, norms: Norms) -> str | None:
    """``reliable_improvement`` if RCI >= 1.96, ``reliable_decline`` if <= -1.96, else
    ``no_reliable_change``; ``None`` if either score is missing.

    Only for two administrations whose instrument versions score identically
    (``same_scoring``).
    """
    if x1 is None or x2 is None:
        return None
    r = rci(x1, x2, norms)
    if r >= Z:
        return "reliable_improvement"
    if r <= -Z:
        return "reliable_decline"
    return "no_reliable_change"
