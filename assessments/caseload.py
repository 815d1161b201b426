"""The counselor's caseload: one filtered, sorted page of couples and what to show for each.

The page is built in two steps so that its cost does not grow with the caseload:

1. ``caseload_queryset`` filters and sorts the counselor's couples in SQL, with correlated
   subqueries for the facts the filters and sorts need (current administration, its status and
   due date, each partner's latest Connection Index and safety level, last activity).
2. ``attach_overview`` takes the page's couples (at most ``PAGE_SIZE``) and fetches, with a
   fixed number of queries, the partners, the current administration's responses with their
   answer counts, the two latest scores of every partner and the norms of their instruments.
"""

from dataclasses import dataclass

from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value, When, Window
from django.db.models.functions import Coalesce, Least, RowNumber
from django.utils import timezone

from clients.models import Couple, Partner

from . import scoring
from .models import Assignment, Instrument, Item, Response, SafetyAlert, Score

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


def _current(field):
    """A field of the couple's current administration: the latest one not cancelled."""
    return Subquery(
        Assignment.objects.filter(couple=OuterRef("pk"))
        .exclude(status=CANCELLED)
        .order_by("-assigned_at", "-pk")
        .values(field)[:1]
    )


def _latest_index(position):
    return Subquery(
        Score.objects.filter(response__partner__couple=OuterRef("pk"), response__partner__position=position)
        .exclude(response__assignment__status=CANCELLED)
        .order_by("-response__submitted_at", "-pk")
        .values("connection_index")[:1]
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


def caseload_queryset(user, *, status="", q="", sort=DEFAULT_SORT, now=None):
    """The counselor's couples, filtered by status and search text, in the chosen order.

    Unknown ``status`` or ``sort`` values fall back to the defaults (all active, by due date).
    """
    now = now or timezone.now()
    couples = Couple.objects.for_counselor(user).annotate(
        current_id=_current("pk"),
        current_status=_current("status"),
        current_due=_current("due_at"),
        index_a=_latest_index("A"),
        index_b=_latest_index("B"),
        safety_a=_latest_safety("A"),
        safety_b=_latest_safety("B"),
        open_alert=Exists(
            SafetyAlert.objects.filter(response__assignment__couple=OuterRef("pk"), acknowledged_at__isnull=True)
        ),
    )
    couples = couples.annotate(
        # Least of two nullable values: each side falls back to the other so one missing score
        # does not hide the other (SQLite's MIN() would return NULL, PostgreSQL's LEAST would not).
        low_index=Least(Coalesce("index_a", "index_b"), Coalesce("index_b", "index_a")),
        open_due=Case(When(current_status=OPEN, then="current_due")),
        is_overdue=Case(
            When(current_status=OPEN, current_due__lt=now, then=Value(1)), default=Value(0), output_field=IntegerField()
        ),
        safety_raised=Case(
            When(Q(safety_a__in=RAISED) | Q(safety_b__in=RAISED), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )
    # A couple with a safety alert not yet marked as seen is in every list, whatever the filter.
    if status == "archived":
        couples = couples.filter(Q(status=Couple.Status.ARCHIVED) | Q(open_alert=True))
    else:
        couples = couples.filter(Q(status=Couple.Status.ACTIVE) | Q(open_alert=True))
    if status == "attention":
        couples = couples.filter(
            Q(safety_raised=1) | Q(is_overdue=1) | Q(low_index__lt=scoring.SHOWN_BELOW_ATTENTION) | Q(open_alert=True)
        )
    elif status == "overdue":
        couples = couples.filter(Q(is_overdue=1) | Q(open_alert=True))
    elif status == "waiting":
        couples = couples.filter(Q(current_status=OPEN) | Q(open_alert=True))
    elif status == "finished":
        couples = couples.filter(Q(current_status=Assignment.Status.COMPLETED) | Q(open_alert=True))
    q = (q or "").strip()
    if q:
        named = Partner.objects.filter(couple=OuterRef("pk")).filter(
            Q(first_name__icontains=q) | Q(last_name__icontains=q)
        )
        couples = couples.filter(Q(label__icontains=q) | Exists(named))
    # Under every order, couples with a safety alert not yet marked as seen come first.
    first = F("open_alert").desc()
    if sort == "activity":
        couples = couples.annotate(last_activity=_last_activity()).order_by(
            first, F("last_activity").desc(nulls_last=True), "label", "pk"
        )
    elif sort == "index":
        couples = couples.order_by(first, F("low_index").asc(nulls_last=True), "label", "pk")
    else:
        couples = couples.order_by(first, F("open_due").asc(nulls_last=True), "label", "pk")
    return couples


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


def page_of(couples, number, size=PAGE_SIZE):
    """The requested page (a malformed number is page 1, one past the end the last page).

    One query: the total rides along as ``COUNT(*) OVER ()`` on every row, so there is no
    separate count. Only a page past the end costs a second query, for the last page.
    """
    try:
        number = min(max(1, int(number)), MAX_PAGE)
    except (TypeError, ValueError):
        number = 1
    counted = couples.annotate(total=Window(Count("pk")))
    rows = list(counted[(number - 1) * size : number * size])
    if not rows and number > 1:
        count = counted.count()
        number = max(1, -(-count // size))
        rows = list(counted[(number - 1) * size : number * size])
    return Page(object_list=rows, number=number, count=rows[0].total if rows else 0, size=size)


@dataclass
class PartnerOverview:
    """What the caseload shows for one partner."""

    partner: Partner
    chip: str  # not_invited | invited | in_progress | finished
    percent: int | None
    index: float | None
    band: str | None
    change: float | None
    change_label: str | None

    @property
    def chip_label(self):
        if self.chip == "in_progress":
            return f"In progress · {self.percent}%"
        return CHIP_LABELS[self.chip]


def attach_overview(couples, now=None):
    """Give every couple of one page ``.overview`` (A and B) with a fixed number of queries.

    Queries: partners; the current administrations' responses with answer and item counts;
    the two latest scores of every partner (a window query); the instruments' norms.
    """
    couples = list(couples)
    if not couples:
        return couples
    by_id = {c.pk: c for c in couples}
    for couple in couples:
        couple.partner_list = []
    for partner in Partner.objects.filter(couple_id__in=by_id).order_by("couple_id", "position"):
        by_id[partner.couple_id].partner_list.append(partner)
    current_ids = [c.current_id for c in couples if c.current_id]
    item_count = (
        Item.objects.filter(instrument=OuterRef("assignment__instrument")).values("instrument").annotate(n=Count("pk"))
    )
    responses = {
        r.partner_id: r
        for r in Response.objects.filter(assignment_id__in=current_ids)
        .annotate(answered=Count("answers"), n_items=Subquery(item_count.values("n")))
        .only("pk", "partner_id", "assignment_id", "started_at", "submitted_at")
    }
    partner_ids = [p.pk for c in couples for p in c.partner_list]
    ranked = (
        Score.objects.filter(response__partner_id__in=partner_ids)
        .exclude(response__assignment__status=CANCELLED)
        .annotate(
            partner_id=F("response__partner_id"),
            instrument_id=F("response__assignment__instrument_id"),
            scoring_key=F("response__assignment__instrument__scoring_key"),
            rank=Window(
                RowNumber(), partition_by=F("response__partner_id"), order_by=F("response__submitted_at").desc()
            ),
        )
        .filter(rank__lte=2)
        .order_by("partner_id", "rank")
        .values("partner_id", "instrument_id", "scoring_key", "connection_index", "rank")
    )
    scores = {}
    for row in ranked:
        scores.setdefault(row["partner_id"], []).append(row)
    instrument_ids = {row["instrument_id"] for rows in scores.values() for row in rows}
    norms = {
        i.pk: i.norms()[scoring.INDEX_KEY] for i in Instrument.objects.filter(pk__in=instrument_ids).only("definition")
    }
    for couple in couples:
        couple.overview = [
            _partner_overview(p, responses.get(p.pk), scores.get(p.pk, []), norms) for p in couple.partner_list
        ]
    return couples


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


def _partner_overview(partner, response, scores, norms):
    chip, percent = progress(response, response.n_items if response is not None else None)
    index = change = label = None
    if scores:
        index = scores[0]["connection_index"]
        if len(scores) == 2 and scoring.same_scoring(scores[0]["scoring_key"], scores[1]["scoring_key"]):
            before = scores[1]["connection_index"]
            if index is not None and before is not None:
                change = index - before
                label = scoring.change_label(before, index, norms[scores[0]["instrument_id"]])
    return PartnerOverview(
        partner=partner,
        chip=chip,
        percent=percent,
        index=index,
        band=scoring.band(index),
        change=change,
        change_label=label,
    )
