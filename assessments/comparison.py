"""Stored answers and scores of one administration, handed to the scoring rules for the counselor.

Everything here loads rows and calls ``assessments.scoring``; the rules themselves (categories,
gap flags, recommendations, reliable change) live there. Three readers:

* ``build_report`` for the counselor's comparison page (and its PDF),
* ``trend`` and ``latest_changes`` for the couple page,
* ``shared_summary`` for the summary a counselor releases to the couple: domain level only.
"""

from dataclasses import asdict, dataclass, field

from django.db.models import Count, Exists, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import get_language_info

from practice import prepared

from . import answering, charts, loader, scoring, talk, translations
from .models import Answer, Assignment, ComparisonReport, Item, Response, ResponseLink, SafetyAlert
from .scores import answers_of

# What each number means, in the words of docs/scoring.md, shown next to the number.
EXPLAIN = {
    "domain": (
        "0–100: 100 × (average answer − 1) / 4 over the statements answered, warning signs flipped so "
        "higher is always healthier. Scored when at least 80 % of the statements are answered."
    ),
    "index": (
        "The average of the six couple-domain scores, shown when at least five are scored. "
        "The outlook and personal skills are not part of it."
    ),
    "bands": (
        "Strong: 70 or more (answers at or near “Agree”). Mixed: 50 to 69. Needs attention: below 50. "
        "Bands describe the 0–100 range; they are not norms and compare no one with other couples."
    ),
    "gap": (
        "A gap is flagged only when the partners differ by more than measurement error could explain: "
        "about 25 points for a domain and 13 for the Connection Index."
    ),
    "attunement": (
        "How well this partner predicted the other's answers: the share of guesses within one point of "
        "the real answer (exact matches in brackets). Not part of any score."
    ),
    "change": (
        "Reliable change compares a partner's latest score with their previous one on a version scored the "
        "same way. "
        "The Connection Index must move by about 13 points and a domain by about 25 before the change is "
        "larger than measurement error; smaller moves are within the normal ups and downs."
    ),
    "items": (
        "Each answer has a stance once warning signs are flipped: positive (agree), negative (disagree) or "
        "unsure. Both positive is a shared strength, both negative a shared concern, one of each different "
        "views. Answers are shown as each partner chose them."
    ),
    "personal": ("Each partner's own emotional skills. Private: never compared and never shared with the partner."),
    "straightlined": (
        "Every statement got the same answer, even contradictory ones: the answers may not reflect this "
        "partner's views. No score is changed; consider checking in."
    ),
    "shared": (
        "Your two scores side by side for each area, on a 0–100 scale where higher means that partner "
        "experiences the area as stronger. 70 or more is strong, 50 to 69 mixed, below 50 worth attention. "
        "This is a self-report reflection, not a diagnosis."
    ),
}

ITEM_CATEGORY_LABELS = {
    "different_views": "Different views",
    "unsure": "Unsure",
    "shared_concern": "Shared concern",
    "shared_strength": "Shared strength",
    None: "Skipped by at least one partner",
}
ITEM_CATEGORY_FILTERS = {
    "different_views": "different_views",
    "unsure": "unsure",
    "shared_concern": "shared_concern",
    "shared_strength": "shared_strength",
    "skipped": None,
}
DOMAIN_CATEGORY_LABELS = {
    "shared_strength": "Shared strength",
    "shared_growth_area": "Shared growth area",
    "different_experiences": "Different experiences",
    "mixed": "Mixed",
}
BAND_SHORT = {"strong": "Strong", "mixed": "Mixed", "needs_attention": "Needs attention"}
CHANGE_LABELS = {
    "reliable_improvement": "Reliable improvement",
    "reliable_decline": "Reliable decline",
    "no_reliable_change": "Within the normal ups and downs",
}
SAFETY_LABELS = {"concern": "Concern", "urgent": "Urgent"}
RAISED = ("concern", "urgent")
REASON_LABELS = {"needs_attention": "a score below 50", "gap": "a gap larger than measurement error"}


