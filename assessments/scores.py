"""Scores from stored answers: the Django side of the scoring engine (assessments/scoring.py is pure)."""

from django.utils import timezone

from . import scoring
from .models import Score


def answers_of(response):
    """The response's answers as {item code: raw value or None}.

    Raises scoring.ScoringError when an answer belongs to another instrument version's item:
    scores are only ever computed from answers to the version that was assigned.
    """
    rows = list(response.answers.values_list("item__code", "value", "item__instrument_id"))
    instrument_id = response.assignment.instrument_id
    foreign = sorted(code for code, _, iid in rows if iid != instrument_id)
    if foreign:
        raise scoring.ScoringError(f"answers to items of another instrument version: {', '.join(foreign)}")
    return {code: value for code, value, _ in rows}


def compute_score(response, *, partner_response=None, items=None):
    """Score one response from its stored answers and save it (idempotent; used by recompute).

    Attunement needs the partner's answers, so it is filled only when partner_response is
    given and submitted.
    """
    instrument = response.assignment.instrument
    items = list(items if items is not None else instrument.items.all())
    specs = instrument.item_specs(items)
    answers = answers_of(response)
    result = scoring.score_response(specs, answers, instrument.norms())
    tune = None
    if partner_response is not None and partner_response.submitted_at is not None:
        tune = scoring.attunement(specs, answers, answers_of(partner_response))
    score, _ = Score.objects.update_or_create(
        response=response,
        defaults={
            "instrument_version": instrument.version,
            "scoring_version": scoring.SCORING_VERSION,
            "domains": result.domains,
            "connection_index": result.connection_index,
            "attunement": tune.within_one if tune else None,
            "attunement_exact": tune.exact if tune else None,
            "straightlined": result.straightlined,
            "computed_at": timezone.now(),
        },
    )
    if response.safety_level != result.safety_level:
        response.safety_level = result.safety_level
        response.save(update_fields=["safety_level"])
    return score
