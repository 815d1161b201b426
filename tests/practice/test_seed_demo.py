import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from assessments.models import Assignment
from clients.models import Couple
from practice.models import Practice, User

pytestmark = pytest.mark.smoke


def run_seed(capsys):
    call_command("seed_demo")
    return capsys.readouterr().out


def test_seed_demo_is_idempotent_and_prints_sign_ins_and_a_fresh_link(db, capsys, settings):
    settings.DEBUG = True
    first = run_seed(capsys)
    counts = (Practice.objects.count(), User.objects.count(), Couple.objects.count(), Assignment.objects.count())
    second = run_seed(capsys)
    assert counts == (
        Practice.objects.count(),
        User.objects.count(),
        Couple.objects.count(),
        Assignment.objects.count(),
    )
    for out in (first, second):
        assert "admin@demo.example" in out and "counselor@demo.example" in out and "counselor2@demo.example" in out
        assert "connection-demo" in out
    link_lines = [line for line in second.splitlines() if "link" in line and "http://127.0.0.1:8000/" in line]
    assert len(link_lines) == 2
    url = link_lines[0].split()[-1]
    response = Client().get(url.removeprefix("http://127.0.0.1:8000"), follow=True)
    assert response.status_code == 200
    assert "You are answering as Amara" in response.content.decode()


def test_seed_demo_has_couples_in_every_state(db, capsys, settings):
    settings.DEBUG = True
    run_seed(capsys)
    practice = Practice.objects.get(slug="riverside-counseling")
    couples = {c.label: c for c in Couple.objects.filter(practice=practice)}
    assert not couples["Rivera & Chen"].assignments.exists()
    nguyen = couples["Nguyen & Brooks"].assignments.all()
    assert [a.status for a in nguyen] == ["completed", "completed"]
    patel = couples["Patel & Morgan"].assignments.get()
    assert sorted(r.submitted_at is not None for r in patel.responses.all()) == [False, True]
    assert couples["Silva & Novak"].assignments.get().is_overdue
    demo = User.objects.get(email="counselor@demo.example")
    assert demo.check_password("connection-demo")


def test_seed_demo_refuses_when_debug_is_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo")
