"""Work for later: the transactional outbox and the dispatcher that hands it to the workers.

A workflow that wants something done later (an e-mail, a counselor's notice, a safety alert, an
export) calls ``enqueue()`` inside its own transaction: one ``Job`` row, committed or rolled back
with the change that asked for it. A web request never waits on the broker: after a commit that
added due work it only *nudges* the dispatcher, with a sub-second timeout, and a nudge that fails
is forgotten (the next beat tick finds the row anyway).

The dispatcher (``dispatch()``, the ``practice.tasks.dispatch`` task that beat runs every few
seconds and a nudge runs at once) claims due rows with a conditional UPDATE and hands them to the
workers in batches (``practice.tasks.run_jobs``). A worker takes each row (queued -> running) with
another conditional UPDATE, runs the handler registered for its kind, and records the outcome:

* done;
* ``Later(at)``: waiting again until ``at`` (a practice's quiet hours);
* a transient failure (refused or timed-out connection, SMTP 4xx, a full disk): waiting again after
  a backoff with jitter that grows from 30 seconds to a day, up to ``max_attempts``; while a channel
  (the mail server) keeps failing, one waiting row is tried each minute as a probe, and the first
  success brings every waiting row of that channel forward, so held mail goes out within a minute
  of the server coming back;
* a permanent failure (SMTP 5xx for the recipient, ``Permanent``): failed at once, with words for
  the people who see it.

Leases: a row handed out but not started within ``queue_lease()`` (the broker lost the message, or
Redis restarted empty) is handed out again; a row running past its kind's lease (its worker died)
is taken back. Every transition is a conditional UPDATE, so two dispatchers, two workers or a
message delivered twice change a row once. The one at-least-once window left: a worker killed after
the mail server accepted a message and before the row is marked done sends it again after the
lease; each e-mail carries a fixed Message-ID so that mail clients fold the two copies.
"""

import contextlib
import errno
import logging
import random
import smtplib
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Max, Min
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from . import mail, prepared
from .models import Job

log = logging.getLogger(__name__)

RUN_TASK = "practice.tasks.run_jobs"
DISPATCH_TASK = "practice.tasks.dispatch"
MAX_BACKOFF = 24 * 60 * 60  # seconds
BATCH = 50  # rows per worker task (one SMTP connection each)
LIMIT = 2000  # rows per dispatch
KEEP = timedelta(days=30)  # finished rows are kept this long (failed ones for good)
NUDGE_TIMEOUT = 0.5  # seconds a web request may spend nudging the dispatcher


class Later(Exception):  # noqa: N818 - reads as what it asks for: raise Later(at)
    """Raised by a handler: not now, try again at ``at`` (not an attempt, not an error)."""

    def __init__(self, at, reason=""):
        super().__init__(reason)
        self.at = at
        self.reason = reason


class Permanent(Exception):  # noqa: N818
    """Raised by a handler: this can never succeed; the message says why, in words."""


@dataclass(frozen=True)
class Kind:
    name: str
    run: Callable[[Job, datetime], object]
    lease_for: Callable[[], timedelta]
    max_attempts: int
    channel: str
    on_failure: Callable[[Job, str], None] | None
    atomic: bool = True

    @property
    def lease(self):
        return self.lease_for()


def queue_lease():
    """A row handed out and not started within this was lost by the broker (OUTBOX_QUEUE_LEASE_SECONDS)."""
    return timedelta(seconds=settings.OUTBOX_QUEUE_LEASE_SECONDS)


def probe_every():
    """While a channel fails, one waiting row is retried this often (OUTBOX_PROBE_SECONDS)."""
    return timedelta(seconds=settings.OUTBOX_PROBE_SECONDS)


def mail_lease():
    """How long a sender may hold a mail job: longer than any SMTP conversation EMAIL_TIMEOUT allows."""
    return timedelta(seconds=2 * settings.EMAIL_TIMEOUT + 3)


_kinds: dict[str, Kind] = {}


