import copy
import json
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from assessments import loader, scoring
from assessments.models import Answer, Instrument, Item, Score
from tests.conftest import flip_first_item_keying, make_assignment

pytestmark = pytest.mark.smoke


def shipped(version=1):
    return json.loads((loader.INSTRUMENTS_DIR / f"connection-v{version}.json").read_text())


def write(directory, name, definition):
    (directory / name).write_text(json.dumps(definition))


def test_the_shipped_instruments_are_loaded_by_migrate_and_reloading_is_idempotent(db):
    instrument = Instrument.current()
    assert instrument.label == "connection-v2"
    count = instrument.items.count()
    loader.load_all()
    loader.load_all()
    assert Instrument.objects.count() == 2 and Item.objects.count() == 2 * count == 110


def test_changing_a_published_items_text_fails_naming_the_item(db, tmp_path):
    definition = shipped()
    definition["sections"][0]["items"][1]["text"] = "A new wording that was never published."
    changed_id = definition["sections"][0]["items"][1]["id"]
    write(tmp_path, "connection-v1.json", definition)
    with pytest.raises(loader.InstrumentError, match=rf"{changed_id} \(text changed\)"):
        loader.load_all(tmp_path)
    assert Item.objects.get(instrument__version=1, code=changed_id).text != "A new wording that was never published."


def test_the_load_command_fails_loudly_with_the_same_message(db, tmp_path, monkeypatch):
    definition = shipped()
    definition["sections"][0]["items"][0]["reverse"] = not definition["sections"][0]["items"][0]["reverse"]
    write(tmp_path, "connection-v1.json", definition)
    monkeypatch.setattr(loader, "INSTRUMENTS_DIR", tmp_path)
    monkeypatch.setattr(loader.load_all, "__defaults__", (tmp_path,))
    with pytest.raises(CommandError, match="already published and cannot change"):
        call_command("load_instruments")


def test_a_new_version_loads_beside_the_old_one_and_leaves_its_answers_and_scores_untouched(world, tmp_path):
    assignment, _ = make_assignment(world.couple)
    response = assignment.responses.get(partner__position="A")
    old_items = list(assignment.instrument.items.all())
    Answer.objects.bulk_create(Answer(response=response, item=item, value=4, seq=1) for item in old_items)
    from assessments.workflows import submit

    submit(response)
    before = Score.objects.get(response=response)

    v3 = shipped(2)
    v3["version"] = 3
    v3["sections"][0]["items"][0]["text"] = "A clearer wording, published as a new version."
    write(tmp_path, "connection-v1.json", shipped(1))
    write(tmp_path, "connection-v2.json", shipped(2))
    write(tmp_path, "connection-v3.json", v3)
    loader.load_all(tmp_path)

    assert Instrument.current().version == 3
    assignment.refresh_from_db()
    assert assignment.instrument.version == 2
    assert Answer.objects.filter(response=response, item__instrument__version=2).count() == len(old_items)
    after = Score.objects.get(response=response)
    assert (after.domains, after.connection_index, after.instrument_version) == (
        before.domains,
        before.connection_index,
        2,
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["sections"][1]["items"].append(copy.deepcopy(d["sections"][0]["items"][0])), "used twice"),
        (lambda d: d["sections"][0]["items"][0].update(scale="stars"), "unknown scale"),
        (lambda d: d["sections"][0]["items"][0].update(domain="romance"), "unknown domain"),
        (lambda d: d["sections"][-2]["items"][0].update(predicts="PER1"), "not a couple-domain item"),
        (lambda d: d["norms"].pop("friendship"), "has no norms"),
    ],
)
def test_a_malformed_definition_is_refused_with_a_reason(db, mutate, message):
    definition = shipped()
    definition["version"] = 9
    mutate(definition)
    with pytest.raises(loader.InstrumentError, match=message):
        loader.load_definition(definition)
    assert not Instrument.objects.filter(version=9).exists()


