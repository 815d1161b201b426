"""An instrument version's texts in one language: the definition with a translation laid over it.

Translations are loaded by `assessments.loader` from `<slug>-v<N>.<language>.json` beside the
instrument file. Only texts are translated; ids, keys, keying, scales and norms always come
from the instrument itself, so answers given in any language score and compare identically.
"""

import copy

from . import loader
from .models import InstrumentTranslation

_texts_cache: dict[tuple[int, str], dict] = {}


def clear_cache(**kwargs):
    """Forget every cached overlay (whenever the loader stores a translation)."""
    _texts_cache.clear()


loader.translation_loaded.connect(clear_cache, dispatch_uid="assessments.translations.clear_cache")


def candidates(language):
    """The codes to try for a requested language, most specific first: "es-MX" -> es-mx, es."""
    code = (language or "").strip().lower().replace("_", "-")
    primary = code.split("-")[0]
    return [c for c in dict.fromkeys([code, primary]) if c]


def overlay(definition, translation):
    """A copy of ``definition`` with the translation's texts in place of the original ones.

    The result also says which language its texts are in (``language``) and how far that
    translation has been checked (``translation_status``: None for the original wording).
    """
    result = copy.deepcopy(definition)
    result["language"] = loader.base_language(definition)
    result["translation_status"] = None
    if translation is None:
        return result
    texts = loader.texts_of_translation(translation.definition)

    def lay(target, field, path):
        # The loader checked that the translation has exactly the original's texts.
        if path in texts:
            target[field] = texts[path]

    lay(result, "title", "title")
    for name, scale in result.get("scales", {}).items():
        for value in scale.get("labels", {}):
            lay(scale["labels"], value, f"scales.{name}.{value}")
    for section in result.get("sections", []):
        lay(section, "title", f"sections.{section['key']}.title")
        lay(section, "intro", f"sections.{section['key']}.intro")
        for item in section.get("items", []):
            lay(item, "text", f"items.{item['id']}")
    for domain in result.get("domains", []):
        lay(domain, "title", f"domains.{domain['key']}.title")
        lay(domain, "meaning", f"domains.{domain['key']}.meaning")
    for key, remedy in result.get("remedies", {}).items():
        lay(remedy, "title", f"remedies.{key}.title")
        lay(remedy, "text", f"remedies.{key}.text")
    result["language"] = translation.language
    result["translation_status"] = translation.status
    return result


def texts_by_id(instrument_id, definition, language):
    """Like `texts`, for an instrument known by its id and already-loaded definition."""
    key = (instrument_id, language)
    found = _texts_cache.get(key)
    if found is None:
        codes = candidates(language)
        translation = None
        if codes and codes[-1] != loader.base_language(definition):
            stored = {
                t.language: t
                for t in InstrumentTranslation.objects.filter(instrument_id=instrument_id, language__in=codes)
            }
            translation = next((stored[c] for c in codes if c in stored), None)
        found = _texts_cache[key] = overlay(definition, translation)
    return found


def texts(instrument, language):
    """``instrument``'s definition in ``language`` (the original wording when it has no translation).

    Cached in this process per instrument and language, like `answering.definition`: a published
    version and its translations never change, and the first call costs one query at most (none
    for the instrument's own language). The result is shared: read it, never change it.
    """
    key = (instrument.pk, language)
    found = _texts_cache.get(key)
    if found is None:
        codes = candidates(language)
        translation = None
        if codes and codes[-1] != loader.base_language(instrument.definition):
            stored = {t.language: t for t in instrument.translations.filter(language__in=codes)}
            translation = next((stored[c] for c in codes if c in stored), None)
        found = _texts_cache[key] = overlay(instrument.definition, translation)
    return found
