"""PostgreSQL restarted under a partner's answers, in a real browser against a production-shaped site
(gunicorn, DEBUG=false) on a PostgreSQL cluster of the test's own.

With JavaScript, every choice made while the database is away is kept, retried and stored as last
made, without a reload, and the status line never claims "All answers saved" while one waits.
Without JavaScript, "Save and continue" answers with a readable 503 page that keeps the answers,
and one press on "Try again" stores them."""

import json
import os
import subprocess
import sys
import time
from urllib.error import HTTPError
from urllib.request import urlopen

import psycopg
import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import ROOT, wait_for
from tests.e2e.conftest import ARGS, CHROMIUM, HAVE_CHROMIUM
from tests.e2e.partner import start

from .conftest import Site
from .services import PostgresCluster, RedisServer, SilentServer, free_port, postgres_bin, wait_for_port

pytestmark = [
    pytest.mark.fault,
    pytest.mark.e2e,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"no Chromium at {CHROMIUM}"),
    pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL server binaries (initdb, pg_ctl)"),
]

# Records every text the status line shows, with how many questions were not saved at that moment.
RECORD_STATUS = """() => {
  window.statusLog = [];
  const status = document.querySelector('[data-autosave-status]');
  const note = () => window.statusLog.push([status.textContent.trim(),
      document.querySelectorAll('fieldset.question[data-save-state]:not([data-save-state=saved])').length]);
  // The answers' form (the page's first forms are the exit bar's).
  new MutationObserver(note).observe(status.closest('form'), {subtree: true, childList: true,
      characterData: true, attributes: true, attributeFilter: ['data-save-state', 'data-state']});
}"""


def site_env(tmp_path, port, database_url):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "tests.faults.live_settings",
        "DEBUG": "false",
        "SECRET_KEY": "fault-test-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("REDIS_URL", None)  # the embedded broker: these tests break only the database
    return env


class Gunicorn:
    """The production web server on a free port, with a log file to read afterwards."""

    def __init__(self, tmp_path, port, env):
        self.url, self.log = f"http://127.0.0.1:{port}", tmp_path / "gunicorn.log"
        self.out = open(self.log, "w")  # noqa: SIM115 - open for the server's whole life
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "connection_practice.wsgi", "-b", f"127.0.0.1:{port}"]
            + ["--workers", "2", "--threads", "4", "--timeout", "30", "--no-control-socket"],
            cwd=ROOT,
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, 20)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.out.close()


@pytest.fixture
def private_site(tmp_path):
    """A private PostgreSQL, migrated and seeded, and gunicorn serving the site on it."""
    pg = PostgresCluster().init()
    port = free_port()
    env = site_env(tmp_path, port, pg.url)
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.faults.seed"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    web = Gunicorn(tmp_path, port, env)
    web.pg, web.seed = pg, json.loads(seeded.stdout.strip().splitlines()[-1])
    yield web
    web.stop()
    pg.destroy()


def stored(pg, response_id):
    with psycopg.connect(pg.url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT i.code, a.value FROM assessments_answer a JOIN assessments_item i ON i.id = a.item_id "
            "WHERE a.response_id = %s",
            [response_id],
        ).fetchall()
    return dict(rows)


def choose(page, question, value):
    page.locator("fieldset.question").nth(question).locator(f"input[type=radio][value='{value}']").check()


def test_the_database_restarted_under_autosaves_every_choice_is_stored_as_last_made_without_a_reload(private_site):
    site = private_site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(15_000)
            start(page, site.url, site.seed["tokens"]["A"], "Taylor")
            codes = page.locator("fieldset.question").evaluate_all("els => els.map(e => e.id.slice(5))")
            page.evaluate(RECORD_STATUS)
            last = {}
            for question, value in [(0, "2"), (1, "3"), (2, "4")]:
                choose(page, question, value)
                last[codes[question]] = int(value)
            page.locator("[data-autosave-status][data-state=saved]").wait_for()

            site.pg.stop()
            down = time.monotonic()
            # While it is away the partner goes on answering, and changes their mind twice.
            for question, value in [(3, "2"), (4, "5"), (0, "1"), (3, "4"), (1, "5")]:
                choose(page, question, value)
                last[codes[question]] = int(value)
                time.sleep(0.6)
            page.locator("[data-autosave-status][data-state=retrying]").wait_for()
            assert "Not saved yet — retrying" in page.locator("[data-autosave-status]").inner_text()
            notes = page.locator("fieldset.question [data-item-state]").all_inner_texts()
            assert notes[3] == "Not saved yet — retrying" and notes[2] == "Saved"
            time.sleep(max(0, 5 - (time.monotonic() - down)))
            site.pg.start()
            back = time.monotonic()
            page.locator("[data-autosave-status][data-state=saved]").wait_for(timeout=40_000)
            recovered = time.monotonic() - back
            log = page.evaluate("window.statusLog")
            assert page.locator("fieldset.question input[type=radio]:checked").count() == 5
        finally:
            browser.close()
    print(f"database away {back - down:.1f} s; every choice saved {recovered:.1f} s after it returned")
    answers = stored(site.pg, site.seed["responses"]["A"])
    assert {code: answers[code] for code in last} == last
    claims = [(text, unsaved) for text, unsaved in log if text == "All answers saved." and unsaved]
    assert claims == [], log
    assert any(text.startswith("Not saved yet") for text, _ in log)
    assert recovered < 35