def handler(name, *, lease=None, max_attempts=15, channel="", on_failure=None, atomic=True):
    """Register ``fn(job, now)``, the function that does one kind of job; it re-checks the world first.

    ``channel`` groups kinds that fail together ("mail": they share the mail server, and their lease
    follows EMAIL_TIMEOUT); ``lease`` is how long a worker may hold a row before it counts as dead;
    ``on_failure(job, words)`` is told when a job fails for good. ``atomic=False``: a mail kind whose
    one write after the send goes through ``finish()`` needs no transaction around the handler.
    """

    def register(fn):
        if lease is not None:
            lease_for = lambda: lease  # noqa: E731
        elif channel == "mail":
            lease_for = mail_lease
        else:
            lease_for = lambda: timedelta(minutes=10)  # noqa: E731
        _kinds[name] = Kind(name, fn, lease_for, max_attempts, channel, on_failure, atomic)
        return fn

    return register


def kinds():
    return dict(_kinds)


# --- Writing a job ---------------------------------------------------------------------------


def enqueue(kind, key, *, payload=None, due_at=None, practice=None, now=None):
    """Write one job in the caller's transaction, once per ``key``; returns it. One query.

    Asking again for the same key returns the existing row unchanged. When the job is due now, the
    dispatcher is nudged after the commit (never before, and never for a transaction that rolls back).
    """
    now = now or timezone.now()
    due_at = due_at or now
    job = Job(kind=kind, key=key[:200], payload=payload or {}, due_at=due_at, practice=practice, created_at=now)
    # INSERT ... ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id: the row's id either way,
    # without a read first and without touching an existing row's state.
    Job.objects.bulk_create([job], update_conflicts=True, unique_fields=["key"], update_fields=["key"])
    if due_at <= now:
        nudge_on_commit()
    return job


def cancel(keys):
    """Mark waiting jobs as no longer needed (the work they would do has become pointless)."""
    return cancel_jobs(Job.objects.filter(key__in=list(keys)))


def cancel_jobs(jobs):
    """``cancel`` for a queryset of jobs (one UPDATE; only those still waiting change)."""
    return jobs.filter(status=Job.Status.PENDING).update(status=Job.Status.CANCELLED, finished_at=timezone.now())


def nudge_on_commit():
    """Ask for a dispatch once the current transaction commits (once per transaction)."""
    if any(callback is nudge for _sids, callback, _robust in connection.run_on_commit):
        return
    transaction.on_commit(nudge, robust=True)


def nudge():
    """Ask the workers for a dispatch now. Best effort: a broker that is down or hung costs at most
    about NUDGE_TIMEOUT, and the next beat tick does the same work anyway."""
    app = current_app
    # max_retries=0: one try, no reconnect loop (kombu otherwise retries for about two seconds).
    options = {"socket_timeout": NUDGE_TIMEOUT, "socket_connect_timeout": NUDGE_TIMEOUT, "max_retries": 0}
    try:
        with app.connection_for_write(connect_timeout=NUDGE_TIMEOUT, transport_options=options) as conn:
            app.send_task(DISPATCH_TASK, connection=conn, retry=False, ignore_result=True)
    except Exception as exc:  # the broker is down or slow: beat will dispatch in a few seconds
        log.info("Dispatcher not nudged (%s); beat will dispatch", type(exc).__name__)


# --- Handing jobs out --------------------------------------------------------------------------


@dataclass
class Dispatch:
    claimed: list = field(default_factory=list)
    taken_back: int = 0
    returned: int = 0
    probes: int = 0

    def as_dict(self):
        return {"claimed": len(self.claimed), "taken_back": self.taken_back, "returned": self.returned}


def take_back(now):
    """Rows handed out but never started, and rows whose worker died: waiting again (or failed)."""
    lost = Job.objects.filter(status=Job.Status.QUEUED, claimed_at__lt=now - queue_lease()).update(
        status=Job.Status.PENDING, claim=""
    )
    dead = 0
    for kind in _kinds.values():
        running = Job.objects.filter(kind=kind.name, status=Job.Status.RUNNING, claimed_at__lt=now - kind.lease)
        exhausted = running.filter(attempts__gte=kind.max_attempts)
        for job in exhausted:
            _fail(job, Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING), "the worker stopped each time", now)
        dead += running.update(status=Job.Status.PENDING, claim="", due_at=now)
    return lost + dead


def probe(now):
    """While a channel fails, make one waiting row due each probe_every() so recovery is seen at once."""
    probes = 0
    for channel in {k.channel for k in _kinds.values() if k.channel}:
        names = [k.name for k in _kinds.values() if k.channel == channel]
        backing_off = Job.objects.filter(kind__in=names, status=Job.Status.PENDING, attempts__gt=0, due_at__gt=now)
        last_try = backing_off.aggregate(at=Max("claimed_at"))["at"]
        if last_try is None or now - last_try < probe_every():
            continue
        first = backing_off.order_by("due_at", "pk").values_list("pk", flat=True).first()
        probes += Job.objects.filter(pk=first, status=Job.Status.PENDING).update(due_at=now)
    return probes


