"""Reminders: planned rows in the database, queued on the outbox when they fall due, sent once.

The state machine of one ``Reminder`` row (docs/background-work.md draws it):

* ``scheduled``: waiting for its due time (and for the end of the practice's quiet hours).
* ``claimed`` ("on its way"): an outbox job (``Reminder.job``, kind ``partner_email``) carries it.
  Invitations and "Remind now" are queued by the workflow that creates them; the others by
  ``sweep()``, which beat runs every minute. The outbox retries mail errors and takes the job back
  from a worker that died (practice/outbox.py).
* ``sent`` (``sent_at`` set), ``skipped`` (not needed; ``last_error`` says why) or ``failed`` (the
  mail server refused it, or every try failed; ``last_error`` says why in words): final.

Every transition is a conditional UPDATE, so two sweeps, two workers or a message delivered twice
change a row once. Times are injectable (``now=``) for tests.
"""

import datetime
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from clients.models import Couple, Partner
from practice import outbox, prepared
from practice.models import Job

from . import caseload, emails
from .models import Assignment, Reminder, Response, ResponseLink, link_token

log = logging.getLogger(__name__)

MANUAL_GAP = timedelta(hours=12)  # "Remind now" at most this often per partner
MESSAGE_GAP = timedelta(hours=1)  # and not until the last message to the partner is this old (said as "an hour")
MIN_GAP = timedelta(hours=12)  # an automatic reminder this soon after another one is not sent
UNSUBSCRIBE_SALT = "assessments.reminders.unsubscribe"
AUTOMATIC = (Reminder.Kind.REMINDER_1, Reminder.Kind.REMINDER_2, Reminder.Kind.BEFORE_DUE, Reminder.Kind.OVERDUE)


