"""Scores from stored answers: the Django side of the scoring engine (assessments/scoring.py is pure)."""

from django.utils import timezone

from . import scoring
from .models import Answer, Response, Score

SCORE_FIELDS = [
    "instrument_version",
    "scoring_version",
    "domains",
    "connection_index",
    "attunement",
    "attunement_exact",
    "straightlined",
    "computed_at",
]

_specs_cache: dict[int, list] = {}


def item_specs(instrument):
    """The version's item specs for the scoring engine, cached in this process.

    A published instrument version never changes (the loader refuses), so the cache never needs
    invalidating; a new version is a new instrument id.
    """
    found = _specs_cache.get(instrument.pk)
    if found is None:
        found = _specs_cache[instrument.pk] = instrument.item_specs()
    return found


def _answers_by_response(response_ids, instrument_id):
    """{response id: {item code: raw value or None}} for several responses in one query.

    Raises scoring.ScoringError when an answer belongs to another instrument version's item:
    scores are only ever computed from answers to the version that was assigned.
    """
    found: dict[int, dict] = {pk: {} for pk in response_ids}
    foreign = []
    rows = Answer.objects.filter(response_id__in=response_ids).values_list(
        "response_id", "item__code", "value", "item__instrument_id"
    )
    for response_id, code, value, item_instrument in rows:
        if item_instrument != instrument_id:
            foreign.append(code)
        found[response_id][code] = value
    if foreign:
        raise scoring.ScoringError(f"answers to items of another instrument version: {', '.join(sorted(foreign))}")
    return found


def answers_of(response):
    """The response's answers as {item code: raw value or None} (see _answers_by_response)."""
    return _answers_by_response([response.pk], response.assignment.instrument_id)[response.pk]


def score_responses(instrument, responses, *, now=None):
    """Score submitted responses of one administration from their stored answers and save them.

    ``responses`` holds the administration's responses (both partners when both exist); those
    submitted are scored, and attunement is filled for each when both are submitted. One query
    reads every answer, one upserts every score, and a safety level that changed is saved.
    Idempotent: recompute uses it too. Returns {response id: Score}.
    """
    now = now or timezone.now()
    submitted = [r for r in responses if r.submitted_at is not None]
    if not submitted:
        return {}
    specs = item_specs(instrument)
    answers = _answers_by_response([r.pk for r in responses], instrument.pk)
    both = len(responses) == 2 and len(submitted) == 2
    scores = []
    for response in submitted:
        result = scoring.score_response(specs, answers[response.pk], instrument.norms())
        tune = None
        if both:
            other = next(r for r in responses if r.pk != response.pk)
            tune = scoring.attunement(specs, answers[response.pk], answers[other.pk])
        scores.append(
            Score(
                response=response,
                instrument_version=instrument.version,
                scoring_version=scoring.SCORING_VERSION,
                domains=result.domains,
                connection_index=result.connection_index,
                attunement=tune.within_one if tune else None,
                attunement_exact=tune.exact if tune else None,
                straightlined=result.straightlined,
                computed_at=now,
            )
        )
        if response.safety_level != result.safety_level:
            response.safety_level = result.safety_level
            Response.objects.filter(pk=response.pk).update(safety_level=result.safety_level)
    Score.objects.bulk_create(scores, update_conflicts=True, unique_fields=["response"], update_fields=SCORE_FIELDS)
    return {score.response_id: score for score in scores}


def compute_score(response, *, partner_response=None):
    """Score one response (with attunement when ``partner_response`` is submitted) and save it."""
    responses = [response] if partner_response is None else [response, partner_response]
    return score_responses(response.assignment.instrument, responses)[response.pk]