def dispatch(*, now=None, limit=LIMIT, batch=BATCH):
    """Claim due jobs and hand them to the workers in batches of one kind. Safe to run in parallel."""
    now = now or timezone.now()
    result = Dispatch(taken_back=take_back(now), probes=probe(now))
    with contextlib.suppress(Exception):  # the cache is for operators; a Redis away must not stop dispatching
        cache.set("outbox:last_dispatch", now.isoformat(), None)
    prune(now)
    due = Job.objects.filter(status=Job.Status.PENDING, due_at__lte=now).order_by("due_at", "pk")
    ids = list(due.values_list("pk", flat=True)[:limit])
    if not ids:
        return result
    claim = uuid.uuid4().hex
    Job.objects.filter(pk__in=ids, status=Job.Status.PENDING).update(
        status=Job.Status.QUEUED, claim=claim, claimed_at=now
    )
    mine = list(
        Job.objects.filter(claim=claim, status=Job.Status.QUEUED)
        .order_by("kind", "due_at", "pk")
        .values_list("kind", "pk")
    )
    by_kind = {}
    for kind, pk in mine:
        by_kind.setdefault(kind, []).append(pk)
    for pks in by_kind.values():
        for start in range(0, len(pks), batch):
            chunk = pks[start : start + batch]
            try:
                current_app.send_task(RUN_TASK, args=[chunk], retry=False, ignore_result=True)
            except Exception as exc:  # the broker is gone: hand the rows back at once for the next dispatch
                log.warning("Could not hand %d jobs to the workers: %s", len(chunk), type(exc).__name__)
                result.returned += Job.objects.filter(pk__in=chunk, claim=claim, status=Job.Status.QUEUED).update(
                    status=Job.Status.PENDING, claim=""
                )
            else:
                result.claimed.extend(chunk)
    return result


def prune(now, limit=1000):
    """Forget finished rows after KEEP (a few at a time); failed rows stay as the record of what failed."""
    old = Job.objects.filter(status__in=[Job.Status.DONE, Job.Status.CANCELLED], finished_at__lt=now - KEEP)
    ids = list(old.values_list("pk", flat=True)[:limit])
    if ids:
        Job.objects.filter(pk__in=ids).delete()


# --- Doing a job -------------------------------------------------------------------------------


