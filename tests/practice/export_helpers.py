"""Couples with submitted answers, for the export tests."""

import csv
import io
from datetime import timedelta

from django.utils import timezone

from assessments.models import Answer
from assessments.workflows import submit
from tests.conftest import make_assignment


def answer_and_submit(response, *, level=4, skip=(), when=None):
    """Answer every item (reverse-keyed ones mirrored), leave `skip` as "prefer not to answer", submit."""
    when = when or timezone.now()
    items = list(response.assignment.instrument.items.all())
    Answer.objects.bulk_create(
        Answer(
            response=response,
            item=item,
            value=None if item.code in skip else (6 - level if item.reverse_keyed else level),
            seq=1,
            updated_at=when,
        )
        for item in items
    )
    response.started_at = when
    response.save(update_fields=["started_at"])
    submit(response, now=when + timedelta(minutes=5))


def completed_assignment(couple, *, levels=(4, 3), skip=(), now=None):
    assignment, _ = make_assignment(couple, now=now)
    for response, level in zip(assignment.responses.order_by("partner__position"), levels, strict=True):
        answer_and_submit(response, level=level, skip=skip, when=now)
    return assignment


def read_csv(content):
    if isinstance(content, bytes):
        content = content.decode()
    return list(csv.reader(io.StringIO(content)))


def streamed(response):
    return b"".join(response.streaming_content)
