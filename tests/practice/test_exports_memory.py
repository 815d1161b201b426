"""A 200,000-row answers export streams with flat memory."""

import time
import tracemalloc
from datetime import timedelta

from django.db import connection
from django.urls import reverse
from django.utils import timezone

from assessments.models import Assignment, Instrument, Response
from tests.conftest import client_for

ROWS = 200_000
EARLY = ROWS // 10
MB = 1024 * 1024


def make_answer_rows(couple, rows=ROWS):
    """rows answers of submitted responses, inserted by the database itself (a few seconds)."""
    instrument = Instrument.current()
    per_response = instrument.items.filter(safety_code="").count()
    responses = -(-rows // per_response)
    now = timezone.now()
    assignments = Assignment.objects.bulk_create(
        [
            Assignment(couple=couple, instrument=instrument, assigned_at=now, due_at=now + timedelta(days=7))
            for _ in range(-(-responses // 2))
        ],
        batch_size=2000,
    )
    partners = list(couple.partners.order_by("position"))
    Response.objects.bulk_create(
        [Response(assignment=a, partner=p, submitted_at=now) for a in assignments for p in partners][:responses],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO assessments_answer (response_id, item_id, value, seq, updated_at) "
            "SELECT r.id, i.id, 1 + ((r.id + i.id) %% 5), 1, %s "
            "FROM assessments_response r CROSS JOIN assessments_item i "
            "WHERE r.assignment_id IN (SELECT id FROM assessments_assignment WHERE couple_id = %s) "
            "AND i.instrument_id = %s AND i.safety_code = '' "
            "ORDER BY r.id, i.id LIMIT %s",
            [now, couple.pk, instrument.pk, rows],
        )


def test_a_200000_row_answers_export_streams_with_flat_memory(world, settings):
    settings.EXPORT_INLINE_MAX_ROWS = 10_000_000
    started = time.monotonic()
    make_answer_rows(world.couple)
    built = time.monotonic() - started
    response = client_for(world.admin).post(reverse("assessments:exports"), {"kind": "answers", "format": "csv"})
    assert response.status_code == 200 and response.streaming
    lines = 0
    peak_early = None
    tracemalloc.start()
    try:
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
            if peak_early is None and lines >= EARLY:
                peak_early = tracemalloc.get_traced_memory()[1]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == ROWS + 1  # the header and every row
    # Flat: ten times the rows do not take noticeably more memory than the first tenth.
    assert peak < 50 * MB, f"peak {peak / MB:.1f} MB"
    assert peak < peak_early * 1.5 + 2 * MB, f"{peak_early / MB:.1f} MB at {EARLY}, {peak / MB:.1f} MB at {ROWS}"
    print(f"built in {built:.1f}s; peak {peak_early / MB:.2f} MB at {EARLY} rows, {peak / MB:.2f} MB at {ROWS}")