def responses_by_position(assignment):
    """{"A": response, "B": response} with partner, score and safety alert (one query)."""
    rows = _RESPONSES_BY_POSITION.all(assignment=assignment.pk)
    for r in rows:
        r.assignment = assignment  # as the related manager would leave it: no query to reach it again
    return {r.partner.position: r for r in rows}


# Read by every view of the comparison: compiled once per process (practice/prepared.py).
_RESPONSES_BY_POSITION = prepared.Query(
    lambda assignment: (
        Response.objects.filter(assignment=assignment)
        .select_related("partner", "score", "safety_alert")
        .order_by("partner__position")
    ),
    "assignment",
)


def still_answering(responses):
    """The partners who have not submitted yet, A first."""
    return [r.partner for _, r in sorted(responses.items()) if r.submitted_at is None]


def both_finished(responses):
    return len(responses) == 2 and all(r.submitted_at is not None for r in responses.values())


def _stored_or_computed(response, specs, answers, norms):
    """The response's scores as the engine's value object (stored at submit; recomputed if missing)."""
    score = score_of(response)
    if score is None:
        return scoring.score_response(specs, answers, norms)
    return scoring.ResponseScores(
        domains=dict(score.domains),
        connection_index=score.connection_index,
        straightlined=score.straightlined,
        safety_level=response.safety_level or "none",
        scoring_version=score.scoring_version,
    )


def score_of(response):
    try:
        return response.score
    except Response.score.RelatedObjectDoesNotExist:
        return None


def alert_of(response):
    """The response's safety alert, or None (loaded with it by ``responses_by_position``)."""
    try:
        return response.safety_alert
    except Response.safety_alert.RelatedObjectDoesNotExist:
        return None


@dataclass
class DomainView:
    key: str
    title: str
    meaning: str
    a: float | None
    b: float | None
    category: str | None = None
    gap: bool | None = None

    @property
    def a_band(self):
        return scoring.band(self.a)

    @property
    def b_band(self):
        return scoring.band(self.b)

    @property
    def category_label(self):
        return DOMAIN_CATEGORY_LABELS.get(self.category, "")


@dataclass
class ItemView:
    code: str
    text: str
    domain: str
    domain_title: str
    reverse: bool
    a_words: str
    b_words: str
    category: str | None

    @property
    def category_label(self):
        return ITEM_CATEGORY_LABELS[self.category]

    @property
    def category_key(self):
        return self.category or "skipped"


@dataclass
class Report:
    """Everything the comparison page shows for one administration."""

    assignment: Assignment
    a: Response
    b: Response
    domains: list
    index: DomainView
    items: list
    recommendations: list
    attunement: dict
    personal: list
    straightlined: list
    safety: list = field(default_factory=list)

    def items_in(self, category):
        """Item rows of one category filter value ("skipped" for unanswered), or all for ""."""
        if not category:
            return self.items
        wanted = ITEM_CATEGORY_FILTERS[category]
        return [row for row in self.items if row.category == wanted]

    def grouped(self, category=""):
        """Item rows by domain in instrument order; within a domain different views come first."""
        groups = {}
        for row in self.items_in(category):
            groups.setdefault((row.domain, row.domain_title), []).append(row)
        order = [d.key for d in self.domains]
        return [
            {"key": key, "title": title, "rows": rows}
            for (key, title), rows in sorted(
                groups.items(), key=lambda g: order.index(g[0][0]) if g[0][0] in order else 99
            )
        ]

    def category_counts(self):
        counts = dict.fromkeys(ITEM_CATEGORY_FILTERS, 0)
        for row in self.items:
            counts[row.category_key] += 1
        return counts


