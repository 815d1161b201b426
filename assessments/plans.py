"""Measurement plans: a couple re-assessed every N weeks without anyone having to remember.

A plan has a rhythm (every 2, 4, 6 or 8 weeks), a number of administrations (1 to 52, or until
stopped), a start day and a due period. Its next administration's day is ``next_on`` on the
practice's calendar; it comes due at ``PLAN_TIME`` that day, in the practice's time zone.

Exactly once, in two steps, each a conditional change of a locked row:

1. ``sweep()`` (beat, every minute) finds the active plans whose day has come. For each, in one
   transaction with the plan row locked, it writes a ``PlannedAdministration`` (unique per plan and
   sequence), its outbox job (``plan_administration``) and moves the plan on to its next day. Two
   sweeps at the same moment, a restart or a late sweep find the plan locked or already moved on.
2. The job's worker (``administer()``) locks that row, re-checks the world (the couple archived, the
   plan ended meanwhile) and calls ``workflows.assign``: one assignment, both partners invited, the
   usual pair-aware reminders. A second delivery of the job finds the assignment already made.

An administration still open when the next one's day comes is cancelled ("superseded", answers
kept) so that the couple has one open assessment, as the counselor's own "Assign" requires.
A sweep that comes late (the beat was down) makes one administration, not a burst: the missed days
are passed over and the plan goes on from the next day on its rhythm.
"""

import datetime
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from clients.models import Couple
from practice import outbox
from practice.models import audit

from . import caseload, workflows
from .models import Instrument, MeasurementPlan, PlannedAdministration

PLAN_TIME = datetime.time(8, 0)  # the morning of the planned day (quiet hours still hold the e-mails back)
SYSTEM = "measurement plan"  # the audit trail's actor for what the plan does by itself
Status = MeasurementPlan.Status
Ended = MeasurementPlan.Ended


def due_moment(practice, day):
    """When an administration planned for ``day`` comes due: PLAN_TIME on the practice's clock."""
    return datetime.datetime.combine(day, PLAN_TIME, tzinfo=practice.tz)


def today(practice, now=None):
    return timezone.localdate(now or timezone.now(), timezone=practice.tz)


def due_at_for(practice, day, due_days):
    """The end of the last day to answer, in the practice's time zone (like the "Assign" form's due date)."""
    end = datetime.datetime.combine(day + timedelta(days=due_days), datetime.time(23, 59, 59))
    return timezone.make_aware(end, practice.tz)


def live_plan(couple):
    return couple.plans.exclude(status=Status.ENDED).first()


def upcoming(plan, count=3):
    """The next few days of an active plan (as many as remain), for the couple page's calendar.

    None while paused: the days after resuming depend on when that is."""
    if plan.next_on is None or plan.status != Status.ACTIVE:
        return []
    remaining = plan.remaining
    n = count if remaining is None else min(count, remaining)
    return [plan.next_on + timedelta(weeks=plan.every_weeks * i) for i in range(n)]


# --- The counselor's changes (each audited by the view) -------------------------------------------


class PlanError(workflows.RefusedError):
    """A plan change that cannot be done now; the message says why."""


def create(*, couple, every_weeks, administrations, start_on, due_days, by, now=None):
    """Start a couple's plan. Raises PlanError when the couple already has one, or is archived."""
    now = now or timezone.now()
    with transaction.atomic():
        Couple.objects.select_for_update().filter(pk=couple.pk).first()
        if couple.status != Couple.Status.ACTIVE:
            raise PlanError("This couple is archived. Make them active again to plan assessments.")
        if live_plan(couple) is not None:
            raise PlanError("This couple already has a plan. Change or end it instead.")
        return MeasurementPlan.objects.create(
            couple=couple,
            every_weeks=every_weeks,
            administrations=administrations,
            start_on=start_on,
            next_on=start_on,
            due_days=due_days,
            created_by=by,
            created_at=now,
            changed_at=now,
        )


def _last_day(plan):
    return plan.planned.order_by("-sequence").values_list("on", flat=True).first()


def _on_rhythm_from(plan, first, now):
    """The first day on the plan's rhythm, counted from ``first``, whose moment has not yet passed."""
    practice = plan.couple.practice
    day = first
    while due_moment(practice, day) <= now:
        day += timedelta(weeks=plan.every_weeks)
    return day


