"""python manage.py bench [--scale small|medium|large] [--json]

Builds a synthetic practice in a separate database (never the real one), measures every page
through Django's test client with the full middleware stack, and prints a table (or one JSON
object). See docs/performance.md for what the numbers mean.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from assessments import exports, reminders
from assessments.models import Answer, ComparisonReport, Reminder, Response
from assessments.workflows import submit
from connection_practice import bench
from connection_practice.celery import app
from connection_practice.celery import command as celery_command
from practice import outbox
from practice.models import Job

GUNICORN_WORKERS = 3  # the Procfile's default (WEB_CONCURRENCY)
PDF_SAMPLES = 5  # a PDF takes about a second: five are enough for its median
CONCURRENT_CLIENTS = 50
CONCURRENT_PAGES_EACH = 8


class Command(BaseCommand):
    help = "Benchmark the main pages against the framework's floor, on a synthetic practice in its own database."

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(bench.SCALES), default="small")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object instead of a table."
        )
        parser.add_argument("--skip-worker", action="store_true", help="Leave out the reminder sweep measurement.")
        parser.add_argument(
            "--compare", action="store_true", help="Print each figure beside its target (docs/performance.md)."
        )
        parser.add_argument(
            "--quick",
            action="store_true",
            help="Every measurement, with 5 samples a page, a small reminder backlog and 2 concurrent loads "
            "per client: that the bench runs, not figures for docs/performance.md.",
        )

    def handle(self, *args, scale, as_json, skip_worker, compare=False, quick=False, **options):
        self.quiet = as_json
        spec = bench.SCALES[scale]
        self.each = CONCURRENT_PAGES_EACH
        if quick:
            spec = dataclasses.replace(spec, samples=5, reminders=40)
            self.each = 2
        db = connection.settings_dict
        vendor = connection.vendor
        # A database of its own, named for this process so that two runs never share one.
        if vendor == "sqlite":
            db["TEST"]["NAME"] = str(Path(settings.VAR_DIR) / f"bench-{os.getpid()}.sqlite3")
        else:
            db["TEST"]["NAME"] = f"{db['NAME']}_bench_{os.getpid()}"
        self.log(f"Building the {scale} practice in {db['TEST']['NAME']} ({vendor}) ...")
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            started = time.perf_counter()
            world = bench.build(spec, log=self.log)
            self.log(f"  built in {time.perf_counter() - started:.1f} s")
            # The bench opens its partner link from 127.0.0.1 like everything else on this machine:
            # the per-address guessing throttle (docs/security.md) is not what it measures.
            no_throttle = {"TOKEN_LOOKUP_LIMIT": 10**9}
            with override_settings(ROOT_URLCONF="connection_practice.bench", DEBUG=False, **no_throttle):
                report = self.measure(world, spec, skip_worker)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        report = {"scale": scale, "quick": quick, "database": vendor, "load": os.getloadavg(), **report}
        report["targets"] = [
            {"what": what, "figure": figure, "target": target, "met": met}
            for what, figure, target, met in bench.compare(report)
        ]
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.table(report)
            if compare:
                self.targets(report)

    def log(self, line):
        if not self.quiet:
            self.stdout.write(line)
        else:
            self.stderr.write(line)

    def measure(self, world, spec, skip_worker):
        n = spec.samples
        small = bench.signed_in(world.small_counselor)
        big = bench.signed_in(world.big_counselor)
        couple, assignment = world.finished_couple, world.finished_assignment
        pages = {
            "floor": bench.get(small, "/bench/floor/"),
            "caseload_5": bench.get(small, reverse("assessments:caseload")),
            "caseload_500": bench.get(big, reverse("assessments:caseload")),
            "couple": bench.get(small, reverse("assessments:couple", args=[couple.pk])),
            "comparison": bench.get(small, reverse("assessments:comparison", args=[couple.pk, assignment.pk])),
        }
        results = {}
        for name, fn in pages.items():
            self.log(f"  measuring {name} ...")
            results[name] = bench.sample(fn, n)
        results["save_answer"] = self.save_answer(world, n)
        results["submit"] = self.submit(world, n)
        self.log("  measuring comparison_pdf ...")
        pdf = reverse("assessments:comparison_pdf", args=[couple.pk, assignment.pk])
        download = bench.get(small, pdf)
        # The file a worker laid out when both finished (the warm-up call lays it out and keeps it) ...
        results["comparison_pdf"] = bench.sample(download, n, warmup=1)

        def layout():  # ... and a download that finds it stale and lays a new one out.
            ComparisonReport.objects.filter(assignment=assignment).update(pdf_digest="")
            download()

        results["comparison_pdf_layout"] = bench.sample(layout, min(n, PDF_SAMPLES), warmup=1)
        bench.ratio(results, results["floor"]["median_ms"])
        report = {"results": results, "export_answers_csv": self.export(world), "sends": self.sends(world, spec)}
        report["concurrent_caseload"] = self.concurrent(world)
        report["reminder_sweep"] = {"per_s": None} if skip_worker else self.sweep(world, spec)
        return report

    def save_answer(self, world, n):
        self.log("  measuring save_answer ...")
        client = Client()
        client.get(reverse("assessments:open_link", args=[world.open_token]))
        response = world.open_response
        items = list(response.assignment.instrument.items.filter(scored=True))
        url = reverse("assessments:save_answer", args=[response.pk])
        state = {"seq": 10}

        def run():
            state["seq"] += 1
            item = items[state["seq"] % len(items)]
            reply = client.post(url, {"item": item.code, "value": 1 + state["seq"] % 5, "seq": state["seq"]})
            if reply.status_code >= 300:
                raise RuntimeError(f"save_answer answered {reply.status_code}")

        return bench.sample(run, n)

    def submit(self, world, n):
        """submit() with scoring, on unfinished responses whose answers are completed first."""
        self.log("  measuring submit ...")
        candidates = list(
            Response.objects.filter(assignment__couple__practice=world.practice, submitted_at__isnull=True)
            .exclude(pk=world.open_response.pk)
            .select_related("assignment__instrument")
            .order_by("id")[: n + 10]  # warm-up, the query count, then the samples
        )
        for response in candidates:
            items = list(response.assignment.instrument.items.all())
            have = set(response.answers.values_list("item_id", flat=True))
            Answer.objects.bulk_create(
                # "Never" on the safety items: the usual submission, without a safety alert to raise.
                Answer(response=response, item=i, value=1 if i.safety_code else 3, seq=1)
                for i in items
                if i.pk not in have
            )
        queue = iter(candidates)

        def run():
            if not submit(next(queue)):
                raise RuntimeError("submit did not submit")

        return bench.sample(run, n, warmup=5)

    def export(self, world):
        self.log("  measuring export_answers_csv ...")
        request = exports.ExportRequest(practice=world.practice, kind="answers").validate()

        def consume(limit=None):
            rows = 0
            for chunk in exports.csv_chunks(request, rows_per_chunk=2000):
                rows += chunk.count(b"\n")
                if limit is not None and rows >= limit:
                    break
            return rows - 1  # the header

        # Peak memory over the first 200,000 rows (tracemalloc slows Python several times over; the
        # stream's memory is flat, so a longer traced run shows nothing more), then the rate over
        # the whole practice, untraced.
        _, peak_mb = bench.measure_memory(lambda: consume(limit=200_000))
        started = time.perf_counter()
        rows = consume()
        elapsed = time.perf_counter() - started
        # The de-identified file is written row by row in Python (pseudonyms per export).
        request = exports.ExportRequest(practice=world.practice, kind="answers", deidentified=True).validate()
        started = time.perf_counter()
        deidentified = consume()
        deidentified_s = time.perf_counter() - started
        return {
            "rows": rows,
            "rows_per_s": round(rows / elapsed),
            "peak_mb": round(peak_mb, 2),
            "deidentified_rows_per_s": round(deidentified / deidentified_s),
        }

    def sends(self, world, spec):
        """Messages per second one worker's batches send over SMTP to a local sink.

        What a worker task does with a batch the dispatcher handed it (``outbox.run``: every job's
        claim, its re-checks, rendering, the send, the row marked sent), timed in this process
        without the broker's round trip, which the reminder sweep below includes.
        """
        count = len(bench.reminder_backlog(world, spec.reminders // 2))
        self.log(f"  measuring sends over {count} reminders to a local SMTP sink ...")
        while reminders.sweep().claimed:
            pass
        jobs = Job.objects.filter(kind="partner_email", status=Job.Status.PENDING).order_by("pk")
        ids = list(jobs.values_list("pk", flat=True))
        Job.objects.filter(pk__in=ids).update(status=Job.Status.QUEUED, claimed_at=timezone.now())
        with bench.SmtpSink() as sink, override_settings(**sink.settings()):
            started = time.perf_counter()
            for start in range(0, len(ids), outbox.BATCH):
                outbox.run(ids[start : start + outbox.BATCH])
            elapsed = time.perf_counter() - started
            received = sink.messages
        return {"messages": received, "jobs": len(ids), "per_s": round(received / elapsed, 1), "batch": outbox.BATCH}

    def concurrent(self, world):
        """50 clients loading the 500-couple caseload at once through gunicorn as the Procfile runs it."""
        self.log(f"  measuring {CONCURRENT_CLIENTS} concurrent caseload loads through gunicorn ...")
        client = bench.signed_in(world.big_counselor)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        port = bench.free_port()
        env = {
            **os.environ,
            "DATABASE_URL": bench.database_url(connection.settings_dict),
            "SECRET_KEY": settings.SECRET_KEY,  # the session's hash was made with it
            "DEBUG": "false",
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "SITE_URL": "https://localhost",
            "TRUSTED_PROXIES": "1",
            # The bench's own copy of the collected files, beside its other run-time files.
            "STATIC_ROOT": str(settings.VAR_DIR / "bench-static"),
        }
        # As in production: the collected, hashed static files.
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            timeout=300,
        )
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "connection_practice.wsgi",
            "-c",
            "python:connection_practice.gunicorn_conf",
        ]
        command += ["--bind", f"127.0.0.1:{port}", "--workers", str(GUNICORN_WORKERS)]
        server = subprocess.Popen(  # noqa: S603
            command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            bench.wait_for_port(port)
            path = reverse("assessments:caseload")
            headers = {"Cookie": cookie, "X-Forwarded-Proto": "https", "Host": "localhost"}
            for _ in range(2 * GUNICORN_WORKERS):  # every worker warm
                bench.http_get(port, path, headers)
            return bench.concurrent_load(
                port, path, headers, clients=CONCURRENT_CLIENTS, each=self.each, workers=GUNICORN_WORKERS
            )
        finally:
            server.terminate()
            server.wait(timeout=30)

    def sweep(self, world, spec):
        """Due reminders claimed and sent per second by one real worker process."""
        # Partners the sends measurement has not just reminded (a second reminder would wait 12 hours).
        ids = bench.reminder_backlog(world, spec.reminders // 2, skip=spec.reminders // 2)
        count = len(ids)
        self.log(f"  measuring reminder_sweep over {count} reminders with one worker ...")
        url = bench.database_url(connection.settings_dict)
        queue = f"bench-{os.getpid()}"
        sink = bench.SmtpSink().__enter__()
        # The worker sends over SMTP to this process's sink, as it would to a local mail server.
        mail = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(sink.port), "EMAIL_USE_TLS": "false", "EMAIL_BACKEND": ""}
        env = {**os.environ, "DATABASE_URL": url, "CELERY_QUEUE": queue, **mail}
        app.conf.task_default_queue = queue
        worker = subprocess.Popen(  # noqa: S603
            celery_command(
                "worker",
                "-Q",
                queue,
                "--concurrency",
                "1",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{queue}@%h",
            ),
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)  # let the worker connect before the clock starts
            sent = Reminder.objects.filter(response_id__in=ids, kind="manual")
            started = time.perf_counter()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                # What beat's task runs each minute, here back to back: a sweep claims at most 500
                # due rows and enqueues their sends for the worker.
                if sent.filter(status=Reminder.Status.SCHEDULED).exists():
                    reminders.sweep()
                outbox.dispatch()
                done = sent.exclude(status__in=[Reminder.Status.SCHEDULED, Reminder.Status.CLAIMED]).count()
                if done >= count:
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            sink.__exit__(None, None, None)
        delivered = sent.filter(status=Reminder.Status.SENT).count()
        return {
            "reminders": count,
            "sent": delivered,
            "per_s": round(delivered / elapsed, 1),
            "at": timezone.now().isoformat(),
        }

    def targets(self, report):
        self.stdout.write(f"\n{'target':<26}{'measured':>22}{'target':>22}  ")
        for row in report["targets"]:
            verdict = "met" if row["met"] else "NOT MET"
            self.stdout.write(f"{row['what']:<26}{row['figure']:>22}{row['target']:>22}  {verdict}")

    def table(self, report):
        self.stdout.write(f"\nScale {report['scale']} on {report['database']}\n")
        self.stdout.write(f"{'page':<16}{'median ms':>11}{'p95 ms':>10}{'queries':>9}{'× floor':>9}")
        for name, r in report["results"].items():
            self.stdout.write(
                f"{name:<16}{r['median_ms']:>11.2f}{r['p95_ms']:>10.2f}{r['queries']:>9}{r['ratio_to_floor']:>9.2f}"
            )
        e = report["export_answers_csv"]
        self.stdout.write(
            f"\nexport_answers_csv: {e['rows']} rows, {e['rows_per_s']} rows/s, peak {e['peak_mb']} MB;"
            f" de-identified {e['deidentified_rows_per_s']} rows/s"
        )
        m = report["sends"]
        self.stdout.write(
            f"sends: {m['per_s']} messages/s over SMTP ({m['messages']} of {m['jobs']}, batches of {m['batch']})"
        )
        c = report["concurrent_caseload"]
        self.stdout.write(
            f"concurrent_caseload: {c['clients']} clients, {c['pages']} pages, {c['pages_per_s']} pages/s,"
            f" median {c['median_ms']} ms, p99 {c['p99_ms']} ms ({c['workers']} gunicorn workers, {c['errors']} errors)"
        )
        s = report["reminder_sweep"]
        self.stdout.write(f"reminder_sweep: {s.get('per_s')} reminders/s ({s.get('sent')} of {s.get('reminders')})")
        self.stdout.write(json.dumps({"ratios": {k: v["ratio_to_floor"] for k, v in report["results"].items()}}))