def safety_entries(responses, answers, items, scales):
    """For the counselor only: each response whose safety answers raised an alert (or whose level
    calls for one), with its alert, level and safety answers in words. ``answers`` is
    {response id: {item code: raw value}}."""
    entries = []
    for response in responses:
        alert = alert_of(response)
        if alert is None and response.safety_level not in RAISED:
            continue
        rows = [
            (item.text, words(scales, item, answers.get(response.pk, {}).get(item.code)))
            for item in items
            if item.safety_code
        ]
        level = alert.level if alert is not None else response.safety_level
        entries.append({"response": response, "alert": alert, "level": SAFETY_LABELS[level], "rows": rows})
    return entries


def safety_of(responses):
    """``safety_entries`` for an administration still being answered (answers so far): one query."""
    raised = [r for r in responses.values() if alert_of(r) is not None or r.safety_level in RAISED]
    if not raised:
        return []
    instrument = raised[0].assignment.instrument
    answers = {}
    rows = Answer.objects.filter(response__in=raised, item__safety_code__gt="").values_list(
        "response_id", "item__code", "value"
    )
    for response_id, code, value in rows:
        answers.setdefault(response_id, {})[code] = value
    return safety_entries(raised, answers, items_of(instrument), instrument.definition["scales"])


def mark_safety_seen(entries, now=None):
    """Record when the counselor first opened each safety alert (acknowledging is a separate act)."""
    unseen = [e["alert"].pk for e in entries if e["alert"] is not None and e["alert"].first_viewed_at is None]
    if unseen:
        SafetyAlert.objects.filter(pk__in=unseen, first_viewed_at__isnull=True).update(
            first_viewed_at=now or timezone.now()
        )


def words(scales, item, raw):
    """The words of a raw answer as the partner chose it ("Prefer not to answer" when skipped)."""
    if raw is None:
        return "Prefer not to answer"
    return scales[item.scale]["labels"].get(str(raw), str(raw))


def items_of(instrument):
    """The instrument's items, read from its stored definition rather than queried.

    A published version never changes and its Item rows are loaded from this very definition,
    so the comparison saves a query on every view.
    """
    return [Item(instrument=instrument, **row) for row in loader.item_rows(instrument.definition)]


def build_report(assignment, responses):
    """Compare both partners of a finished administration (one query: both partners' answers).

    ``responses`` is ``responses_by_position(assignment)``; both must be submitted.
    """
    instrument = assignment.instrument
    definition = instrument.definition
    domains_meta = instrument.domains()
    scales = definition["scales"]
    norms = instrument.norms()
    items = items_of(instrument)
    specs = instrument.item_specs(items)
    a, b = responses["A"], responses["B"]
    answers = {a.pk: {}, b.pk: {}}
    for response_id, code, value in Answer.objects.filter(response__in=[a, b]).values_list(
        "response_id", "item__code", "value"
    ):
        answers[response_id][code] = value
    a_scores = _stored_or_computed(a, specs, answers[a.pk], norms)
    b_scores = _stored_or_computed(b, specs, answers[b.pk], norms)
    score_a, score_b = score_of(a), score_of(b)
    if score_a is not None and score_b is not None:
        scoring.require_same_version(score_a.instrument_version, score_b.instrument_version)
    result = scoring.compare(specs, answers[a.pk], answers[b.pk], a_scores, b_scores, norms)

    def domain_view(row):
        meta = domains_meta.get(row.key, {})
        title = meta.get("title", "Connection Index" if row.key == scoring.INDEX_KEY else row.key)
        return DomainView(row.key, title, meta.get("meaning", ""), row.a, row.b, row.category, row.gap)

    by_code = {i.code: i for i in items}
    item_views = []
    for row in result.items:
        item = by_code[row.item_id]
        item_views.append(
            ItemView(
                code=item.code,
                text=item.text,
                domain=item.domain,
                domain_title=domains_meta[item.domain]["title"],
                reverse=item.reverse_keyed,
                a_words=words(scales, item, row.a_raw),
                b_words=words(scales, item, row.b_raw),
                category=row.category,
            )
        )
    remedies = definition.get("remedies", {})
    recs = [
        {
            "title": domains_meta[rec.domain]["title"],
            "reason": REASON_LABELS[rec.reason],
            "remedies": [remedies[key] for key in rec.remedies if key in remedies],
        }
        for rec in scoring.recommendations(result, scoring.remedies_from_instrument(definition))
    ]
    attunement = {
        "A": (score_a.attunement, score_a.attunement_exact) if score_a else (None, None),
        "B": (score_b.attunement, score_b.attunement_exact) if score_b else (None, None),
    }
    personal_meta = domains_meta.get(scoring.PERSONAL_DOMAIN)
    personal = []
    if personal_meta is not None:
        personal = [
            DomainView(
                scoring.PERSONAL_DOMAIN,
                personal_meta["title"],
                personal_meta.get("meaning", ""),
                a_scores.domains.get(scoring.PERSONAL_DOMAIN),
                b_scores.domains.get(scoring.PERSONAL_DOMAIN),
            )
        ]
    safety = safety_entries((a, b), answers, items, scales)
    return Report(
        assignment=assignment,
        a=a,
        b=b,
        domains=[domain_view(row) for row in result.domains],
        index=domain_view(result.index),
        items=item_views,
        recommendations=recs,
        attunement=attunement,
        personal=personal,
        straightlined=[r.partner for r, s in ((a, a_scores), (b, b_scores)) if s.straightlined],
        safety=safety,
    )


