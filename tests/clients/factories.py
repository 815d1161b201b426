"""Answering, finishing and bulk caseloads for the dashboard tests."""

from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assessments import caseload
from assessments.models import Answer, Assignment, Instrument, Response
from assessments.workflows import submit
from clients.models import Couple, Partner
from tests.conftest import make_assignment


def answer(response, *, level=4, overrides=None, consent=True, finish=True, upto=None, when=None):
    """Answer every item around ``level`` (1-5, higher is healthier), then submit unless told not to.

    Warning signs are answered the other way round so the keyed value is ``level``; safety items
    are answered "Never" unless ``overrides`` (by item code, or S1..S7) says otherwise.
    """
    when = when or timezone.now()
    items = list(response.assignment.instrument.items.all())
    values = {}
    for item in items:
        if item.safety_code:
            values[item.code] = 1
        else:
            values[item.code] = 6 - level if item.reverse_keyed else level
    by_safety_code = {item.safety_code: item.code for item in items if item.safety_code}
    for key, value in (overrides or {}).items():
        values[by_safety_code.get(key, key)] = value
    chosen = items if upto is None else items[:upto]
    Answer.objects.bulk_create(
        Answer(response=response, item=item, value=values[item.code], seq=1, updated_at=when) for item in chosen
    )
    Response.objects.filter(pk=response.pk).update(
        share_consent=consent, identity_confirmed_at=when, consented_at=when, started_at=when, last_saved_at=when
    )
    response.refresh_from_db()
    if finish:
        submit(response, now=when)
    else:
        caseload.refresh(response.assignment.couple_id)  # what a saved page does: its last activity
    return response


def finished_assignment(
    couple, *, levels=(4, 3), overrides=(None, None), consent=(True, True), days_ago=0, instrument=None
):
    """An administration both partners finished; returns (assignment, {position: response})."""
    now = timezone.now() - timedelta(days=days_ago)
    assignment, tokens = make_assignment(couple, now=now, instrument=instrument)
    responses = {r.partner.position: r for r in assignment.responses.select_related("partner")}
    for position, level, extra, agree in zip("AB", levels, overrides, consent, strict=True):
        answer(responses[position], level=level, overrides=extra, consent=agree, when=now + timedelta(hours=1))
    assignment.refresh_from_db()
    return assignment, responses, tokens


def partner_client(token):
    """A browser that opened a partner's personal link."""
    client = Client()
    client.get(reverse("assessments:open_link", args=[token]))
    return client


def bulk_caseload(counselor, n, *, label="Couple"):
    """``n`` couples for one counselor, each with an open administration (bulk inserts, for scale tests)."""
    practice = counselor.membership.practice
    now = timezone.now()
    couples = Couple.objects.bulk_create(
        Couple(practice=practice, counselor=counselor, label=f"{label} {i:04d}") for i in range(n)
    )
    partners = Partner.objects.bulk_create(
        Partner(couple=c, position=pos, first_name=f"{pos}{i}", email=f"{pos.lower()}{i}-{c.pk}@example.com")
        for i, c in enumerate(couples)
        for pos in "AB"
    )
    instrument = Instrument.current()
    assignments = Assignment.objects.bulk_create(
        Assignment(
            couple=c,
            instrument=instrument,
            assigned_by=counselor,
            assigned_at=now - timedelta(days=3),
            due_at=now + timedelta(days=(i % 9) - 2),
        )
        for i, c in enumerate(couples)
    )
    by_couple = {a.couple_id: a for a in assignments}
    Response.objects.bulk_create(Response(assignment=by_couple[p.couple_id], partner=p) for p in partners)
    caseload.refresh(*(c.pk for c in couples))  # bulk inserts pass by the workflows that keep the rows
    return couples


def visible_text(response):
    """The page as words: tags removed, entities unescaped, whitespace collapsed."""
    import html
    import re

    from django.utils.html import strip_tags

    return re.sub(r"\s+", " ", html.unescape(strip_tags(response.content.decode())))
