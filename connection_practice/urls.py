"""The site's URLs: each app's own patterns, composed here (the apps never import each other's URLs)."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("practice.urls")),
    path("", include("clients.urls")),
    path("", include("assessments.urls")),
    path("django-admin/", admin.site.urls),
]

handler403 = "practice.views.error_403"
