"""An independent program recomputes the scores from the exported answers and codebook.

Nothing here imports the scoring engine: the rules are re-implemented from docs/scoring.md and
read the item keys and scales from the codebook CSV only.
"""

import csv
import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.management import call_command

from assessments.models import Response
from tests.conftest import COUPLE_DOMAINS

pytestmark = pytest.mark.smoke


def read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def recompute(codebook, answers):
    """{(assignment_id, partner): {domain: score, "connection_index": ci}} per docs/scoring.md."""
    items = {row["item_id"]: row for row in codebook if row["scored"] == "true"}
    domain_items = defaultdict(list)
    for code, row in items.items():
        domain_items[row["domain"]].append(code)
    by_response = defaultdict(dict)
    for row in answers:
        by_response[(row["assignment_id"], row["partner"])][row["item_id"]] = row["value"]
    results = {}
    for key, given in by_response.items():
        scores = {}
        for domain, codes in domain_items.items():
            keyed = []
            for code in codes:
                raw = given.get(code, "")
                if raw == "":
                    continue
                lo, hi = int(items[code]["scale_min"]), int(items[code]["scale_max"])
                value = int(raw)
                keyed.append(lo + hi - value if items[code]["reverse_keyed"] == "true" else value)
            needed = math.ceil(0.8 * len(codes))
            if len(keyed) >= needed:
                mean = sum(keyed) / len(keyed)
                scores[domain] = 100 * (mean - 1) / 4
            else:
                scores[domain] = None
        couple = [scores[d] for d in COUPLE_DOMAINS if scores.get(d) is not None]
        scores["connection_index"] = sum(couple) / len(couple) if len(couple) >= 5 else None
        results[key] = scores
    return results


def test_scores_recomputed_from_exported_answers_and_codebook_equal_the_exported_scores(db, tmp_path, settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    capsys.readouterr()
    paths = {}
    for kind in ("answers", "codebook", "scores"):
        paths[kind] = tmp_path / f"{kind}.csv"
        call_command("export", kind, "--practice", "riverside-counseling", "--out", str(paths[kind]))
    codebook, answers, scores = (read(paths[k]) for k in ("codebook", "answers", "scores"))
    assert not any(row["item_id"].startswith("SAF") for row in answers)
    recomputed = recompute(codebook, answers)
    submitted = Response.objects.filter(
        assignment__couple__practice__slug="riverside-counseling", submitted_at__isnull=False
    )
    assert len(scores) == submitted.count() >= 9  # every submitted response of the demo practice
    assert {(s["assignment_id"], s["partner"]) for s in scores} == set(recomputed)
    compared = 0
    for row in scores:
        mine = recomputed[(row["assignment_id"], row["partner"])]
        for column in (*COUPLE_DOMAINS, "outlook", "personal_skills", "connection_index"):
            if row[column] == "":
                assert mine[column] is None, (row["assignment_id"], row["partner"], column)
            else:
                assert mine[column] is not None
                # Exports show whole numbers, halves rounded up (docs/exports.md).
                shown = int(Decimal(repr(mine[column])).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                assert row[column] == str(shown), (row["assignment_id"], column)
                compared += 1
    assert compared >= 9 * len(scores) - 2
