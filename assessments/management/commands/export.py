import datetime

from django.core.management.base import BaseCommand, CommandError

from assessments import exports
from practice.models import Practice, User, audit


def _date(value):
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (use YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Write one export of a practice (answers, scores, completion or codebook) as CSV or XLSX."

    def add_arguments(self, parser):
        parser.add_argument("kind", help="answers, scores, completion or codebook")
        parser.add_argument("--practice", required=True, help="The practice's slug.")
        parser.add_argument("--format", default="csv", help="csv (default) or xlsx")
        parser.add_argument("--deidentified", action="store_true", help="Pseudonyms for ids, no names or e-mails.")
        parser.add_argument("--start", help="First day an assignment was sent (YYYY-MM-DD, practice time).")
        parser.add_argument("--end", help="Last day an assignment was sent (YYYY-MM-DD, practice time).")
        parser.add_argument("--counselor", help="Only this counselor's couples (their e-mail).")
        parser.add_argument("--out", help="Write to this file (default: standard output; required for xlsx).")

    def handle(self, *args, kind, practice, format, deidentified, start, end, counselor, out, **options):
        found = Practice.objects.filter(slug=practice).first()
        if found is None:
            raise CommandError(f"No practice with the slug {practice!r}.")
        person = None
        if counselor:
            person = User.objects.select_related("membership").filter(email__iexact=counselor).first()
            if person is None:
                raise CommandError(f"No user with the e-mail {counselor!r}.")
        request = exports.ExportRequest(
            practice=found,
            kind=kind,
            format=format,
            start=_date(start) if start else None,
            end=_date(end) if end else None,
            counselor=person,
            deidentified=deidentified,
        )
        try:
            request.validate()
        except exports.ExportError as exc:
            raise CommandError(str(exc)) from None
        if format == "xlsx" and not out:
            raise CommandError("An XLSX file needs --out FILE.")
        if out:
            with open(out, "wb") as fh:
                exports.write(request, fh)
        else:
            for chunk in exports.csv_chunks(request):
                self.stdout.write(chunk.decode(), ending="")
        audit(None, "export.download", practice=found, actor_label="manage.py export", **request.params)
        if out:
            self.stderr.write(f"Wrote the {request.kind} export of {found.slug} to {out}.")
