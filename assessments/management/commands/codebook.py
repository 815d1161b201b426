from django.core.management.base import BaseCommand, CommandError

from assessments import codebook
from assessments.models import Instrument


class Command(BaseCommand):
    help = "Print the data dictionary of the current instrument version (CSV or JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=("csv", "json"), default="csv")
        parser.add_argument("--instrument", default="connection", help="Instrument slug (default: connection).")

    def handle(self, *args, format="csv", instrument="connection", **options):
        current = Instrument.current(instrument)
        if current is None:
            raise CommandError(f"No instrument {instrument!r} is loaded: run `python manage.py migrate` first.")
        text = codebook.as_csv(current) if format == "csv" else codebook.as_json(current)
        self.stdout.write(text, ending="")
