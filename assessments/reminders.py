"""Reminders: rows in the database, claimed by a sweep, sent once by a Celery task.

The state machine of one ``Reminder`` row (docs/reminders.md draws it):

* ``scheduled``, ``claimed_at`` empty: waiting for its due time (and for the end of quiet hours).
* ``scheduled``, ``claimed_at`` set: queued. A sweep (or a counselor action) has enqueued one send
  task for it. If that task never runs, the sweep re-queues the row after ``QUEUE_LEASE``.
* ``claimed`` ("Sending"): a worker took it and is talking to the mail server since
  ``claimed_at``. Nobody else touches it until ``send_lease()`` has passed; the send task's hard
  time limit is shorter than the lease, so by then the first sender is dead, and another takes over.
* ``sent`` (``sent_at`` set, final), ``skipped`` (not needed, final; ``last_error`` says why) or
  ``failed`` (the mail server refused it, or five tries failed; ``last_error`` says why in words).

Every transition is a conditional UPDATE, so two sweeps, two workers or a message delivered twice
can race freely: exactly one of them changes a row. Times are injectable (``now=``) for tests.
"""

import datetime
import logging
import random
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from clients.models import Couple, Partner

from .models import Assignment, Reminder, Response

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
QUEUE_LEASE = timedelta(minutes=10)  # queued but no worker took it: the message was lost
MANUAL_GAP = timedelta(hours=12)  # "Remind now" at most this often per partner
MIN_GAP = timedelta(hours=12)  # an automatic reminder this soon after another one is not sent
MAX_COUNTDOWN = 240  # seconds; below Redis's visibility timeout, and far below five minutes
UNSUBSCRIBE_SALT = "assessments.reminders.unsubscribe"
AUTOMATIC = (Reminder.Kind.REMINDER_1, Reminder.Kind.REMINDER_2, Reminder.Kind.BEFORE_DUE, Reminder.Kind.OVERDUE)


def send_lease():
    """How long a sender may hold a row: longer than any SMTP conversation the time limit allows."""
    return timedelta(seconds=min(MAX_COUNTDOWN, 2 * settings.EMAIL_TIMEOUT + 3))


def send_time_limit():
    """The send task's hard time limit (seconds): the worker kills a sender stuck past it."""
    return max(2, int(send_lease().total_seconds()) - 2)


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


def enqueue_due_on_commit(assignment):
    """Send the invitations as soon as the transaction that created them commits."""
    from .tasks import send_reminder

    rows = Reminder.objects.filter(
        response__assignment=assignment, kind=Reminder.Kind.INVITATION, status=Reminder.Status.SCHEDULED
    )
    ids = list(rows.values_list("id", flat=True))
    # Marked queued, so the next sweep does not enqueue them a second time.
    Reminder.objects.filter(pk__in=ids, claimed_at__isnull=True).update(claimed_at=timezone.now())
    for reminder_id in ids:
        send_reminder.delay_on_commit(reminder_id)


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
        return f"{partner.first_name} had finished"
    if couple.status == Couple.Status.ARCHIVED:
        return "the couple was archived"
    if reminder.kind != Reminder.Kind.INVITATION and partner.reminders_unsubscribed_at is not None:
        return f"{partner.first_name} unsubscribed from reminders"
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
    released: int = 0
    overdue_notices: list = field(default_factory=list)
    both_finished: list = field(default_factory=list)


