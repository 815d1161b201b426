"""The counselor's weekly digest: an optional Monday-morning e-mail of counts, never a name or a score.

A practice turns it on in its settings (``Practice.weekly_digest``, off by default). ``sweep()``
(beat, every five minutes) queues one ``counselor_digest`` outbox job per counselor with active
couples, once the practice's local Monday reaches ``DIGEST_TIME``; the job's key names the counselor
and the ISO week, so a second beat, a restart or the next sweep that Monday finds it written. A
Monday that passes without a sweep (the beat down all day) is not made up later: old counts are
not worth an e-mail. The worker re-checks the setting and the counselor and counts at send time.
"""

import datetime
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from clients.models import Couple
from practice import outbox
from practice.models import Practice, User

from . import emails, inbox
from .models import Assignment, MeasurementPlan

DIGEST_WEEKDAY = 0  # Monday
DIGEST_TIME = datetime.time(8, 0)


def week_of(practice, now):
    """The practice-local ISO week of ``now``, e.g. "2026-W49"."""
    year, week, _day = timezone.localtime(now, practice.tz).isocalendar()
    return f"{year}-W{week:02d}"


def is_digest_time(practice, now):
    local = timezone.localtime(now, practice.tz)
    return local.weekday() == DIGEST_WEEKDAY and local.time() >= DIGEST_TIME


def sweep(*, now=None):
    """Queue this week's digest of every counselor whose practice's Monday morning has come. Returns the jobs."""
    now = now or timezone.now()
    jobs = []
    for practice in Practice.objects.filter(weekly_digest=True):
        if not is_digest_time(practice, now):
            continue
        week = week_of(practice, now)
        counselors = (
            Couple.objects.filter(practice=practice, status=Couple.Status.ACTIVE, counselor__is_active=True)
            .values_list("counselor_id", flat=True)
            .distinct()
        )
        for user_id in counselors:
            jobs.append(
                outbox.enqueue(
                    "counselor_digest",
                    f"digest:{user_id}:{week}",
                    payload={"user": user_id, "week": week},
                    practice=practice,
                    now=now,
                )
            )
    return jobs


def counts(user, now=None):
    """What the digest says: how many of each, for the counselor's own active couples. Numbers only."""
    now = now or timezone.now()
    practice = user.membership.practice
    waiting = Counter(item.kind for item in inbox.items(user))
    couples = Couple.objects.for_counselor(user).active()
    soon = timezone.localdate(now, timezone=practice.tz) + timedelta(days=7)
    return {
        "safety": waiting["safety"],
        "not_reviewed": waiting[inbox.KIND.NOT_REVIEWED],
        "overdue": waiting[inbox.KIND.OVERDUE],
        "undelivered": waiting[inbox.KIND.UNDELIVERED],
        "plan_ended": waiting[inbox.KIND.PLAN_ENDED],
        "couples": couples.count(),
        "open": Assignment.objects.for_counselor(user).open().filter(couple__status=Couple.Status.ACTIVE).count(),
        "planned_this_week": MeasurementPlan.objects.filter(
            couple__in=couples, status=MeasurementPlan.Status.ACTIVE, next_on__lte=soon
        ).count(),
    }


def deliver(user_id, week, *, now=None):
    """Send one counselor's digest of ``week``, if the practice still wants it. Returns sent or not needed."""
    user = User.objects.select_related("membership__practice").filter(pk=user_id, is_active=True).first()
    membership = getattr(user, "membership", None) if user is not None else None
    if membership is None or not membership.practice.weekly_digest:
        return "not needed"
    practice = membership.practice
    emails.send(
        to=user.email,
        subject=f"{practice.name}: your week",
        template="counselor_digest",
        context={
            "practice": practice,
            "counselor": user,
            "counts": counts(user, now=now),
            "url": settings.SITE_URL + reverse("assessments:inbox"),
        },
        headers={"Message-ID": f"<digest-{user.pk}-{week}@{emails.mail_domain()}>"},
    )
    return "sent"
