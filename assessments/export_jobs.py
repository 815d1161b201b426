"""The background export: large files are written by the worker, not in a web request."""

import datetime
import logging
import secrets

from django.conf import settings
from django.utils import timezone

from practice import outbox
from practice.models import User, audit

from . import exports
from .models import ExportJob

log = logging.getLogger(__name__)
EXPORT_HOURS = 24


def export_dir():
    path = settings.VAR_DIR / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_path(job):
    return export_dir() / job.file_name if job.file_name else None


def request_for(job):
    params = job.params
    counselor = None
    if params.get("counselor"):
        counselor = User.objects.select_related("membership").filter(pk=params["counselor"]).first()
    return exports.ExportRequest(
        practice=job.practice,
        kind=job.kind,
        format=job.format,
        start=datetime.date.fromisoformat(params["start"]) if params.get("start") else None,
        end=datetime.date.fromisoformat(params["end"]) if params.get("end") else None,
        counselor=counselor,
        deidentified=bool(params.get("deidentified")),
    )


def remove_expired_files(now=None):
    """Delete the files of expired jobs (the rows stay, as the record of what was exported)."""
    now = now or timezone.now()
    for job in ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lte=now).exclude(file_name=""):
        path = job_path(job)
        if path is not None:
            path.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(file_name="")


def build(job_id):
    """Write one job's file, reporting progress on the row. Runs once: a claimed job is skipped."""
    if not ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(status=ExportJob.Status.RUNNING):
        return "not queued"
    job = ExportJob.objects.select_related("practice").get(pk=job_id)
    request = request_for(job)
    try:
        request.validate()
        total = request.count()
        ExportJob.objects.filter(pk=job.pk).update(rows_total=total)
        name = f"{job.pk}-{secrets.token_hex(8)}-{request.file_name}"
        path = export_dir() / name
        partial = path.with_suffix(path.suffix + ".part")

        def progress(done):
            ExportJob.objects.filter(pk=job.pk).update(rows_done=min(done, total))

        with open(partial, "wb") as fh:
            exports.write(request, fh, progress=progress)
        partial.rename(path)
    except Exception as exc:
        log.exception("Export job %s failed", job_id)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=str(exc)[:300], finished_at=timezone.now()
        )
        return "failed"
    finished = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.DONE,
        rows_done=total,
        file_name=name,
        finished_at=finished,
        expires_at=finished + datetime.timedelta(hours=EXPORT_HOURS),
    )
    audit(None, "export.build", job, practice=job.practice, actor=job.requested_by, kind=job.kind, rows=total)
    remove_expired_files(finished)
    return "done"


def enqueue(job):
    """Ask a worker to build the job's file (an outbox row in the caller's transaction)."""
    return outbox.enqueue("export", f"export:{job.pk}", payload={"export_job": job.pk}, practice=job.practice)