def gap_words(gap):
    """A gap as people say it: "12 hours"."""
    hours = int(gap.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


# --- Policy and quiet hours ----------------------------------------------------------


def policy_of(practice):
    """The practice's reminder policy with every key filled in."""
    raw = practice.reminder_policy or {}
    return {
        "after_days": [int(d) for d in raw.get("after_days", [2, 5])][:2],
        "before_due_days": int(raw.get("before_due_days", 1) or 0),
        "overdue_notice": bool(raw.get("overdue_notice", True)),
    }


def has_quiet_hours(practice):
    return practice.quiet_hours_start != practice.quiet_hours_end


def in_quiet_hours(practice, when):
    """Is ``when`` inside the practice's quiet hours, on its wall clock (DST included)?"""
    if not has_quiet_hours(practice):
        return False
    local = when.astimezone(practice.tz).time()
    start, end = practice.quiet_hours_start, practice.quiet_hours_end
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_send_time(practice, when):
    """``when`` itself, or the end of the quiet hours it falls in (practice wall clock)."""
    if not in_quiet_hours(practice, when):
        return when
    tz = practice.tz
    local = when.astimezone(tz)
    day = local.date()
    if local.time() >= practice.quiet_hours_end and practice.quiet_hours_start > practice.quiet_hours_end:
        day += timedelta(days=1)
    return datetime.datetime.combine(day, practice.quiet_hours_end, tzinfo=tz)


def plan(response, *, now=None):
    """Create the reminder rows for one response from its practice's reminder policy.

    Invitation at once; reminders N days later and M days before the due date, each only while
    before the due date; an overdue notice an hour after it. Of two reminders closer than
    ``MIN_GAP`` only the later (more pressing) one is planned.
    """
    now = now or timezone.now()
    assignment = response.assignment
    policy = policy_of(assignment.couple.practice)
    kinds = [Reminder.Kind.REMINDER_1, Reminder.Kind.REMINDER_2]
    middle = [(kind, now + timedelta(days=days)) for kind, days in zip(kinds, policy["after_days"], strict=False)]
    if policy["before_due_days"]:
        middle.append((Reminder.Kind.BEFORE_DUE, assignment.due_at - timedelta(days=policy["before_due_days"])))
    middle = sorted((row for row in middle if now + MIN_GAP <= row[1] < assignment.due_at), key=lambda r: r[1])
    kept = [row for i, row in enumerate(middle) if i + 1 == len(middle) or middle[i + 1][1] - row[1] >= MIN_GAP]
    rows = [(Reminder.Kind.INVITATION, now), *kept]
    if policy["overdue_notice"]:
        rows.append((Reminder.Kind.OVERDUE, assignment.due_at + timedelta(hours=1)))
    Reminder.objects.bulk_create(Reminder(response=response, kind=kind, due_at=at) for kind, at in rows)


def queue(reminder, *, now=None):
    """Put one reminder on the outbox (kind ``partner_email``), due now or after the quiet hours.

    Call it in the transaction that created the reminder or found it due; returns the Job.
    """
    now = now or timezone.now()
    practice = reminder.response.assignment.couple.practice
    job = outbox.enqueue(
        "partner_email",
        f"reminder:{reminder.pk}",
        payload={"reminder": reminder.pk},
        due_at=next_send_time(practice, max(now, reminder.due_at)),
        practice=practice,
        now=now,
    )
    Reminder.objects.filter(pk=reminder.pk).update(status=Reminder.Status.CLAIMED, claimed_at=now, job=job)
    reminder.status, reminder.claimed_at, reminder.job = Reminder.Status.CLAIMED, now, job
    return job


def skip_open(reminders, reason):
    """Skip every reminder of ``reminders`` that has not gone out yet (waiting ones lose their job)."""
    # Handed to the outbox but not yet sent: cancel the job, then skip the reminder with the rest.
    # A claimed reminder whose job is cancelled will never go out, so it is skipped either way.
    outbox.cancel_jobs(Job.objects.filter(pk__in=reminders.filter(status=Reminder.Status.CLAIMED).values("job_id")))
    open_rows = reminders.filter(
        Q(status=Reminder.Status.SCHEDULED) | Q(status=Reminder.Status.CLAIMED, job__status=Job.Status.CANCELLED)
    )
    return open_rows.update(status=Reminder.Status.SKIPPED, last_error=reason[:300])


# --- Why a reminder is not needed ------------------------------------------------------


def why_not(reminder, now):
    """The reason, in words for the counselor, not to send this reminder now; None to send it."""
    response = reminder.response
    assignment = response.assignment
    couple = assignment.couple
    partner = response.partner
    if assignment.status == Assignment.Status.CANCELLED:
        return "the assessment was cancelled"
    if response.submitted_at is not None or assignment.status == Assignment.Status.COMPLETED:
        return f"{partner.name} had finished"
    if couple.status == Couple.Status.ARCHIVED:
        return "the couple was archived"
    if reminder.kind != Reminder.Kind.INVITATION and partner.reminders_unsubscribed_at is not None:
        return f"{partner.name} unsubscribed from reminders"
    if reminder.kind in AUTOMATIC and couple.reminders_paused:
        return "reminders were paused"
    if now > assignment.link_expires_at:
        return "the link had expired"
    return None


def _with_world(queryset):
    return queryset.select_related(
        "response__partner", "response__assignment__couple__practice", "response__assignment__couple__counselor"
    )


# --- The sweep (celery beat, every minute) --------------------------------------------


@dataclass
class SweepResult:
    claimed: list = field(default_factory=list)
    skipped: int = 0


def sweep(*, now=None, limit=500):
    """Queue the reminders that have fallen due, one per partner. Safe to run in parallel.

    A backlog (the beat was down) sends at most one reminder per partner: the latest due; the
    earlier ones are skipped. Nothing is queued in a practice's quiet hours, nor for a partner who
    has a reminder on its way or had one less than MIN_GAP ago.
    """
    now = now or timezone.now()
    result = SweepResult()
    candidates = list(
        _with_world(Reminder.objects.filter(status=Reminder.Status.SCHEDULED, due_at__lte=now)).order_by(
            "due_at", "id"
        )[:limit]
    )
    by_response = {}
    for reminder in candidates:
        by_response.setdefault(reminder.response_id, []).append(reminder)
    busy = set(
        Reminder.objects.filter(response_id__in=by_response, status=Reminder.Status.CLAIMED).values_list(
            "response_id", flat=True
        )
    )
    recently_sent = set(
        Reminder.objects.filter(response_id__in=by_response, sent_at__gt=now - MIN_GAP).values_list(
            "response_id", flat=True
        )
    )

    def skip(reminder, reason):
        won = Reminder.objects.filter(pk=reminder.pk, status=Reminder.Status.SCHEDULED).update(
            status=Reminder.Status.SKIPPED, last_error=reason[:300]
        )
        result.skipped += won

    for response_id, rows in by_response.items():
        practice = rows[0].response.assignment.couple.practice
        if response_id in busy or in_quiet_hours(practice, now):
            continue
        latest = max(rows, key=lambda r: (r.due_at, r.pk))
        for reminder in rows:
            if reminder is not latest:
                skip(reminder, "replaced by a later reminder")
        reason = why_not(latest, now)
        if reason is None and latest.kind in AUTOMATIC and response_id in recently_sent:
            reason = f"another reminder went out less than {gap_words(MIN_GAP)} earlier"
        if reason:
            skip(latest, reason)
            continue
        with transaction.atomic():
            if Reminder.objects.filter(pk=latest.pk, status=Reminder.Status.SCHEDULED).update(claimed_at=now):
                queue(latest, now=now)
                result.claimed.append(latest.pk)
    return result


# --- Sending one reminder (the ``partner_email`` outbox job) ------------------------------


def _deliverable(reminder):
    """The reminder, its world and its response's live link (Response.live_token) in one query."""
    live = ResponseLink.objects.filter(response=OuterRef("response"), revoked_at__isnull=True).order_by("pk")
    reminders = _with_world(Reminder.objects.filter(pk=reminder))
    # Unordered, unlimited (not .first()): an ORDER BY ... LIMIT doubles the planning of this
    # seven-table join (docs/performance.md).
    return reminders.annotate(live_nonce=Subquery(live.values("nonce")[:1])).order_by()


# Run for every message a worker sends: compiled once per process, planned once per connection.
_DELIVERABLE = prepared.Query(_deliverable, "reminder")


def deliver(job, *, now=None):
    """Send one queued reminder, re-checking everything first. Returns sent, skipped or gone.

    Mail errors propagate to the outbox, which retries or gives up (and then calls ``failed``);
    quiet hours raise ``outbox.Later``. ``job`` is the outbox row (its payload names the reminder).
    A reminder is marked sent right after the mail server takes it, in one statement with the job's
    "done"; the Message-ID is fixed, so the rare second copy (docs/background-work.md) folds into the first.
    """
    now = now or timezone.now()
    reminder = _DELIVERABLE.first(reminder=job.payload["reminder"])
    if reminder is None or reminder.status != Reminder.Status.CLAIMED:
        return "gone"  # deleted with its couple, skipped meanwhile, or sent by an earlier take
    mine = Reminder.objects.filter(pk=reminder.pk, status=Reminder.Status.CLAIMED)
    reason = why_not(reminder, now)
    token = None if reason or reminder.live_nonce is None else link_token(reminder.live_nonce)
    if reason is None and token is None:
        reason = "the link was withdrawn"
    if reason:
        mine.update(status=Reminder.Status.SKIPPED, last_error=reason)
        return "skipped"
    practice = reminder.response.assignment.couple.practice
    if in_quiet_hours(practice, now):
        raise outbox.Later(next_send_time(practice, now), "quiet hours")
    emails.send_partner_reminder(reminder, token, unsubscribe_url(reminder.response.partner))
    outbox.finish(job, mine, status=Reminder.Status.SENT, sent_at=timezone.now(), last_error="", attempts=job.attempts)
    return "sent"


def couples_of(job):
    """The couples whose reminders an outbox job carries (one, for a partner's e-mail)."""
    return set(Reminder.objects.filter(job=job).values_list("response__assignment__couple_id", flat=True))


def failed(job, words):
    """The outbox gave up on a reminder's job: the counselor sees why, in words."""
    Reminder.objects.filter(job=job, status=Reminder.Status.CLAIMED).update(
        status=Reminder.Status.FAILED, last_error=words[:300], attempts=job.attempts
    )
    # "Could not be delivered" is now in the counselor's inbox: the couple's count follows.
    caseload.refresh(*couples_of(job))


# --- Counselor notices (the ``counselor_notice`` outbox job) -----------------------------


def notify_counselor(assignment_id, what, *, now=None):
    """Send the counselor's "both finished" or "overdue" e-mail once per assignment.

    The conditional update on the assignment's ``*_notified_at`` is the claim: of any number of
    racing calls, one sends. If the send fails the claim is released and the error re-raised, so
    the outbox retries it. An overdue notice waits out the practice's quiet hours.
    """
    now = now or timezone.now()
    field_name = {"both_finished": "both_finished_notified_at", "overdue": "overdue_notified_at"}[what]
    status = Assignment.Status.COMPLETED if what == "both_finished" else Assignment.Status.OPEN
    claim = Assignment.objects.filter(pk=assignment_id, status=status, **{f"{field_name}__isnull": True})
    if what == "overdue":
        claim = claim.filter(due_at__lt=now)
        practice = Couple.objects.filter(assignments=assignment_id).select_related("practice").first()
        if practice is not None and in_quiet_hours(practice.practice, now):
            raise outbox.Later(next_send_time(practice.practice, now), "quiet hours")
    if not claim.update(**{field_name: now}):
        return "not needed"
    assignment = Assignment.objects.select_related("couple__counselor", "couple__practice").get(pk=assignment_id)
    try:
        if what == "both_finished":
            emails.send_counselor_both_finished(assignment)
        else:
            emails.send_counselor_overdue(assignment)
    except Exception:
        Assignment.objects.filter(pk=assignment_id, **{field_name: now}).update(**{field_name: None})
        raise
    return "sent"


# --- "Remind now" ----------------------------------------------------------------------


def last_manual(partner):
    """When the counselor last asked to remind this partner (any administration), or None."""
    return Reminder.objects.filter(response__partner=partner, kind=Reminder.Kind.MANUAL).aggregate(at=Max("due_at"))[
        "at"
    ]


# A message that went out, or is going out now (due and not yet sent); a failed or skipped one never reached them.
MESSAGE_STATES = (Reminder.Status.SENT, Reminder.Status.SCHEDULED, Reminder.Status.CLAIMED)


def message_time(reminder, now):
    """When this reminder reached (or is reaching) the partner, or None for one that did not or is not due yet."""
    if reminder.status == Reminder.Status.SENT:
        return reminder.sent_at or reminder.due_at
    if reminder.status in MESSAGE_STATES and reminder.due_at <= now:
        return reminder.due_at
    return None


def last_message(partner, now):
    """When the partner was last sent a message (invitation or reminder, any administration), or None."""
    rows = Reminder.objects.filter(response__partner=partner, status__in=MESSAGE_STATES, due_at__lte=now)
    times = [message_time(r, now) for r in rows.only("status", "sent_at", "due_at")]
    return max((t for t in times if t is not None), default=None)


def remind_refusal(response, last_manual_at, now, last_message_at=None):
    """Why the counselor cannot remind this partner now, in words; "" when they can.

    Not within ``MANUAL_GAP`` of the last "Remind now", nor within ``MESSAGE_GAP`` of the last
    message of any kind (a reminder minutes after the invitation only crowds their inbox).
    """
    partner = response.partner
    if response.assignment.status != Assignment.Status.OPEN:
        return "This assessment is no longer open, so there is nothing to remind about."
    if response.submitted_at is not None:
        return f"{partner.name} has already finished."
    if partner.reminders_unsubscribed_at is not None:
        return f"{partner.name} unsubscribed from reminders, so none can be sent."
    if last_manual_at is not None and now - last_manual_at < MANUAL_GAP:
        again = timezone.localtime(last_manual_at + MANUAL_GAP, response.assignment.couple.practice.tz)
        return (
            f"{partner.name} was reminded less than {gap_words(MANUAL_GAP)} ago. "
            f"You can remind again after {again:%a %-d %b, %H:%M}."
        )
    if last_message_at is not None and now - last_message_at < MESSAGE_GAP:
        tz = response.assignment.couple.practice.tz
        again = timezone.localtime(last_message_at + MESSAGE_GAP, tz)
        # Late in the evening the hour ends tomorrow: the time alone would read as today's.
        when = f"{again:%H:%M}" if again.date() == timezone.localtime(now, tz).date() else f"{again:%a %-d %b, %H:%M}"
        return f"{partner.name} was sent a message less than an hour ago. You can remind {partner.name} from {when}."
    return ""


# --- Unsubscribe ----------------------------------------------------------------------


def unsubscribe_token(partner):
    return signing.dumps({"p": partner.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def partner_for_unsubscribe(token):
    """The partner an unsubscribe token names, or None for a tampered or unknown token."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("p"), int):
        return None
    return Partner.objects.select_related("couple__practice").filter(pk=data["p"]).first()


def unsubscribe(partner, *, now=None):
    """Record the partner's wish once. Returns True for the call that recorded it."""
    now = now or timezone.now()
    won = Partner.objects.filter(pk=partner.pk, reminders_unsubscribed_at__isnull=True).update(
        reminders_unsubscribed_at=now
    )
    if won:
        partner.reminders_unsubscribed_at = now
    return bool(won)


def unsubscribe_url(partner):
    return settings.SITE_URL + reverse("assessments:unsubscribe", args=[unsubscribe_token(partner)])


# --- What the counselor sees ----------------------------------------------------------


@dataclass
class ReminderLine:
    reminder: Reminder
    state: str  # sent, scheduled, sending, failed, skipped
    at: datetime.datetime | None
    text: str


@dataclass
class PartnerPanel:
    response: Response
    partner: Partner
    lines: list
    can_remind: bool
    remind_blocked: str


def _line(reminder, practice, now):
    label = reminder.get_kind_display()
    if reminder.status == Reminder.Status.SENT:
        return ReminderLine(reminder, "sent", reminder.sent_at, f"{label} sent")
    if reminder.status == Reminder.Status.FAILED:
        # Why, and "Try again", are in the page's undelivered messages card: said once, not twice.
        return ReminderLine(reminder, "failed", reminder.claimed_at, f"{label} not delivered (see above)")
    if reminder.status == Reminder.Status.SKIPPED:
        why = f": {reminder.last_error}" if reminder.last_error else " (not needed)"
        return ReminderLine(reminder, "skipped", reminder.due_at, f"{label} not sent{why}")
    if reminder.status == Reminder.Status.CLAIMED:
        job = reminder.job
        if job is not None and job.last_error and job.status == Job.Status.PENDING:
            return ReminderLine(
                reminder, "sending", job.due_at, f"{label} not delivered yet, trying again: {job.last_error}"
            )
        at = job.due_at if job is not None and job.due_at > now else reminder.claimed_at
        return ReminderLine(reminder, "sending", at, f"{label} on its way")
    at = next_send_time(practice, max(reminder.due_at, now))
    return ReminderLine(reminder, "scheduled", at, f"{label} scheduled")


# The couple page's reminders, every one of the couple's: compiled once per process (practice/prepared.py).
_COUPLE_REMINDERS = prepared.Query(
    lambda couple: (
        Reminder.objects.filter(response__assignment__couple=couple)
        .select_related("job", "response")
        .order_by("due_at", "id")
    ),
    "couple",
)


def panels(assignments, *, now=None, couple=None):
    """{assignment id: [PartnerPanel per partner]} for administrations loaded with their responses and
    partners (``comparison.administrations`` loads them). One query: every reminder of the couple.
    ``couple`` (its id) says the administrations are all of that couple's, as on the couple's page.

    "Remind now" follows ``remind_refusal``, the rule the action itself applies, with each partner's
    latest manual reminder across all their administrations.
    """
    now = now or timezone.now()
    by_response, last_manual_at, last_message_at = {}, {}, {}
    if couple is not None:
        rows = _COUPLE_REMINDERS.all(couple=couple)
    else:
        rows = Reminder.objects.filter(response__assignment__in=assignments).select_related("job", "response")
        rows = rows.order_by("due_at", "id")
    for reminder in rows:
        by_response.setdefault(reminder.response_id, []).append(reminder)
        partner_id = reminder.response.partner_id
        if reminder.kind == Reminder.Kind.MANUAL:
            last_manual_at[partner_id] = max(reminder.due_at, last_manual_at.get(partner_id, reminder.due_at))
        at = message_time(reminder, now)
        if at is not None:
            last_message_at[partner_id] = max(at, last_message_at.get(partner_id, at))
    result = {}
    for assignment in assignments:
        practice = assignment.couple.practice
        result[assignment.pk] = []
        for response in sorted(assignment.responses.all(), key=lambda r: r.partner.position):
            partner = response.partner
            response.assignment = assignment
            mine = by_response.get(response.pk, [])
            if response.submitted_at is not None:
                # What was planned for after they finished simply did not happen: no need to list it.
                mine = [r for r in mine if r.status != Reminder.Status.SKIPPED or r.due_at <= response.submitted_at]
            lines = [_line(r, practice, now) for r in mine]
            blocked = remind_refusal(response, last_manual_at.get(partner.pk), now, last_message_at.get(partner.pk))
            result[assignment.pk].append(
                PartnerPanel(
                    response=response,
                    partner=partner,
                    lines=lines,
                    can_remind=not blocked,
                    remind_blocked=blocked,
                )
            )
    return result
