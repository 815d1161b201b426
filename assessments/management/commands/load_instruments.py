from django.core.management.base import BaseCommand, CommandError

from assessments.loader import InstrumentError, load_all


class Command(BaseCommand):
    help = "Load every instrument definition in assessments/instruments/ (idempotent)."

    def handle(self, *args, **options):
        try:
            for instrument in load_all():
                self.stdout.write(f"{instrument.label}: {instrument.items.count()} items")
                for translation in instrument.translations.all():
                    self.stdout.write(f"{translation}: {translation.status}")
        except InstrumentError as exc:
            raise CommandError(str(exc)) from None
