import datetime
import zoneinfo

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.db import transaction

from . import jobs, security
from .formats import EARLIEST_DATE, LATEST_DATE
from .models import AuditEvent, Membership, Practice, User, tel_number


def _fits_an_id(value):
    """Could this be a database id? Huge numbers overflow the database driver instead of failing,
    and digits int() refuses ("²" is a digit to isdigit()) would fail in the field itself."""
    text = str(value).strip()
    digits = text.lstrip("-")
    if not digits.isdigit():
        return True  # not a number at all: the field says "not one of the choices"
    try:
        return -(2**63) <= int(text) < 2**63
    except ValueError:
        return False


class ModelChoiceField(forms.ModelChoiceField):
    """Django's field, refusing out-of-range ids with its usual message instead of a server error."""

    def to_python(self, value):
        if value not in self.empty_values and not _fits_an_id(value):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Django's field, refusing out-of-range ids with its usual message instead of a server error."""

    def _check_values(self, value):
        for pk in value if isinstance(value, list | tuple) else [value]:
            if not _fits_an_id(pk):
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk}
                )
        return super()._check_values(value)


class SignInForm(auth_forms.AuthenticationForm):
    """Django's sign-in form; its one error message never tells whether the e-mail exists."""

    username = auth_forms.UsernameField(
        label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "That e-mail and password do not match an active account. Check both and try again.",
        "inactive": "That e-mail and password do not match an active account. Check both and try again.",
    }


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form, with the e-mail written by a worker (practice/jobs.py) and its link from SITE_URL."""

    email = forms.EmailField(label="E-mail", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    def save(self, *args, **kwargs):
        with transaction.atomic():
            for user in self.get_users(self.cleaned_data["email"]):
                jobs.enqueue_password_reset(user)


class SetPasswordForm(auth_forms.SetPasswordForm):
    """Django's new-password form (the reset link), ending every session of the account on the
    server: whoever signed in with the old password is out at once, not only at their next page."""

    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            security.end_sessions_of(user)
        return user


# --- Practice admin --------------------------------------------------------------------------


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.COUNSELOR)

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this e-mail already exists. A person belongs to one practice only; "
                "if they were deactivated here, reactivate them from the list instead."
            )
        return email


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label="Your full name", max_length=150)
    password1 = forms.CharField(
        label="Choose a password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html,
    )
    password2 = forms.CharField(
        label="The same password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, email, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = password_validation.password_validators_help_text_html()

    def clean(self):
        cleaned = super().clean()
        one, two = cleaned.get("password1"), cleaned.get("password2")
        if one and two and one != two:
            self.add_error("password2", "The two passwords differ. Type the same password twice.")
        elif one:
            candidate = User(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(one, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


def _time_zone_choices():
    return [(z, z) for z in sorted(zoneinfo.available_timezones()) if "/" in z or z == "UTC"]


def _day_list(value):
    try:
        days = sorted({int(part) for part in value.replace(" ", "").split(",") if part})
    except ValueError:
        raise forms.ValidationError("Write whole numbers of days separated by commas, such as 2, 5.") from None
    if any(d < 1 or d > 60 for d in days):
        raise forms.ValidationError("Each reminder must come 1 to 60 days after the invitation.")
    if len(days) > 2:
        # The reminder plan has two such reminders (plus the one before the due date).
        raise forms.ValidationError("Choose at most two reminders after the invitation, such as 2, 5.")
    return days


class PracticeSettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=_time_zone_choices)
    reminder_after_days = forms.CharField(
        label="Reminders, days after the invitation",
        required=False,
        help_text="Comma-separated, e.g. 2, 5. Leave empty for no reminders after the invitation.",
    )
    reminder_before_due_days = forms.IntegerField(
        label="Reminder before the due date (days)", min_value=0, max_value=14, help_text="0 for none."
    )
    reminder_overdue_notice = forms.BooleanField(label="Send one notice when an assessment is overdue", required=False)

    class Meta:
        model = Practice
        fields = [
            "name",
            "time_zone",
            "default_due_days",
            "link_grace_days",
            "quiet_hours_start",
            "quiet_hours_end",
            "require_two_factor",
            "weekly_digest",
            "closed_link_days",
            "results_visibility",
            "quick_exit_url",
            "alert_escalation_hours",
            "emergency_number",
            "support_line_text",
            "support_line_numbers",
            "default_language",
        ]
        labels = {
            "default_due_days": "Default due period (days)",
            "link_grace_days": "Links keep working after the due date for (days)",
            "closed_link_days": "After submitting, a partner's link opens their results for (days)",
            "results_visibility": "Partners see their own results",
            "quick_exit_url": "Quick exit opens this site",
            "alert_escalation_hours": "Tell the practice's admins when a safety alert waits unseen for (hours)",
            "quiet_hours_start": "Quiet hours start (no e-mails from)",
            "quiet_hours_end": "Quiet hours end",
            "require_two_factor": "Staff must use two-factor sign-in",
            "weekly_digest": "Send each counselor a weekly digest on Monday morning (counts only)",
            "emergency_number": "Emergency number",
            "support_line_text": "Confidential support line",
            "support_line_numbers": "Support line phone numbers",
            "default_language": "Partners answer in (unless their counselor chooses another language)",
        }
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean_default_language(self):
        return self.cleaned_data.get("default_language") or self.instance.default_language

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        policy = self.instance.reminder_policy or {}
        self.fields["reminder_after_days"].initial = ", ".join(str(d) for d in policy.get("after_days", []))
        self.fields["reminder_before_due_days"].initial = policy.get("before_due_days", 0)
        self.fields["reminder_overdue_notice"].initial = policy.get("overdue_notice", False)
        # Left out of a post (an older form), the language stays as it was.
        self.fields["default_language"].required = False
        self.fields["default_due_days"].validators.append(_between(1, 90))
        self.fields["link_grace_days"].validators.append(_between(0, 90))
        self.fields["closed_link_days"].validators.append(_between(0, 90))
        self.fields["alert_escalation_hours"].validators.append(_between(1, 168))
        self.fields[
            "quick_exit_url"
        ].help_text = (
            "A neutral site (weather, news) that a partner's quick exit opens at once; it must start with https://."
        )
        self.fields["results_visibility"].widget = forms.RadioSelect(choices=Practice.ResultsVisibility.choices)

    def clean_quick_exit_url(self):
        url = self.cleaned_data["quick_exit_url"]
        if not url.startswith("https://"):
            raise forms.ValidationError("Choose a site that starts with https://, such as https://www.weather.com/.")
        return url

    def clean_emergency_number(self):
        number = self.cleaned_data["emergency_number"].strip()
        if number and not tel_number(number):
            raise forms.ValidationError("Write the number itself, e.g. 911, 999 or 112, or leave it empty.")
        return number

    def clean_support_line_numbers(self):
        numbers = [n.strip() for n in self.cleaned_data["support_line_numbers"].split(",") if n.strip()]
        for number in numbers:
            if not tel_number(number):
                raise forms.ValidationError(f"“{number}” is not a phone number: write digits, e.g. 1-800-799-7233.")
        return ", ".join(numbers)

    def clean_reminder_after_days(self):
        return _day_list(self.cleaned_data.get("reminder_after_days") or "")

    def save(self, commit=True):
        practice = super().save(commit=False)
        practice.reminder_policy = {
            **(practice.reminder_policy or {}),
            "after_days": self.cleaned_data["reminder_after_days"],
            "before_due_days": self.cleaned_data["reminder_before_due_days"],
            "overdue_notice": self.cleaned_data["reminder_overdue_notice"],
        }
        if commit:
            practice.save()
        return practice


def _between(low, high):
    def check(value):
        if value is not None and not low <= value <= high:
            raise forms.ValidationError(f"Choose a number from {low} to {high}.")

    return check


def sane_date(value):
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        raise forms.ValidationError(
            f"Choose a date from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}.", code="out_of_range"
        )


class DateRangeForm(forms.Form):
    """A period of calendar days within EARLIEST_DATE..LATEST_DATE; the end may not come before the start."""

    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}), validators=[sane_date]
    )
    end = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}), validators=[sane_date]
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            raise forms.ValidationError("The end date is before the start date. Choose an end on or after the start.")
        return cleaned


class AuditFilterForm(DateRangeForm):
    action = forms.ChoiceField(required=False, choices=[("", "Any action")])
    actor = ModelChoiceField(queryset=User.objects.none(), required=False, empty_label="Anyone")

    def __init__(self, *args, practice, **kwargs):
        super().__init__(*args, **kwargs)
        self.practice = practice
        self.fields["actor"].queryset = User.objects.filter(membership__practice=practice).order_by(
            "full_name", "email"
        )
        actions = AuditEvent.objects.filter(practice=practice).order_by("action").values_list("action", flat=True)
        self.fields["action"].choices = [("", "Any action"), *((a, a) for a in actions.distinct())]

    def events(self):
        events = AuditEvent.objects.filter(practice=self.practice).select_related("actor")
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("actor"):
            events = events.filter(actor=data["actor"])
        tz = self.practice.tz
        if data.get("start"):
            events = events.filter(at__gte=datetime.datetime.combine(data["start"], datetime.time(), tz))
        if data.get("end"):
            after = data["end"] + datetime.timedelta(days=1)
            events = events.filter(at__lt=datetime.datetime.combine(after, datetime.time(), tz))
        return events