def classify(exc):
    """(permanent?, words for the people who see it) for an exception a job raised."""
    if isinstance(exc, Permanent):
        return True, str(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            return True, "the address was rejected by the mail server"
        return False, f"the mail server asked to try the address again later ({max(codes)})"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        if exc.smtp_code >= 500:
            return True, f"the practice's sender address was refused by the mail server ({exc.smtp_code})"
        # A 4xx to MAIL FROM is the server saying "not now" (busy, a full queue), not a verdict on the sender.
        return False, f"the mail server asked to try again later ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False, "the mail server refused the site's sign-in"
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return False, "the mail server could not be reached"
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_code >= 500:
            return True, f"the mail server refused the message ({exc.smtp_code})"
        return False, f"the mail server asked to try again later ({exc.smtp_code})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return False, "the mail server did not answer in time"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return False, "the disk the e-mail is written to is full"
    if isinstance(exc, ConnectionError):
        return False, "the mail server could not be reached"
    if isinstance(exc, OSError):
        return False, f"a system error ({exc.strerror or type(exc).__name__})"
    return False, f"an unexpected error ({type(exc).__name__})"


def backoff(attempt):
    """Seconds before try ``attempt + 1``: 30 s doubling to a day, with full jitter in the upper half."""
    ceiling = min(MAX_BACKOFF, 30 * 2 ** (max(1, attempt) - 1))
    return max(1, int(random.uniform(ceiling / 2, ceiling)))


def _fail(job, row, words, now):
    if not row.update(status=Job.Status.FAILED, last_error=words[:300], finished_at=now):
        return False
    kind = _kinds.get(job.kind)
    if kind is not None and kind.on_failure is not None:
        kind.on_failure(job, words)
    return True


def _take(job_id, started):
    """queued -> running, one try more, in one statement; the row's tries after it, or None (not queued).

    UPDATE ... RETURNING (PostgreSQL, SQLite 3.35+): the take and the read of what it counted are
    one round trip, where the ORM's update() would need a SELECT after it.
    """
    q = connection.ops.quote_name
    status, claimed_at, attempts = (q(Job._meta.get_field(f).column) for f in ("status", "claimed_at", "attempts"))
    # Table and column names from the model, never input.
    sql = (
        f"UPDATE {q(Job._meta.db_table)} SET {status} = %s, {claimed_at} = %s, {attempts} = {attempts} + 1"  # noqa: S608
        f" WHERE {q(Job._meta.pk.column)} = %s AND {status} = %s RETURNING {attempts}"
    )
    params = [Job.Status.RUNNING, connection.ops.adapt_datetimefield_value(started), job_id, Job.Status.QUEUED]
    with prepared.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def finish(job, rows, **values):
    """Write ``rows.update(**values)`` together with this job's "done", once the handler returns.

    For a handler's last write after a send (the reminder marked sent): on PostgreSQL it is one
    statement with the job's own (a data-modifying WITH), atomic without a transaction around the
    send; elsewhere two, in one short transaction. Not written if the handler raises; written even
    when the job is no longer this worker's (its lease ran out meanwhile): the send has happened.
    """
    job._finish = (rows, values)


def _update_sql(rows, values):
    """The SQL and parameters of ``rows.update(**values)``, without running it."""
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(values)
    if query.related_updates:
        raise ValueError("finish() updates one table")
    compiler = query.get_compiler(rows.db)
    compiler.pre_sql_setup()
    return compiler.as_sql()


def _done(job, started):
    """running -> done for this worker's take, with the handler's ``finish()`` write if it asked for one."""
    q = connection.ops.quote_name
    status, finished_at, last_error, claimed_at = (
        q(Job._meta.get_field(f).column) for f in ("status", "finished_at", "last_error", "claimed_at")
    )
    # Table and column names from the model, never input.
    sql = (
        f"UPDATE {q(Job._meta.db_table)} SET {status} = %s, {finished_at} = %s, {last_error} = ''"  # noqa: S608
        f" WHERE {q(Job._meta.pk.column)} = %s AND {status} = %s AND {claimed_at} = %s"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [Job.Status.DONE, adapt(timezone.now()), job.pk, Job.Status.RUNNING, adapt(started)]
    extra = getattr(job, "_finish", None)
    if extra is None:
        with prepared.cursor() as cursor:
            cursor.execute(sql, params)
        return
    rows, values = extra
    if connection.vendor == "postgresql":
        extra_sql, extra_params = _update_sql(rows, values)
        with prepared.cursor() as cursor:
            cursor.execute(f"WITH finish AS ({extra_sql}) {sql}", [*extra_params, *params])
        return
    with transaction.atomic():  # SQLite: WITH holds no UPDATE there
        rows.update(**values)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _mine(job_id, started):
    """The row as this worker took it (a take that lost its lease changes nothing)."""
    return Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, claimed_at=started)


def run_one(job_id, *, now=None, job=None):
    """Take one handed-out job and do it. Returns what happened: done, later, retry, failed or taken.

    ``now`` is the clock the handler sees (tests move it); leases always use the real clock. ``job``
    is the row as read before the take (``run()`` reads a batch's rows at once): its kind and
    payload never change once written; its state and tries are taken from the take itself.
    """
    started = timezone.now()
    attempts = _take(job_id, started)
    if attempts is None:
        return "taken"  # another worker has it, or it is finished
    if job is None:
        job = Job.objects.get(pk=job_id)
    job.status, job.claimed_at, job.attempts = Job.Status.RUNNING, started, attempts
    kind = _kinds.get(job.kind)
    if kind is None:
        _fail(job, _mine(job_id, started), f"nothing knows how to do a {job.kind!r} job", started)
        return "failed"
    # A mail job's own writes (the reminder marked sent, the alert marked notified) commit with
    # the job's "done": one commit after the send instead of two, and the same window as before
    # between the mail server taking a message and the database knowing (a retry then sends the
    # same Message-ID again, which folds into the first). Other kinds write progress as they go.
    # Not on SQLite: its one write lock is the whole database's, and holding it across an SMTP
    # conversation would stall every autosave of the site (and the other worker process) meanwhile.
    # A kind whose last write goes through finish() needs no transaction: that write and the "done"
    # are one statement after the send.
    together = kind.channel == "mail" and kind.atomic and connection.vendor != "sqlite"
    job._finish = None
    try:
        with transaction.atomic() if together else contextlib.nullcontext():
            kind.run(job, now or started)
            if together:
                _done(job, started)
    except Later as later:
        # Waiting for a better moment is not an attempt.
        _mine(job_id, started).update(status=Job.Status.PENDING, claim="", due_at=later.at, attempts=F("attempts") - 1)
        return "later"
    except Exception as exc:  # every failure is recorded; none stops the worker
        permanent, words = classify(exc)
        now = timezone.now()
        log.warning("Job %s (%s) failed on try %s: %s (%r)", job.pk, job.kind, job.attempts, words, exc)
        if permanent or job.attempts >= kind.max_attempts:
            if not permanent:
                words = f"{words} (gave up after {job.attempts} tries)"
            _fail(job, _mine(job_id, started), words, now)
            return "failed"
        _mine(job_id, started).update(
            status=Job.Status.PENDING,
            claim="",
            due_at=now + timedelta(seconds=backoff(job.attempts)),
            last_error=words[:300],
        )
        return "retry"
    if not together:
        _done(job, started)
    return "done"


def retry(job_id, *, now=None):
    """A failed row waits again, due now, with its tries counted afresh (someone asked to try again).

    Returns False when the row was not failed (already retried). The dispatcher is nudged on commit.
    """
    now = now or timezone.now()
    changed = Job.objects.filter(pk=job_id, status=Job.Status.FAILED).update(
        status=Job.Status.PENDING, due_at=now, attempts=0, claim="", last_error="", finished_at=None
    )
    if changed:
        nudge_on_commit()
    return bool(changed)


def bring_forward(channel, now=None):
    """The channel works again: every row waiting out a backoff on it is due now."""
    names = [k.name for k in _kinds.values() if k.channel == channel]
    waiting = Job.objects.filter(kind__in=names, status=Job.Status.PENDING, attempts__gt=0)
    return waiting.filter(due_at__gt=now or timezone.now()).update(due_at=now or timezone.now())


def run(job_ids, *, now=None):
    """Do a batch of handed-out jobs in order, over one mail connection. Returns {id: outcome}.

    A success on a channel (the mail server answered) brings that channel's backed-off rows forward.
    """
    outcomes = {}
    jobs = Job.objects.in_bulk(job_ids)  # one read for the batch; each take re-checks its own row
    with mail.batch():
        for job_id in job_ids:
            outcomes[job_id] = run_one(job_id, now=now, job=jobs.get(job_id))
    done = [jobs[i].kind for i, outcome in outcomes.items() if outcome == "done" and i in jobs]
    worked = {_kinds[kind].channel for kind in done if kind in _kinds}
    for channel in worked - {""}:
        bring_forward(channel)
    return outcomes


def run_now(*, now=None, kind=None):
    """Dispatch and do every due job in this process (for commands and tests without a worker)."""
    now = now or timezone.now()
    done = {}
    due = Job.objects.filter(status=Job.Status.PENDING, due_at__lte=now)
    if kind is not None:
        due = due.filter(kind=kind)
    ids = list(due.order_by("due_at", "pk").values_list("pk", flat=True))
    if ids:
        Job.objects.filter(pk__in=ids, status=Job.Status.PENDING).update(status=Job.Status.QUEUED, claimed_at=now)
        done = run(ids, now=now)
    return done


# --- For operators -----------------------------------------------------------------------------


def health(now=None):
    """What a readiness check reports: the oldest undelivered row and how many are waiting or failed."""
    now = now or timezone.now()
    waiting = Job.objects.undelivered()
    oldest = waiting.filter(due_at__lte=now).aggregate(at=Min("due_at"))["at"]
    return {
        "undelivered": waiting.count(),
        "oldest_due_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        "failed_last_day": Job.objects.filter(
            status=Job.Status.FAILED, finished_at__gt=now - timedelta(days=1)
        ).count(),
        "last_dispatch": last_dispatch(),
    }


def last_dispatch():
    """When a dispatcher last ran (ISO 8601), as far as the cache shared by the processes knows."""
    try:
        return cache.get("outbox:last_dispatch")
    except Exception:  # the cache is away: unknown
        return None
