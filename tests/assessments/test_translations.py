import copy
import json

import pytest

from assessments import loader, scoring, translations
from assessments.models import Instrument, InstrumentTranslation

pytestmark = pytest.mark.smoke


def shipped(name):
    return json.loads((loader.INSTRUMENTS_DIR / name).read_text(encoding="utf-8"))


def write(directory, name, document):
    (directory / name).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def item_texts(definition):
    return {i["id"]: i["text"] for s in definition["sections"] for i in s["items"]}


@pytest.fixture
def fresh_cache():
    translations.clear_cache()
    yield
    translations.clear_cache()


@pytest.mark.parametrize("version", [1, 2])
def test_both_shipped_versions_have_a_spanish_translation_marked_not_yet_validated(db, version):
    translation = InstrumentTranslation.objects.get(instrument__version=version, language="es")
    assert translation.status == "translated, not yet validated"
    assert translation.definition["status"] == "translated, not yet validated"
    english = item_texts(translation.instrument.definition)
    assert set(translation.definition["items"]) == set(english)
    assert all(translation.definition["items"][code] != english[code] for code in english)


def test_spanish_texts_replace_every_wording_and_keep_everything_scoring_uses(db, fresh_cache):
    instrument = Instrument.current()
    spanish = translations.texts(instrument, "es")
    assert (spanish["language"], spanish["translation_status"]) == ("es", "translated, not yet validated")
    assert spanish["title"] == "Evaluación de la Conexión"
    assert item_texts(spanish)["SUP2"] == "Mi pareja me consuela después de un día difícil."
    assert spanish["scales"]["agreement"]["labels"]["5"] == "Totalmente de acuerdo"
    assert spanish["scales"]["frequency"]["labels"]["1"] == "Nunca"
    assert spanish["sections"][0]["title"] == "Hablar y entendernos"
    assert instrument.definition["sections"][0]["title"] == "Talking and being understood"  # the original is untouched
    assert spanish["remedies"]["tough_times"]["title"] == "Atravesar en equipo las etapas difíciles"
    # Ids, keying, domains, scale ranges and norms are the instrument's own, so scores are identical.
    assert scoring.items_from_instrument(spanish) == scoring.items_from_instrument(instrument.definition)
    assert scoring.norms_from_instrument(spanish) == scoring.norms_from_instrument(instrument.definition)
    assert scoring.remedies_from_instrument(spanish) == scoring.remedies_from_instrument(instrument.definition)
    answers = {code: 4 for code in item_texts(spanish) if not code.startswith("SAF")}
    norms = instrument.norms()
    assert scoring.score_response(scoring.items_from_instrument(spanish), answers, norms) == scoring.score_response(
        instrument.item_specs(), answers, norms
    )


def test_version_one_in_spanish_is_answerable_too(db, fresh_cache):
    spanish = translations.texts(Instrument.objects.get(version=1), "es")
    assert spanish["language"] == "es"
    assert item_texts(spanish)["KYP2"] == (
        "¿Cómo respondería tu pareja a la frase «Mi pareja me consuela después de un día difícil»?"
    )


@pytest.mark.parametrize("language", ["pt", "", None, "en", "en-GB"])
def test_a_language_without_a_translation_gets_the_original_wording(db, fresh_cache, language):
    instrument = Instrument.current()
    texts = translations.texts(instrument, language)
    assert (texts["language"], texts["translation_status"]) == ("en", None)
    assert item_texts(texts) == item_texts(instrument.definition)


@pytest.mark.parametrize("language", ["es-MX", "es_419", "ES"])
def test_a_regional_or_differently_written_code_finds_the_language(db, fresh_cache, language):
    assert translations.texts(Instrument.current(), language)["language"] == "es"


def test_texts_are_cached_in_the_process(db, fresh_cache, django_assert_num_queries):
    instrument = Instrument.current()
    with django_assert_num_queries(1):  # the translation
        first = translations.texts(instrument, "es")
    with django_assert_num_queries(0):
        assert translations.texts(instrument, "es") is first
        assert translations.texts(instrument, "en")["language"] == "en"  # the original wording needs no query