def sweep(*, now=None, limit=500):
    """Claim due reminders and enqueue one send each; enqueue counselor notices. Safe in parallel.

    A backlog (a worker that was down) sends at most one reminder per partner: the latest due;
    the earlier ones are skipped. Nothing is claimed in a practice's quiet hours.
    """
    from .tasks import notify_counselor, send_reminder

    now = now or timezone.now()
    result = SweepResult()
    # A sender that died mid-send: after the lease, the row is queued again (and sent by a new task).
    result.released = Reminder.objects.filter(
        status=Reminder.Status.CLAIMED, sent_at__isnull=True, claimed_at__lt=now - send_lease()
    ).update(status=Reminder.Status.SCHEDULED, claimed_at=None)

    candidates = list(
        _with_world(
            Reminder.objects.filter(status=Reminder.Status.SCHEDULED, due_at__lte=now).filter(
                Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - QUEUE_LEASE)
            )
        ).order_by("due_at", "id")[:limit]
    )
    by_response = {}
    for reminder in candidates:
        by_response.setdefault(reminder.response_id, []).append(reminder)
    # A partner with a reminder already on its way gets nothing more in this sweep.
    busy = set(
        Reminder.objects.filter(response_id__in=by_response, claimed_at__gte=now - QUEUE_LEASE)
        .filter(status__in=[Reminder.Status.SCHEDULED, Reminder.Status.CLAIMED])
        .values_list("response_id", flat=True)
    )
    recently_sent = set(
        Reminder.objects.filter(response_id__in=by_response, sent_at__gt=now - MIN_GAP).values_list(
            "response_id", flat=True
        )
    )

    def skip(reminder, reason):
        won = Reminder.objects.filter(
            pk=reminder.pk, status=Reminder.Status.SCHEDULED, claimed_at=reminder.claimed_at
        ).update(status=Reminder.Status.SKIPPED, last_error=reason[:300])
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
            reason = "another reminder went out less than 12 hours earlier"
        if reason:
            skip(latest, reason)
            continue
        if Reminder.objects.filter(pk=latest.pk, status=Reminder.Status.SCHEDULED, claimed_at=latest.claimed_at).update(
            claimed_at=now
        ):
            result.claimed.append(latest.pk)
            send_reminder.delay_on_commit(latest.pk)

    # Counselor notices: one overdue e-mail per assignment, and a catch-up for a "both finished"
    # e-mail whose enqueue was lost. The task's conditional update makes repeats harmless.
    overdue = Assignment.objects.open().filter(due_at__lt=now, overdue_notified_at__isnull=True)
    for assignment in overdue.select_related("couple__practice")[:limit]:
        if not in_quiet_hours(assignment.couple.practice, now) and _throttle(
            f"overdue:{assignment.pk}:{assignment.due_at.timestamp()}"
        ):
            result.overdue_notices.append(assignment.pk)
            notify_counselor.delay_on_commit(assignment.pk, "overdue")
    finished = Assignment.objects.filter(
        status=Assignment.Status.COMPLETED,
        both_finished_notified_at__isnull=True,
        completed_at__lt=now - QUEUE_LEASE,
        completed_at__gt=now - timedelta(days=2),
    )
    for assignment_id, completed_at in finished.values_list("pk", "completed_at")[:limit]:
        if _throttle(f"both:{assignment_id}:{completed_at.timestamp()}"):
            result.both_finished.append(assignment_id)
            notify_counselor.delay_on_commit(assignment_id, "both_finished")
    return result


def _throttle(key, seconds=300):
    """True at most once per ``seconds`` per key (shared through the cache), to keep queues short."""
    from django.core.cache import cache

    return cache.add(f"reminders:{key}", 1, seconds)


# --- Sending one reminder -------------------------------------------------------------


@dataclass
class Outcome:
    status: str  # sent, skipped, failed, retry, busy, quiet, not_due, done, gone, lost_race
    retry_in: int | None = None
    detail: str = ""


