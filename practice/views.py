import csv
import io
import json
import sys

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, Q
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from . import forms, jobs, readiness, security
from .access import StaffRequest, admin_required
from .formats import CSV_CONTENT_TYPE, attachment, spreadsheet_safe, utc_iso
from .models import Invitation, Membership, User, audit, name_targets
from .tokens import hash_token


def home(request):
    """Send each role where it works."""
    if request.membership is not None:
        if request.membership.is_admin and not request.user.couples.exists():
            return redirect("practice:overview")
        return redirect("assessments:caseload")
    if request.user.is_superuser:
        return redirect("admin:index")
    return render(request, "practice/no_practice.html", status=403)


@login_not_required
def healthz(request):
    """Liveness: the process answers. Touches nothing else, so it stays cheap under any fault."""
    return HttpResponse("ok", content_type="text/plain")


@login_not_required
@require_GET
def readyz(request):
    """Readiness, for operators: the database, the broker, the dispatcher's last run and the outbox.

    503 when the database or the broker does not answer, or work has waited past its due time for
    more than READY_MAX_DELAY_SECONDS. Numbers only: nothing about any person.
    """
    report, ready = readiness.check()
    return JsonResponse(report, status=200 if ready else 503)


def error_403(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


RETRY_AFTER_SECONDS = 5
# Fields a retry page never writes back into the page it shows.
NOT_KEPT = ("password", "otp", "token")


def error_500(request):
    """An unhandled error. The database away (restarting, failing over) is not a bug: a 503 that says so
    and, for a form, keeps what was sent so that one press sends it again. Anything else: the 500 page.

    Neither page touches the database or the session (they may be what failed): plain templates,
    no context processors.
    """
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        return unavailable(request)
    return HttpResponse(render_to_string("500.html"), status=500)


def unavailable(request):
    """503 while the database does not answer: plain words for an autosave, a retry page otherwise."""
    if request.headers.get("X-Requested-With") == "fetch":
        reply = HttpResponse(
            "Not saved yet: the site is briefly unavailable. Retrying…",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    else:
        fields = []
        if request.method == "POST":
            fields = [
                (name, value)
                for name, values in request.POST.lists()
                for value in values
                if not any(word in name.lower() for word in NOT_KEPT) or name == "csrfmiddlewaretoken"
            ]
        context = {"post": request.method == "POST", "fields": fields, "path": request.get_full_path()}
        reply = HttpResponse(render_to_string("503.html", context), status=503)
    reply["Retry-After"] = str(RETRY_AFTER_SECONDS)
    reply["Cache-Control"] = "no-store"
    return reply


# --- Practice-scoped lookups -------------------------------------------------------------------


def _member_for(request: StaffRequest, pk):
    return get_object_or_404(Membership.objects.select_related("user"), practice=request.practice, pk=pk)


def _invitation_for(request: StaffRequest, pk):
    return get_object_or_404(Invitation, practice=request.practice, pk=pk)


def _active_admins(practice):
    return Membership.objects.filter(practice=practice, role=Membership.Role.ADMIN, user__is_active=True)


# --- People ------------------------------------------------------------------------------------


@admin_required
def overview(request: StaffRequest):
    """The practice admin's landing page: people, their roles and caseloads, pending invitations."""
    members = (
        Membership.objects.filter(practice=request.practice)
        .select_related("user")
        .annotate(
            couples=Count("user__couples", filter=Q(user__couples__status="active")),
            all_couples=Count("user__couples"),
        )
        .order_by("-user__is_active", "user__full_name", "user__email")
    )
    invitations = Invitation.objects.pending().filter(practice=request.practice).select_related("invited_by")
    return render(
        request,
        "practice/overview.html",
        {"members": members, "invitations": invitations, "roles": Membership.Role.choices},
    )


@admin_required
def invite(request: StaffRequest):
    form = forms.InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            invitation, _token = Invitation.issue(
                practice=request.practice,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                by=request.user,
            )
            jobs.enqueue_invitation(invitation)
            audit(request, "member.invite", invitation, email=invitation.email, role=invitation.role)
        messages.success(request, f"Invitation sent to {invitation.email}. The link works once, for 72 hours.")
        return redirect("practice:overview")
    return render(request, "practice/invite.html", {"form": form})


@admin_required
@require_POST
def invitation_revoke(request: StaffRequest, pk):
    invitation = _invitation_for(request, pk)
    if Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    ):
        audit(request, "member.invite_revoke", invitation, email=invitation.email)
        messages.success(request, f"The invitation of {invitation.email} no longer works.")
    return redirect("practice:overview")


@login_not_required
def invitation_accept(request, token):
    """The invited person names themselves and sets a password; the link then stops working."""
    paused = security.token_lookups_paused(request)
    if paused is not None:
        return paused
    invitation = Invitation.objects.select_related("practice").filter(token_hash=hash_token(token)).first()
    if invitation is None:
        security.count_unknown_token(request)
    if invitation is None or not invitation.is_usable:
        if invitation is None or invitation.revoked_at:
            problem = "This invitation link is not valid. It may have been replaced by a newer one."
        elif invitation.accepted_at:
            problem = "This invitation has already been used. Sign in with your e-mail and password."
        else:
            problem = "This invitation has expired (links work for 72 hours). Ask your practice admin for a new one."
        return render(request, "practice/invitation_problem.html", {"problem": problem}, status=410)
    if request.user.is_authenticated:
        problem = f"You are signed in as {request.user.email}. Sign out first, then open the invitation link again."
        return render(request, "practice/invitation_problem.html", {"problem": problem}, status=409)
    form = forms.AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        now = timezone.now()
        with transaction.atomic():
            # The conditional update makes the link single-use even under a double click.
            if not Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(accepted_at=now):
                return redirect("login")
            if User.objects.filter(email__iexact=invitation.email).exists():
                problem = "An account with this e-mail already exists. Sign in instead."
                transaction.set_rollback(True)
                return render(request, "practice/invitation_problem.html", {"problem": problem}, status=409)
            user = User.objects.create_user(
                invitation.email, form.cleaned_data["password1"], full_name=form.cleaned_data["full_name"]
            )
            Membership.objects.create(user=user, practice=invitation.practice, role=invitation.role)
            audit(request, "member.join", invitation, practice=invitation.practice, actor=user, role=invitation.role)
        login(request, user, backend="practice.auth.EmailBackend")
        messages.success(request, f"Welcome to {invitation.practice.name}.")
        return redirect("home")
    return render(request, "practice/invitation_accept.html", {"form": form, "invitation": invitation})


@admin_required
@require_POST
def member_role(request: StaffRequest, pk):
    member = _member_for(request, pk)
    form = forms.RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role from the list.")
        return redirect("practice:overview")
    new = form.cleaned_data["role"]
    demoting = member.is_admin and new != Membership.Role.ADMIN
    if demoting and not _active_admins(request.practice).exclude(pk=member.pk).exists():
        messages.error(request, "The practice needs at least one active admin. Make someone else admin first.")
        return redirect("practice:overview")
    if new != member.role:
        old = member.role
        member.role = new
        member.save(update_fields=["role"])
        audit(request, "member.role", member.user, old=old, new=new)
        messages.success(request, f"{member.user.get_full_name()} is now {member.get_role_display().lower()}.")
    return redirect("practice:overview")


@admin_required
@require_POST
def member_deactivate(request: StaffRequest, pk):
    member = _member_for(request, pk)
    if member.user_id == request.user.pk:
        messages.error(request, "You cannot deactivate yourself. Ask another admin.")
        return redirect("practice:overview")
    if member.is_admin and not _active_admins(request.practice).exclude(pk=member.pk).exists():
        messages.error(request, "The practice needs at least one active admin.")
        return redirect("practice:overview")
    if member.user.is_active:
        User.objects.filter(pk=member.user_id).update(is_active=False)
        ended = security.end_sessions_of(member.user)
        audit(request, "member.deactivate", member.user, sessions_ended=ended)
        messages.success(
            request,
            f"{member.user.get_full_name()} can no longer sign in. Their couples stay with them until you "
            "transfer them.",
        )
    return redirect("practice:overview")


@admin_required
@require_POST
def member_reactivate(request: StaffRequest, pk):
    member = _member_for(request, pk)
    if not member.user.is_active:
        User.objects.filter(pk=member.user_id).update(is_active=True)
        audit(request, "member.reactivate", member.user)
        messages.success(request, f"{member.user.get_full_name()} can sign in again.")
    return redirect("practice:overview")


# --- Settings ------------------------------------------------------------------------------------


@admin_required
def practice_settings(request: StaffRequest):
    form = forms.PracticeSettingsForm(request.POST or None, instance=request.practice)
    if request.method == "POST" and form.is_valid():
        changed = sorted(form.changed_data)
        form.save()
        audit(request, "practice.settings", request.practice, changed=changed)
        messages.success(request, "Practice settings saved.")
        return redirect("practice:settings")
    return render(request, "practice/settings.html", {"form": form})


# --- Audit log ----------------------------------------------------------------------------------------


@admin_required
def audit_log(request: StaffRequest):
    form = forms.AuditFilterForm(request.GET or None, practice=request.practice)
    page = Paginator(form.events(), 50).get_page(request.GET.get("page"))
    page.object_list = name_targets(list(page.object_list), practice=request.practice, viewer=request.user)
    # Reading the trail is itself recorded, after the page is read: the next view shows this one.
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    audit(
        request,
        "audit.view",
        None,
        page=page.number,
        action_filter=data.get("action") or "",
        actor_filter=data["actor"].pk if data.get("actor") else None,
        start=str(data.get("start") or ""),
        end=str(data.get("end") or ""),
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "practice/audit_log.html", {"form": form, "page": page, "query": query.urlencode()})


AUDIT_COLUMNS = ("at", "actor", "action", "object_type", "object_id", "ip", "detail")


def _audit_csv(events):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(AUDIT_COLUMNS)
    yield buffer.getvalue().encode()
    for event in events.iterator(chunk_size=2000):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(
            [
                utc_iso(event.at),
                spreadsheet_safe(event.actor_label),
                event.action,
                event.object_type,
                spreadsheet_safe(event.object_id),
                event.ip or "",
                json.dumps(event.detail, sort_keys=True) if event.detail else "",
            ]
        )
        yield buffer.getvalue().encode()


@admin_required
def audit_export(request: StaffRequest):
    form = forms.AuditFilterForm(request.GET or None, practice=request.practice)
    if form.is_bound and not form.is_valid():
        return redirect(reverse("practice:audit_log") + "?" + request.GET.urlencode())
    data = form.cleaned_data if form.is_bound else {}
    audit(
        request,
        "audit.export",
        None,
        action_filter=data.get("action") or "",
        actor_filter=data["actor"].pk if data.get("actor") else None,
        start=str(data.get("start") or ""),
        end=str(data.get("end") or ""),
    )
    events = form.events().order_by("at", "id")
    response = StreamingHttpResponse(_audit_csv(events), content_type=CSV_CONTENT_TYPE)
    return attachment(response, f"{request.practice.slug}-audit-{timezone.localdate():%Y%m%d}.csv")
