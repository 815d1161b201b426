"""A large export built by a real Celery worker, with progress and a download link for 24 hours."""

from datetime import timedelta

import pytest
from django.urls import reverse

from assessments.models import ExportJob
from practice.models import AuditEvent
from tests.conftest import client_for, wait_for
from tests.practice.export_helpers import completed_assignment, read_csv, streamed

pytestmark = [pytest.mark.worker, pytest.mark.smoke]


def test_background_export_is_built_by_the_worker_and_downloads_for_24_hours(world, celery_worker_process, settings):
    completed_assignment(world.couple)
    admin = client_for(world.admin)
    expected = read_csv(streamed(admin.post(reverse("assessments:exports"), {"kind": "answers", "format": "csv"})))
    settings.EXPORT_INLINE_MAX_ROWS = 10
    response = admin.post(reverse("assessments:exports"), {"kind": "answers", "format": "csv"})
    job = ExportJob.objects.get()
    assert response["Location"] == reverse("assessments:export_job", args=[job.pk])

    done = wait_for(lambda: ExportJob.objects.filter(pk=job.pk, status="done").first(), timeout=90)
    assert done is not None, celery_worker_process.output()
    assert done.rows_done == done.rows_total == len(expected) - 1
    assert timedelta(hours=23, minutes=59) < done.expires_at - done.finished_at <= timedelta(hours=24)

    status = admin.get(reverse("assessments:export_job", args=[job.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert reverse("assessments:export_file", args=[job.pk]) in status and "every 2s" not in status
    download = admin.get(reverse("assessments:export_file", args=[job.pk]))
    assert download.status_code == 200
    assert read_csv(b"".join(download.streaming_content)) == expected
    assert 'filename="riverside-answers-' in download["Content-Disposition"]
    actions = list(AuditEvent.objects.filter(practice=world.practice).values_list("action", flat=True))
    assert {"export.queue", "export.build", "export.download"} <= set(actions)
