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
# The database away is a readable 503 that keeps what was sent; any other error the plain 500 page.
handler500 = "practice.views.error_500"
