import csv
import datetime
import io
import json
import tempfile

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.sessions.models import Session
from django.core.mail import send_mail
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from assessments import codebook, export_tasks, exports
from assessments.models import ExportJob, Instrument
from clients.models import Couple

from . import forms, stats
from .access import PracticeRequest, admin_required
from .models import Invitation, Membership, User, audit


def home(request):
    """Send each role where it works."""
    if request.membership is not None:
        if request.membership.is_admin and not request.user.couples.exists():
            return redirect("practice:overview")
        return redirect("clients:caseload")
    if request.user.is_superuser:
        return redirect("admin:index")
    return render(request, "practice/no_practice.html", status=403)


@login_not_required
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def error_403(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


# --- Practice-scoped lookups -------------------------------------------------------------------


def _member_for(request: PracticeRequest, pk):
    return get_object_or_404(Membership.objects.select_related("user"), practice=request.practice, pk=pk)


def _couple_for(request: PracticeRequest, pk):
    """Any couple of the admin's practice (the admin manages them, without their answers)."""
    return get_object_or_404(
        Couple.objects.filter(practice=request.practice).select_related("counselor").prefetch_related("partners"),
        pk=pk,
    )


def _invitation_for(request: PracticeRequest, pk):
    return get_object_or_404(Invitation, practice=request.practice, pk=pk)


def _job_for(request: PracticeRequest, pk):
    return get_object_or_404(ExportJob.objects.select_related("requested_by"), practice=request.practice, pk=pk)


def _active_admins(practice):
    return Membership.objects.filter(practice=practice, role=Membership.Role.ADMIN, user__is_active=True)


# --- People ------------------------------------------------------------------------------------


@admin_required
def overview(request: PracticeRequest):
    """The practice admin's landing page: people, their roles and caseloads, pending invitations."""
    members = (
        Membership.objects.filter(practice=request.practice)
        .select_related("user")
        .annotate(
            couples=Count("user__couples", filter=Q(user__couples__status=Couple.Status.ACTIVE)),
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


def send_invitation(request, invitation, token):
    url = settings.SITE_URL + reverse("practice:invitation_accept", args=[token])
    context = {"invitation": invitation, "url": url, "inviter": request.user, "hours": 72}
    send_mail(
        f"Join {invitation.practice.name} on Connection Practice",
        render_to_string("practice/invitation_email.txt", context),
        None,
        [invitation.email],
    )


@admin_required
def invite(request: PracticeRequest):
    form = forms.InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            invitation, token = Invitation.issue(
                practice=request.practice,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                by=request.user,
            )
            audit(request, "member.invite", invitation, email=invitation.email, role=invitation.role)
        send_invitation(request, invitation, token)
        messages.success(request, f"Invitation sent to {invitation.email}. The link works once, for 72 hours.")
        return redirect("practice:overview")
    return render(request, "practice/invite.html", {"form": form})


@admin_required
@require_POST
def invitation_revoke(request: PracticeRequest, pk):
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
    invitation = Invitation.objects.select_related("practice").filter(token_hash=Invitation.hash(token)).first()
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
def member_role(request: PracticeRequest, pk):
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


def end_sessions(user):
    """Delete every stored session of a user (they are also refused at their next request)."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    return ended


@admin_required
@require_POST
def member_deactivate(request: PracticeRequest, pk):
    member = _member_for(request, pk)
    if member.user_id == request.user.pk:
        messages.error(request, "You cannot deactivate yourself. Ask another admin.")
        return redirect("practice:overview")
    if member.is_admin and not _active_admins(request.practice).exclude(pk=member.pk).exists():
        messages.error(request, "The practice needs at least one active admin.")
        return redirect("practice:overview")
    if member.user.is_active:
        User.objects.filter(pk=member.user_id).update(is_active=False)
        ended = end_sessions(member.user)
        audit(request, "member.deactivate", member.user, sessions_ended=ended)
        messages.success(
            request,
            f"{member.user.get_full_name()} can no longer sign in. Their couples stay with them until you "
            "transfer them.",
        )
    return redirect("practice:overview")


@admin_required
@require_POST
def member_reactivate(request: PracticeRequest, pk):
    member = _member_for(request, pk)
    if not member.user.is_active:
        User.objects.filter(pk=member.user_id).update(is_active=True)
        audit(request, "member.reactivate", member.user)
        messages.success(request, f"{member.user.get_full_name()} can sign in again.")
    return redirect("practice:overview")


@admin_required
def member_transfer(request: PracticeRequest, pk):
    """Move one, some or all of a person's couples to another active counselor."""
    member = _member_for(request, pk)
    initial = {}
    if request.GET.get("couple", "").isdigit():
        initial["couples"] = [int(request.GET["couple"])]
    form = forms.TransferForm(request.POST or None, practice=request.practice, source=member.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["to"]
        couples = form.chosen()
        with transaction.atomic():
            for couple in couples:
                Couple.objects.filter(pk=couple.pk, practice=request.practice).update(
                    counselor=target, updated_at=timezone.now()
                )
                audit(request, "couple.transfer", couple, from_user=member.user_id, to_user=target.pk)
        messages.success(request, f"{len(couples)} couple(s) moved to {target.get_full_name()}.")
        return redirect("practice:overview")
    return render(request, "practice/transfer.html", {"member": member, "form": form})


# --- Couples (records and deletion) -------------------------------------------------------------


@admin_required
def couples(request: PracticeRequest):
    """Every couple of the practice with its counselor: names only, never answers or scores."""
    rows = (
        Couple.objects.filter(practice=request.practice)
        .select_related("counselor__membership")
        .annotate(assignment_count=Count("assignments"))
        .order_by("label")
    )
    return render(request, "practice/couples.html", {"couples": rows})


@admin_required
def couple_record(request: PracticeRequest, pk):
    """The couple's full record as JSON, for a data request or before deletion (audited)."""
    couple = _couple_for(request, pk)
    include_safety = couple.counselor_id == request.user.pk
    record = exports.couple_record(couple, include_safety=include_safety)
    audit(request, "couple.export", couple, safety_included=include_safety)
    response = HttpResponse(
        json.dumps(record, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="couple-{couple.pk}-record.json"'
    return response


@admin_required
def couple_delete(request: PracticeRequest, pk):
    couple = _couple_for(request, pk)
    form = forms.CoupleDeleteForm(request.POST or None, couple=couple)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            detail = {
                "label_length": len(couple.label),
                "assignments": couple.assignments.count(),
                "counselor": couple.counselor_id,
            }
            audit(request, "couple.delete", couple, **detail)
            couple.delete()
        messages.success(request, "The couple and everything they answered have been deleted.")
        return redirect("practice:couples")
    return render(request, "practice/couple_delete.html", {"couple": couple, "form": form})


# --- Settings and statistics ---------------------------------------------------------------------


@admin_required
def practice_settings(request: PracticeRequest):
    form = forms.PracticeSettingsForm(request.POST or None, instance=request.practice)
    if request.method == "POST" and form.is_valid():
        changed = sorted(form.changed_data)
        form.save()
        audit(request, "practice.settings", request.practice, changed=changed)
        messages.success(request, "Practice settings saved.")
        return redirect("practice:settings")
    return render(request, "practice/settings.html", {"form": form})


@admin_required
def statistics(request: PracticeRequest):
    form = forms.PeriodForm(request.GET or None)
    start, end = form.period()
    rows, total = stats.practice_statistics(request.practice, start, end)
    # One chart line per counselor and one for the practice, 12 SVG units apart.
    chart = [(row, 12 * i) for i, row in enumerate([*rows, total])]
    context = {"form": form, "rows": rows, "total": total, "start": start, "end": end}
    return render(request, "practice/statistics.html", {**context, "chart": chart, "chart_height": 12 * len(chart)})


# --- Exports ----------------------------------------------------------------------------------------


def _export_request(request, form):
    data = form.cleaned_data
    return exports.ExportRequest(
        practice=request.practice,
        kind=data["kind"],
        format=data["format"],
        start=data.get("start"),
        end=data.get("end"),
        counselor=data.get("counselor"),
        deidentified=bool(data.get("deidentified")),
    ).validate()


def _attachment(response, name):
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def export_response(export):
    """The file in the response: CSV streamed row by row, XLSX through a temporary file."""
    if export.format == "csv":
        response = StreamingHttpResponse(exports.csv_chunks(export), content_type=exports.CONTENT_TYPES["csv"])
        return _attachment(response, export.file_name)
    fh = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it when sent
    exports.write_xlsx(export, fh)
    fh.seek(0)
    return FileResponse(fh, as_attachment=True, filename=export.file_name, content_type=exports.CONTENT_TYPES["xlsx"])


@admin_required
def export_page(request: PracticeRequest):
    """Choose an export. Small ones download at once; large ones are built in the background."""
    form = forms.ExportForm(request.POST or None, practice=request.practice)
    if request.method == "POST" and form.is_valid():
        try:
            export = _export_request(request, form)
        except exports.ExportError as exc:
            form.add_error(None, str(exc))
        else:
            rows = export.count()
            if rows > settings.EXPORT_INLINE_MAX_ROWS:
                with transaction.atomic():
                    job = ExportJob.objects.create(
                        practice=request.practice,
                        requested_by=request.user,
                        kind=export.kind,
                        format=export.format,
                        params=export.params,
                        rows_total=rows,
                    )
                    audit(request, "export.queue", job, rows=rows, **export.params)
                    export_tasks.enqueue(job)
                return redirect("practice:export_job", pk=job.pk)
            audit(request, "export.download", None, rows=rows, **export.params)
            return export_response(export)
    jobs = ExportJob.objects.filter(practice=request.practice).select_related("requested_by").order_by("-created_at")
    status = 400 if form.errors else 200
    return render(request, "practice/exports.html", {"form": form, "jobs": jobs[:10]}, status=status)


@admin_required
def export_job(request: PracticeRequest, pk):
    """Progress of a background export; htmx polls the status part every two seconds."""
    job = _job_for(request, pk)
    template = "practice/export_job.html#status" if request.htmx else "practice/export_job.html"
    return render(request, template, {"job": job, "now": timezone.now()})


@admin_required
def export_file(request: PracticeRequest, pk):
    job = _job_for(request, pk)
    path = export_tasks.job_path(job)
    expired = job.expires_at is None or job.expires_at <= timezone.now()
    if job.status != ExportJob.Status.DONE or expired or path is None or not path.exists():
        problem = (
            "This download link has expired (files are kept for 24 hours). Start the export again."
            if job.status == ExportJob.Status.DONE
            else "This export is not ready."
        )
        return render(request, "practice/export_gone.html", {"job": job, "problem": problem}, status=410)
    audit(request, "export.download", job, rows=job.rows_total, **job.params)
    name = path.name.split("-", 2)[2]
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=name,
        content_type=exports.CONTENT_TYPES.get(job.format),
    )


@admin_required
def codebook_download(request: PracticeRequest):
    instrument = Instrument.current()
    if instrument is None:
        return render(request, "404.html", status=404)
    fmt = "json" if request.GET.get("format") == "json" else "csv"
    audit(request, "export.codebook", instrument, format=fmt)
    if fmt == "json":
        response = HttpResponse(codebook.as_json(instrument), content_type="application/json; charset=utf-8")
    else:
        response = HttpResponse(codebook.as_csv(instrument), content_type=exports.CONTENT_TYPES["csv"])
    return _attachment(response, f"{instrument.label}-codebook.{fmt}")


# --- Audit log ----------------------------------------------------------------------------------------


@admin_required
def audit_log(request: PracticeRequest):
    form = forms.AuditFilterForm(request.GET or None, practice=request.practice)
    page = Paginator(form.events(), 50).get_page(request.GET.get("page"))
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
                event.at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                exports.spreadsheet_safe(event.actor_label),
                event.action,
                event.object_type,
                exports.spreadsheet_safe(event.object_id),
                event.ip or "",
                json.dumps(event.detail, sort_keys=True) if event.detail else "",
            ]
        )
        yield buffer.getvalue().encode()


@admin_required
def audit_export(request: PracticeRequest):
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
    response = StreamingHttpResponse(_audit_csv(events), content_type=exports.CONTENT_TYPES["csv"])
    return _attachment(response, f"{request.practice.slug}-audit-{timezone.localdate():%Y%m%d}.csv")
