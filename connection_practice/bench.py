"""The benchmark behind `manage.py bench`: a synthetic practice in its own database, measured in
process through Django's test client with the full middleware stack.

Absolute timings on a shared machine are noise; what holds is a ratio measured in the same run:
each page against `floor`, a trivial signed-in view through the same middleware.
"""

import datetime
import gc
import hashlib
import http.client
import multiprocessing
import random
import socket
import socketserver
import statistics
import threading
import time
import tracemalloc
from dataclasses import dataclass

from django.db import connection, reset_queries
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone

from assessments import caseload, comparison, scoring
from assessments.models import (
    Answer,
    Assignment,
    Instrument,
    Reminder,
    Response,
    ResponseLink,
    Score,
    link_token,
)
from clients.models import Couple, Partner
from practice.access import member_required
from practice.models import Membership, Practice, User
from practice.tokens import hash_token


@member_required
def floor(request):
    """The floor: signed in, through every middleware, no work of its own."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/floor/", floor, name="bench_floor"), path("", include("connection_practice.urls"))]


@dataclass(frozen=True)
class Scale:
    name: str
    counselors: int  # besides the two measured ones (5 and 500 couples)
    couples_each: int
    administrations: int
    samples: int
    reminders: int


SCALES = {
    "small": Scale("small", counselors=0, couples_each=0, administrations=1, samples=25, reminders=200),
    "medium": Scale("medium", counselors=8, couples_each=250, administrations=2, samples=40, reminders=500),
    "large": Scale("large", counselors=38, couples_each=250, administrations=3, samples=60, reminders=1000),
}
PASSWORD = "bench-password-not-secret"  # noqa: S105


class World:
    """Ids the measurements need."""

    practice: Practice
    small_counselor: User
    big_counselor: User
    finished_couple: Couple
    finished_assignment: Assignment
    open_response: Response
    open_token: str
    couples: int = 0
    answers: int = 0


def _values(items, rng, level):
    out = {}
    for item in items:
        if item.safety_code:
            out[item.code] = 1
        else:
            target = 6 - level if item.reverse_keyed else level
            out[item.code] = min(item.scale_max, max(item.scale_min, round(target + rng.gauss(0, 0.9))))
    return out


def build(scale: Scale, log=print) -> World:
    """Bulk-insert a synthetic practice. Counselor "small" has 5 couples, "big" has 500."""
    rng = random.Random(20261126)
    instrument = Instrument.current()
    items = list(instrument.items.all())
    specs = instrument.item_specs(items)
    norms = instrument.norms()
    now = timezone.now()
    world = World()
    # No quiet hours (start == end): the reminder measurement must not wait for the morning.
    midnight = datetime.time(0, 0)
    world.practice = Practice.objects.create(
        name="Bench Practice", slug="bench-practice", quiet_hours_start=midnight, quiet_hours_end=midnight
    )
    counselors = []
    for i in range(scale.counselors + 2):
        user = User(email=f"counselor{i}@bench.example", full_name=f"Counselor {i}")
        user.set_password(PASSWORD)
        counselors.append(user)
    User.objects.bulk_create(counselors)
    counselors = list(User.objects.filter(email__endswith="@bench.example").order_by("id"))
    Membership.objects.bulk_create(Membership(user=u, practice=world.practice) for u in counselors)
    world.small_counselor, world.big_counselor = counselors[0], counselors[1]
    sizes = [5, 500] + [scale.couples_each] * scale.counselors

    couples = [
        Couple(practice=world.practice, counselor=c, label=f"Couple {c.pk}-{n:04d}", created_at=now)
        for c, size in zip(counselors, sizes, strict=True)
        for n in range(size)
    ]
    Couple.objects.bulk_create(couples, batch_size=2000)
    couples = list(Couple.objects.filter(practice=world.practice).order_by("id"))
    world.couples = len(couples)
    Partner.objects.bulk_create(
        (
            Partner(couple=c, position=pos, first_name=f"{pos}{c.pk}", email=f"{pos.lower()}{c.pk}@bench.example")
            for c in couples
            for pos in "AB"
        ),
        batch_size=5000,
    )
    partners = {(p.couple_id, p.position): p.pk for p in Partner.objects.filter(couple__practice=world.practice)}
    log(f"  {len(counselors)} counselors, {len(couples)} couples")

    # Assignments: earlier ones completed; the latest completed for 80 %, open for the rest.
    assignments = []
    for c in couples:
        for k in range(scale.administrations):
            start = now - datetime.timedelta(days=60 * (scale.administrations - k) + rng.randint(0, 20))
            latest = k == scale.administrations - 1
            roll = rng.random()
            open_ = latest and roll >= 0.8
            due = (
                start + datetime.timedelta(days=7)
                if not open_
                else now + datetime.timedelta(days=rng.choice([-3, 2, 5]))
            )
            assignments.append(
                Assignment(
                    couple=c,
                    instrument=instrument,
                    assigned_at=start,
                    due_at=due,
                    status=Assignment.Status.OPEN if open_ else Assignment.Status.COMPLETED,
                    completed_at=None if open_ else start + datetime.timedelta(days=3),
                    both_finished_notified_at=None if open_ else start + datetime.timedelta(days=3),
                )
            )
    Assignment.objects.bulk_create(assignments, batch_size=5000)
    assignments = list(Assignment.objects.filter(couple__practice=world.practice).order_by("id"))
    responses = [
        Response(
            assignment=a,
            partner_id=partners[(a.couple_id, pos)],
            order_seed=rng.randrange(2**31),
            identity_confirmed_at=a.assigned_at,
            consented_at=a.assigned_at,
            share_consent=True,
            started_at=a.assigned_at,
            submitted_at=a.completed_at if a.status == Assignment.Status.COMPLETED else None,
            safety_level="none",
        )
        for a in assignments
        for pos in "AB"
    ]
    Response.objects.bulk_create(responses, batch_size=5000)
    responses = list(Response.objects.filter(assignment__couple__practice=world.practice).order_by("id"))
    nonces = {r.pk: hashlib.sha256(f"bench-{r.pk}".encode()).hexdigest()[:32] for r in responses}
    ResponseLink.objects.bulk_create(
        (
            ResponseLink(response=r, nonce=nonces[r.pk], token_hash=hash_token(link_token(nonces[r.pk])))
            for r in responses
        ),
        batch_size=5000,
    )
    log(f"  {len(assignments)} administrations, {len(responses)} responses")

    status = {a.pk: a.status for a in assignments}
    batch: list[Answer] = []
    scores: list[Score] = []
    total = 0
    values_by_response = {}
    for r in responses:
        values = _values(items, rng, rng.choice([2, 3, 3, 4, 4, 5]))
        submitted = status[r.assignment_id] == Assignment.Status.COMPLETED
        chosen = items if submitted else items[: len(items) // 2]
        batch.extend(Answer(response_id=r.pk, item=i, value=values[i.code], seq=1, updated_at=now) for i in chosen)
        if submitted:
            values_by_response[r.pk] = values
            result = scoring.score_response(specs, values, norms)
            scores.append(
                Score(
                    response_id=r.pk,
                    instrument_version=instrument.version,
                    scoring_version=scoring.SCORING_VERSION,
                    domains=result.domains,
                    connection_index=result.connection_index,
                    straightlined=result.straightlined,
                )
            )
        if len(batch) >= 50_000:
            Answer.objects.bulk_create(batch, batch_size=10_000)
            total += len(batch)
            batch = []
    Answer.objects.bulk_create(batch, batch_size=10_000)
    total += len(batch)
    Score.objects.bulk_create(scores, batch_size=5000)
    world.answers = total
    log(f"  {total} answers, {len(scores)} scores")

    # Vacuumed tables with fresh statistics, as autovacuum keeps them in a running practice (since
    # PostgreSQL 13 it vacuums tables that only grew, too): without statistics the planner guesses at
    # tables that grew from empty a moment ago (and the caseload's rebuild below scanned whole tables
    # for every couple); without the vacuum every read of a bulk-loaded row checks its visibility
    # afresh (the caseload's progress query: 0.6 ms against 0.33 ms at `large`).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)" if connection.vendor == "postgresql" else "ANALYZE")
    # The caseload's rows, as the workflows would have kept them (bulk inserts pass them by).
    log(f"  {caseload.rebuild()} caseload rows")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE assessments_caseloadrow")
    small_couples = [c for c in couples if c.counselor_id == world.small_counselor.pk]
    finished = next(a for a in assignments if a.couple_id in {c.pk for c in small_couples} and a.status == "completed")
    world.finished_assignment = finished
    world.finished_couple = next(c for c in small_couples if c.pk == finished.couple_id)
    # Its stored comparison, as the completing submit's job leaves it (the bulk load has no jobs).
    comparison.store_report(finished.pk)
    open_response = next(r for r in responses if status[r.assignment_id] == Assignment.Status.OPEN)
    world.open_response = open_response
    world.open_token = link_token(nonces[open_response.pk])
    return world


def database_url(settings_dict):
    """A DATABASE_URL naming the database this connection uses, for a worker subprocess to share."""
    db = settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


def sample(fn, samples, warmup=5):
    """Median and p95 in milliseconds, and the query count of one call."""
    for _ in range(warmup):
        fn()
    with CaptureQueriesContext(connection) as ctx:
        fn()
    queries = len(ctx.captured_queries)
    times = []
    gc.disable()
    try:
        for _ in range(samples):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        gc.enable()
    reset_queries()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"median_ms": round(statistics.median(times), 3), "p95_ms": round(p95, 3), "queries": queries}


def get(client, url, expect=200):
    def run():
        response = client.get(url)
        if response.status_code != expect:
            raise RuntimeError(f"GET {url} answered {response.status_code}, expected {expect}")
        if hasattr(response, "streaming_content"):
            for _ in response.streaming_content:
                pass

    return run


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def measure_memory(fn):
    """Peak traced memory (MB) while fn runs; returns (result, peak_mb)."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / 2**20


