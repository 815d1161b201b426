"""The site's URLconf plus one page nobody classified: the coverage check must name it."""

from django.urls import path

from connection_practice.urls import handler403  # noqa: F401
from connection_practice.urls import urlpatterns as site_patterns
from practice import views

urlpatterns = [
    *site_patterns,
    path("reports/secret/<int:report_pk>/", views.healthz, name="unclassified_report"),
    path("reports/nameless/", views.healthz),
]