def test_save_and_continue_without_javascript_while_the_database_is_away_keeps_the_answers_for_one_retry(
    private_site,
):
    site = private_site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.set_default_timeout(15_000)
            start(page, site.url, site.seed["tokens"]["B"], "Jordan")
            questions = page.locator("fieldset.question")
            codes = questions.evaluate_all("els => els.map(e => e.id.slice(5))")
            for question in range(len(codes)):
                choose(page, question, "4" if question % 2 else "2")
            site.pg.stop()
            with page.expect_response(lambda r: r.request.method == "POST") as posted:
                page.get_by_role("button", name="Save and continue").click()
            assert posted.value.status == 503
            page.get_by_role("heading", name="The site is briefly unavailable").wait_for()
            assert "nothing is lost" in page.locator("main").inner_text()
            site.pg.start()
            page.get_by_role("button", name="Try again").click()
            page.wait_for_url("**/section/2/")
        finally:
            browser.close()
    answers = stored(site.pg, site.seed["responses"]["B"])
    assert answers == {code: 4 if i % 2 else 2 for i, code in enumerate(codes)}
    log = site.log.read_text()
    assert "Service Unavailable: /respond/" in log and "Internal Server Error" not in log


def test_a_database_that_accepts_and_never_answers_costs_a_page_about_two_seconds(tmp_path):
    """PostgreSQL hung (it accepts the connection, then says nothing): the connect timeout gives up
    and the page is the readable 503, not a request held until the web server kills its worker."""
    silent = SilentServer().start()
    port = free_port()
    web = Gunicorn(tmp_path, port, site_env(tmp_path, port, f"postgres://nobody@127.0.0.1:{silent.port}/connection"))
    try:
        urlopen(f"{web.url}/healthz", timeout=20)  # noqa: S310 - the workers have loaded the site
        started = time.monotonic()
        alive = urlopen(f"{web.url}/healthz", timeout=10)  # noqa: S310 - a loopback URL of this test
        assert alive.status == 200 and time.monotonic() - started < 1
        started = time.monotonic()
        with pytest.raises(HTTPError) as refused:
            urlopen(f"{web.url}/a/some-personal-link/", timeout=10)  # noqa: S310
        took = time.monotonic() - started
    finally:
        web.stop()
        silent.stop()
    print(f"hung database: the page answered {refused.value.code} after {took:.2f} s")
    assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "5"
    assert "The site is briefly unavailable" in refused.value.read().decode()
    assert took < 3


def count(pg, sql):
    with psycopg.connect(pg.url.replace("postgres://", "postgresql://"), connect_timeout=2) as conn:
        return conn.execute(sql).fetchone()[0]


def test_the_database_down_during_200_sends_every_invitation_goes_within_a_minute_of_its_return(tmp_path):
    """PostgreSQL stopped for three seconds while a real worker sends: the batches it broke are
    retried in seconds, not after a ten-minute lease, and each invitation arrives once outside the
    documented window (a send the server took just before the row could be marked done)."""
    pg, redis = PostgresCluster().init(), RedisServer().start()
    env = site_env(tmp_path, free_port(), pg.url)
    seeded = subprocess.run(
        [sys.executable, "-m", "tests.faults.seed", "200"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    site = Site(
        tmp_path,
        DATABASE_URL=pg.url,
        REDIS_URL=redis.url,
        EMAIL_BACKEND="tests.assessments.reminder_backends.SlowOnceBackend",
        MAIL_DELAY_SECONDS="0.05",
        EMAIL_TIMEOUT=1,
        CELERY_WORKER_LOST_WAIT=2,
    )
    sent = "SELECT count(*) FROM assessments_reminder WHERE status = 'sent'"
    try:
        site.start(concurrency=2)
        assert wait_for(lambda: count(pg, sent) >= 20, 60, interval=0.05), site.output()
        pg.stop()
        time.sleep(3)
        pg.start()
        back = time.monotonic()
        assert wait_for(lambda: count(pg, sent) == 200, 60), site.output()
        took = time.monotonic() - back
        time.sleep(2)  # a duplicate would land now
        attempts = dict(
            psycopg.connect(pg.url.replace("postgres://", "postgresql://"))
            .execute("SELECT r.id, j.attempts FROM assessments_reminder r JOIN practice_job j ON j.id = r.job_id")
            .fetchall()
        )
        ids = site.message_ids()
    finally:
        site.stop()
        redis.stop()
        pg.destroy()
    copies = {mid: ids.count(mid) for mid in set(ids)}
    twice = {mid: n for mid, n in copies.items() if n > 1}
    print(f"database down 3 s during 200 sends: all sent {took:.1f} s after it returned, {len(twice)} sent twice")
    assert len(copies) == 200 and took < 60
    assert sum(n - 1 for n in twice.values()) <= 2  # at most one row per pool process was in the window
    for mid, n in twice.items():  # <reminder-ID-KIND-SEQ@site>: each copy was its own take of the row
        assert attempts[int(mid.split("-")[1])] >= n
