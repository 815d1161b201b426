"""Recompute every stored score from the stored answers, and report any that differ."""

import math

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from assessments import caseload, comparison, scoring
from assessments.models import Response, Score
from assessments.scores import compute_score

FIELDS = ("connection_index", "attunement", "attunement_exact", "straightlined")


def same(a, b):
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return a == b


def differences(before, after):
    diffs = [f for f in FIELDS if not same(getattr(before, f), getattr(after, f))]
    keys = set(before.domains) | set(after.domains)
    diffs += [f"domains.{k}" for k in sorted(keys) if not same(before.domains.get(k), after.domains.get(k))]
    return diffs


class Command(BaseCommand):
    help = "Recompute every submitted response's scores from its answers (--check only compares)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Compare only; change nothing; exit 1 on a difference."
        )

    def handle(self, *args, check=False, **options):
        responses = (
            Response.objects.filter(submitted_at__isnull=False)
            .select_related("assignment__instrument", "score")
            .order_by("pk")
        )
        total = changed = 0
        problems = []
        for response in responses.iterator(chunk_size=500):
            partner = Response.objects.filter(assignment_id=response.assignment_id).exclude(pk=response.pk).first()
            before = getattr(response, "score", None)
            before = Score.objects.get(pk=before.pk) if before is not None else None
            try:
                with transaction.atomic():
                    after = compute_score(response, partner_response=partner)
                    diffs = differences(before, after) if before is not None else ["missing"]
                    if check:
                        transaction.set_rollback(True)
            except scoring.ScoringError as exc:
                raise CommandError(f"response {response.pk}: {exc}") from None
            total += 1
            if diffs:
                changed += 1
                problems.append(f"response {response.pk}: {', '.join(diffs)}")
        if not check:
            caseload.rebuild()  # the caseload shows the latest indexes and their changes
            comparison.store_all_reports()  # and the stored comparisons their scores
        for line in problems:
            self.stdout.write(line)
        verb = "differ" if check else "changed"
        self.stdout.write(
            f"{total} responses recomputed, {changed} {verb} (scoring version {scoring.SCORING_VERSION})."
        )
        if check and changed:
            raise CommandError("Stored scores differ from a recomputation.")
