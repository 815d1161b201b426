"""Security that every page shares: two-factor sign-in, sign-in lockout, session ends, cache headers.

- SecurityMiddleware keeps staff who must use two-factor sign-in away from every page until
  their code is checked in this session, marks every signed-in or partner response
  `Cache-Control: no-store`, and gives a partner's session its own idle limit.
- Two-factor pages (set up, verify, recovery codes) use django-otp: a TOTP app and
  single-use recovery codes. The QR code is drawn here as SVG; the secret never leaves the site.
- Ending a user's sessions on the server when the account is deactivated or leaves its practice.
- The sign-in lockout page (django-axes calls `locked_out`).
- Throttling per address of lookups of secret links (partner links, invitations, stop-reminders).

docs/security.md explains the whole design.
"""

import logging
from base64 import b32encode
from importlib import import_module
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import PracticeRequest
from .models import Membership, User, audit, client_address

log = logging.getLogger(__name__)

# Session keys. PARTNER_SESSION_KEY mirrors assessments.views.SESSION_KEY (a partner's scope).
ENROLLED_KEY = "two_factor_enrolled"
PARTNER_SESSION_KEY = "partner_response_id"
RECOVERY_CODE_COUNT = 10

# URL names a signed-in user may open before their second factor is checked.
TWO_FACTOR_EXEMPT = frozenset({"two_factor_setup", "two_factor_verify", "logout", "keep_alive", "healthz"})


def page_security(request):
    """Template context: `csp_nonce` for script tags ({% htmx_script %} reads it too) and the
    idle limits that static/js/session.js warns about."""
    return {
        "csp_nonce": getattr(request, "csp_nonce", ""),
        "default_quick_exit_url": settings.DEFAULT_QUICK_EXIT_URL,
        "settings_session_idle": settings.SESSION_COOKIE_AGE,
        "settings_session_warning": settings.SESSION_WARNING_SECONDS,
    }


# --- Who must use a second factor ------------------------------------------------------------


def two_factor_required(request):
    """True when this signed-in user may see nothing until a second factor is checked.

    Practice staff: when their practice requires it, or once they have set it up. Operators
    (superusers and Django-admin staff without a practice): whenever OPERATORS_REQUIRE_TWO_FACTOR.
    Reads only the request and session: no query on an ordinary page.
    """
    user = request.user
    if not user.is_authenticated:
        return False
    practice = getattr(request, "practice", None)
    if practice is not None and practice.require_two_factor:
        return True
    if practice is None and (user.is_superuser or user.is_staff) and settings.OPERATORS_REQUIRE_TWO_FACTOR:
        return True
    return bool(request.session.get(ENROLLED_KEY))


def is_verified(request) -> bool:
    """Has this session's second factor been checked? (django-otp's OTPMiddleware puts
    ``is_verified`` on the user; an anonymous user has none.)"""
    check = getattr(request.user, "is_verified", None)
    return bool(check and check())


