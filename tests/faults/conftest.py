"""Fixtures of the fault tests: the site's own processes (web in this test process, a real Celery
worker and beat) on private services that the test stops, hangs or restarts."""

import subprocess
import sys

import pytest

from connection_practice.celery import app as celery_app
from tests.conftest import QUEUE, ROOT, Worker, database_url_for_worker, make_couple

from .services import MailServer, RedisServer

# The broker options production uses on Redis (connection_practice/settings.py).
REDIS_TRANSPORT_OPTIONS = {"visibility_timeout": 300, "socket_timeout": 5, "socket_connect_timeout": 2}


def point_web_at(url, settings):
    """This test process (the web side) uses ``url`` as broker and cache, as a web process with REDIS_URL would."""
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport = None
    celery_app.conf.broker_transport_options = dict(REDIS_TRANSPORT_OPTIONS)
    reset_broker_pools()


def reset_broker_pools():
    celery_app.pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_server(transactional_db, settings):
    """A Redis of this test alone, used by this process, the worker and beat; gone afterwards."""
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport, celery_app.conf.broker_transport_options)
    server = RedisServer().start()
    point_web_at(server.url, settings)
    yield server
    server.stop()
    celery_app.conf.broker_url, celery_app.conf.broker_transport, celery_app.conf.broker_transport_options = saved
    reset_broker_pools()


class Beat:
    """``celery beat`` as production runs it: the dispatcher every OUTBOX_DISPATCH_SECONDS."""

    def __init__(self, tmp_path, env):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "connection_practice",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(tmp_path / "celerybeat-schedule"),
            ],
            cwd=ROOT,
            env={
                **Worker(tmp_path / "mail").env,
                "DATABASE_URL": database_url_for_worker(),
                "CELERY_QUEUE": QUEUE,
                **env,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self):
        self.stop()
        return self.proc.stdout.read() if self.proc.stdout else ""


class Site:
    """A real worker and a real beat on the test's private services; the web side is this process."""

    def __init__(self, tmp_path, **env):
        self.tmp_path = tmp_path
        self.env = {k: str(v) for k, v in env.items()}
        self.worker = None
        self.beat = None

    def start(self, concurrency=2):
        self.worker = Worker(self.tmp_path / "mail", extra_env=self.env, concurrency=concurrency).start()
        self.beat = Beat(self.tmp_path, self.env)
        return self

    def stop(self):
        for proc in (self.beat, self.worker):
            if proc is not None:
                proc.stop()

    def output(self):
        """Both processes' logs (stopping them), in full in the test's folder, shortened here."""
        parts = []
        for name, proc in (("worker", self.worker), ("beat", self.beat)):
            if proc is not None:
                text = proc.output()
                (self.tmp_path / f"{name}.log").write_text(text)
                parts.append(f"--- {name} ({self.tmp_path / name}.log) ---\n{text[:3000]}\n[…]\n{text[-3000:]}")
        return "\n".join(parts)

    def message_ids(self):
        """The Message-ID of every e-mail the worker wrote (the file backend, one file per connection)."""
        found = []
        for path in self.worker.mails() if self.worker else []:
            found += [line[12:].strip() for line in path.read_text().splitlines() if line.startswith("Message-ID: ")]
        return found


@pytest.fixture
def site_processes(tmp_path):
    sites = []

    def make(**env):
        site = Site(tmp_path, **env)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.stop()


@pytest.fixture
def mail_server():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def quiet_free(transactional_db, world):
    """The world's practice without quiet hours and a second couple of the owner."""
    world.practice.quiet_hours_start = world.practice.quiet_hours_end
    world.practice.save()
    world.other = make_couple(world.owner, "Sam & Alex", ("Sam", "sam@example.com"), ("Alex", "alex@example.com"))
    return world
