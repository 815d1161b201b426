from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import AuditEvent, Membership, User, audit, client_address


def _practice_of(user):
    try:
        return user.membership.practice
    except Membership.DoesNotExist:
        return None


@receiver(user_logged_in)
def record_sign_in(sender, request, user, **kwargs):
    audit(request, "auth.sign_in", user, practice=_practice_of(user), actor=user)


@receiver(user_logged_out)
def record_sign_out(sender, request, user, **kwargs):
    if user is not None:
        audit(request, "auth.sign_out", user, practice=_practice_of(user), actor=user)


@receiver(user_login_failed)
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    # The e-mail typed is kept (an auditor needs it to see an attack); the password never is.
    email = str(credentials.get("username") or credentials.get("email") or "")[:200]
    user = User.objects.filter(email__iexact=email).select_related("membership__practice").first()
    AuditEvent.objects.create(
        practice=_practice_of(user) if user else None,
        actor=None,
        actor_label=email,
        action="auth.sign_in_failed",
        ip=client_address(request),
    )