# --- The stored report -------------------------------------------------------------------------

# Bump when the report's content or its rules change: stored reports of another version are
# recomputed on the page until ``manage.py compute_reports`` stores them again.
REPORT_VERSION = 1


def report_data(report):
    """The parts of a Report that never change once both partners finished, as JSON values."""
    safety_rows = {"A": [], "B": []}
    for position, response in (("A", report.a), ("B", report.b)):
        entry = next((e for e in report.safety if e["response"].pk == response.pk), None)
        safety_rows[position] = [list(row) for row in entry["rows"]] if entry else []
    return {
        "scoring_version": scoring.SCORING_VERSION,
        "domains": [asdict(d) for d in report.domains],
        "index": asdict(report.index),
        "items": [asdict(i) for i in report.items],
        "recommendations": report.recommendations,
        "attunement": {k: list(v) for k, v in report.attunement.items()},
        "personal": [asdict(d) for d in report.personal],
        "straightlined": [p.position for p in report.straightlined],
        "safety_rows": safety_rows,
    }


def report_from(data, assignment, responses):
    """A Report from stored data and the live responses (their partners, alerts and levels)."""
    a, b = responses["A"], responses["B"]
    safety = []
    for position, response in (("A", a), ("B", b)):
        alert = alert_of(response)
        if alert is None and response.safety_level not in RAISED:
            continue
        level = alert.level if alert is not None else response.safety_level
        rows = [tuple(row) for row in data["safety_rows"][position]]
        safety.append({"response": response, "alert": alert, "level": SAFETY_LABELS[level], "rows": rows})
    return Report(
        assignment=assignment,
        a=a,
        b=b,
        domains=[DomainView(**d) for d in data["domains"]],
        index=DomainView(**data["index"]),
        items=[ItemView(**i) for i in data["items"]],
        recommendations=data["recommendations"],
        attunement={k: tuple(v) for k, v in data["attunement"].items()},
        personal=[DomainView(**d) for d in data["personal"]],
        straightlined=[responses[p].partner for p in data["straightlined"]],
        safety=safety,
    )


def store_report(assignment_id):
    """Compute and store the report of a completed administration. False when it is not complete."""
    assignment = (
        Assignment.objects.select_related("instrument", "couple")
        .filter(pk=assignment_id, status=Assignment.Status.COMPLETED)
        .first()
    )
    if assignment is None:
        return False
    responses = responses_by_position(assignment)
    if not both_finished(responses):
        return False
    data = report_data(build_report(assignment, responses))
    ComparisonReport.objects.update_or_create(
        assignment=assignment, defaults={"version": REPORT_VERSION, "data": data, "computed_at": timezone.now()}
    )
    return True


