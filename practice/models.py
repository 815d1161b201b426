import datetime
import ipaddress
import unicodedata
import zoneinfo

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from . import tokens


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: a counselor, a practice admin or an operator. Partners never do."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the Django admin (operators).")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self):
        return self.full_name or self.email

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return (self.full_name or self.email).split()[0]


def _validate_time_zone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.")


def tel_number(text):
    """A phone number as a tel: link dials it: digits, and a leading + if written."""
    digits = "".join(c for c in text if c.isdigit())
    return ("+" + digits if text.strip().startswith("+") else digits) if digits else ""


def default_reminder_policy():
    return {"after_days": [2, 5], "before_due_days": 1, "overdue_notice": True}


class Practice(models.Model):
    """The tenant: nothing a counselor or admin sees ever crosses a practice."""

    name = models.CharField(max_length=150)
    slug = models.SlugField(unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[_validate_time_zone])
    default_due_days = models.PositiveSmallIntegerField(default=settings.DEFAULT_DUE_DAYS)
    link_grace_days = models.PositiveSmallIntegerField(default=settings.DEFAULT_LINK_GRACE_DAYS)
    reminder_policy = models.JSONField(default=default_reminder_policy)
    quiet_hours_start = models.TimeField(default=datetime.time(21, 0))
    quiet_hours_end = models.TimeField(default=datetime.time(8, 0))
    require_two_factor = models.BooleanField(default=False)
    weekly_digest = models.BooleanField(
        default=False, help_text="Each counselor gets a Monday-morning e-mail of counts (never a name or score)."
    )
    alert_escalation_hours = models.PositiveSmallIntegerField(
        default=24, help_text="An unacknowledged safety alert is brought to the practice's admins after this long."
    )
    closed_link_days = models.PositiveSmallIntegerField(
        default=14, help_text="After a partner submits, their link opens their results for this many days."
    )
    quick_exit_url = models.URLField(
        default="https://www.weather.com/", help_text="The neutral site a partner's quick exit opens."
    )

    # What a partner reads on the support page and under a concerning safety answer: the
    # practice's own country, so no number is hard-coded to one.
    emergency_number = models.CharField(
        max_length=40, default="911", blank=True, help_text="The local emergency number, e.g. 911, 999 or 112."
    )
    support_line_text = models.CharField(
        max_length=300,
        default="the National Domestic Violence Hotline (US), any time, or text START to 88788",
        blank=True,
        help_text="Who a partner can talk to in confidence, in a few words.",
    )
    support_line_numbers = models.CharField(
        max_length=200,
        default="1-800-799-7233",
        blank=True,
        help_text="Its phone numbers, separated by commas; each becomes a tap-to-call link.",
    )

    class ResultsVisibility(models.TextChoices):
        AT_ONCE = "at_once", "At once, when they submit"
        AFTER_RELEASE = "after_release", "Only after their counselor shares them (at the feedback session)"

    results_visibility = models.CharField(
        max_length=16, choices=ResultsVisibility.choices, default=ResultsVisibility.AT_ONCE
    )
    default_language = models.CharField(
        max_length=8,
        choices=settings.LANGUAGES,
        default="en",
        help_text="The language a new couple's partners answer in, unless their counselor chooses another.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.name

    def clean(self):
        # The name goes into e-mail subjects and page titles: one line, no control characters
        # (the settings page and the Django admin both validate through here).
        if any(unicodedata.category(char) == "Cc" for char in self.name):
            raise ValidationError({"name": "Write the practice's name on one line, without line breaks or tabs."})

    @property
    def support_numbers(self):
        """The support line's numbers as (as written, what a tel: link dials)."""
        return [(n.strip(), tel_number(n)) for n in self.support_line_numbers.split(",") if tel_number(n)]

    @property
    def emergency_tel(self):
        return tel_number(self.emergency_number)

    @property
    def tz(self):
        return zoneinfo.ZoneInfo(self.time_zone)


class MembershipQuerySet(models.QuerySet):
    def for_practice(self, practice):
        return self.filter(practice=practice)


class Membership(models.Model):
    """A user's place in one practice. A user belongs to exactly one practice."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Practice admin"
        COUNSELOR = "counselor", "Counselor"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.COUNSELOR)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MembershipQuerySet.as_manager()

    def __str__(self):
        return f"{self.user} ({self.get_role_display()}, {self.practice})"

    @property
    def is_admin(self):
        return self.role == self.Role.ADMIN


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """An append-only record of who looked at or changed what. Never holds answer content."""

    practice = models.ForeignKey(Practice, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=200, blank=True, help_text="Who acted, kept if the user goes.")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["practice", "-at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")


def client_address(request):
    """The client's network address, for the lockout and the audit log.

    REMOTE_ADDR, or behind TRUSTED_PROXIES reverse proxies the X-Forwarded-For hop the first of
    them appended. Hops further left were written by the client and are never trusted. None for a
    background job, or when the trusted hop is not an address (it is stored in an address column).
    """
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote


def audit(request, action, obj=None, *, practice=None, actor=None, **detail):
    """Write one audit event for a request (or for a background job when request is None)."""
    user = actor or (getattr(request, "user", None) if request is not None else None)
    if user is not None and not user.is_authenticated:
        user = None
    if practice is None and request is not None:
        practice = getattr(request, "practice", None)
    return AuditEvent.objects.create(
        practice=practice,
        actor=user,
        actor_label=user.email if user else detail.pop("actor_label", ""),
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        detail=detail,
        ip=client_address(request),
    )


# --- What an audit event is about, named for the person reading the log ------------------------

# object_type -> fn(ids, *, practice, viewer) returning {pk: AuditTarget}; the apps that own a model
# register it (assessments names couples, administrations and responses), so this layer imports none.
AUDIT_TARGETS = {}


class AuditTarget:
    """An event's object as the log shows it: a name, and a link when the reader may open it."""

    def __init__(self, text, url=""):
        self.text, self.url = text, url

    def __repr__(self):
        return f"AuditTarget({self.text!r}, {self.url!r})"


def audit_target(object_type):
    """Register ``fn(ids, *, practice, viewer)`` as the namer of one object type, in one query."""

    def register(fn):
        AUDIT_TARGETS[object_type] = fn
        return fn

    return register


def name_targets(events, *, practice, viewer):
    """Set ``event.target`` (an AuditTarget, or None when the object is gone or unnamed) on each event.

    One query per object type on the page, whatever the number of events: at most one per
    registered type. Names and links only, never an answer.
    """
    wanted = {}
    for event in events:
        if event.object_type in AUDIT_TARGETS and event.object_id.isdigit():
            wanted.setdefault(event.object_type, set()).add(int(event.object_id))
    found = {}
    for object_type, ids in wanted.items():
        for pk, target in AUDIT_TARGETS[object_type](ids, practice=practice, viewer=viewer).items():
            found[object_type, str(pk)] = target
    for event in events:
        event.target = found.get((event.object_type, event.object_id))
    return events


@audit_target("user")
def _name_users(ids, *, practice, viewer):
    users = User.objects.filter(pk__in=ids, membership__practice=practice).only("full_name", "email")
    return {user.pk: AuditTarget(str(user)) for user in users}


@audit_target("invitation")
def _name_invitations(ids, *, practice, viewer):
    invitations = Invitation.objects.filter(pk__in=ids, practice=practice).only("email")
    return {invitation.pk: AuditTarget(f"Invitation for {invitation.email}") for invitation in invitations}


@audit_target("practice")
def _name_practice(ids, *, practice, viewer):
    # The one practice whose log this is: its name is already in hand, no query.
    return {practice.pk: AuditTarget(practice.name)} if practice.pk in ids else {}


INVITATION_HOURS = 72


class InvitationQuerySet(models.QuerySet):
    def pending(self, now=None):
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class Invitation(models.Model):
    """A single-use link that lets a new counselor or admin set a password and join a practice.

    Like a partner's link (practice/tokens.py), only a nonce and the token's SHA-256 are stored: a
    copy of the database opens no invitation, and the worker re-derives the token for the e-mail.
    """

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.COUNSELOR)
    nonce = models.CharField(max_length=32, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Invitation of {self.email} to {self.practice}"

    @classmethod
    def issue(cls, *, practice, email, role, by, now=None):
        """Revoke earlier pending invitations of this e-mail and return (invitation, token)."""
        now = now or timezone.now()
        cls.objects.filter(practice=practice, email__iexact=email, accepted_at__isnull=True).update(revoked_at=now)
        nonce = tokens.new_nonce()
        token = tokens.token_for("invitation", nonce)
        invitation = cls.objects.create(
            practice=practice,
            email=email.lower(),
            role=role,
            nonce=nonce,
            token_hash=tokens.hash_token(token),
            invited_by=by,
            created_at=now,
            expires_at=now + datetime.timedelta(hours=INVITATION_HOURS),
        )
        return invitation, token

    def token(self):
        """The token of the invitation's link, re-derived from its nonce."""
        return tokens.token_for("invitation", self.nonce)

    @property
    def is_expired(self):
        return self.expires_at <= timezone.now()

    @property
    def is_usable(self):
        return self.accepted_at is None and self.revoked_at is None and not self.is_expired


class JobQuerySet(models.QuerySet):
    def undelivered(self):
        return self.filter(status__in=[Job.Status.PENDING, Job.Status.QUEUED, Job.Status.RUNNING])


class Job(models.Model):
    """Work for later (an e-mail, a notice, an export), written in the transaction that asks for it.

    practice/outbox.py hands due rows to the workers and records what happened; docs/background-work.md
    draws the states. ``key`` makes a job idempotent: asking twice for the same work is one row.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        QUEUED = "queued", "Handed to a worker"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Could not be done"
        CANCELLED = "cancelled", "No longer needed"

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=200, unique=True)
    practice = models.ForeignKey(Practice, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    payload = models.JSONField(default=dict, blank=True, help_text="Ids only: never a secret or answer content.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    due_at = models.DateTimeField(default=timezone.now)
    claim = models.CharField(max_length=32, blank=True, help_text="Which dispatch handed it out.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When it was handed out or started.")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self):
        return f"{self.kind} {self.key} ({self.status})"
