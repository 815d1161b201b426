"""Practice statistics: completion and change per counselor and for the whole practice.

A couple counts for the counselor it is assigned to now (a transferred couple moves its history
with it). Counts come from ORM aggregates; medians and change are computed in Python from one
narrow values_list each, which is plenty at a practice's scale.
"""

import datetime
import statistics
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.utils import timezone

from practice.models import Membership

from . import scoring
from .models import Assignment, Instrument, Score


@dataclass
class Row:
    label: str
    user_id: int | None = None
    sent: int = 0
    completed: int = 0
    cancelled: int = 0
    days_to_finish: list = field(default_factory=list)
    overdue_now: int = 0
    ci_first: list = field(default_factory=list)
    ci_latest: list = field(default_factory=list)
    improved: int = 0

    @property
    def completion_rate(self):
        """Completed as a percentage of the assignments sent and not cancelled."""
        base = self.sent - self.cancelled
        return 100 * self.completed / base if base else None

    @property
    def median_days(self):
        return statistics.median(self.days_to_finish) if self.days_to_finish else None

    @property
    def partners_compared(self):
        return len(self.ci_latest)

    @property
    def ci_first_mean(self):
        return statistics.fmean(self.ci_first) if self.ci_first else None

    @property
    def ci_latest_mean(self):
        return statistics.fmean(self.ci_latest) if self.ci_latest else None

    @property
    def improved_share(self):
        return 100 * self.improved / self.partners_compared if self.partners_compared else None


def period_bounds(practice, start, end):
    """The period's first and last calendar day in the practice's zone, as UTC-aware datetimes."""
    tz = practice.tz
    return (
        datetime.datetime.combine(start, datetime.time(), tz),
        datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time(), tz),
    )


def practice_statistics(practice, start, end, *, now=None):
    """(rows per counselor, the practice's row) for assignments sent from start to end (dates).

    Change: every partner whose latest scored administration was submitted in the period and who
    has an earlier scored one that scores identically (same scoring key); first and latest
    Connection Index are averaged over those partners, and "improved" uses the reliable change
    index.
    """
    now = now or timezone.now()
    since, until = period_bounds(practice, start, end)
    members = (
        Membership.objects.filter(practice=practice)
        .select_related("user")
        .filter(Q(role=Membership.Role.COUNSELOR) | Q(user__couples__isnull=False))
        .distinct()
        .order_by("user__full_name", "user__email")
    )
    rows = {m.user_id: Row(label=m.user.get_full_name(), user_id=m.user_id) for m in members}
    total = Row(label="Whole practice")

    def row_of(user_id):
        return rows.setdefault(user_id, Row(label="(former member)", user_id=user_id))

    sent = Assignment.objects.for_practice(practice).filter(assigned_at__gte=since, assigned_at__lt=until)
    counts = sent.values("couple__counselor").annotate(
        sent=Count("id"),
        completed=Count("id", filter=Q(status=Assignment.Status.COMPLETED)),
        cancelled=Count("id", filter=Q(status=Assignment.Status.CANCELLED)),
    )
    for c in counts:
        for row in (row_of(c["couple__counselor"]), total):
            row.sent += c["sent"]
            row.completed += c["completed"]
            row.cancelled += c["cancelled"]
    finished = sent.filter(status=Assignment.Status.COMPLETED, completed_at__isnull=False)
    for counselor_id, assigned_at, completed_at in finished.values_list(
        "couple__counselor", "assigned_at", "completed_at"
    ):
        days = (completed_at - assigned_at).total_seconds() / 86400
        row_of(counselor_id).days_to_finish.append(days)
        total.days_to_finish.append(days)
    overdue = Assignment.objects.for_practice(practice).overdue(now).values("couple__counselor").annotate(n=Count("id"))
    for c in overdue:
        row_of(c["couple__counselor"]).overdue_now += c["n"]
        total.overdue_now += c["n"]

    instrument = Instrument.current()
    norms = instrument.norms()[scoring.INDEX_KEY] if instrument else scoring.Norms(sd=15, alpha=0.9)
    history = {}
    scores = (
        Score.objects.filter(
            response__assignment__couple__practice=practice,
            connection_index__isnull=False,
            response__submitted_at__lt=until,
        )
        .order_by("response__partner_id", "response__submitted_at")
        .values_list(
            "response__partner_id",
            "response__assignment__couple__counselor",
            "response__assignment__instrument__scoring_key",
            "response__submitted_at",
            "connection_index",
        )
    )
    for partner_id, counselor_id, key, submitted_at, index in scores:
        history.setdefault(partner_id, []).append((counselor_id, key, submitted_at, index))
    for entries in history.values():
        counselor_id, key, submitted_at, latest = entries[-1]
        if submitted_at < since:
            continue
        same = [e for e in entries if scoring.same_scoring(e[1], key)]
        if len(same) < 2:
            continue
        first = same[0][3]
        improved = scoring.change_label(first, latest, norms) == "reliable_improvement"
        for row in (row_of(counselor_id), total):
            row.ci_first.append(first)
            row.ci_latest.append(latest)
            row.improved += improved
    return list(rows.values()), total