def store_all_reports():
    """``store_report`` for every completed administration (``manage.py compute_reports``). Returns the count."""
    ids = Assignment.objects.filter(status=Assignment.Status.COMPLETED).order_by("pk").values_list("pk", flat=True)
    return sum(store_report(assignment_id) for assignment_id in ids.iterator(chunk_size=500))


def answered_in(assignment, responses):
    """For the counselor: the language each partner answered in, by position.

    ``{"A": {"partner": ..., "code": "es", "name": "Spanish", "status": "translated, not yet validated"}, ...}``;
    ``status`` is the translation's (None for the instrument's own wording), so the report can say
    when a partner's statements were a translation not yet validated. No query for the original
    language; one at most per translation and process after that (`translations.texts` caches).
    """
    result = {}
    for position, response in responses.items():
        texts = translations.texts(assignment.instrument, response.language)
        code = texts["language"]
        try:
            name = get_language_info(code)["name"]
        except KeyError:
            name = code
        result[position] = {
            "partner": response.partner,
            "code": code,
            "name": name,
            "status": texts["translation_status"],
        }
    return result


_STORED_REPORT = prepared.Query(
    lambda assignment: ComparisonReport.objects.filter(assignment=assignment, version=REPORT_VERSION).defer("pdf")[:1],
    "assignment",
)


def report_of(assignment, responses):
    """The finished administration's report: stored (one query) or, until it is, computed from the answers."""
    stored = _STORED_REPORT.first(assignment=assignment.pk)
    if stored is not None and stored.data.get("scoring_version") == scoring.SCORING_VERSION:
        return report_from(stored.data, assignment, responses)
    return build_report(assignment, responses)


def page_context(assignment):
    """The report and charts of the comparison page and its PDF, or None with the waiting context
    when someone is still answering.

    Either way the context carries the administration's safety alerts, first and for the counselor only.
    """
    responses = responses_by_position(assignment)
    if not both_finished(responses):
        return None, {
            "assignment": assignment,
            "couple": assignment.couple,
            "waiting": still_answering(responses),
            "safety": safety_of(responses),
        }
    report = report_of(assignment, responses)
    names = {"A": report.a.partner.name, "B": report.b.partner.name}
    return report, {
        "answered_in": answered_in(assignment, responses),
        "assignment": assignment,
        "couple": assignment.couple,
        "report": report,
        "safety": report.safety,
        "names": names,
        "bars": charts.comparison_bars(report, names),
        "explain": EXPLAIN,
        "for_session": talk.for_session(responses),
    }


# --- The couple page: every administration, trends and reliable change ----------------------


def _item_count():
    return Item.objects.filter(instrument=OuterRef("instrument")).values("instrument").annotate(n=Count("pk"))


def _responses():
    live_link = ResponseLink.objects.filter(response=OuterRef("pk"), revoked_at__isnull=True)
    # Counted in a subquery, not by joining the answers and grouping: the join made the planner
    # expect hundreds of rows and check the live link by hashing every link of the practice
    # (a sequential scan of 60,000 links, 27 ms at the large bench scale) instead of six index probes.
    answered = Answer.objects.filter(response=OuterRef("pk")).order_by().values("response").annotate(n=Count("pk"))
    return (
        Response.objects.select_related("partner", "score", "safety_alert")
        .annotate(answered=Coalesce(Subquery(answered.values("n")), 0), link_open=Exists(live_link))
        .order_by("partner__position")
    )


def _assignments(assignments):
    return assignments.select_related("instrument").annotate(n_items=Subquery(_item_count().values("n")))


# The couple's page reads these on every view: compiled once per process (practice/prepared.py),
# where the queryset and its prefetch cost about 4 ms of compiling each time.
_COUPLE_ASSIGNMENTS = prepared.Query(
    # The instrument's definition (tens of kB of JSON) comes from the process's cache of published
    # versions instead, parsed once per process rather than once per administration and view.
    lambda couple: (
        _assignments(Assignment.objects.filter(couple=couple))
        .defer("instrument__definition")
        .order_by("-assigned_at", "-pk")
    ),
    "couple",
)
_COUPLE_RESPONSES = prepared.Query(lambda couple: _responses().filter(assignment__couple=couple), "couple")