def change(plan, *, every_weeks, administrations, due_days, start_on=None, now=None):
    """A new rhythm, number or due period: it applies from the next administration on.

    The next day is the last administration's day plus the new rhythm (never in the past), or the
    new start day when none was made yet. A number at or below what was made ends the plan.
    """
    now = now or timezone.now()
    with transaction.atomic():
        plan = MeasurementPlan.objects.select_for_update().select_related("couple__practice").get(pk=plan.pk)
        if plan.status == Status.ENDED:
            raise PlanError("This plan has ended. Start a new one instead.")
        if administrations is not None and administrations < plan.made:
            raise PlanError(f"This plan has already made {plan.made} administrations; choose at least that many.")
        plan.every_weeks, plan.administrations, plan.due_days = every_weeks, administrations, due_days
        last = _last_day(plan)
        if last is None:
            plan.start_on = start_on or plan.start_on
            plan.next_on = plan.start_on
        else:
            plan.next_on = _on_rhythm_from(plan, last + timedelta(weeks=every_weeks), now)
        plan.changed_at = now
        plan.save()
        if administrations is not None and plan.made >= administrations:
            _end(plan, Ended.COMPLETED, now)
    return plan


def set_paused(plan, paused, *, now=None):
    """Pause (nothing is created while paused) or resume (from the next day on the rhythm that has
    not passed yet). False when it changed nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        plan = MeasurementPlan.objects.select_for_update().select_related("couple__practice").get(pk=plan.pk)
        if plan.status == Status.ENDED or (plan.status == Status.PAUSED) == paused:
            return False
        plan.status = Status.PAUSED if paused else Status.ACTIVE
        if not paused and plan.next_on is not None:
            plan.next_on = _on_rhythm_from(plan, plan.next_on, now)
        plan.changed_at = now
        plan.save(update_fields=["status", "next_on", "changed_at"])
    return True


def _end(plan, reason, now):
    MeasurementPlan.objects.filter(pk=plan.pk).update(
        status=Status.ENDED, ended_reason=reason, ended_at=now, next_on=None, changed_at=now
    )
    plan.status, plan.ended_reason, plan.ended_at, plan.next_on = Status.ENDED, reason, now, None
    caseload.refresh(plan.couple_id)  # a plan that ran its course is an inbox item
    if reason != Ended.COMPLETED:
        # An administration whose day came but whose worker has not run yet is not made after all.
        plan.planned.filter(assignment__isnull=True, skipped_reason="").update(skipped_reason=Ended(reason).label)


def end(plan, *, now=None):
    """The counselor ends the plan: nothing more is created (assessments already sent stay as they are)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = MeasurementPlan.objects.select_for_update().filter(pk=plan.pk).first()
        if locked is None or locked.status == Status.ENDED:
            return False
        _end(locked, Ended.STOPPED, now)
    plan.status, plan.ended_reason, plan.ended_at, plan.next_on = Status.ENDED, Ended.STOPPED, now, None
    return True


# --- The sweep (beat, every minute) ---------------------------------------------------------------


def _candidates(now):
    # A superset in SQL (no time zone is more than a day ahead of UTC); the exact moment in Python.
    horizon = now.date() + timedelta(days=1)
    return list(MeasurementPlan.objects.filter(status=Status.ACTIVE, next_on__lte=horizon).values_list("pk", flat=True))


def end_archived(*, now=None):
    """Plans of archived couples end: archiving stops the rest. Returns how many ended."""
    now = now or timezone.now()
    ended = 0
    for plan in MeasurementPlan.objects.exclude(status=Status.ENDED).filter(couple__status=Couple.Status.ARCHIVED):
        with transaction.atomic():
            locked = MeasurementPlan.objects.select_for_update().select_related("couple__practice").get(pk=plan.pk)
            if locked.status == Status.ENDED:
                continue
            _end(locked, Ended.ARCHIVED, now)
            audit(None, "plan.end", locked, practice=locked.couple.practice, actor_label=SYSTEM, reason=Ended.ARCHIVED)
            ended += 1
    return ended


