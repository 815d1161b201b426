"""Exports a practice admin hands to auditors, payers and researchers.

Four kinds (answers, scores, completion, codebook) in two formats (CSV, XLSX), filtered by the
date an assignment was sent and by counselor, optionally de-identified. Rows come straight from
`values_list(...).iterator()`, so a file of any size is written with constant memory: CSV is
streamed to the browser, XLSX is written by openpyxl's write-only workbook. Safety answers are
never exported. docs/exports.md describes every column.
"""

import csv
import datetime
import hashlib
import hmac
import io
import re
import secrets
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import CharField, Count, F, Func, Q
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from practice.formats import (
    CSV_CONTENT_TYPE,
    EARLIEST_DATE,
    LATEST_DATE,
    XLSX_CONTENT_TYPE,
    spreadsheet_safe,
    utc_iso,
)

from . import codebook, scoring
from .models import Answer, Assignment, Instrument, Response, Score

KINDS = ("answers", "scores", "completion", "codebook")
FORMATS = ("csv", "xlsx")
CHUNK = 2000
# Assignments fetched per query when streaming (about 11,000 answer rows at 55 items a response).
ASSIGNMENT_BATCH = 100
ASSIGNMENT_FIELD = {
    "answers": "response__assignment_id",
    "scores": "response__assignment_id",
    "completion": "assignment_id",
}
ANSWER_FIELDS = (
    "response__assignment_id",
    "response__assignment__couple_id",
    "response__partner__position",
    "item__instrument__version",
    "item__code",
    "value",
)
# utc_iso() in SQL: ISO 8601 in UTC to the second.
UTC_ISO_SQL = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
# _text() in SQL, over a typed name: line breaks become one space, then a leading formula
# character gets a quote in front (chr(9) is a tab, chr(39) the quote; no carriage return is left).
_ONE_LINE_SQL = "regexp_replace(%(expressions)s, '[\\r\\n]+', ' ', 'g')"
TEXT_SQL = (
    f"CASE WHEN left({_ONE_LINE_SQL}, 1) IN ('=', '+', '-', '@', chr(9)) "
    f"THEN chr(39) || {_ONE_LINE_SQL} ELSE {_ONE_LINE_SQL} END"
)
# Partner.full_name in SQL (first and last name, without the space when there is no last name).
FULL_NAME_SQL = "btrim(concat_ws(' ', %(expressions)s), ' ')"
DOMAIN_COLUMNS = (*scoring.COUPLE_DOMAINS, scoring.OUTLOOK_DOMAIN, scoring.PERSONAL_DOMAIN)
COLUMNS = {
    "answers": ("assignment_id", "couple_id", "partner", "instrument_version", "item_id", "value", "answered_at"),
    "scores": (
        "assignment_id",
        "couple_id",
        "partner",
        "instrument_version",
        "language",
        "submitted_at",
        *DOMAIN_COLUMNS,
        "connection_index",
        "attunement",
    ),
    "completion": (
        "assignment_id",
        "couple_id",
        "partner",
        "counselor",
        "instrument_version",
        "assignment_status",
        "assigned_at",
        "due_at",
        "started_at",
        "submitted_at",
        "reminders_sent",
    ),
    "codebook": codebook.COLUMNS,
}
# Identified files also name the couple (after couple_id) and the partner (after partner);
# de-identified files never do.
IDENTITY_COLUMNS = {"couple_id": "couple_label", "partner": "partner_name"}
IDENTIFIED_COLUMNS = {
    kind: tuple(c for column in columns for c in (column, IDENTITY_COLUMNS.get(column)) if c)
    if kind != "codebook"
    else columns
    for kind, columns in COLUMNS.items()
}
# XLSX column widths (in characters) by the kind of value a column holds; others fit their header.
WIDE_COLUMNS = {"couple_label": 24, "partner_name": 22, "counselor": 28, "text": 60, "section": 24}
TIME_COLUMNS = {"answered_at", "submitted_at", "assigned_at", "due_at", "started_at"}


class ExportError(ValueError):
    """A request that cannot be exported (unknown kind or format, bad dates, wrong practice)."""


