"""The data dictionary of an instrument version: one row per item, as researchers read it.

The same rows feed `manage.py codebook`, the practice admin's download and the `codebook`
export, so the three can never disagree.
"""

import csv
import io
import json

from django.conf import settings

from . import loader

# Each shipped translation's wording of the item, and how far that translation is checked
# ("translated, not yet validated" until evidence says otherwise; empty without a translation).
TRANSLATED = tuple(code for code, _name in settings.LANGUAGES if code != loader.BASE_LANGUAGE)

COLUMNS = (
    "item_id",
    "section",
    "domain",
    "reverse_keyed",
    "scored",
    "scale_min",
    "scale_max",
    "predicts_item",
    "text",
    *(column for code in TRANSLATED for column in (f"text_{code}", f"text_{code}_status")),
)


def _flag(value):
    return "true" if value else "false"


def rows(instrument):
    """One dict per item in instrument order, values as written to the CSV (all strings)."""
    translations = {t.language: t for t in instrument.translations.filter(language__in=TRANSLATED)}
    texts = {code: loader.texts_of_translation(t.definition) for code, t in translations.items()}
    for item in instrument.items.order_by("position"):
        translated = {}
        for code in TRANSLATED:
            found = translations.get(code)
            translated[f"text_{code}"] = texts[code].get(f"items.{item.code}", "") if found else ""
            translated[f"text_{code}_status"] = found.status if found else ""
        yield {
            "item_id": item.code,
            "section": item.section,
            "domain": item.domain if item.scored else "",
            "reverse_keyed": _flag(item.reverse_keyed),
            "scored": _flag(item.scored),
            "scale_min": str(item.scale_min),
            "scale_max": str(item.scale_max),
            "predicts_item": item.predicts,
            "text": item.text,
            **translated,
        }


def as_csv(instrument):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows(instrument))
    return buffer.getvalue()


def as_json(instrument):
    """The codebook with typed values and the instrument's identity, for programs."""
    items = [
        {
            **row,
            "domain": row["domain"] or None,
            "reverse_keyed": row["reverse_keyed"] == "true",
            "scored": row["scored"] == "true",
            "scale_min": int(row["scale_min"]),
            "scale_max": int(row["scale_max"]),
            "predicts_item": row["predicts_item"] or None,
        }
        for row in rows(instrument)
    ]
    document = {"instrument": instrument.slug, "version": instrument.version, "title": instrument.title}
    return json.dumps({**document, "columns": list(COLUMNS), "items": items}, indent=2, ensure_ascii=False) + "\n"