def test_recompute_reproduces_every_stored_score_exactly(db, settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    stored = {
        s.response_id: (s.domains, s.connection_index, s.attunement, s.attunement_exact) for s in Score.objects.all()
    }
    assert len(stored) >= 9
    capsys.readouterr()
    call_command("recompute_scores", "--check")
    assert f"{len(stored)} responses recomputed, 0 differ" in capsys.readouterr().out
    call_command("recompute_scores")
    again = {
        s.response_id: (s.domains, s.connection_index, s.attunement, s.attunement_exact) for s in Score.objects.all()
    }
    assert again == stored


def test_recompute_reports_a_tampered_score_and_repairs_it(db, settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    score = Score.objects.exclude(connection_index=None).first()
    Score.objects.filter(pk=score.pk).update(connection_index=score.connection_index + 1)
    with pytest.raises(CommandError, match="differ"):
        call_command("recompute_scores", "--check")
    assert f"response {score.response_id}: connection_index" in capsys.readouterr().out
    call_command("recompute_scores")
    score.refresh_from_db()
    assert Score.objects.get(pk=score.pk).connection_index == score.connection_index


def test_recompute_refuses_answers_to_another_versions_items(world):
    assignment, _ = make_assignment(world.couple)  # assigned the current version: 2
    response = assignment.responses.get(partner__position="A")
    v1_item = Item.objects.get(instrument__version=1, code="COM1")
    Answer.objects.create(response=response, item=v1_item, value=3)
    response.submitted_at = response.assignment.assigned_at
    response.save()
    with pytest.raises(CommandError, match="another instrument version: COM1"):
        call_command("recompute_scores")


# --- Version 2 and the scoring key ------------------------------------------------------


def comparable_parts(definition):
    """Everything of a definition but its item, section and intro wording and its dates."""
    parts = copy.deepcopy(definition)
    for key in ("version", "published", "language"):
        parts.pop(key, None)
    for section in parts["sections"]:
        section.pop("intro")
        for item in section["items"]:
            item.pop("text")
    return parts


def test_version_two_rewords_only_know_your_partner_and_keeps_every_id_and_target():
    v1, v2 = shipped(1), shipped(2)
    assert (v2["version"], v2["published"]) == (2, "2026-12-01")
    assert comparable_parts(v1) == comparable_parts(v2)
    texts = {v: {i["id"]: i["text"] for s in d["sections"] for i in s["items"]} for v, d in ((1, v1), (2, v2))}
    changed = sorted(code for code in texts[1] if texts[1][code] != texts[2][code])
    assert changed == [f"KYP{n}" for n in range(1, 9)]
    intros = {s["key"] for s1, s in zip(v1["sections"], v2["sections"], strict=True) if s1["intro"] != s["intro"]}
    assert intros == {"know_your_partner"}


def test_know_your_partner_items_speak_to_the_person_answering_about_their_partner():
    section = next(s for s in shipped(2)["sections"] if s["key"] == "know_your_partner")
    for item in section["items"]:
        text = item["text"]
        assert text.startswith("How much would your partner agree: ")
        statement = text.removeprefix("How much would your partner agree: ")
        # The person answering is "you"; the other partner is "your partner" or "they".
        assert "you" in statement.split() or statement.startswith("you ")
        assert not {"my", "me", "i", "we", "us", "our"} & set(statement.lower().rstrip(".").replace(",", "").split())
    assert "“you” always means you" in section["intro"]


GENDERED_WORDS = {
    "en": {
        "he",
        "she",
        "him",
        "her",
        "his",
        "hers",
        "himself",
        "herself",
        "husband",
        "wife",
        "boyfriend",
        "girlfriend",
        "man",
        "woman",
        "men",
        "women",
        "boy",
        "girl",
        "mr",
        "mrs",
        "ms",
    },
    "es": {
        "él",
        "ella",
        "ellos",
        "ellas",
        "esposo",
        "esposa",
        "marido",
        "mujer",
        "hombre",
        "novio",
        "novia",
        "juntos",
        "juntas",
        "ambos",
        "ambas",
        "nosotros",
        "nosotras",
        "amigo",
        "amiga",
        "amigos",
        "amigas",
        "segura",
        "seguro",
        "sola",
        "solos",
        "solas",
        "contento",
        "contenta",
        "cómodo",
        "cómoda",
        "dispuesto",
        "dispuesta",
        "molesto",
        "molesta",
        "enojado",
        "enojada",
        "abierto",
        "abierta",
        "comprendido",
        "comprendida",
        "conectado",
        "conectada",
        "asustado",
        "asustada",
        "consejero",
        "consejera",
    },
}


@pytest.mark.parametrize("name", ["connection-v2.json", "connection-v1.es.json", "connection-v2.es.json"])
def test_the_current_wording_has_no_gendered_word_in_either_language(name):
    document = json.loads((loader.INSTRUMENTS_DIR / name).read_text(encoding="utf-8"))
    if "sections" in document and isinstance(document["sections"], list):
        texts, words = loader.texts_of_instrument(document), GENDERED_WORDS["en"]
    else:
        texts, words = loader.texts_of_translation(document), GENDERED_WORDS["es"]
    found = {
        (path, word)
        for path, text in texts.items()
        for word in re.findall(r"[\wáéíóúñü]+", text.lower())
        if word in words
    }
    assert not found


def test_versions_that_differ_only_in_wording_share_a_scoring_key(db):
    v1, v2 = Instrument.objects.get(version=1), Instrument.objects.get(version=2)
    assert len(v1.scoring_key) == 64
    assert v1.scoring_key == v2.scoring_key and v1.scores_comparable_with(v2)
    assert v1.checksum != v2.checksum


@pytest.mark.parametrize(
    "change",
    [
        flip_first_item_keying,
        lambda d: d["sections"][0]["items"][0].update(domain="friendship"),
        lambda d: d["sections"][0]["items"].pop(),
        lambda d: d["norms"]["communication"].update(alpha=0.85),
        lambda d: d["scales"]["agreement"].update(max=7),
    ],
    ids=["keying", "domain", "an item less", "norms", "scale"],
)
def test_a_version_whose_scoring_differs_gets_another_scoring_key(db, change):
    definition = shipped(2)
    definition["version"] = 3
    change(definition)
    v3 = loader.load_definition(definition)
    assert v3.scoring_key != Instrument.objects.get(version=2).scoring_key
    assert not v3.scores_comparable_with(Instrument.objects.get(version=2))


def test_wording_order_and_remedies_leave_the_scoring_key_alone(db):
    definition = shipped(2)
    definition["version"] = 3
    definition["sections"][0]["items"].reverse()
    definition["sections"][0]["items"][0]["text"] = "Another wording of the same statement."
    definition["remedies"]["tough_times"]["text"] = "Another remedy text."
    assert loader.load_definition(definition).scoring_key == Instrument.objects.get(version=2).scoring_key


def test_a_new_scoring_version_moves_every_versions_key_together(db, monkeypatch):
    before = Instrument.objects.get(version=2).scoring_key
    monkeypatch.setattr(scoring, "SCORING_VERSION", "2")
    loader.load_all()
    keys = set(Instrument.objects.values_list("scoring_key", flat=True))
    assert len(keys) == 1 and before not in keys
