"""The practice admin's reports: statistics, exports (inline or built in the background), the
codebook and a couple's full record. Every one of them is audited."""

import json
import tempfile

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from clients.access import practice_couple
from practice.access import StaffRequest, admin_required
from practice.formats import attachment
from practice.models import audit

from .. import codebook, export_jobs, exports
from ..forms import ExportForm, PeriodForm
from ..models import ExportJob, Instrument
from ..stats import practice_statistics


def _practice_job(request: StaffRequest, pk):
    return get_object_or_404(ExportJob.objects.for_practice(request.practice).select_related("requested_by"), pk=pk)


@admin_required
def statistics(request: StaffRequest):
    form = PeriodForm(request.GET or None)
    start, end = form.period()
    rows, total = practice_statistics(request.practice, start, end)
    audit(request, "statistics.view", None, start=start.isoformat(), end=end.isoformat())
    # One chart row per counselor and one for the practice: a label line above its bar, 34 units apart.
    chart = [(row, 34 * i) for i, row in enumerate([*rows, total])]
    context = {"form": form, "rows": rows, "total": total, "start": start, "end": end}
    return render(request, "practice/statistics.html", {**context, "chart": chart, "chart_height": 34 * len(chart)})


def _export_request(request, form):
    data = form.cleaned_data
    return exports.ExportRequest(
        practice=request.practice,
        kind=data["kind"],
        format=data["format"],
        start=data.get("start"),
        end=data.get("end"),
        counselor=data.get("counselor"),
        deidentified=bool(data.get("deidentified")),
    ).validate()


def export_response(export):
    """The file in the response: CSV streamed row by row, XLSX through a temporary file."""
    if export.format == "csv":
        response = StreamingHttpResponse(exports.csv_chunks(export), content_type=exports.CONTENT_TYPES["csv"])
        return attachment(response, export.file_name)
    fh = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it when sent
    exports.write_xlsx(export, fh)
    fh.seek(0)
    return FileResponse(fh, as_attachment=True, filename=export.file_name, content_type=exports.CONTENT_TYPES["xlsx"])


@admin_required
def export_page(request: StaffRequest):
    """Choose an export. Small ones download at once; large ones are built in the background."""
    form = ExportForm(request.POST or None, practice=request.practice)
    if request.method == "POST" and form.is_valid():
        try:
            export = _export_request(request, form)
        except exports.ExportError as exc:
            form.add_error(None, str(exc))
        else:
            rows = export.count_up_to(settings.EXPORT_INLINE_MAX_ROWS)
            if rows > settings.EXPORT_INLINE_MAX_ROWS:
                rows = export.count()  # the progress page needs the whole number; the file waits anyway
                with transaction.atomic():
                    job = ExportJob.objects.create(
                        practice=request.practice,
                        requested_by=request.user,
                        kind=export.kind,
                        format=export.format,
                        params=export.params,
                        rows_total=rows,
                    )
                    audit(request, "export.queue", job, rows=rows, **export.params)
                    export_jobs.enqueue(job)
                return redirect("assessments:export_job", pk=job.pk)
            audit(request, "export.download", None, rows=rows, **export.params)
            return export_response(export)
    jobs = ExportJob.objects.filter(practice=request.practice).select_related("requested_by").order_by("-created_at")
    status = 400 if form.errors else 200
    return render(request, "practice/exports.html", {"form": form, "jobs": jobs[:10]}, status=status)


@admin_required
def export_job(request: StaffRequest, pk):
    """Progress of a background export; htmx polls the status part every two seconds."""
    job = _practice_job(request, pk)
    template = "practice/export_job.html#status" if request.htmx else "practice/export_job.html"
    return render(request, template, {"job": job, "now": timezone.now()})


@admin_required
def export_file(request: StaffRequest, pk):
    job = _practice_job(request, pk)
    path = export_jobs.job_path(job)
    expired = job.expires_at is None or job.expires_at <= timezone.now()
    if job.status != ExportJob.Status.DONE or expired or path is None or not path.exists():
        problem = (
            "This download link has expired (files are kept for 24 hours). Start the export again."
            if job.status == ExportJob.Status.DONE
            else "This export is not ready."
        )
        return render(request, "practice/export_gone.html", {"job": job, "problem": problem}, status=410)
    audit(request, "export.download", job, rows=job.rows_total, **job.params)
    name = path.name.split("-", 2)[2]
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=name,
        content_type=exports.CONTENT_TYPES.get(job.format),
    )


@admin_required
def codebook_download(request: StaffRequest):
    instrument = Instrument.current()
    if instrument is None:
        return render(request, "404.html", status=404)
    fmt = "json" if request.GET.get("format") == "json" else "csv"
    audit(request, "export.codebook", instrument, format=fmt)
    if fmt == "json":
        response = HttpResponse(codebook.as_json(instrument), content_type="application/json; charset=utf-8")
    else:
        response = HttpResponse(codebook.as_csv(instrument), content_type=exports.CONTENT_TYPES["csv"])
    return attachment(response, f"{instrument.label}-codebook.{fmt}")


@admin_required
def couple_record(request: StaffRequest, pk):
    """The couple's full record as JSON, for a data request or before deletion (audited)."""
    couple = practice_couple(request, pk)
    include_safety = couple.counselor_id == request.user.pk
    record = exports.couple_record(couple, include_safety=include_safety)
    audit(request, "couple.export", couple, safety_included=include_safety)
    response = HttpResponse(
        json.dumps(record, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="couple-{couple.pk}-record.json"'
    return response
