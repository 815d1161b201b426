"""The counselor's caseload: one filtered, sorted page of couples and what to show for each.

What the page filters and sorts by lives in one ``CaseloadRow`` per couple, so that its cost does
not grow with the caseload:

1. ``refresh`` recomputes the rows of some couples in one ``INSERT … SELECT … ON CONFLICT``
   statement, from correlated subqueries over the couple's administrations, scores, safety levels
   and alerts. Every workflow that changes one of those calls it in its own transaction (assign,
   cancel, a saved page, submit, a safety level, acknowledging an alert; archiving, renaming and
   moving a couple through the couple's ``post_save``); ``manage.py rebuild_caseload`` runs it for
   every couple.
2. ``caseload_queryset`` filters and sorts the counselor's rows; each sort order has its index
   (counselor, unacknowledged alert first, the sort key, label, couple), so a page is one indexed
   ``LIMIT`` query. Deep pages continue from the last couple of the page before (a keyset:
   ``?after=<couple id>``), never counting past the ones before.
3. ``attach_overview`` takes the page's rows (at most ``PAGE_SIZE``) and fetches, with two fixed
   queries, the partners and the current administration's responses with their answer counts (how
   far each partner got is read, not stored: an autosave would otherwise write twice).
"""

import datetime
import functools
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Least, Now
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils import timezone, translation
from django.utils.autoreload import file_changed

from clients.models import Couple, Partner
from practice import prepared

from . import answering, scoring, waiting
from .models import Answer, Assignment, CaseloadRow, Response, SafetyAlert, Score

PAGE_SIZE = 25
MAX_PAGE = 100_000  # beyond any caseload; keeps a tampered page number inside the database's integers

STATUS_CHOICES = [
    ("", "All active couples"),
    ("attention", "Needs attention"),
    ("overdue", "Overdue"),
    ("waiting", "Waiting for answers"),
    ("finished", "Finished"),
    ("archived", "Archived"),
]
SORT_CHOICES = [
    ("due", "Due date"),
    ("activity", "Last activity"),
    ("index", "Connection Index (lowest first)"),
]
DEFAULT_SORT = "due"
RAISED = ("concern", "urgent")
CANCELLED = Assignment.Status.CANCELLED
OPEN = Assignment.Status.OPEN
# The sort keys of a couple without an open administration or without any index: after every real one.
NO_DUE = datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC)
NO_INDEX = 1e9

# --- Computing the rows ---------------------------------------------------------------------------


def _current(field):
    """A field of the couple's current administration: the latest one not cancelled."""
    return Subquery(
        Assignment.objects.filter(couple=OuterRef("pk"))
        .exclude(status=CANCELLED)
        .order_by("-assigned_at", "-pk")
        .values(field)[:1]
    )


def _score(position, field, nth=0):
    """A field of the partner's ``nth`` latest score (0: the latest), cancelled administrations aside."""
    return Subquery(
        Score.objects.filter(response__partner__couple=OuterRef("pk"), response__partner__position=position)
        .exclude(response__assignment__status=CANCELLED)
        .order_by("-response__submitted_at", "-pk")
        .values(field)[nth : nth + 1]
    )


def _latest_safety(position):
    """The partner's most recent safety level, from the latest response that has one."""
    return Subquery(
        Response.objects.filter(partner__couple=OuterRef("pk"), partner__position=position)
        .exclude(safety_level="")
        .exclude(assignment__status=CANCELLED)
        .order_by("-assignment__assigned_at", "-pk")
        .values("safety_level")[:1]
    )


def _last_activity():
    latest_response = Subquery(
        Response.objects.filter(assignment__couple=OuterRef("pk"))
        .annotate(at=Coalesce("submitted_at", "last_saved_at"))
        .filter(at__isnull=False)
        .order_by("-at")
        .values("at")[:1]
    )
    return Coalesce(latest_response, _current("assigned_at"), F("created_at"))