def spanish_v2():
    return shipped("connection-v2.es.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["items"].pop("KYP3"), "missing items.KYP3"),
        (lambda t: t["items"].update(XYZ1="Una frase de más."), "not in the instrument items.XYZ1"),
        (lambda t: t["sections"]["safety"].pop("intro"), "missing sections.safety.intro"),
        (lambda t: t["scales"]["frequency"].pop("4"), "missing scales.frequency.4"),
        (lambda t: t["domains"].pop("friendship"), "missing domains.friendship.meaning, domains.friendship.title"),
        (lambda t: t["remedies"].update(dance={"title": "Bailar", "text": "Bailen."}), "remedies.dance.text"),
        (lambda t: t["items"].update(COM1="   "), "items.COM1 must be a non-empty text"),
        (lambda t: t["items"].update(COM1=3), "items.COM1 must be a non-empty text"),
        (lambda t: t.update(notes="Sin revisar."), "unknown fields notes"),
        (lambda t: t.update(status="done"), "the status must be"),
        (lambda t: t.update(language="en"), "is the language the instrument is written in"),
        (lambda t: t.update(language="Español"), "the language must be a lower-case code"),
        (lambda t: t.update(version=7), "there is no connection version 7 to translate"),
    ],
)
def test_a_translation_that_does_not_match_its_version_is_refused_with_the_reason(db, change, message):
    translation = spanish_v2()
    translation["language"] = "pt"  # a language not yet stored, so only validation can refuse it
    change(translation)
    with pytest.raises(loader.InstrumentError, match=message):
        loader.load_translation(translation)
    assert not InstrumentTranslation.objects.exclude(language="es").exists()


def test_changing_a_published_translation_fails_naming_what_changed(db, tmp_path):
    changed = spanish_v2()
    changed["items"]["COM1"] = "Una redacción nueva que nunca se publicó."
    changed["sections"]["outlook"]["intro"] = "Otra introducción."
    for name in ("connection-v1.json", "connection-v2.json"):
        write(tmp_path, name, shipped(name))
    write(tmp_path, "connection-v2.es.json", changed)
    with pytest.raises(loader.InstrumentError, match=r"items\.COM1, sections\.outlook\.intro changed"):
        loader.load_all(tmp_path)
    stored = InstrumentTranslation.objects.get(instrument__version=2, language="es")
    assert stored.definition["items"]["COM1"] == spanish_v2()["items"]["COM1"]


def test_reloading_the_shipped_translations_is_idempotent(db):
    before = list(InstrumentTranslation.objects.values_list("pk", "checksum", "loaded_at"))
    loader.load_all()
    assert list(InstrumentTranslation.objects.values_list("pk", "checksum", "loaded_at")) == before
    assert len(before) == 2


def test_the_status_may_move_to_validated_while_the_texts_stay_fixed(db, fresh_cache):
    translation = spanish_v2()
    translations.texts(Instrument.current(), "es")  # cached before the change
    translation["status"] = "validated"
    loader.load_translation(translation)
    stored = InstrumentTranslation.objects.get(instrument__version=2, language="es")
    assert stored.status == "validated" and stored.definition["status"] == "validated"
    assert translations.texts(Instrument.current(), "es")["translation_status"] == "validated"


def test_a_translation_file_named_for_another_language_or_version_is_refused(db, tmp_path):
    for name in ("connection-v1.json", "connection-v2.json"):
        write(tmp_path, name, shipped(name))
    write(tmp_path, "connection-v2.pt.json", spanish_v2())
    with pytest.raises(loader.InstrumentError, match="should be named connection-v2.es.json"):
        loader.load_all(tmp_path)


def test_a_new_translation_loads_beside_the_others_and_is_used_at_once(db, tmp_path, fresh_cache):
    portuguese = copy.deepcopy(spanish_v2())
    portuguese["language"] = "pt"
    portuguese["title"] = "Avaliação da Conexão"
    instrument = Instrument.current()
    assert translations.texts(instrument, "pt")["language"] == "en"
    for name in ("connection-v1.json", "connection-v2.json"):
        write(tmp_path, name, shipped(name))
    write(tmp_path, "connection-v2.pt.json", portuguese)
    loader.load_all(tmp_path)
    assert translations.texts(instrument, "pt")["title"] == "Avaliação da Conexão"
    assert set(instrument.translations.values_list("language", flat=True)) == {"es", "pt"}