class Pseudonyms:
    """Stable pseudonyms for one export: HMAC-SHA256 of the id under a random per-export key.

    The same id always gets the same pseudonym within one export, and nothing links it to the
    id or to the pseudonym in any other export, because the key is thrown away.
    """

    def __init__(self, key=None):
        self.key = key or secrets.token_bytes(32)

    def __call__(self, prefix, value):
        if value is None or value == "":
            return ""
        mac = hmac.new(self.key, f"{prefix}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{prefix}-{mac[:12]}"


def _day(value):
    # De-identified files keep the day only: a timestamp to the second can single a person out.
    if value is None:
        return ""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d")


def _memo(format_time):
    """format_time, remembering the last value: answers saved together share one timestamp."""
    last = [object(), ""]

    def formatted(value):
        if value != last[0]:
            last[0], last[1] = value, format_time(value)
        return last[1]

    return formatted


def _num(value):
    return "" if value is None else value


def _score(value):
    """A score or percentage as every page shows it: a whole number, half up (scoring.whole)."""
    return "" if value is None else scoring.whole(value)


def _text(value):
    """A name someone typed, on one line and never run as a formula (TEXT_SQL is the same in SQL)."""
    return spreadsheet_safe(re.sub(r"[\r\n]+", " ", value or ""))


def _full_name(first, last):
    return _text(f"{first} {last}".strip(" "))


def _local(tz):
    """An aware datetime as the practice's wall-clock time to the second, for a spreadsheet (which
    has no time zones)."""

    def local(value):
        return None if value is None else value.astimezone(tz).replace(tzinfo=None, microsecond=0)

    return local


def _local_day(tz):
    def day(value):
        return None if value is None else value.astimezone(tz).date()

    return day


@dataclass
class ExportRequest:
    """What to export. validate() raises ExportError with a message a person can act on."""

    practice: object
    kind: str
    format: str = "csv"
    start: datetime.date | None = None
    end: datetime.date | None = None
    counselor: object = None
    deidentified: bool = False
    pseudonyms: Pseudonyms = field(default_factory=Pseudonyms)

    def validate(self):
        if self.practice is None:
            raise ExportError("No practice given.")
        if self.kind not in KINDS:
            raise ExportError(f"Unknown export {self.kind!r}: choose one of {', '.join(KINDS)}.")
        if self.format not in FORMATS:
            raise ExportError(f"Unknown format {self.format!r}: choose csv or xlsx.")
        for day in (self.start, self.end):
            if day is not None and not EARLIEST_DATE <= day <= LATEST_DATE:
                raise ExportError(f"Choose dates from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}.")
        if self.start and self.end and self.end < self.start:
            raise ExportError("The end date is before the start date.")
        if self.counselor is not None:
            membership = getattr(self.counselor, "membership", None)
            if membership is None or membership.practice_id != self.practice.pk:
                raise ExportError("That counselor is not in this practice.")
        return self

    @property
    def columns(self):
        return (COLUMNS if self.deidentified else IDENTIFIED_COLUMNS)[self.kind]

    @property
    def file_name(self):
        today = timezone.localdate()
        suffix = "-deidentified" if self.deidentified else ""
        return f"{self.practice.slug}-{self.kind}{suffix}-{today:%Y%m%d}.{self.format}"

    @property
    def params(self):
        """JSON-safe description, for ExportJob.params and the audit log."""
        return {
            "kind": self.kind,
            "format": self.format,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "counselor": self.counselor.pk if self.counselor is not None else None,
            "deidentified": self.deidentified,
        }

    # --- Querysets ----------------------------------------------------------------------

    def _assignment_filter(self, prefix):
        """Practice, date range (the practice's calendar days) and counselor, on assignments."""
        q = Q(**{f"{prefix}couple__practice": self.practice})
        tz = self.practice.tz
        if self.start:
            q &= Q(**{f"{prefix}assigned_at__gte": datetime.datetime.combine(self.start, datetime.time(), tz)})
        if self.end:
            after = self.end + datetime.timedelta(days=1)
            q &= Q(**{f"{prefix}assigned_at__lt": datetime.datetime.combine(after, datetime.time(), tz)})
        if self.counselor is not None:
            q &= Q(**{f"{prefix}couple__counselor": self.counselor})
        return q

    def _answers(self):
        # Answers of submitted responses only (a draft is not yet the partner's answer), and
        # never a safety item.
        return Answer.objects.filter(
            self._assignment_filter("response__assignment__"),
            response__submitted_at__isnull=False,
            item__safety_code="",
        ).order_by("response__assignment_id", "response__partner__position", "item__position")

    def _identity(self, response):
        """The couple's label and the partner's names, last in each row; nothing when de-identified."""
        if self.deidentified:
            return ()
        return (
            f"{response}assignment__couple__label",
            f"{response}partner__first_name",
            f"{response}partner__last_name",
        )

    def queryset(self):
        if self.kind == "answers":
            return self._answers().values_list(*ANSWER_FIELDS, "updated_at", *self._identity("response__"))
        if self.kind == "scores":
            return (
                Score.objects.filter(self._assignment_filter("response__assignment__"))
                .order_by("response__assignment_id", "response__partner__position")
                .values_list(
                    "response__assignment_id",
                    "response__assignment__couple_id",
                    "response__partner__position",
                    "instrument_version",
                    "response__language",
                    "response__submitted_at",
                    "domains",
                    "connection_index",
                    "attunement",
                    *self._identity("response__"),
                )
            )
        if self.kind == "completion":
            return (
                Response.objects.filter(self._assignment_filter("assignment__"))
                .annotate(reminders_sent=Count("reminders", filter=Q(reminders__status="sent")))
                .order_by("assignment_id", "partner__position")
                .values_list(
                    "assignment_id",
                    "assignment__couple_id",
                    "partner__position",
                    "assignment__couple__counselor__email",
                    "assignment__instrument__version",
                    "assignment__status",
                    "assignment__assigned_at",
                    "assignment__due_at",
                    "started_at",
                    "submitted_at",
                    "reminders_sent",
                    *self._identity(""),
                )
            )
        return None

    def copy_sql(self):
        """(sql, params) of a COPY that writes the identified answers CSV's rows, byte for byte as
        rows() would, on PostgreSQL; None where that path does not apply."""
        if self.kind != "answers" or self.deidentified or connection.vendor != "postgresql":
            return None
        answered = Func(F("updated_at"), template=UTC_ISO_SQL, output_field=CharField())
        label = Func(F("response__assignment__couple__label"), template=TEXT_SQL, output_field=CharField())
        full_name = Func(
            F("response__partner__first_name"),
            F("response__partner__last_name"),
            template=FULL_NAME_SQL,
            output_field=CharField(),
        )
        name = Func(full_name, template=TEXT_SQL, output_field=CharField())
        assignment, couple, partner, *rest = ANSWER_FIELDS
        queryset = (
            self._answers()
            .annotate(answered=answered, couple_label=label, partner_name=name)
            .values_list(assignment, couple, "couple_label", partner, "partner_name", *rest, "answered")
        )
        sql, params = queryset.query.sql_with_params()
        return f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params

    def count_up_to(self, limit):
        """The number of rows, counted no further than ``limit`` + 1 (enough to choose inline or
        background without counting a whole practice before the first byte)."""
        if self.kind == "codebook":
            return self.count()
        return self.queryset()[: limit + 1].count()

    def count(self):
        if self.kind == "codebook":
            instrument = Instrument.current()
            return instrument.items.count() if instrument else 0
        return self.queryset().count()

    def batched(self):
        """The queryset's rows in its order, fetched a batch of assignments at a time.

        One ordered query over a whole practice sorts every row before the first comes back (and
        on PostgreSQL outside a transaction Django's server-side cursor is WITH HOLD, which
        materialises the whole result first). Keyset batches of assignment ids keep each sort
        small, the first row quick and memory flat; the order is the same.
        """
        queryset = self.queryset()
        ids = Assignment.objects.filter(self._assignment_filter("")).order_by("pk").values_list("pk", flat=True)
        last = 0
        while True:
            batch = list(ids.filter(pk__gt=last)[:ASSIGNMENT_BATCH])
            if not batch:
                return
            yield from queryset.filter(**{f"{ASSIGNMENT_FIELD[self.kind]}__in": batch})
            last = batch[-1]

    # --- Rows -----------------------------------------------------------------------------

    def rows(self, *, typed=False):
        """The data rows (no header): lists of str, int or "" for empty.

        With ``typed`` (the XLSX), times are the practice's wall-clock datetimes (days when
        de-identified) instead of the CSV's UTC text.
        """
        if self.kind == "codebook":
            instrument = Instrument.current()
            if instrument is not None:
                for row in codebook.rows(instrument):
                    yield [row[c] for c in codebook.COLUMNS]
            return
        deid = self.deidentified
        if typed:
            tz = self.practice.tz
            when = _memo(_local_day(tz) if deid else _local(tz))
        else:
            when = _memo(_day if deid else utc_iso)
        label_text = _memo(_text)
        name_text = _memo(lambda names: _full_name(*names))
        pseudo = self.pseudonyms
        assignment_pseudonym = _memo(lambda v: pseudo("asg", v))
        couple_pseudonym = _memo(lambda v: pseudo("cpl", v))

        def ids(assignment_id, couple_id, partner, identity):
            """The first columns: ids (or pseudonyms), with the couple's and partner's names when identified."""
            if deid:
                return assignment_pseudonym(assignment_id), couple_pseudonym(couple_id), partner
            label, first, last = identity
            return assignment_id, couple_id, label_text(label), partner, name_text((first, last))

        values_iter = self.batched()
        if self.kind == "answers" and not deid:
            # The hot path of the largest export: one tuple per row, nothing else allocated.
            for assignment_id, couple_id, partner, version, code, value, at, label, first, last in values_iter:
                yield (
                    assignment_id,
                    couple_id,
                    label_text(label),
                    partner,
                    name_text((first, last)),
                    version,
                    code,
                    "" if value is None else value,
                    when(at),
                )
            return
        for values in values_iter:
            if self.kind == "answers":
                assignment_id, couple_id, partner, version, code, value, at, *identity = values
                yield [*ids(assignment_id, couple_id, partner, identity), version, code, _num(value), when(at)]
            elif self.kind == "scores":
                assignment_id, couple_id, partner, version, language, submitted, domains, index, tune, *identity = (
                    values
                )
                domains = domains or {}
                yield [
                    *ids(assignment_id, couple_id, partner, identity),
                    version,
                    language,
                    when(submitted),
                    *(_score(domains.get(key)) for key in DOMAIN_COLUMNS),
                    _score(index),
                    _score(tune),
                ]
            else:
                assignment_id, couple_id, partner, counselor, version, status, *rest = values
                times, reminders, identity = rest[:4], rest[4], rest[5:]
                counselor = pseudo("csl", counselor) if deid else spreadsheet_safe(counselor)
                yield [
                    *ids(assignment_id, couple_id, partner, identity),
                    counselor,
                    version,
                    status,
                    *(when(t) for t in times),
                    reminders,
                ]


def _copied_chunks(copy_sql):
    """The rows PostgreSQL's COPY streams, with the CSV's CRLF line ends (no field holds a newline:
    ids, codes, small integers and timestamps only)."""
    sql, params = copy_sql
    with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
        for data in copy:
            yield bytes(data).replace(b"\n", b"\r\n")


def csv_chunks(request, *, progress=None, rows_per_chunk=500):
    """The CSV as a sequence of UTF-8 byte strings: the header, then rows in small batches.

    The identified answers export on PostgreSQL, by far the largest, comes straight from COPY.
    """
    copy_sql = request.copy_sql() if progress is None else None
    if copy_sql is not None:
        yield (",".join(request.columns) + "\r\n").encode()
        yield from _copied_chunks(copy_sql)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(request.columns)
    done = 0
    # csv writes a float with repr(), the shortest text that reads back as the same number.
    for row in request.rows():
        writer.writerow(row)
        done += 1
        if done % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if progress is not None:
                progress(done)
    yield buffer.getvalue().encode()
    if progress is not None:
        progress(done)


def write_csv(request, fh, *, progress=None):
    for chunk in csv_chunks(request, progress=progress):
        fh.write(chunk)


def _width(column):
    if column in WIDE_COLUMNS:
        return WIDE_COLUMNS[column]
    if column in TIME_COLUMNS:
        return 20
    return max(10, len(column) + 2)


def write_xlsx(request, fh, *, progress=None, every=1000):
    """Write an XLSX workbook with openpyxl's write-only (streaming) mode to a binary file.

    The header row is bold and frozen, columns are sized for what they hold, and times are real
    date cells (the practice's wall-clock time) with a date format, so a spreadsheet sorts them.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(request.kind)
    sheet.freeze_panes = "A2"
    for number, column in enumerate(request.columns, 1):
        sheet.column_dimensions[get_column_letter(number)].width = _width(column)
    bold = Font(bold=True)
    header = []
    for column in request.columns:
        cell = WriteOnlyCell(sheet, value=column)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    done = 0
    for row in request.rows(typed=True):
        sheet.append([None if v == "" else v for v in row])
        done += 1
        if progress is not None and done % every == 0:
            progress(done)
    workbook.save(fh)
    if progress is not None:
        progress(done)
    return done


def write(request, fh, *, progress=None):
    if request.format == "xlsx":
        return write_xlsx(request, fh, progress=progress)
    return write_csv(request, fh, progress=progress)


CONTENT_TYPES = {"csv": CSV_CONTENT_TYPE, "xlsx": XLSX_CONTENT_TYPE}


def couple_record(couple, *, include_safety):
    """Everything stored about one couple, as one JSON-ready dict (before the couple is deleted).

    Safety answers and levels, and the counselor's notes, are included only for the couple's own
    counselor: they reach nobody else.
    """
    partners = list(couple.partners.all())
    record = {
        "couple": {
            "id": couple.pk,
            "label": couple.label,
            "status": couple.status,
            "counselor": couple.counselor.email,
            "notes": couple.notes if include_safety else None,
            "created_at": utc_iso(couple.created_at),
        },
        "partners": [
            {"position": p.position, "first_name": p.first_name, "last_name": p.last_name, "email": p.email}
            for p in partners
        ],
        "assignments": [],
        "safety_answers_included": include_safety,
    }
    assignments = couple.assignments.select_related("instrument").prefetch_related(
        "responses__partner", "responses__answers__item", "responses__reminders"
    )
    for assignment in assignments.order_by("assigned_at"):
        responses = []
        for response in sorted(assignment.responses.all(), key=lambda r: r.partner.position):
            answers = sorted(response.answers.all(), key=lambda a: a.item.position)
            score = Score.objects.filter(response=response).first()
            responses.append(
                {
                    "partner": response.partner.position,
                    "started_at": utc_iso(response.started_at),
                    "submitted_at": utc_iso(response.submitted_at),
                    "share_consent": response.share_consent,
                    "safety_level": response.safety_level if include_safety else None,
                    "answers": [
                        {"item_id": a.item.code, "value": a.value, "answered_at": utc_iso(a.updated_at)}
                        for a in answers
                        if include_safety or not a.item.safety_code
                    ],
                    "scores": None
                    if score is None
                    else {
                        "domains": score.domains,
                        "connection_index": score.connection_index,
                        "attunement": score.attunement,
                        "scoring_version": score.scoring_version,
                    },
                    "reminders": [
                        {"kind": r.kind, "status": r.status, "sent_at": utc_iso(r.sent_at)}
                        for r in response.reminders.all()
                    ],
                }
            )
        record["assignments"].append(
            {
                "id": assignment.pk,
                "instrument": assignment.instrument.label,
                "status": assignment.status,
                "assigned_at": utc_iso(assignment.assigned_at),
                "due_at": utc_iso(assignment.due_at),
                "completed_at": utc_iso(assignment.completed_at),
                "responses": responses,
            }
        )
    return record