def administrations(couple, pk=None):
    """Every administration of a couple (or the one with ``pk``), newest first, with responses,
    scores and answer counts.

    Two queries whatever the number of administrations: assignments (with instrument and item
    count), then responses (with partner, score and answer count).
    """
    if pk is not None:
        return list(
            _assignments(couple.assignments.filter(pk=pk))
            .prefetch_related(Prefetch("responses", queryset=_responses()))
            .order_by("-assigned_at", "-pk")
        )
    assignments = _COUPLE_ASSIGNMENTS.all(couple=couple.pk)
    by_assignment = {a.pk: [] for a in assignments}
    for response in _COUPLE_RESPONSES.all(couple=couple.pk):
        # An administration assigned between the two reads has responses and no row here: left
        # for the next view, as a prefetch would leave it.
        if response.assignment_id in by_assignment:
            by_assignment[response.assignment_id].append(response)
    instruments = {}
    for assignment in assignments:
        assignment.couple = couple
        instrument = instruments.get(assignment.instrument_id)
        if instrument is None:
            instrument = instruments[assignment.instrument_id] = assignment.instrument
            instrument.definition = answering.definition(instrument.pk)  # a published version never changes
        assignment.instrument = instrument
        for response in by_assignment[assignment.pk]:
            response.assignment = assignment
        prepared.prefetched(assignment, "responses", by_assignment[assignment.pk])
    return assignments


TREND_KEYS_EXTRA = ("outlook", scoring.PERSONAL_DOMAIN)


def trend(assignments):
    """Scores per administration for the trend charts, oldest first.

    Returns ``{"points": [...], "keys": [(key, title), ...]}``, where each point is
    ``{"assignment": a, "A": {key: score}, "B": {...}}`` for every administration that is not
    cancelled and where at least one partner has a score.
    """
    points = []
    keys = [(scoring.INDEX_KEY, "Connection Index")]
    seen_keys = False
    for assignment in sorted(assignments, key=lambda a: (a.assigned_at, a.pk)):
        if assignment.status == Assignment.Status.CANCELLED:
            continue
        point = {"assignment": assignment}
        for response in assignment.responses.all():
            score = score_of(response)
            if score is None or response.submitted_at is None:
                continue
            values = dict(score.domains)
            values[scoring.INDEX_KEY] = score.connection_index
            point[response.partner.position] = values
        if "A" not in point and "B" not in point:
            continue
        if not seen_keys:
            meta = assignment.instrument.domains()
            keys += [(k, meta[k]["title"]) for k in scoring.COUPLE_DOMAINS if k in meta]
            keys += [(k, meta[k]["title"]) for k in TREND_KEYS_EXTRA if k in meta]
            seen_keys = True
        points.append(point)
    return {"points": points, "keys": keys}


def latest_changes(assignments):
    """Reliable change per partner between their two latest comparable scored administrations.

    ``{"A": {key: {"before", "after", "label", "text"}}, "B": ...}``; comparable means the
    instrument versions share a scoring key. A partner with no earlier administration comparable
    with their latest one has no entry.
    """
    result = {}
    ordered = sorted(
        (a for a in assignments if a.status != Assignment.Status.CANCELLED),
        key=lambda a: (a.assigned_at, a.pk),
        reverse=True,
    )
    for position in ("A", "B"):
        scored = []
        for assignment in ordered:
            for response in assignment.responses.all():
                if response.partner.position != position or response.submitted_at is None:
                    continue
                score = score_of(response)
                if score is not None:
                    scored.append((assignment, score))
        if not scored:
            continue
        latest_a, latest = scored[0]
        # Scores are compared only across versions that score identically (same scoring key):
        # a reworded version counts, a version whose scoring differs is skipped.
        comparable = [(a, s) for a, s in scored[1:] if a.instrument.scores_comparable_with(latest_a.instrument)]
        if not comparable:
            continue
        previous_a, previous = comparable[0]
        norms = latest_a.instrument.norms()
        changes = {}
        for key, norm in norms.items():
            if key == scoring.INDEX_KEY:
                before, after = previous.connection_index, latest.connection_index
            else:
                before, after = previous.domains.get(key), latest.domains.get(key)
            label = scoring.change_label(before, after, norm)
            if label is not None:
                changes[key] = {"before": before, "after": after, "label": label, "text": CHANGE_LABELS[label]}
        result[position] = changes
    return result


