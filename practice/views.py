from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render

from clients.models import Couple

from .access import admin_required
from .models import Membership


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


@admin_required
def overview(request):
    """The practice admin's landing page: counselors and their caseload sizes."""
    members = (
        Membership.objects.filter(practice=request.practice)
        .select_related("user")
        .annotate(couples=Count("user__couples", filter=Q(user__couples__status=Couple.Status.ACTIVE)))
        .order_by("user__full_name")
    )
    return render(request, "practice/overview.html", {"members": members})


def error_403(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)
