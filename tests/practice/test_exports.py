"""Exports on the page and on the command line: columns, privacy, filters, formats, bad input."""

import io
from datetime import UTC, date, datetime, timedelta

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from assessments import exports
from assessments.models import ExportJob, Score
from practice.models import AuditEvent, Job
from tests.conftest import COUPLE_DOMAINS, client_for, make_couple, page_text
from tests.practice.export_helpers import completed_assignment, read_csv, streamed

pytestmark = pytest.mark.smoke

WHO = ["assignment_id", "couple_id", "couple_label", "partner", "partner_name"]
ANSWERS = [*WHO, "instrument_version", "item_id", "value", "answered_at"]
DOMAINS = [*COUPLE_DOMAINS, "outlook", "personal_skills"]
# language: the one each response was answered in (its item texts; scores never depend on it).
SCORES = [*WHO, "instrument_version", "language", "submitted_at", *DOMAINS, "connection_index", "attunement"]
DEIDENTIFIED_SCORES = [c for c in SCORES if c not in ("couple_label", "partner_name")]


@pytest.fixture
def data(world):
    world.assignment = completed_assignment(world.couple, skip=("COM1",))
    world.other_couple = make_couple(world.colleague, label="Lee & Kim", a=("Lee", "lee@x.example"))
    completed_assignment(world.other_couple)
    return world


def export(client, **fields):
    return client.post(reverse("assessments:exports"), {"format": "csv", **fields})


def test_answers_export_is_long_with_the_documented_columns_and_no_safety_items(data):
    response = export(client_for(data.admin), kind="answers")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(streamed(response))
    assert rows[0] == ANSWERS
    items = {r[6] for r in rows[1:]}
    assert "COM1" in items and not any(code.startswith("SAF") for code in items)
    assert {r[3] for r in rows[1:]} == {"A", "B"}
    skipped = [r for r in rows[1:] if r[6] == "COM1" and r[0] == str(data.assignment.pk)]
    assert [r[7] for r in skipped] == ["", ""]  # "prefer not to answer" is empty, never 0
    # The identified file says whose answers they are.
    assert {(r[2], r[4]) for r in rows[1:] if r[0] == str(data.assignment.pk)} == {
        (data.couple.label, p.full_name) for p in data.couple.partners.all()
    }
    assert len(rows) - 1 == 4 * 48  # two couples, two partners, 55 items less the 7 safety items


def test_scores_export_is_wide_with_one_row_per_response(data):
    rows = read_csv(streamed(export(client_for(data.admin), kind="scores")))
    assert rows[0] == SCORES
    assert len(rows) == 5
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["partner"] == "A" and float(first["friendship"]) == 75.0
    assert float(first["connection_index"]) == 75.0 and float(first["attunement"]) >= 0


def test_completion_export_has_one_row_per_response_with_counselor_and_dates(data):
    rows = read_csv(streamed(export(client_for(data.admin), kind="completion")))
    header = rows[0]
    assert header[:6] == [*WHO, "counselor"]
    assert {"assigned_at", "due_at", "started_at", "submitted_at", "reminders_sent"} <= set(header)
    assert len(rows) == 5
    counselors = {dict(zip(header, r, strict=True))["counselor"] for r in rows[1:]}
    assert counselors == {data.owner.email, data.colleague.email}


def test_counselor_filter_keeps_only_that_counselors_couples(data):
    rows = read_csv(streamed(export(client_for(data.admin), kind="scores", counselor=data.owner.pk)))
    assert {r[1] for r in rows[1:]} == {str(data.couple.pk)}


def test_date_range_filter_uses_the_day_the_assessment_was_sent(data):
    old = completed_assignment(data.couple, now=timezone.now() - timedelta(days=40))
    start = (timezone.localdate() - timedelta(days=45)).isoformat()
    end = (timezone.localdate() - timedelta(days=35)).isoformat()
    rows = read_csv(streamed(export(client_for(data.admin), kind="scores", start=start, end=end)))
    assert {r[0] for r in rows[1:]} == {str(old.pk)}


