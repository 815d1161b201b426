"""What a counselor's or a partner's action changes, and the work it leaves for later.

Each workflow runs in one transaction and writes the outbox rows of the work it asks for
(``practice.outbox.enqueue``: an e-mail, a notice, an alert); none of them talks to the broker, so
a rolled-back request leaves nothing behind and a committed one loses nothing. The outbox handlers
in ``jobs.py`` do that work later, and ``reminders.sweep`` queues the reminders that fall due.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from clients.models import Couple, Partner
from practice import outbox

from . import answering, caseload, reminders, scoring
from .models import Assignment, Reminder, Response, SafetyAlert
from .scores import score_responses


class RefusedError(Exception):
    """An action that cannot be done now; the message says why, in words for the counselor."""


# --- Assigning and cancelling ------------------------------------------------------------------


def assign(*, couple, instrument, due_at, by, now=None):
    """Create one assignment and a response (with a link) per partner; plan reminders; queue invitations.

    Returns (assignment, {partner position: token}). Tokens are shown once and never stored.
    """
    now = now or timezone.now()
    with transaction.atomic():
        assignment = Assignment.objects.create(
            couple=couple, instrument=instrument, assigned_by=by, assigned_at=now, due_at=due_at
        )
        tokens = {}
        for partner in couple.partners.all():
            response = Response.objects.create(assignment=assignment, partner=partner)
            tokens[partner.position] = response.issue_link()
            reminders.plan(response, now=now)
        for invitation in Reminder.objects.filter(response__assignment=assignment, kind=Reminder.Kind.INVITATION):
            reminders.queue(invitation, now=now)
        outbox.enqueue(
            "counselor_notice",
            f"overdue:{assignment.pk}",
            payload={"assignment": assignment.pk, "what": "overdue"},
            due_at=assignment.due_at,
            practice=couple.practice,
            now=now,
        )
        caseload.refresh(couple.pk)
    return assignment, tokens


def cancel(assignment, *, now=None):
    """Cancel an open assignment: its links stop working, its reminders are not sent.

    Answers already given are kept. Returns False when it was no longer open (a double click).
    """
    now = now or timezone.now()
    with transaction.atomic():
        if not Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN).update(
            status=Assignment.Status.CANCELLED, cancelled_at=now
        ):
            return False
        assignment.status, assignment.cancelled_at = Assignment.Status.CANCELLED, now
        reminders.skip_open(Reminder.objects.filter(response__assignment=assignment), "the assessment was cancelled")
        outbox.cancel([f"overdue:{assignment.pk}"])
        caseload.refresh(assignment.couple_id)
    return True


# --- Invitations and links ---------------------------------------------------------------------


def resend_invitation(response, *, now=None):
    """E-mail a partner their invitation once more, carrying their live link."""
    now = now or timezone.now()
    with transaction.atomic():
        last = response.reminders.filter(kind=Reminder.Kind.INVITATION).aggregate(n=Max("sequence"))["n"]
        reminder = Reminder.objects.create(
            response=response, kind=Reminder.Kind.INVITATION, sequence=(last or 0) + 1, due_at=now
        )
        reminders.queue(reminder, now=now)
    return reminder


def reissue_link(response, *, now=None):
    """Revoke a partner's link (it stops working at once, sessions included) and e-mail a new one."""
    with transaction.atomic():
        response.issue_link()
        return resend_invitation(response, now=now)


