"""Shared fixtures: practices, people and couples, signed-in clients, and a real Celery worker."""

import copy
import datetime
import html
import os
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from whitenoise.base import WhiteNoise

from assessments import loader
from assessments.models import Instrument
from assessments.workflows import assign
from clients.models import Couple, Partner
from connection_practice.bench import database_url
from connection_practice.celery import app as celery_app
from connection_practice.celery import command as celery_command
from practice import outbox
from practice.models import Membership, Practice, User

# The six couple domains as the codebook and the exports publish them: written out here, not
# imported from the scoring code, so that renaming one in the code fails the tests.
COUPLE_DOMAINS = (
    "communication",
    "safety_support",
    "friendship",
    "attention_effort",
    "accountability_repair",
    "affection_balance",
)

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"

# Every test process gets its own Celery queue (and, on the file-system broker, its own folders),
# so parallel test workers never run each other's tasks against the wrong database.
QUEUE = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:8]}"
celery_app.conf.task_default_queue = QUEUE
if not settings.REDIS_URL:
    _fs = Path(tempfile.mkdtemp(prefix="celery-fs-"))
    for sub in ("queue", "processed", "control"):
        (_fs / sub).mkdir()
    celery_app.conf.broker_transport_options = {
        "data_folder_in": str(_fs / "queue"),
        "data_folder_out": str(_fs / "queue"),
        "processed_folder": str(_fs / "processed"),
        "control_folder": str(_fs / "control"),
        "store_processed": False,
    }
    os.environ["CELERY_FS_DIR"] = str(_fs)


_scanned_static = {}
_scan_static = WhiteNoise.update_files_dictionary


def _scan_static_once(self, root, prefix):
    """Django's test client builds its middleware anew for every client, and WhiteNoise's stats
    and reads the headers of every static file each time (a tenth of a second with a collected
    admin): each folder is scanned once per test process, keyed on its modification time, and the
    files a request gets are the same."""
    key = (root, prefix, os.stat(root).st_mtime_ns, self.max_age, self.autorefresh)
    if key not in _scanned_static:
        before = dict(self.files)
        _scan_static(self, root, prefix)
        _scanned_static[key] = {url: f for url, f in self.files.items() if before.get(url) is not f}
    self.files.update(_scanned_static[key])


WhiteNoise.update_files_dictionary = _scan_static_once


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Each test process keys the shared cache apart, so one process's counts (the in-office code
    throttle) never hold back another's requests from the same loopback address."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = QUEUE
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# The throttle's limit as configured, for the tests of the throttle itself.
TOKEN_LOOKUP_LIMIT = settings.TOKEN_LOOKUP_LIMIT


@pytest.fixture(autouse=True)
def _token_lookups_counted_not_throttled(settings):
    # Every test counts unknown tokens as the site does, from one test address and in a cache
    # that outlives a test (Redis): only tests/security/test_throttle.py lets the limit bite.
    settings.TOKEN_LOOKUP_LIMIT = 10**9


def make_practice(name="Riverside", slug=None):
    # No quiet hours (start == end): what a test sends must not depend on the hour it runs at.
    # Tests of quiet hours set them explicitly.
    midnight = datetime.time(0, 0)
    return Practice.objects.create(
        name=name, slug=slug or name.lower().replace(" ", "-"), quiet_hours_start=midnight, quiet_hours_end=midnight
    )


def make_user(practice, email, role=Membership.Role.COUNSELOR, name=None):
    user = User.objects.create_user(email, PASSWORD, full_name=name or email.split("@")[0].title())
    if practice is not None:
        Membership.objects.create(user=user, practice=practice, role=role)
    return user


def make_couple(
    counselor, label="Taylor & Jordan", a=("Taylor", "taylor@example.com"), b=("Jordan", "jordan@example.com")
):
    couple = Couple.objects.create(practice=counselor.membership.practice, counselor=counselor, label=label)
    Partner.objects.create(couple=couple, position="A", first_name=a[0], email=a[1])
    Partner.objects.create(couple=couple, position="B", first_name=b[0], email=b[1])
    return couple


def make_assignment(couple, *, days=7, now=None, instrument=None):
    """Assign an instrument (the current one by default); its invitations wait in the outbox."""
    now = now or timezone.now()
    return assign(
        couple=couple,
        instrument=instrument or Instrument.current(),
        due_at=now + timedelta(days=days),
        by=couple.counselor,
        now=now,
    )


def deliver(now=None):
    """Do every outbox job that is due, here in the test (what the dispatcher and a worker do)."""
    return outbox.run_now(now=now)


def publish_version(version, change=None):
    """Load a new version of the current instrument, changed by ``change(definition)`` if given."""
    definition = copy.deepcopy(Instrument.current().definition)
    definition["version"] = version
    if change is not None:
        change(definition)
    return loader.load_definition(definition)


def flip_first_item_keying(definition):
    """A change that alters scoring: the first scored item becomes a warning sign (or stops being one)."""
    item = definition["sections"][0]["items"][0]
    item["reverse"] = not item["reverse"]


def page_text(response):
    """The response body as a person reads it (entities such as &#x27; unescaped)."""
    return html.unescape(response.content.decode())


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


class World:
    """Two practices: the owner counselor, a colleague, an admin, and an outsider practice."""

    def __init__(self):
        self.practice = make_practice("Riverside Counseling", "riverside")
        self.owner = make_user(self.practice, "owner@riverside.example")
        self.colleague = make_user(self.practice, "colleague@riverside.example")
        self.admin = make_user(self.practice, "admin@riverside.example", Membership.Role.ADMIN)
        self.other_practice = make_practice("Elsewhere Therapy", "elsewhere")
        self.outsider = make_user(self.other_practice, "outsider@elsewhere.example")
        self.outsider_admin = make_user(self.other_practice, "admin@elsewhere.example", Membership.Role.ADMIN)
        self.couple = make_couple(self.owner)


@pytest.fixture
def world(db):
    return World()


# --- A real Celery worker ------------------------------------------------------------------


def database_url_for_worker():
    """The URL of the test database this process uses, for a worker subprocess to share."""
    return database_url(connection.settings_dict)


class Worker:
    def __init__(self, mail_dir, extra_env=None, concurrency=1):
        self.mail_dir = Path(mail_dir)
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_worker(),
            "CELERY_QUEUE": QUEUE,
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "DJANGO_SETTINGS_MODULE": "connection_practice.settings",
        }
        if settings.REDIS_URL:
            env["REDIS_URL"] = settings.REDIS_URL
        env.update(extra_env or {})  # a fault test's own Redis or mail server wins
        self.env = env
        self.concurrency = concurrency
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            celery_command(
                "worker",
                "--loglevel",
                "INFO",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.concurrency),
                "-Q",
                QUEUE,
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{QUEUE}-{uuid.uuid4().hex[:6]}@%h",
            ),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self):
        self.stop()
        return self.proc.stdout.read() if self.proc and self.proc.stdout else ""

    def mails(self):
        return sorted(self.mail_dir.glob("*.log")) if self.mail_dir.exists() else []


def wait_for(predicate, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return predicate()


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    worker = Worker(tmp_path / "mail").start()
    yield worker
    worker.stop()