def test_deidentified_export_has_stable_pseudonyms_and_no_names_or_emails(data):
    body = streamed(export(client_for(data.admin), kind="completion", deidentified="on")).decode()
    rows = read_csv(body)
    assert data.owner.email not in body and data.colleague.email not in body
    assert "couple_label" not in rows[0] and "partner_name" not in rows[0]
    for name in (data.couple.label, *(p.first_name for p in data.couple.partners.all())):
        assert name not in body
    ids = {r[0] for r in rows[1:]}
    assert all(i.startswith("asg-") for i in ids) and len(ids) == 2
    # Both partners of one assignment share its pseudonym; times are cut to the day.
    assert rows[1][0] == rows[2][0] and rows[1][3].startswith("csl-")
    assert len(dict(zip(rows[0], rows[1], strict=True))["assigned_at"]) == 10


def test_pseudonyms_differ_between_two_exports(data):
    client = client_for(data.admin)
    first = read_csv(streamed(export(client, kind="scores", deidentified="on")))
    second = read_csv(streamed(export(client, kind="scores", deidentified="on")))
    assert first[1][0] != second[1][0]
    assert [r[5:] for r in first] == [r[5:] for r in second]


def test_xlsx_export_opens_in_openpyxl_with_the_same_rows_as_the_csv(data):
    client = client_for(data.admin)
    csv_rows = read_csv(streamed(export(client, kind="answers")))
    response = export(client, kind="answers", format="xlsx")
    assert response["Content-Disposition"].endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    xlsx_rows = [["" if v is None else str(v) for v in row] for row in book.active.iter_rows(values_only=True)]
    # The same rows, except that the time is a date cell in the practice's time zone, not UTC text.
    assert [row[:-1] for row in xlsx_rows] == [row[:-1] for row in csv_rows]
    tz = data.practice.tz
    for xlsx_row, csv_row in zip(xlsx_rows[1:], csv_rows[1:], strict=True):
        utc = datetime.strptime(csv_row[-1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert xlsx_row[-1] == str(utc.astimezone(tz).replace(tzinfo=None))


def test_xlsx_times_are_date_cells_under_a_frozen_header_in_sized_columns(data):
    client = client_for(data.admin)
    for deidentified in (False, True):
        fields = {"deidentified": "on"} if deidentified else {}
        response = export(client, kind="completion", format="xlsx", **fields)
        sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
        assert sheet.freeze_panes == "A2"
        header = [cell.value for cell in sheet[1]]
        assert all(cell.font.bold for cell in sheet[1])
        assigned = sheet.cell(row=2, column=header.index("assigned_at") + 1)
        assert assigned.is_date and isinstance(assigned.value, datetime)
        assert "yy" in assigned.number_format and "d" in assigned.number_format
        # A de-identified file keeps the day only, and says so in its format.
        assert ("h" in assigned.number_format) is not deidentified
        widths = {column: sheet.column_dimensions[chr(ord("A") + i)].width for i, column in enumerate(header)}
        assert widths["assigned_at"] >= 19 and widths["counselor"] >= 24
        if not deidentified:
            assert widths["couple_label"] >= 20 and widths["partner_name"] >= 20
            local = data.assignment.assigned_at.astimezone(data.practice.tz).replace(tzinfo=None, microsecond=0)
            first = next(r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == data.assignment.pk)
            assert first[header.index("assigned_at")] == local


def test_scores_and_percentages_are_whole_numbers_rounded_as_the_pages_round_them(data):
    score = Score.objects.filter(response__assignment=data.assignment).order_by("response__partner__position")[0]
    score.domains = {**score.domains, "friendship": 200 / 3, "communication": 52.5}
    score.connection_index, score.attunement = 66.66666666666667, 87.5
    score.save(update_fields=["domains", "connection_index", "attunement"])
    for fmt in ("csv", "xlsx"):
        response = export(client_for(data.admin), kind="scores", format=fmt)
        if fmt == "csv":
            body = streamed(response).decode()
            assert "66.6" not in body and "52.5" not in body
            rows = read_csv(body)
        else:
            sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
            rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        first = dict(zip(rows[0], rows[1], strict=True))
        assert (first["friendship"], first["communication"]) == ("67", "53"), fmt  # half up, like scoring.whole
        assert (first["connection_index"], first["attunement"]) == ("67", "88"), fmt


def test_every_export_is_audited_without_answer_content(data):
    export(client_for(data.admin), kind="answers", counselor=data.owner.pk)
    event = AuditEvent.objects.get(action="export.download")
    assert event.actor == data.admin and event.practice == data.practice
    assert event.detail["kind"] == "answers" and event.detail["counselor"] == data.owner.pk
    assert "value" not in event.detail


def test_end_before_start_is_a_clear_error_and_nothing_is_exported(data):
    response = export(client_for(data.admin), kind="answers", start="2026-03-01", end="2026-02-01")
    assert response.status_code == 400
    assert "The end date is before the start date" in page_text(response)
    assert not AuditEvent.objects.filter(action="export.download").exists()


@pytest.mark.parametrize("fields", [{"format": "pdf"}, {"kind": "everything"}])
def test_unknown_format_or_kind_is_a_form_error(data, fields):
    response = export(client_for(data.admin), **{"kind": "answers", **fields})
    assert response.status_code == 400
    assert "Select a valid choice" in page_text(response)


def test_counselor_of_another_practice_cannot_be_chosen(data):
    response = export(client_for(data.admin), kind="answers", counselor=data.outsider.pk)
    assert response.status_code == 400


def test_outsider_admin_gets_only_their_own_practice(data):
    rows = read_csv(streamed(export(client_for(data.outsider_admin), kind="scores")))
    assert rows == [SCORES]
    rows = read_csv(streamed(export(client_for(data.outsider_admin), kind="scores", deidentified="on")))
    assert rows == [DEIDENTIFIED_SCORES]


@pytest.mark.parametrize("who", ["owner", "colleague"])
def test_counselors_cannot_export(data, who):
    assert export(client_for(getattr(data, who)), kind="answers").status_code == 403


def test_large_export_becomes_a_background_job_with_a_progress_page(data, settings):
    settings.EXPORT_INLINE_MAX_ROWS = 10
    response = export(client_for(data.admin), kind="answers")
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("assessments:export_job", args=[job.pk])
    assert Job.objects.get(kind="export").payload == {"export_job": job.pk}  # a worker builds it
    assert job.rows_total == 4 * 48 and job.status == "queued"
    page = client_for(data.admin).get(response["Location"])
    assert 'hx-trigger="every 2s"' in page.content.decode()
    assert client_for(data.outsider_admin).get(response["Location"]).status_code == 404


def test_export_job_status_partial_is_small_and_pinned(data, django_assert_num_queries):
    from assessments.models import ExportJob as Job

    job = Job.objects.create(practice=data.practice, requested_by=data.admin, kind="answers", format="csv")
    client = client_for(data.admin)
    # session, user + membership + practice, the job, and the session save (savepoint, update, release)
    with django_assert_num_queries(6):
        response = client.get(reverse("assessments:export_job", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "<html" not in response.content.decode() and "Waiting to start" in response.content.decode()


def test_expired_download_link_is_a_clear_410(data, tmp_path):
    from assessments import export_jobs

    job = ExportJob.objects.create(practice=data.practice, requested_by=data.admin, kind="answers", format="csv")
    assert export_jobs.build(job.pk) == "done"
    url = reverse("assessments:export_file", args=[job.pk])
    assert client_for(data.admin).get(url).status_code == 200
    assert client_for(data.outsider_admin).get(url).status_code == 404
    assert client_for(data.owner).get(url).status_code == 403
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    gone = client_for(data.admin).get(url)
    assert gone.status_code == 410 and "expired" in page_text(gone)
    export_jobs.remove_expired_files()
    assert ExportJob.objects.get(pk=job.pk).file_name == ""


# --- Command line -------------------------------------------------------------------------------


def run_export(*args):
    out = io.StringIO()
    call_command("export", *args, stdout=out)
    return out.getvalue()


def test_command_writes_the_same_csv_as_the_page(data):
    page = streamed(export(client_for(data.admin), kind="answers")).decode()
    assert run_export("answers", "--practice", "riverside") == page
    assert AuditEvent.objects.filter(action="export.download", actor=None, practice=data.practice).exists()


def test_command_writes_xlsx_to_a_file(data, tmp_path):
    target = tmp_path / "scores.xlsx"
    run_export("scores", "--practice", "riverside", "--format", "xlsx", "--out", str(target))
    book = openpyxl.load_workbook(target)
    rows = list(book.active.iter_rows(values_only=True))
    assert list(rows[0]) == SCORES and len(rows) == 5
    assert book.active.freeze_panes == "A2"


@pytest.mark.parametrize(
    "args, message",
    [
        (["answers", "--practice", "nowhere"], "No practice with the slug"),
        (["answers", "--practice", "riverside", "--format", "pdf"], "Unknown format"),
        (["everything", "--practice", "riverside"], "Unknown export"),
        (["answers", "--practice", "riverside", "--start", "2026-03-01", "--end", "2026-02-01"], "end date is before"),
        (["answers", "--practice", "riverside", "--start", "yesterday"], "is not a date"),
        (["answers", "--practice", "riverside", "--counselor", "outsider@elsewhere.example"], "not in this practice"),
    ],
)
def test_command_refuses_bad_input_and_writes_nothing(data, tmp_path, args, message):
    target = tmp_path / "out.csv"
    with pytest.raises(CommandError, match=message):
        run_export(*args, "--out", str(target))
    assert not target.exists()


def test_command_exits_non_zero_on_bad_input(data):
    import subprocess
    import sys

    from tests.conftest import ROOT, database_url_for_worker

    env = {**__import__("os").environ, "DATABASE_URL": database_url_for_worker()}
    result = subprocess.run(
        [sys.executable, "manage.py", "export", "answers", "--practice", "nowhere"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "No practice with the slug 'nowhere'" in result.stderr


def test_date_helpers_accept_a_single_day(data):
    today = timezone.localdate()
    rows = read_csv(run_export("scores", "--practice", "riverside", "--start", str(today), "--end", str(today)))
    assert len(rows) == 5
    assert date.fromisoformat(str(today))


def test_exports_page_lists_recent_jobs_with_a_fixed_number_of_queries(data, django_assert_num_queries):
    for kind in ("answers", "scores", "completion"):
        ExportJob.objects.create(practice=data.practice, requested_by=data.admin, kind=kind, format="csv")
    ExportJob.objects.create(practice=data.other_practice, requested_by=data.outsider_admin, kind="x", format="csv")
    client = client_for(data.admin)
    # session, user + membership + practice, counselor choices, recent jobs with who asked,
    # then the session save (savepoint, update, release)
    with django_assert_num_queries(7):
        page = page_text(client.get(reverse("assessments:exports")))
    assert page.count("· Queued") == 3


def test_the_answers_export_from_copy_is_byte_for_byte_the_row_by_row_file(data):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's; elsewhere the row-by-row path is the only one")
    today = timezone.localdate()
    for filters, couples in (({}, 2), ({"start": today, "end": today, "counselor": data.owner}, 1)):
        request = exports.ExportRequest(practice=data.practice, kind="answers", **filters).validate()
        assert request.copy_sql() is not None
        fast = b"".join(exports.csv_chunks(request))
        slow = b"".join(exports.csv_chunks(request, progress=lambda done: None))  # the row-by-row path
        assert fast == slow
        assert fast.count(b"\r\n") == 1 + couples * 2 * 48 and b",," in fast  # "prefer not to answer" stays empty


def test_the_copy_path_writes_typed_names_exactly_as_the_row_by_row_path(data):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's; elsewhere the row-by-row path is the only one")
    data.couple.label = '=HYPERLINK("x"), the "Smiths"\r\nand co'
    data.couple.save(update_fields=["label"])
    partner = data.couple.partners.get(position="A")
    partner.first_name, partner.last_name = '@Ana, "Mari"', ""
    partner.save(update_fields=["first_name", "last_name"])
    other = data.couple.partners.get(position="B")
    other.first_name, other.last_name = "-Bo", "Öst\nlund"
    other.save(update_fields=["first_name", "last_name"])
    request = exports.ExportRequest(practice=data.practice, kind="answers").validate()
    fast = b"".join(exports.csv_chunks(request))
    slow = b"".join(exports.csv_chunks(request, progress=lambda done: None))
    assert fast == slow
    rows = read_csv(fast)
    names = {(r[2], r[4]) for r in rows[1:] if r[0] == str(data.assignment.pk)}
    # One line each, and nothing a spreadsheet would run as a formula.
    assert names == {
        ('\'=HYPERLINK("x"), the "Smiths" and co', '\'@Ana, "Mari"'),
        ('\'=HYPERLINK("x"), the "Smiths" and co', "'-Bo Öst lund"),
    }


def test_choosing_inline_or_background_counts_no_further_than_the_limit(data):
    request = exports.ExportRequest(practice=data.practice, kind="answers").validate()
    assert request.count_up_to(10) == 11
    assert request.count_up_to(10_000) == request.count() == 4 * 48