def ratio(results, floor_ms):
    for value in results.values():
        value["ratio_to_floor"] = round(value["median_ms"] / floor_ms, 2) if floor_ms else None
    return results


def reminder_backlog(world, count, *, skip=0):
    """One due reminder for each of up to `count` unfinished responses (after the first `skip`).

    Returns the responses' ids."""
    now = timezone.now()
    open_responses = list(
        Response.objects.filter(assignment__couple__practice=world.practice, submitted_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[skip : skip + count]
    )
    Reminder.objects.bulk_create(
        (
            Reminder(
                response_id=rid, kind=Reminder.Kind.MANUAL, sequence=999, due_at=now - datetime.timedelta(minutes=1)
            )
            for rid in open_responses
        ),
        batch_size=5000,
    )
    return open_responses


# --- A local SMTP sink: what a worker's sends are measured against ---------------------------------


class _SinkHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to take messages as fast as a local mail server would, and count them."""

    def handle(self):
        out = self.wfile
        out.write(b"220 bench-sink ESMTP\r\n")
        for raw in self.rfile:
            verb = raw[:4].upper()
            if verb == b"EHLO":
                out.write(b"250-bench-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"DATA":
                out.write(b"354 go ahead\r\n")
                out.flush()
                for line in self.rfile:
                    if line == b".\r\n":
                        break
                with self.server.count.get_lock():
                    self.server.count.value += 1
                out.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                out.write(b"221 bye\r\n")
                return
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                out.write(b"250 ok\r\n")
            out.flush()


class _SinkServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class SmtpSink:
    """``with SmtpSink() as sink:`` a mail server on 127.0.0.1:sink.port; ``sink.messages`` counts.

    It runs in a process of its own, as a local mail server would: in this one it would take its
    share of the interpreter from the worker being measured.
    """

    def __init__(self):
        self.server = _SinkServer(("127.0.0.1", 0), _SinkHandler)
        self.port = self.server.server_address[1]
        self.count = multiprocessing.get_context("fork").Value("i", 0)
        self.process = None

    @property
    def messages(self):
        return self.count.value

    def _serve(self):
        self.server.count = self.count
        self.server.serve_forever(poll_interval=0.05)

    def __enter__(self):
        self.process = multiprocessing.get_context("fork").Process(target=self._serve, daemon=True)
        self.process.start()
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.join(timeout=10)
        self.server.server_close()

    def settings(self):
        """Django settings sending through this sink over SMTP."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": self.port,
            "EMAIL_USE_TLS": False,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
        }


