from django.urls import path

from . import views

app_name = "clients"
urlpatterns = [
    path("", views.caseload, name="caseload"),
    path("new/", views.couple_create, name="couple_create"),
    path("<int:pk>/", views.couple_detail, name="couple_detail"),
    path("<int:pk>/notes/", views.couple_notes, name="couple_notes"),
    path("<int:pk>/archive/", views.couple_archive, name="couple_archive"),
    path("<int:pk>/assessments/<int:assignment_pk>/", views.comparison_view, name="comparison"),
    path("<int:pk>/assessments/<int:assignment_pk>/report.pdf", views.comparison_pdf, name="comparison_pdf"),
    path("<int:pk>/assessments/<int:assignment_pk>/release/", views.release, name="release"),
    path("summary/<int:response_id>/", views.shared_summary, name="shared_summary"),
]
