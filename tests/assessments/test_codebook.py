import csv
import io
import json
from collections import Counter

import pytest
from django.core.management import call_command
from django.urls import reverse

from practice.models import AuditEvent
from tests.conftest import COUPLE_DOMAINS, client_for

pytestmark = pytest.mark.smoke

COLUMNS = ["item_id", "section", "domain", "reverse_keyed", "scored", "scale_min", "scale_max", "predicts_item", "text"]
COLUMNS += ["text_es", "text_es_status"]  # the Spanish wording and its validation status


def codebook_rows(capsys, *args):
    call_command("codebook", *args)
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_codebook_csv_has_exactly_the_documented_columns(db, capsys):
    call_command("codebook")
    header = next(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header == COLUMNS


def test_codebook_describes_the_six_couple_domains_outlook_and_personal_skills(db, capsys):
    rows = codebook_rows(capsys)
    per_domain = Counter(r["domain"] for r in rows if r["scored"] == "true")
    reversed_per_domain = Counter(r["domain"] for r in rows if r["reverse_keyed"] == "true")
    for domain in COUPLE_DOMAINS:
        assert per_domain[domain] == 5
        assert reversed_per_domain[domain] == 2
    assert per_domain["outlook"] == 3
    assert per_domain["personal_skills"] == 6
    assert {r["reverse_keyed"] for r in rows} == {"true", "false"}
    assert all(r["domain"] == "" for r in rows if r["scored"] == "false")


def test_every_prediction_item_names_a_couple_domain_item(db, capsys):
    rows = codebook_rows(capsys)
    domain_of = {r["item_id"]: r["domain"] for r in rows}
    predictions = [r for r in rows if r["predicts_item"]]
    assert len(predictions) >= 6
    assert all(domain_of[r["predicts_item"]] in COUPLE_DOMAINS for r in predictions)
    assert all(r["scored"] == "false" for r in predictions)


def test_codebook_documents_the_safety_items(db, capsys):
    rows = codebook_rows(capsys)
    safety = [r for r in rows if r["section"] == "safety"]
    assert len(safety) >= 4
    assert all(r["scored"] == "false" and r["domain"] == "" for r in safety)


def test_codebook_json_carries_typed_values_and_the_version(db, capsys):
    call_command("codebook", "--format", "json")
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == 2 and document["columns"] == COLUMNS
    first = document["items"][0]
    assert first["item_id"] == "COM1" and first["scored"] is True and first["scale_max"] == 5


def test_practice_admin_downloads_the_same_codebook_and_it_is_audited(world, capsys):
    call_command("codebook")
    expected = capsys.readouterr().out
    response = client_for(world.admin).get(reverse("assessments:codebook"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="connection-v2-codebook.csv"'
    assert response.content.decode() == expected
    assert AuditEvent.objects.filter(action="export.codebook", actor=world.admin).count() == 1


def test_counselor_cannot_download_the_codebook_from_the_admin_pages(world):
    assert client_for(world.owner).get(reverse("assessments:codebook")).status_code == 403


def test_the_codebook_gives_each_items_spanish_wording_marked_not_yet_validated(db, capsys):
    rows = {row["item_id"]: row for row in codebook_rows(capsys)}
    assert rows["COM1"]["text_es"] == "Hablar con mi pareja me resulta fácil y natural."
    assert {row["text_es_status"] for row in rows.values()} == {"translated, not yet validated"}
    assert all(row["text_es"] and row["text_es"] != row["text"] for row in rows.values())
