"""Every URL pattern, every party: the outcome in tests/security/matrix.py, and never a 500."""

import pytest
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse

from practice.security import TWO_FACTOR_EXEMPT

from . import matrix
from .matrix import PARTIES, RELEASED_MATRIX, MatrixWorld, ReleasedWorld, outcome_of, rows

PATTERNS = {p.key: p for p in matrix.url_patterns()}
SIGNED_IN_OR_PARTNER = set(PARTIES) - {"anonymous"}


def client_as(world, party):
    client = Client(raise_request_exception=False)
    staff = world.staff(party)
    if staff is not None:
        client.force_login(staff)
    token = world.partner_token(party)
    if token is not None:
        opened = client.get(reverse("assessments:open_link", args=[token]))
        assert opened.status_code == 302, f"{party} could not open their link"
    return client


def send(client, method, url, htmx):
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/"} if htmx else {}
    return client.generic(method, url, headers=headers)


def allowed(row, party, method):
    if method in row.methods:
        return {row.outcome(party, method)}
    # A method the view does not take: refused, or never more than the declared methods give.
    return {"405", *row.outcomes(party)}


def run_row(world, row, parties, methods, expect):
    url = matrix.url_for(world, row, PATTERNS[row.url_name])
    problems = []
    for party in parties:
        for method in methods:
            for htmx in (False, True):
                with transaction.atomic():
                    client = client_as(world, party)
                    response = send(client, method, url, htmx)
                    transaction.set_rollback(True)
                got = outcome_of(response)
                want = expect(row, party, method)
                if htmx and "next" in want:
                    want = want | {"ok"}  # htmx swaps in a partial where a plain request is redirected
                where = f"{party:>14} {method:<4} {'htmx' if htmx else 'plain'}: "
                if got not in want:
                    problems.append(f"{where}got {got} ({response.status_code}), expected {' or '.join(sorted(want))}")
                if 200 <= response.status_code < 300:
                    inline = matrix.inline_code(response)
                    if inline:
                        problems.append(f"{where}inline code a strict CSP blocks: {inline[:3]}")
                    if party in SIGNED_IN_OR_PARTNER and "no-store" not in response.get("Cache-Control", ""):
                        problems.append(f"{where}Cache-Control is {response.get('Cache-Control')!r}, not no-store")
    return url, problems


def test_every_url_pattern_is_classified_in_the_matrix():
    problems = matrix.coverage_problems()
    assert not problems, "\n".join(problems)


def test_the_coverage_check_names_a_new_unclassified_url_and_what_to_add():
    with override_settings(ROOT_URLCONF="tests.security.urls_unclassified"):
        problems = matrix.coverage_problems()
    assert len(problems) == 2, problems
    report, nameless = problems
    assert "'unclassified_report' (reports/secret/<int:report_pk>/) is not in the permission matrix" in report
    assert '"unclassified_report": ("GET", "login' in report
    assert "report_pk=<world attribute>" in report
    assert "'reports/nameless/' has no name" in nameless


def test_the_coverage_check_names_a_row_whose_url_is_gone(monkeypatch):
    monkeypatch.setitem(matrix.MATRIX, "clients:removed_page", ("GET", " ".join(["deny"] * len(PARTIES))))
    assert matrix.coverage_problems() == [
        "MATRIX row 'clients:removed_page' names no URL pattern: remove it or fix its name."
    ]


def test_a_row_with_a_missing_or_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="needs 9"):
        matrix.parse_row("home", ("GET", "ok ok"))
    with pytest.raises(ValueError, match="unknown outcomes"):
        matrix.parse_row("home", ("GET", " ".join(["maybe"] * len(PARTIES))))


def test_the_matrix_run_fails_when_a_party_gets_more_than_its_row_allows(db):
    world = MatrixWorld()
    row = matrix.parse_row("assessments:couple", ("GET", "login login login login ok deny deny deny deny"))
    # Pretend the colleague should be refused by sign-in: the real answer (deny) must be reported.
    wrong = matrix.parse_row("assessments:couple", ("GET", "login login login login deny deny deny deny deny"))
    _, problems = run_row(world, wrong, ["counselor"], ["GET"], allowed)
    assert problems and "counselor GET  plain: got ok (200), expected deny" in problems[0]
    _, problems = run_row(world, row, ["counselor"], ["GET"], allowed)
    assert problems == []


@pytest.mark.parametrize("row", rows(), ids=lambda row: row.name)
def test_every_party_gets_exactly_the_outcome_in_the_matrix(row, db):
    world = MatrixWorld()
    methods = sorted(set(row.methods) | {"GET", "POST"})
    url, problems = run_row(world, row, PARTIES, methods, allowed)
    assert not problems, f"{row.name} ({url}):\n" + "\n".join(problems)


@pytest.mark.parametrize("row", rows(RELEASED_MATRIX), ids=lambda row: row.name)
def test_once_a_summary_is_released_each_partner_is_served_it_and_nobody_else(row, db):
    world = ReleasedWorld()
    methods = sorted(set(row.methods) | {"GET", "POST"})
    url, problems = run_row(world, row, PARTIES, methods, allowed)
    assert not problems, f"{row.name} ({url}):\n" + "\n".join(problems)


def test_the_released_rows_name_real_urls():
    names = {p.key for p in matrix.url_patterns()}
    assert {row.url_name for row in rows(RELEASED_MATRIX)} <= names
    assert any(
        row.outcome("partner_a", "GET") == "ok"
        for row in rows(RELEASED_MATRIX)
        if row.url_name == "assessments:shared_summary"
    )


def test_ok_means_served_and_a_refusing_redirect_is_told_apart(db):
    world = MatrixWorld()
    client = client_as(world, "counselor")
    # Releasing before both partners finished: redirected back with an error message, a refusal.
    release = reverse("assessments:release", args=[world.couple.pk, world.assignment.pk])
    assert outcome_of(client.post(release)) == "msg"
    assert outcome_of(client.get(reverse("assessments:caseload"))) == "ok"
    assert outcome_of(client.get(reverse("home"))) == "next"


@pytest.mark.parametrize("row", [r for r in rows() if r.name not in TWO_FACTOR_EXEMPT], ids=lambda row: row.name)
def test_staff_without_a_second_factor_reach_no_page_when_their_practice_requires_one(row, db):
    world = MatrixWorld()
    world.practice.require_two_factor = True
    world.practice.save()
    methods = sorted(set(row.methods) | {"GET", "POST"})
    url, problems = run_row(world, row, ["counselor", "colleague", "admin"], methods, lambda *a: {"2fa"})
    assert not problems, f"{row.name} ({url}):\n" + "\n".join(problems)
