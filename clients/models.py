from django.conf import settings
from django.db import models
from django.utils import timezone

from practice.models import Practice


class CoupleQuerySet(models.QuerySet):
    def for_practice(self, practice):
        return self.filter(practice=practice)

    def for_counselor(self, user):
        return self.filter(counselor=user, practice_id=user.membership.practice_id)

    def active(self):
        return self.filter(status=Couple.Status.ACTIVE)


class Couple(models.Model):
    """A client couple, seen by the one counselor it is assigned to."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="couples")
    counselor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="couples")
    label = models.CharField(max_length=120, help_text="How the couple appears in your caseload.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    notes = models.TextField(blank=True, help_text="Visible to the counselor only.")
    reminders_paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CoupleQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["counselor", "status", "label"])]

    def __str__(self):
        return self.label

    @property
    def partner_a(self):
        return next((p for p in self.partners.all() if p.position == Partner.Position.A), None)

    @property
    def partner_b(self):
        return next((p for p in self.partners.all() if p.position == Partner.Position.B), None)


class Partner(models.Model):
    """One member of a couple. Partners never sign in: they answer through a personal link."""

    class Position(models.TextChoices):
        A = "A", "Partner A"
        B = "B", "Partner B"

    couple = models.ForeignKey(Couple, on_delete=models.CASCADE, related_name="partners")
    position = models.CharField(max_length=1, choices=Position.choices)
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80, blank=True)
    email = models.EmailField()
    display_name = models.CharField(
        max_length=80, blank=True, help_text="What the counselor's pages call this partner; the first name if empty."
    )
    pronouns = models.CharField(
        max_length=40, blank=True, help_text="Optional, as the partner gives them, e.g. they/them."
    )
    language = models.CharField(
        max_length=8,
        choices=settings.LANGUAGES,
        default="en",
        help_text="The language of this partner's pages, questions and e-mails; the partner can switch it.",
    )
    reminders_unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["couple", "position"], name="one_partner_per_position")]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def name(self):
        """The name every counselor-facing sentence uses for this partner."""
        return self.display_name or self.first_name

    @property
    def name_with_pronouns(self):
        return f"{self.name} ({self.pronouns})" if self.pronouns else self.name