def remind_now(response, *, now=None):
    """A reminder the counselor asks for, sent at once (after quiet hours). At most one per partner per
    ``reminders.MANUAL_GAP``, and none within ``reminders.MESSAGE_GAP`` of the last message to them.
    Returns the Reminder; raises RefusedError with a message otherwise."""
    now = now or timezone.now()
    partner = response.partner
    with transaction.atomic():
        # Locking the partner serialises two clicks (or two counselors' tabs) on the same person.
        Partner.objects.select_for_update().filter(pk=partner.pk).first()
        response = Response.objects.select_related("assignment__couple__practice", "partner").get(pk=response.pk)
        refusal = reminders.remind_refusal(
            response, reminders.last_manual(partner), now, reminders.last_message(partner, now)
        )
        if refusal:
            raise RefusedError(refusal)
        sequence = (response.reminders.filter(kind=Reminder.Kind.MANUAL).aggregate(n=Max("sequence"))["n"] or 0) + 1
        try:
            with transaction.atomic():
                reminder = Reminder.objects.create(
                    response=response, kind=Reminder.Kind.MANUAL, sequence=sequence, due_at=now
                )
        except IntegrityError:
            raise RefusedError(f"A reminder to {partner.name} was just sent.") from None
        reminders.queue(reminder, now=now)
    return reminder


def set_paused(couple, paused):
    """Pause or resume the couple's automatic reminders. Returns True when it changed anything."""
    return bool(Couple.objects.filter(pk=couple.pk).exclude(reminders_paused=paused).update(reminders_paused=paused))


# --- Answering, safety and submitting ----------------------------------------------------------


def record_safety(response, *, now=None):
    """Recompute the respondent's safety level from their safety answers, raising an alert when it calls for one.

    Call it in the transaction that stored the answers, so that an alert exists exactly when the
    answers that raise it do. The level is the respondent's and the counselor's only: never shown
    to the partner, never in a shared summary, an e-mail or a score. Two queries, more on a change.
    """
    specs = scoring.items_from_instrument(answering.definition(response.assignment.instrument_id))
    codes = [s.id for s in specs if s.safety_code]
    values = dict(response.answers.filter(item__code__in=codes).values_list("item__code", "value"))
    level = scoring.safety_level(specs, values)
    if response.safety_level != level:
        response.safety_level = level
        Response.objects.filter(pk=response.pk).update(safety_level=level)
        raise_alert(response, now=now)
        caseload.refresh(response.assignment.couple_id)
    return level


RANK = {"": 0, "none": 0, "concern": 1, "urgent": 2}


def raise_alert(response, *, now=None):
    """Open (or raise the level of) the safety alert of a response whose level calls for one.

    The counselor's e-mail and, unless the alert is acknowledged in time, the practice admins'
    reminder are outbox rows written here. A level that falls later leaves the alert as it is: the
    counselor still needs to know what was answered.
    """
    if not response.is_safety_raised:
        return None
    now = now or timezone.now()
    alert, created = SafetyAlert.objects.get_or_create(
        response=response, defaults={"level": response.safety_level, "raised_at": now}
    )
    if not created:
        if RANK[response.safety_level] <= RANK[alert.level]:
            return alert
        # Higher than before: open again, even if the counselor had acknowledged the lower level.
        SafetyAlert.objects.filter(pk=alert.pk).update(level=response.safety_level, acknowledged_at=None)
        alert.level, alert.acknowledged_at = response.safety_level, None
    practice = response.assignment.couple.practice
    outbox.enqueue(
        "safety_alert",
        f"safety-alert:{alert.pk}:{alert.level}",
        payload={"alert": alert.pk},
        practice=practice,
        now=now,
    )
    outbox.enqueue(
        "safety_escalation",
        f"safety-escalation:{alert.pk}:{alert.level}",
        payload={"alert": alert.pk},
        due_at=now + timedelta(hours=practice.alert_escalation_hours),
        practice=practice,
        now=now,
    )
    return alert