# --- The summary released to the couple ------------------------------------------------------


@dataclass
class SharedSummary:
    """Domain level only: no item, no personal skills, nothing about safety."""

    assignment: Assignment
    names: dict
    domains: list
    index: DomainView
    strengths: list
    worth_talking: list


def shared_summary(assignment, responses):
    """Both partners' couple-domain and outlook scores side by side, with two short lists.

    "Shared strengths" are couple domains where both score 70 or more; "worth talking about" are
    the couple domains the recommendations rule lists (a score below 50 or a flagged gap). Items
    are never used, so no exact answer can be inferred from a category.
    """
    instrument = assignment.instrument
    meta = instrument.domains()
    norms = instrument.norms()
    a, b = (_scores_for(responses[position], instrument) for position in ("A", "B"))
    keys = [k for k in (*scoring.COUPLE_DOMAINS, scoring.OUTLOOK_DOMAIN) if k in meta]
    rows = []
    for key in keys:
        row = _domain_row(key, a.domains.get(key), b.domains.get(key), norms[key])
        rows.append(row)
    index_row = _domain_row(scoring.INDEX_KEY, a.connection_index, b.connection_index, norms[scoring.INDEX_KEY])
    comparison = scoring.Comparison(items=[], domains=rows, index=index_row)
    worth = [rec.domain for rec in scoring.recommendations(comparison, {})]
    strengths = [r.key for r in rows if r.key in scoring.COUPLE_DOMAINS and r.category == "shared_strength"]

    def view(row):
        title = meta[row.key]["title"] if row.key in meta else "Connection Index"
        return DomainView(row.key, title, meta.get(row.key, {}).get("meaning", ""), row.a, row.b, row.category, row.gap)

    return SharedSummary(
        assignment=assignment,
        names={"A": responses["A"].partner.first_name, "B": responses["B"].partner.first_name},
        domains=[view(r) for r in rows],
        index=view(index_row),
        strengths=[meta[k]["title"] for k in strengths],
        worth_talking=[meta[k]["title"] for k in worth],
    )


def _scores_for(response, instrument):
    """The stored scores, or (should a score row be missing) the same numbers computed from the answers."""
    score = score_of(response)
    if score is not None:
        return score
    return scoring.score_response(instrument.item_specs(items_of(instrument)), answers_of(response), instrument.norms())


def _domain_row(key, a, b, norms):
    if a is None or b is None:
        return scoring.DomainRow(key=key, a=a, b=b, category=None, gap=None)
    return scoring.DomainRow(
        key=key, a=a, b=b, category=scoring.domain_pair_category(a, b), gap=scoring.gap_flag(a, b, norms)
    )


def describe_changes(changes, names, keys):
    """``latest_changes`` as rows for a page: one per partner, the index first, then each domain."""
    titles = dict(keys)
    rows = []
    for position in ("A", "B"):
        entries = changes.get(position)
        if not entries:
            continue
        index = entries.get(scoring.INDEX_KEY)
        domains = [
            {"title": titles[key], **entries[key]} for key, _ in keys if key != scoring.INDEX_KEY and key in entries
        ]
        for entry in [index, *domains]:
            if entry:
                entry["delta"] = entry["after"] - entry["before"]
        rows.append({"position": position, "name": names.get(position, position), "index": index, "domains": domains})
    return rows