def _previous(position):
    """The score before the latest, only when both versions score alike (otherwise no change is shown)."""
    key, before = f"r_key1_{position}", f"r_key2_{position}"
    return Case(
        When(Q(**{key: F(before)}) & ~Q(**{key: ""}), then=f"r_prev_{position}"),
        default=None,
        output_field=FloatField(),
    )


# Row column: the annotation computing it (in this order, the INSERT's column list).
COLUMNS = {
    "couple_id": "r_couple",
    "counselor_id": "r_counselor",
    "practice_id": "r_practice",
    "couple_status": "r_status",
    "label": "r_label",
    "current_id": "r_current",
    "current_status": "r_current_status",
    "current_due": "r_current_due",
    "index_a": "r_index_A",
    "previous_a": "r_previous_A",
    "instrument_a": "r_instrument_A",
    "index_b": "r_index_B",
    "previous_b": "r_previous_B",
    "instrument_b": "r_instrument_B",
    "safety_raised": "r_safety_raised",
    "open_alert": "r_open_alert",
    "last_activity": "r_last_activity",
    "due_key": "r_due_key",
    "index_key": "r_index_key",
    "inbox_waiting": "r_inbox_waiting",
    "inbox_overdue_after": "r_inbox_overdue_after",
    "refreshed_at": "r_refreshed_at",
}