# --- Many clients at once, through a real server -------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def http_get(port, path, headers):
    """One GET on a new connection; returns (status, milliseconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers=headers)
        reply = conn.getresponse()
        reply.read()
        return reply.status, (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def concurrent_load(port, path, headers, *, clients, each, workers):
    """``clients`` threads each loading ``path`` ``each`` times back to back: pages/s and latencies."""
    times, errors = [], []
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)

    def client():
        gate.wait()
        for _ in range(each):
            try:
                status, ms = http_get(port, path, headers)
            except OSError as exc:
                status, ms = type(exc).__name__, None
            with lock:
                if status == 200:
                    times.append(ms)
                else:
                    errors.append(status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    times.sort()
    pick = lambda q: round(times[min(len(times) - 1, round(q * (len(times) - 1)))], 1) if times else None  # noqa: E731
    return {
        "clients": clients,
        "workers": workers,
        "pages": len(times),
        "errors": len(errors),
        "pages_per_s": round(len(times) / elapsed, 1),
        "median_ms": pick(0.5),
        "p99_ms": pick(0.99),
    }


# --- The targets of docs/performance.md --------------------------------------------------------


def _ratio(name):
    return lambda r: r["results"][name]["ratio_to_floor"]


# (what, the figure in a report, "<=" or ">=", target, unit). docs/performance.md's target table
# lists the same (tests/practice/test_bench.py keeps the two together).
TARGETS = [
    ("caseload, 5 couples", _ratio("caseload_5"), "<=", 5, "× floor"),
    ("caseload, 500 couples", _ratio("caseload_500"), "<=", 5, "× floor"),
    (
        "caseload 500 against 5",
        lambda r: round(r["results"]["caseload_500"]["median_ms"] / r["results"]["caseload_5"]["median_ms"], 2),
        "<=",
        1.2,
        "×",
    ),
    ("couple page", _ratio("couple"), "<=", 5, "× floor"),
    ("comparison", _ratio("comparison"), "<=", 5, "× floor"),
    ("save_answer", _ratio("save_answer"), "<=", 2, "× floor"),
    ("submit", lambda r: r["results"]["submit"]["queries"], "<=", 10, "queries"),
    ("answers CSV export", lambda r: r["export_answers_csv"]["rows_per_s"], ">=", 200_000, "rows/s"),
    ("export memory", lambda r: r["export_answers_csv"]["peak_mb"], "<=", 100, "MB"),
    ("sends, one worker", lambda r: r["sends"]["per_s"], ">=", 200, "messages/s"),
]


def compare(report):
    """[(what, figure, target words, met)] for every target the report has a figure for."""
    rows = []
    for what, figure, sense, target, unit in TARGETS:
        try:
            value = figure(report)
        except (KeyError, TypeError, ZeroDivisionError):
            continue
        if value is None:
            continue
        met = value <= target if sense == "<=" else value >= target
        rows.append((what, f"{value:,} {unit}", f"{'≤' if sense == '<=' else '≥'} {target:,} {unit}", met))
    return rows