def classify(exc):
    """(permanent?, words for the counselor) for an exception raised while sending."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return (all(code >= 500 for code in codes), "address rejected")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return (exc.smtp_code >= 500, "the practice's sender address was refused")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (False, "the mail server refused the practice's sign-in")
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return (False, "mail server unreachable")
    if isinstance(exc, smtplib.SMTPResponseException):
        return (exc.smtp_code >= 500, f"refused by the mail server ({exc.smtp_code})")
    if isinstance(exc, TimeoutError | socket.timeout):
        return (False, "mail server did not answer in time")
    if isinstance(exc, OSError):
        return (False, "mail server unreachable")
    return (False, f"unexpected error ({type(exc).__name__})")


def backoff(attempt):
    """Seconds before try ``attempt + 1``: exponential with full jitter, never above MAX_COUNTDOWN."""
    ceiling = min(MAX_COUNTDOWN, 15 * 2 ** (attempt - 1))
    return max(1, int(random.uniform(ceiling / 2, ceiling)))


def send(reminder_id, *, now=None):
    """Send one reminder at most once per take; re-checks everything first. Returns an Outcome.

    The row is taken with a conditional update (``claimed``, ``attempts + 1``) before the mail
    server is called and marked ``sent`` right after it accepts the message. A sender killed
    between the two leaves a ``claimed`` row that is taken over after ``send_lease()``: the
    e-mail may then go twice if the server had already accepted it; the Message-ID is the same
    both times, so mail providers and clients fold the two (docs/reminders.md).
    """
    from . import emails

    now = now or timezone.now()
    reminder = _with_world(Reminder.objects.filter(pk=reminder_id)).first()
    if reminder is None:
        return Outcome("gone")
    if reminder.sent_at is not None or reminder.status not in (Reminder.Status.SCHEDULED, Reminder.Status.CLAIMED):
        return Outcome("done")
    if reminder.status == Reminder.Status.CLAIMED:
        age = now - reminder.claimed_at
        if age < send_lease():
            return Outcome("busy", retry_in=int((send_lease() - age).total_seconds()) + 1)
    if reminder.due_at > now:
        return Outcome("not_due")
    row = Reminder.objects.filter(pk=reminder.pk, sent_at__isnull=True, status=reminder.status)
    row = row.filter(claimed_at=reminder.claimed_at) if reminder.claimed_at else row.filter(claimed_at__isnull=True)
    reason = why_not(reminder, now)
    token = None if reason else reminder.response.live_token()
    if reason is None and token is None:
        reason = "the link was withdrawn"
    if reason:
        won = row.update(status=Reminder.Status.SKIPPED, last_error=reason)
        return Outcome("skipped" if won else "lost_race", detail=reason)
    if in_quiet_hours(reminder.response.assignment.couple.practice, now):
        row.filter(status=Reminder.Status.SCHEDULED).update(claimed_at=None)  # the sweep takes it after
        return Outcome("quiet")
    if not row.update(status=Reminder.Status.CLAIMED, claimed_at=now, attempts=F("attempts") + 1):
        return Outcome("lost_race")
    attempts = reminder.attempts + 1
    mine = Reminder.objects.filter(pk=reminder.pk, status=Reminder.Status.CLAIMED, claimed_at=now)
    try:
        emails.send_partner_reminder(reminder, token)
    except Exception as exc:  # every failure is recorded for the counselor, none crashes the worker
        permanent, words = classify(exc)
        log.warning("Reminder %s to partner %s failed: %s (%r)", reminder.pk, reminder.response.partner_id, words, exc)
        if permanent or attempts >= MAX_ATTEMPTS:
            if not permanent:
                words = f"{words} after {attempts} tries"
            mine.update(status=Reminder.Status.FAILED, last_error=words[:300])
            return Outcome("failed", detail=words)
        delay = backoff(attempts)
        mine.update(status=Reminder.Status.SCHEDULED, claimed_at=now, last_error=words[:300])
        return Outcome("retry", retry_in=delay, detail=words)
    Reminder.objects.filter(pk=reminder.pk, sent_at__isnull=True).update(
        status=Reminder.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return Outcome("sent")


# --- Counselor notices ----------------------------------------------------------------


def notify_counselor(assignment_id, what, *, now=None):
    """Send the counselor's "both finished" or "overdue" e-mail once per assignment.

    The conditional update on the assignment's ``*_notified_at`` is the claim: of any number of
    racing calls, one sends. If the send fails the claim is released and the error re-raised, so
    the task retries (and the sweep catches up later).
    """
    from . import emails

    now = now or timezone.now()
    field_name = {"both_finished": "both_finished_notified_at", "overdue": "overdue_notified_at"}[what]
    status = Assignment.Status.COMPLETED if what == "both_finished" else Assignment.Status.OPEN
    claim = Assignment.objects.filter(pk=assignment_id, status=status, **{f"{field_name}__isnull": True})
    if what == "overdue":
        claim = claim.filter(due_at__lt=now)
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


# --- Counselor actions ----------------------------------------------------------------


class RefusedError(Exception):
    """A counselor action that cannot be done now; the message says why, in words."""


def remind_now(response, *, now=None):
    """Plan a MANUAL reminder sent at once (after commit). At most one per partner per 12 hours.

    Returns the new Reminder; raises RefusedError with a message for the counselor otherwise.
    """
    from .tasks import send_reminder

    now = now or timezone.now()
    partner = response.partner
    with transaction.atomic():
        # Locking the partner serialises two clicks (or two counselors' tabs) on the same person.
        Partner.objects.select_for_update().filter(pk=partner.pk).first()
        response = Response.objects.select_related("assignment__couple__practice", "partner").get(pk=response.pk)
        assignment = response.assignment
        if assignment.status != Assignment.Status.OPEN:
            raise RefusedError("This assessment is no longer open, so there is nothing to remind about.")
        if response.submitted_at is not None:
            raise RefusedError(f"{partner.first_name} has already finished.")
        if partner.reminders_unsubscribed_at is not None:
            raise RefusedError(f"{partner.first_name} unsubscribed from reminders, so none can be sent.")
        last = Reminder.objects.filter(response__partner=partner, kind=Reminder.Kind.MANUAL).aggregate(
            at=Max("due_at")
        )["at"]
        if last is not None and now - last < MANUAL_GAP:
            again = timezone.localtime(last + MANUAL_GAP, assignment.couple.practice.tz)
            raise RefusedError(
                f"{partner.first_name} was reminded less than 12 hours ago. "
                f"You can remind again after {again:%a %-d %b, %H:%M}."
            )
        sequence = (response.reminders.filter(kind=Reminder.Kind.MANUAL).aggregate(n=Max("sequence"))["n"] or 0) + 1
        try:
            with transaction.atomic():
                reminder = Reminder.objects.create(
                    response=response, kind=Reminder.Kind.MANUAL, sequence=sequence, due_at=now, claimed_at=now
                )
        except IntegrityError:
            raise RefusedError(f"A reminder to {partner.first_name} was just sent.") from None
        send_reminder.delay_on_commit(reminder.pk)
    return reminder


def set_paused(couple, paused):
    """Pause or resume the couple's automatic reminders. Returns True when it changed anything."""
    return bool(Couple.objects.filter(pk=couple.pk).exclude(reminders_paused=paused).update(reminders_paused=paused))


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
    from django.urls import reverse

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
    failures: list
    can_remind: bool
    remind_blocked: str