def _source(couples):
    """The rows of ``couples`` as a values() queryset of the COLUMNS annotations."""
    per_partner = {}
    for p in "AB":
        per_partner |= {
            f"r_index_{p}": _score(p, "connection_index"),
            f"r_instrument_{p}": _score(p, "response__assignment__instrument_id"),
            f"r_key1_{p}": _score(p, "response__assignment__instrument__scoring_key"),
            f"r_prev_{p}": _score(p, "connection_index", 1),
            f"r_key2_{p}": _score(p, "response__assignment__instrument__scoring_key", 1),
            f"r_safety_{p}": _latest_safety(p),
        }
    rows = couples.annotate(
        r_couple=F("pk"),
        r_counselor=F("counselor_id"),
        r_practice=F("practice_id"),
        r_status=F("status"),
        r_label=F("label"),
        r_current=_current("pk"),
        r_current_status=Coalesce(_current("status"), Value("")),
        r_current_due=_current("due_at"),
        **per_partner,
    ).annotate(
        r_previous_A=_previous("A"),
        r_previous_B=_previous("B"),
        r_safety_raised=Case(
            When(Q(r_safety_A__in=RAISED) | Q(r_safety_B__in=RAISED), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        r_open_alert=Exists(
            SafetyAlert.objects.filter(response__assignment__couple=OuterRef("pk"), acknowledged_at__isnull=True)
        ),
        r_last_activity=_last_activity(),
        r_due_key=Case(When(r_current_status=OPEN, then="r_current_due"), default=Value(NO_DUE)),
        # Least of two nullable values: each side falls back to the other so one missing score
        # does not hide the other (SQLite's MIN() would return NULL, PostgreSQL's LEAST would not).
        r_index_key=Coalesce(
            Least(Coalesce("r_index_A", "r_index_B"), Coalesce("r_index_B", "r_index_A")),
            Value(NO_INDEX),
            output_field=FloatField(),
        ),
        r_inbox_waiting=_inbox_waiting(),
        r_inbox_overdue_after=Subquery(
            Assignment.objects.filter(couple=OuterRef("pk"))
            .filter(waiting.overdue_once_past_due())
            .order_by("due_at")
            .values("due_at")[:1]
        ),
        r_refreshed_at=Now(),
    )
    return rows.values(*COLUMNS.values())


def _inbox_waiting():
    """How many items of the kinds that stay until written the couple's administrations are (each kind counts)."""
    counts = [Count("pk", filter=condition) for condition in waiting.lasting().values()]
    per_couple = (
        Assignment.objects.filter(couple=OuterRef("pk"))
        .order_by()
        .values("couple")
        .annotate(n=sum(counts[1:], counts[0]))
        .values("n")
    )
    return Coalesce(Subquery(per_couple, output_field=IntegerField()), Value(0))


def _upsert(couples):
    table = connection.ops.quote_name(CaseloadRow._meta.db_table)
    sql, params = _source(couples).query.sql_with_params()
    names = ", ".join(COLUMNS)
    picked = ", ".join(f"s.{connection.ops.quote_name(alias)}" for alias in COLUMNS.values())
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "couple_id")
    # SQLite needs the WHERE to read ON CONFLICT as the upsert clause, not as a join's. The only
    # interpolations are the model's quoted table and column names and the ORM's own SQL.
    statement = (
        f"INSERT INTO {table} ({names}) SELECT {picked} FROM ({sql}) s WHERE true "  # noqa: S608
        f"ON CONFLICT (couple_id) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def refresh(*couple_ids):
    """Recompute the caseload rows of these couples, in the caller's transaction. One statement."""
    ids = [c for c in couple_ids if c is not None]
    if ids:
        _upsert(Couple.objects.filter(pk__in=ids))


def refresh_where(**lookups):
    """Recompute the caseload rows of the couples matching these lookups. One statement."""
    _upsert(Couple.objects.filter(**lookups))


@receiver(post_save, sender=Couple)
def couple_saved(sender, instance, raw=False, update_fields=None, **kwargs):
    """A new, renamed, archived or moved couple: its row follows in the same transaction."""
    if raw or (update_fields is not None and not ROW_FIELDS & set(update_fields)):
        return
    refresh(instance.pk)


ROW_FIELDS = {"label", "status", "counselor", "practice"}


def rebuild():
    """Recompute every couple's caseload row (``manage.py rebuild_caseload``). Returns the count."""
    return _upsert(Couple.objects.all())


# --- The page -------------------------------------------------------------------------------------

SORTS = {
    "due": (("open_alert", "desc"), ("due_key", "asc"), ("label", "asc"), ("couple_id", "asc")),
    "index": (("open_alert", "desc"), ("index_key", "asc"), ("label", "asc"), ("couple_id", "asc")),
    "activity": (("open_alert", "desc"), ("last_activity", "desc"), ("label", "asc"), ("couple_id", "asc")),
}


def _after(keys, user, couple_id):
    """The rows after the couple ``couple_id`` of this counselor in the order ``keys``.

    Written out as (k1 after) OR (k1 same AND (k2 after OR …)): the keys mix directions, so a
    row-value comparison cannot say it. The cursor's keys are read by scalar subqueries (the
    database evaluates each once); a couple not on this caseload makes them NULL, so nothing follows.
    """
    table = connection.ops.quote_name(CaseloadRow._meta.db_table)
    cursor = f"(SELECT {{col}} FROM {table} WHERE couple_id = %s AND counselor_id = %s)"  # noqa: S608
    sql, params = "", []
    for col, direction in reversed(keys):
        here = f"{table}.{col}"
        there = cursor.format(col=col)
        beyond = f"{here} {'>' if direction == 'asc' else '<'} {there}"
        if not sql:
            sql, params = beyond, [couple_id, user.pk]
        else:
            sql = f"({beyond} OR ({here} = {there} AND ({sql})))"
            params = [couple_id, user.pk, couple_id, user.pk, *params]
    # Only the model's quoted table name and its own column names are interpolated; values are parameters.
    return RawSQL(sql, params, output_field=BooleanField())  # noqa: S611


def caseload_queryset(user, *, status="", q="", sort=DEFAULT_SORT, now=None, after=None):
    """The counselor's caseload rows, filtered by status and search text, in the chosen order.

    Unknown ``status`` or ``sort`` values fall back to the defaults (all active, by due date).
    ``after`` (a couple id) starts after that couple of the same order: the keyset of deep pages.
    """
    now = now or timezone.now()
    rows = CaseloadRow.objects.filter(counselor=user, practice_id=user.membership.practice_id).annotate(
        is_overdue=Case(
            When(current_status=OPEN, current_due__lt=now, then=Value(1)), default=Value(0), output_field=IntegerField()
        ),
    )
    # A couple with a safety alert not yet marked as seen is in every list, whatever the filter.
    if status == "archived":
        rows = rows.filter(Q(couple_status=Couple.Status.ARCHIVED) | Q(open_alert=True))
    else:
        rows = rows.filter(Q(couple_status=Couple.Status.ACTIVE) | Q(open_alert=True))
    overdue = Q(current_status=OPEN, current_due__lt=now)
    if status == "attention":
        rows = rows.filter(
            Q(safety_raised=True) | overdue | Q(index_key__lt=scoring.SHOWN_BELOW_ATTENTION) | Q(open_alert=True)
        )
    elif status == "overdue":
        rows = rows.filter(overdue | Q(open_alert=True))
    elif status == "waiting":
        rows = rows.filter(Q(current_status=OPEN) | Q(open_alert=True))
    elif status == "finished":
        rows = rows.filter(Q(current_status=Assignment.Status.COMPLETED) | Q(open_alert=True))
    q = (q or "").strip()
    if q:
        named = Partner.objects.filter(couple=OuterRef("couple_id")).filter(
            Q(first_name__icontains=q) | Q(last_name__icontains=q)
        )
        rows = rows.filter(Q(label__icontains=q) | Exists(named))
    keys = SORTS.get(sort, SORTS[DEFAULT_SORT])
    # Under every order, couples with a safety alert not yet marked as seen come first.
    rows = rows.order_by(*(F(col).desc() if d == "desc" else F(col).asc() for col, d in keys))
    if after is not None:
        rows = rows.filter(_after(keys, user, after))
    return rows


@dataclass
class Page:
    """One page of the caseload; the total comes from a window count in the same query."""

    object_list: list
    number: int
    count: int
    size: int = PAGE_SIZE

    @property
    def num_pages(self):
        return max(1, -(-self.count // self.size))

    @property
    def has_previous(self):
        return self.number > 1

    @property
    def has_next(self):
        return self.number < self.num_pages

    @property
    def has_other_pages(self):
        return self.num_pages > 1

    @property
    def previous_page_number(self):
        return self.number - 1

    @property
    def next_page_number(self):
        return self.number + 1

    @property
    def last_couple(self):
        """Where the next page continues from (its keyset)."""
        return self.object_list[-1].pk if self.object_list else None


# What a page's cards and their overview read of a row (``Card``, ``attach_overview``): the sort keys,
# the inbox counts and the bookkeeping stay in the database.
PAGE_FIELDS = (
    "couple_id",
    "label",
    "open_alert",
    "safety_raised",
    "couple_status",
    "current_id",
    "current_status",
    "current_due",
    "index_a",
    "index_b",
    "previous_a",
    "previous_b",
    "instrument_a",
    "instrument_b",
)  # in PageRow's order


@dataclass(slots=True)
class PageRow:
    """One caseload row of a page: the fields its card and overview read (``PAGE_FIELDS``), plain
    values rather than a model instance (a fifth of the cost a row); ``overview`` comes after."""

    couple_id: int
    label: str
    open_alert: bool
    safety_raised: bool
    couple_status: str
    current_id: int | None
    current_status: str
    current_due: datetime.datetime | None
    index_a: float | None
    index_b: float | None
    previous_a: float | None
    previous_b: float | None
    instrument_a: int | None
    instrument_b: int | None
    is_overdue: int
    total: int
    overview: tuple = ()

    @property
    def pk(self):
        return self.couple_id


def _page_rows(rows):
    return rows.annotate(total=Window(Count("pk"))).values_list(*PAGE_FIELDS, "is_overdue", "total")


def _read(rows):
    return [PageRow(*values) for values in rows]


def page_of(rows, number, size=PAGE_SIZE, *, following=None):
    """The requested page (a malformed number is page 1, one past the end the last page).

    One query: the total rides along as ``COUNT(*) OVER ()`` on every row, so there is no
    separate count. Only a page past the end costs a second query, for the last page. With
    ``following`` (the same rows after the last couple of the page before, from the Next link:
    ``caseload_queryset(..., after=…)``) the page continues from there instead of skipping rows;
    its count is the rows from there on plus the pages before.
    """
    try:
        number = min(max(1, int(number)), MAX_PAGE)
    except (TypeError, ValueError):
        number = 1
    counted = _page_rows(rows)
    if following is not None and number > 1:
        found = _read(_page_rows(following)[:size])
        if found:
            count = (number - 1) * size + found[0].total
            return Page(object_list=found, number=number, count=count, size=size)
        # The couple it continued from has moved or gone: fall back to the page by number.
    found = _read(counted[(number - 1) * size : number * size])
    if not found and number > 1:
        count = rows.count()
        number = max(1, -(-count // size))
        found = _read(counted[(number - 1) * size : number * size])
    return Page(object_list=found, number=number, count=found[0].total if found else 0, size=size)


def cursor(value):
    """The couple id of a Next link's ``after``, or None when absent or malformed."""
    value = value or ""
    # ASCII digits only, of a size a database id can have ("²".isdigit() is true, and int() refuses it).
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def progress(response, n_items):
    """A partner's status chip and percent answered for one administration's response."""
    if response is None:
        return "not_invited", None
    if response.submitted_at is not None:
        return "finished", 100
    if response.answered == 0 and response.started_at is None:
        return "invited", 0
    return "in_progress", min(99, round(100 * response.answered / (n_items or 1)))


CHIP_LABELS = {"not_invited": "Not invited", "invited": "Invited", "in_progress": "In progress", "finished": "Finished"}


def _chip_label(chip, percent):
    return f"In progress · {percent}%" if chip == "in_progress" else CHIP_LABELS[chip]


# Rendering a card's template costs about 0.45 ms, most of a page of 25; a counselor's cards rarely
# change between two views of the caseload. The HTML is kept in this process's memory only (never in
# Redis or on disk: it holds clients' names), found by every value the card shows and by what else
# its rendering depends on (the practice's time zone for the due date, the language, the URL
# prefix). 4,096 cards of about 1.5 kB each are a few megabytes a process; the least recently shown
# are dropped first.
CARD_CACHE_SIZE = 4096


@functools.cache
def _index_norms(instrument_id):
    """The Connection Index's norms of one published instrument version (which never changes)."""
    return scoring.norms_from_instrument(answering.definition(instrument_id))[scoring.INDEX_KEY]


@dataclass(frozen=True)
class Progress:
    """What ``progress`` reads of a response: how far the partner got."""

    started_at: datetime.datetime | None
    submitted_at: datetime.datetime | None
    answered: int
    instrument_id: int


def _progress(assignments):
    # Counted per response through the answers' index, not by joining and grouping every answer of the page.
    answered = Answer.objects.filter(response=OuterRef("pk")).order_by().values("response").annotate(n=Count("pk"))
    return (
        Response.objects.filter(assignment_id__in=assignments)
        .annotate(answered=Coalesce(Subquery(answered.values("n")), 0), instrument_id=F("assignment__instrument_id"))
        .values_list("partner_id", "started_at", "submitted_at", "answered", "instrument_id")
    )


# Both read on every view of the caseload: compiled once per process and page length (practice/prepared.py).
_PARTNERS = prepared.Query(
    lambda couples: (
        Partner.objects.filter(couple_id__in=couples)
        .order_by("couple_id", "position")
        .values_list("couple_id", "pk", "position", "first_name", "last_name")
    ),
    "couples",
)
_PROGRESS = prepared.Query(_progress, "assignments")


def attach_overview(rows):
    """Give every caseload row of one page ``.overview`` (A and B, ``PartnerLine``) with two fixed queries.

    Queries: the partners' names; the current administrations' responses with their answer counts.
    Both read plain values, not model instances (two per couple on a page of 25). The indexes and
    changes are the row's; the norms and item counts come from the published instrument versions,
    cached in the process (``answering``).
    """
    rows = list(rows)
    if not rows:
        return rows
    partners = {r.pk: [] for r in rows}
    for couple_id, pk, position, first_name, last_name in _PARTNERS.rows(couples=list(partners)):
        partners[couple_id].append((pk, position, first_name, last_name))
    current_ids = [r.current_id for r in rows if r.current_id]
    responses = {partner_id: Progress(*values) for partner_id, *values in _PROGRESS.rows(assignments=current_ids)}
    for row in rows:
        row.overview = tuple(_partner_line(row, *partner, responses.get(partner[0])) for partner in partners[row.pk])
    return rows


def _partner_line(row, partner_id, position, first_name, last_name, response):
    side = position.lower()
    index, before, instrument_id = (getattr(row, f"{name}_{side}") for name in ("index", "previous", "instrument"))
    return _line_of(position, first_name, last_name, response, index, before, instrument_id)


@functools.lru_cache(maxsize=CARD_CACHE_SIZE * 2)
def _line_of(position, first_name, last_name, response, index, before, instrument_id):
    # A pure function of its arguments (published instrument versions never change): built once per
    # process for them, like the card it goes into.
    n_items = len(answering.item_rules(response.instrument_id)) if response is not None else None
    chip, percent = progress(response, n_items)
    change = label = None
    if index is not None and before is not None:
        change = index - before
        label = scoring.change_label(before, index, _index_norms(instrument_id))
    return PartnerLine(
        position, first_name, last_name, chip, _chip_label(chip, percent), index, scoring.band(index), change, label
    )


# --- One card, rendered once for what it shows ------------------------------------------------------


@dataclass(frozen=True)
class PartnerLine:
    """One partner's line of a card: every value it shows."""

    position: str
    first_name: str
    last_name: str
    chip: str
    chip_label: str
    index: float | None
    band: str | None
    change: float | None
    change_label: str | None


@dataclass(frozen=True)
class Card:
    """Everything one caseload card shows and nothing more: its template reads only this.

    Being every value shown, a Card is also the key of the card's rendered HTML (``render_card``):
    a card whose couple, due date, overdue state, progress, index or alert changed is a new key, so
    a stale card cannot be shown.
    """

    pk: int
    label: str
    is_overdue: bool
    open_alert: bool
    safety_raised: bool
    couple_status: str
    current_status: str
    current_due: datetime.datetime | None
    overview: tuple[PartnerLine, ...]

    @classmethod
    def of(cls, row):
        """The card of a caseload row that went through ``attach_overview``."""
        return cls(
            pk=row.pk,
            label=row.label,
            is_overdue=bool(row.is_overdue),
            open_alert=row.open_alert,
            safety_raised=row.safety_raised,
            couple_status=row.couple_status,
            current_status=row.current_status,
            current_due=row.current_due,
            overview=row.overview,
        )


def render_card(row) -> str:
    """The HTML of one caseload card (``clients/_caseload_card.html``), rendered once per process."""
    return _render_card(
        Card.of(row), timezone.get_current_timezone_name(), translation.get_language(), get_script_prefix()
    )


@functools.lru_cache(maxsize=CARD_CACHE_SIZE)
def _render_card(card, tz_name, language, prefix):
    # The three others are read by the rendering from the thread's state; as arguments they are part
    # of the key.
    return render_to_string("clients/_caseload_card.html", {"couple": card})


@receiver(file_changed)
def _template_edited(sender, file_path, **kwargs):
    """Under the development server an edited template shows at the next view, as without the cache."""
    if file_path.suffix == ".html":
        _render_card.cache_clear()