def submit(response, *, now=None):
    """Submit a response once. Returns True for the call that submitted it, False for repeats.

    The conditional update makes a double click or two tabs produce exactly one submission. The
    score is stored; a safety level that calls for it raises the counselor's alert. When this makes
    both partners finished, the assignment completes, attunement is scored for both, and the
    counselor's "both finished" e-mail is queued, once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        won = Response.objects.filter(pk=response.pk, submitted_at__isnull=True).update(submitted_at=now)
        if not won:
            return False
        response.submitted_at = now
        assignment = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("couple__practice", "instrument")
            .get(pk=response.assignment_id)
        )
        responses = list(assignment.responses.select_related("partner").order_by("partner__position"))
        for r in responses:
            r.assignment = assignment
        mine = next(r for r in responses if r.pk == response.pk)
        mine.submitted_at = now
        # One read of both partners' answers, one upsert of the scores (attunement once both finished).
        score_responses(assignment.instrument, responses, now=now)
        response.safety_level, response.assignment, response.partner = mine.safety_level, assignment, mine.partner
        raise_alert(mine, now=now)
        reminders.skip_open(Reminder.objects.filter(response=response), f"{mine.partner.name} had finished")
        if all(r.submitted_at is not None for r in responses):
            Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN).update(
                status=Assignment.Status.COMPLETED, completed_at=now
            )
            outbox.cancel([f"overdue:{assignment.pk}"])
            outbox.enqueue(
                "counselor_notice",
                f"both-finished:{assignment.pk}",
                payload={"assignment": assignment.pk, "what": "both_finished"},
                practice=assignment.couple.practice,
                now=now,
            )
            outbox.enqueue(
                "comparison_report",
                f"report:{assignment.pk}",
                payload={"assignment": assignment.pk},
                practice=assignment.couple.practice,
                now=now,
            )
        caseload.refresh(assignment.couple_id)
    return True


# --- After both finished: what the couple may see -------------------------------------------------


def _notify_partners(responses, key, *, now):
    """A discreet "your counselor shared something with you" to each partner, through their own link."""
    for response in responses:
        outbox.enqueue(
            "partner_notice",
            f"{key}:{response.pk}",
            payload={"response": response.pk, "sequence": int(now.timestamp())},
            practice=response.assignment.couple.practice,
            now=now,
        )


def release_summary(assignment, responses, *, now=None):
    """Share the couple summary (both finished, both agreed). Returns False when it was already shared.

    ``responses`` is ``comparison.responses_by_position(assignment)``. Each partner is told, discreetly.
    """
    now = now or timezone.now()
    if refusal := assignment.release_refusal(responses):
        raise RefusedError(refusal)
    with transaction.atomic():
        if not Assignment.objects.filter(pk=assignment.pk, released_at__isnull=True).update(released_at=now):
            return False
        assignment.released_at = now
        _notify_partners(responses.values(), f"shared-summary:{assignment.pk}:{int(now.timestamp())}", now=now)
    return True


def withdraw_summary(assignment):
    """Stop sharing the couple summary (its page says nothing has been shared). False if it was not shared."""
    withdrawn = Assignment.objects.filter(pk=assignment.pk, released_at__isnull=False).update(released_at=None)
    assignment.released_at = None
    return bool(withdrawn)


def share_results(assignment, responses, *, now=None):
    """Let each finished partner see their own results (a practice that shows them at the feedback
    session). Returns the partners it changed anything for."""
    now = now or timezone.now()
    shared = []
    with transaction.atomic():
        for response in responses.values():
            if response.submitted_at is None or response.results_released_at is not None:
                continue
            if Response.objects.filter(pk=response.pk, results_released_at__isnull=True).update(
                results_released_at=now
            ):
                response.results_released_at = now
                shared.append(response)
        _notify_partners(shared, f"shared-results:{assignment.pk}", now=now)
    return [r.partner for r in shared]


def end_access(response, *, now=None):
    """Close a partner's link at once, submitted or not: every session opened with it ends too.

    Answers are kept; "Replace link" gives the partner a new one. Returns False when no link was open.
    """
    return bool(response.links.filter(revoked_at__isnull=True).update(revoked_at=now or timezone.now()))


def acknowledge_alert(alert, *, by, now=None):
    """The counselor has seen and taken charge of a safety alert. False when it was already acknowledged."""
    now = now or timezone.now()
    done = SafetyAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, acknowledged_by=by
    )
    if done:
        alert.acknowledged_at, alert.acknowledged_by = now, by
        caseload.refresh_where(assignments__responses__safety_alert=alert.pk)
    return bool(done)