def _line(reminder, partner, practice, now):
    label = reminder.get_kind_display()
    if reminder.status == Reminder.Status.SENT:
        return ReminderLine(reminder, "sent", reminder.sent_at, f"{label} sent")
    if reminder.status == Reminder.Status.FAILED:
        return ReminderLine(reminder, "failed", reminder.claimed_at, f"{label} failed: {reminder.last_error}")
    if reminder.status == Reminder.Status.SKIPPED:
        why = f": {reminder.last_error}" if reminder.last_error else " (not needed)"
        return ReminderLine(reminder, "skipped", reminder.due_at, f"{label} not sent{why}")
    if reminder.status == Reminder.Status.CLAIMED:
        return ReminderLine(reminder, "sending", reminder.claimed_at, f"{label} being sent")
    at = max(reminder.due_at, now)
    at = next_send_time(practice, at)
    retrying = f" (retrying: {reminder.last_error})" if reminder.last_error else ""
    return ReminderLine(reminder, "scheduled", at, f"{label} scheduled{retrying}")


def reminders_by_response(assignments):
    """Every reminder of these assignments in one query, as {response id: [reminders by due time]}."""
    by_response = {}
    for reminder in Reminder.objects.filter(response__assignment__in=assignments).order_by("due_at", "id"):
        by_response.setdefault(reminder.response_id, []).append(reminder)
    return by_response


def panel(assignment, *, now=None):
    """Per partner, the reminders sent and scheduled and whether "Remind now" is possible.

    Two queries: the responses with their partners, and every reminder of the assignment.
    """
    now = now or timezone.now()
    practice = assignment.couple.practice
    prefetched = getattr(assignment, "_prefetched_objects_cache", {}).get("responses")
    if prefetched is not None:  # a page showing several administrations loaded them already
        responses = sorted(prefetched, key=lambda r: r.partner.position)
    else:
        responses = list(assignment.responses.select_related("partner").order_by("partner__position"))
    reminders = getattr(assignment, "reminders_by_response", None)
    if reminders is None:
        reminders = reminders_by_response([assignment])
    panels = []
    for response in responses:
        partner = response.partner
        rows = reminders.get(response.pk, [])
        if response.submitted_at is not None:
            # What was planned for after they finished simply did not happen: no need to list it.
            rows = [r for r in rows if r.status != Reminder.Status.SKIPPED or r.due_at <= response.submitted_at]
        lines = [_line(r, partner, practice, now) for r in rows]
        manual = [r.due_at for r in rows if r.kind == Reminder.Kind.MANUAL]
        blocked = ""
        if assignment.status != Assignment.Status.OPEN:
            blocked = "The assessment is not open."
        elif response.submitted_at is not None:
            blocked = f"{partner.first_name} has finished."
        elif partner.reminders_unsubscribed_at is not None:
            blocked = f"{partner.first_name} unsubscribed from reminders."
        elif manual and now - max(manual) < MANUAL_GAP:
            blocked = f"{partner.first_name} was reminded less than 12 hours ago."
        panels.append(
            PartnerPanel(
                response=response,
                partner=partner,
                lines=lines,
                failures=[
                    f"Reminder to {partner.first_name} failed: {line.reminder.last_error}"
                    for line in lines
                    if line.state == "failed"
                ],
                can_remind=not blocked,
                remind_blocked=blocked,
            )
        )
    return panels