def sweep(*, now=None):
    """Write the administrations whose day has come, each with its outbox job. Safe to run in parallel.

    Returns the PlannedAdministration rows this call wrote.
    """
    now = now or timezone.now()
    end_archived(now=now)
    written = []
    for pk in _candidates(now):
        with transaction.atomic():
            # skip_locked: another sweep is writing this plan's administration right now.
            plan = (
                MeasurementPlan.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("couple__practice")
                .filter(pk=pk, status=Status.ACTIVE)
                .first()
            )
            if plan is None or plan.next_on is None or due_moment(plan.couple.practice, plan.next_on) > now:
                continue  # taken, paused, ended or moved on meanwhile, or its moment is later today
            written.append(_write_next(plan, now))
    return written


def _write_next(plan, now):
    practice = plan.couple.practice
    sequence = plan.made + 1
    planned = PlannedAdministration.objects.create(plan=plan, sequence=sequence, on=plan.next_on, created_at=now)
    outbox.enqueue(
        "plan_administration",
        f"plan-administration:{planned.pk}",
        payload={"planned": planned.pk, "at": now.isoformat()},
        practice=practice,
        now=now,
    )
    plan.made = sequence
    if plan.administrations is not None and sequence >= plan.administrations:
        plan.save(update_fields=["made"])
        _end(plan, Ended.COMPLETED, now)
        audit(None, "plan.end", plan, practice=practice, actor_label=SYSTEM, reason=Ended.COMPLETED)
    else:
        plan.next_on = _on_rhythm_from(plan, plan.next_on + timedelta(weeks=plan.every_weeks), now)
        plan.save(update_fields=["made", "next_on"])
    return planned


# --- The worker: one planned administration becomes an assignment ---------------------------------


def administer(planned_id, *, at=None, now=None):
    """Create the assignment of one planned administration, once. Returns assigned, skipped or gone.

    ``at`` is when the sweep found it due: the assignment is never dated before it (a worker whose
    clock is behind the beat's, or a clock moved forward, still gives the planned day).
    """
    now = max(now or timezone.now(), at or timezone.now())
    with transaction.atomic():
        planned = (
            PlannedAdministration.objects.select_for_update(of=("self",))
            .select_related("plan__couple__practice", "plan__couple__counselor")
            .filter(pk=planned_id)
            .first()
        )
        if planned is None or planned.assignment_id is not None or planned.skipped_reason:
            return "gone"  # deleted with its couple, made by an earlier delivery, or not needed
        plan, couple = planned.plan, planned.plan.couple
        Couple.objects.select_for_update().filter(pk=couple.pk).first()  # as "Assign" does: one open at a time
        couple.refresh_from_db(fields=["status", "counselor"])
        reason = ""
        if couple.status != Couple.Status.ACTIVE:
            reason = Ended.ARCHIVED.label
        elif couple.partners.count() != 2:
            reason = "a partner's details were missing"
        if reason:
            PlannedAdministration.objects.filter(pk=planned.pk).update(skipped_reason=reason)
            return "skipped"
        for open_one in couple.assignments.open():
            if workflows.cancel(open_one, now=now):
                audit(
                    None,
                    "assignment.superseded",
                    open_one,
                    practice=couple.practice,
                    actor_label=SYSTEM,
                    plan=plan.pk,
                    sequence=planned.sequence,
                )
        assignment, _tokens = workflows.assign(
            couple=couple,
            instrument=Instrument.current(),
            due_at=due_at_for(couple.practice, planned.on, plan.due_days),
            by=couple.counselor,  # the couple's counselor today: a plan follows a transferred couple
            now=now,
        )
        PlannedAdministration.objects.filter(pk=planned.pk).update(assignment=assignment)
        caseload.refresh(couple.pk)  # the last administration of a plan that ran its course: an inbox item
        audit(
            None,
            "assignment.create",
            assignment,
            practice=couple.practice,
            actor_label=SYSTEM,
            couple=couple.pk,
            plan=plan.pk,
            sequence=planned.sequence,
        )
    return "assigned"


def calendar(plan):
    """The plan's administrations so far, oldest first, with their assignments (for the couple page)."""
    return list(plan.planned.select_related("assignment").order_by("sequence"))
