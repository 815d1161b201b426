"""The data dictionary of an instrument version: one row per item, as researchers read it.

The same rows feed `manage.py codebook`, the practice admin's download and the `codebook`
export, so the three can never disagree.
"""

import csv
import io
import json

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
)


def _flag(value):
    return "true" if value else "false"


def rows(instrument):
    """One dict per item in instrument order, values as written to the CSV (all strings)."""
    for item in instrument.items.order_by("position"):
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