def has_second_factor(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@receiver(user_logged_in, dispatch_uid="practice.security.remember_enrolment")
def remember_enrolment(sender, request, user, **kwargs):
    # One query at sign-in, so that every later page knows without asking the database.
    if request is not None and hasattr(request, "session"):
        request.session[ENROLLED_KEY] = has_second_factor(user)


def _redirect_with_next(request, name):
    """To a two-factor page, coming back afterwards to the page asked for (a plain GET only)."""
    url = reverse(name)
    if request.htmx:
        return HttpResponseClientRedirect(url)
    if request.method == "GET":
        url += "?" + urlencode({"next": request.get_full_path()})
    return redirect(url)


# --- Middleware ----------------------------------------------------------------------------


class SecurityMiddleware:
    """Two-factor gate, no-store on private pages, and the partner session's idle limit.

    Placed after PracticeMiddleware (it reads request.practice).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        partner = session is not None and not signed_in and PARTNER_SESSION_KEY in session
        if signed_in or partner:
            # Clinical pages must never be kept by a browser or a shared proxy.
            response["Cache-Control"] = "no-store, private"
        if partner and session.get("_session_expiry") != settings.PARTNER_SESSION_IDLE_SECONDS:
            session.set_expiry(settings.PARTNER_SESSION_IDLE_SECONDS)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not two_factor_required(request) or is_verified(request):
            return None
        match = request.resolver_match
        if match is not None and match.view_name in TWO_FACTOR_EXEMPT:
            return None
        target = "two_factor_verify" if request.session.get(ENROLLED_KEY) else "two_factor_setup"
        return _redirect_with_next(request, target)


# --- Ending sessions on the server ----------------------------------------------------------


def end_sessions_of(user, *, keep=None):
    """Delete every server-side session of this user but the one keyed ``keep``.

    On deactivation or leaving a practice (every session), and when a person changes their second
    factor (every other session: the browser that made the change stays signed in). Reads the
    unexpired sessions of the database session store, a short list since staff sessions idle out
    after 30 minutes. Other session engines are not searched.
    """
    if settings.SESSION_ENGINE not in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        return 0
    engine = import_module(settings.SESSION_ENGINE)
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).exclude(session_key=keep or "").iterator():
        if str(session.get_decoded().get(AUTH_SESSION_KEY)) == str(user.pk):
            engine.SessionStore(session.session_key).delete()
            ended += 1
    return ended


def end_other_sessions(request):
    """After a change to the signed-in person's sign-in (a new authenticator, new recovery codes):
    every session that signed in with the old one ends; this one stays."""
    return end_sessions_of(request.user, keep=request.session.session_key)


@receiver(post_save, sender=User, dispatch_uid="practice.security.end_sessions_on_deactivation")
def end_sessions_on_deactivation(sender, instance, created, **kwargs):
    if not created and not instance.is_active:
        end_sessions_of(instance)


@receiver(post_delete, sender=Membership, dispatch_uid="practice.security.end_sessions_on_leaving")
def end_sessions_on_leaving(sender, instance, **kwargs):
    end_sessions_of(instance.user)


@receiver(post_delete, sender=TOTPDevice, dispatch_uid="practice.security.end_sessions_on_device_removal")
def end_sessions_on_device_removal(sender, instance, **kwargs):
    # A confirmed authenticator removed (an operator in the Django admin, or a reset): the sessions
    # it verified must not outlive it. Unconfirmed devices (an abandoned set-up) verified nothing.
    if instance.confirmed:
        end_sessions_of(instance.user)


def reset_two_factor(user, *, request=None):
    """Remove a person's authenticator and recovery codes (lost phone) and end their sessions.

    For a practice admin's or operator's "reset two-factor" action; the person sets it up again
    at their next sign-in when their practice requires it.
    """
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    end_sessions_of(user)
    if request is not None:
        audit(request, "auth.two_factor_reset", user)


# --- Sign-in lockout -----------------------------------------------------------------------


def sign_in_username(request, credentials=None):
    """The account a sign-in tries, for the lockout: the e-mail typed, trimmed and in lower case.

    The sign-in form posts ``username`` (Django's AuthenticationForm) although the user model
    signs in by ``email``; reading it here keeps the per-account count on the account, whatever
    case the e-mail is typed in. None when no e-mail was typed (the form refuses that anyway).
    """
    source = credentials if credentials else getattr(request, "POST", None) or {}
    typed = str(source.get("username") or source.get("email") or "").strip().lower()
    return typed[:254] or None


class LockoutHandler(AxesDatabaseHandler):
    """django-axes' database handler, clearing only the signed-in account's failures on success.

    Axes would also clear every failure recorded from the same address, so anyone with an account
    could wipe another account's count by signing in to their own between guesses.
    """

    def reset_user_attempts(self, request, credentials=None):
        username = get_client_username(request, credentials)
        if username is None:
            return 0
        deleted, _ = AccessAttempt.objects.filter(username=username).delete()
        return deleted


def locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout response: the same plain page whether or not the e-mail exists."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)


# --- Throttling token lookups --------------------------------------------------------------


def _lookups_key(request):
    return f"token-lookups:{client_address(request) or 'unknown'}"


def token_lookups_paused(request):
    """The 429 page when this address looked up too many unknown secret links lately; else None.

    Every lookup from such an address is refused, a right token too (or guessing would still be
    answered). A person who mistypes a link a few times is far below the limit. When the cache
    cannot be reached the lookup goes ahead: a partner's link must work without it.
    """
    try:
        failures = cache.get(_lookups_key(request)) or 0
    except Exception:
        log.warning("The cache did not answer; token lookups are not throttled.", exc_info=True)
        return None
    if failures < settings.TOKEN_LOOKUP_LIMIT:
        return None
    minutes = max(1, settings.TOKEN_LOOKUP_WINDOW_SECONDS // 60)
    response = render(request, "429.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(settings.TOKEN_LOOKUP_WINDOW_SECONDS)
    return response


def count_unknown_token(request):
    """Count one lookup of a token that names nothing, for this address, for the window."""
    key = _lookups_key(request)
    try:
        # The window starts at the first unknown token and is not extended by the next ones.
        cache.add(key, 0, timeout=settings.TOKEN_LOOKUP_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.TOKEN_LOOKUP_WINDOW_SECONDS)
    except Exception:
        log.warning("The cache did not answer; an unknown token was not counted.", exc_info=True)


# --- Two-factor pages -----------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=40,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "spellcheck": "false"}
        ),
    )

    def clean_code(self):
        code = "".join(self.cleaned_data["code"].split()).replace("-", "").lower()
        if not code.isalnum():
            raise forms.ValidationError("Type the digits from your app, or one recovery code.")
        return code


def qr_svg(text):
    """An inline SVG QR code (drawn here: the secret never goes to another service)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    svg = svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1)
    return mark_safe(svg)  # noqa: S308 - our own generated markup, no user input


def _grouped(secret_b32):
    return " ".join(secret_b32[i : i + 4] for i in range(0, len(secret_b32), 4))


def _safe_next(request, default="home"):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse(default)


def new_recovery_codes(user):
    """Replace the user's recovery codes with RECOVERY_CODE_COUNT fresh ones; return them once."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@require_http_methods(["GET", "POST"])
def two_factor_setup(request: PracticeRequest):
    """Set up an authenticator app: scan, type one code, receive recovery codes."""
    if has_second_factor(request.user):
        if is_verified(request):
            return redirect("two_factor_recovery_codes")
        # Never a new device on a password alone: the existing one must be used first.
        return _redirect_with_next(request, "two_factor_verify")
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="Authenticator app", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            with transaction.atomic():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                TOTPDevice.objects.filter(user=request.user, confirmed=False).delete()
                codes = new_recovery_codes(request.user)
            otp_login(request, device)
            request.session[ENROLLED_KEY] = True
            ended = end_other_sessions(request)
            audit(request, "auth.two_factor_on", request.user, sessions_ended=ended)
            return render(
                request, "registration/otp_recovery_codes.html", {"codes": codes, "next": _safe_next(request)}
            )
        form.add_error("code", "That code didn't match. Codes change every 30 seconds: type the newest one.")
    secret = b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "qr": qr_svg(device.config_url),
        "secret": _grouped(secret),
        "next": request.GET.get("next") or request.POST.get("next") or "",
        "required": two_factor_required(request),
    }
    return render(request, "registration/otp_setup.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def two_factor_verify(request: PracticeRequest):
    """The second step of signing in: a code from the app, or one recovery code."""
    if is_verified(request):
        return redirect(_safe_next(request))
    devices = list(devices_for_user(request.user))
    if not devices:
        return _redirect_with_next(request, "two_factor_setup")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in devices:
            verified = otp_verify_token(request.user, device.persistent_id, form.cleaned_data["code"])
            if verified is not None:
                otp_login(request, verified)
                request.session[ENROLLED_KEY] = True
                used_recovery = isinstance(verified, StaticDevice)
                audit(request, "auth.two_factor_verified", request.user, recovery_code=used_recovery)
                if used_recovery:
                    left = verified.token_set.count()
                    messages.warning(
                        request,
                        f"You used a recovery code; {left} left. Make new ones from Sign-in security if needed.",
                    )
                return redirect(_safe_next(request))
        audit(request, "auth.two_factor_failed", request.user)
        form.add_error(
            "code",
            "That code didn't work. Type the newest code from your app, or one of your recovery codes. "
            "After several wrong codes each new try waits a little longer.",
        )
    context = {"form": form, "next": request.GET.get("next") or request.POST.get("next") or ""}
    return render(request, "registration/otp_verify.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def two_factor_recovery_codes(request: PracticeRequest):
    """Two-factor status, and fresh recovery codes on request (the old ones stop working)."""
    if not is_verified(request):
        return _redirect_with_next(request, "two_factor_setup")
    if request.method == "POST":
        codes = new_recovery_codes(request.user)
        ended = end_other_sessions(request)
        audit(request, "auth.recovery_codes_renewed", request.user, sessions_ended=ended)
        return render(request, "registration/otp_recovery_codes.html", {"codes": codes, "next": reverse("home")})
    left = StaticToken.objects.filter(device__user=request.user, device__confirmed=True).count()
    return render(request, "registration/otp_status.html", {"left": left})


@require_GET
def keep_alive(request: PracticeRequest):
    """The session warning's "Stay signed in": any request renews the idle limit."""
    return HttpResponse(status=204)
