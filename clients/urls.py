from django.urls import path

from . import views

app_name = "clients"
urlpatterns = [
    # The counselor's couples (their caseload and couple page are the assessments app's).
    path("couples/new/", views.couple_create, name="couple_create"),
    path("couples/<int:pk>/notes/", views.couple_notes, name="couple_notes"),
    path("couples/<int:pk>/archive/", views.couple_archive, name="couple_archive"),
    # The practice admin's list of couples, moving them between counselors, deleting one.
    path("practice/couples/", views.practice_couples, name="practice_couples"),
    path("practice/couples/<int:pk>/delete/", views.couple_delete, name="couple_delete"),
    path("practice/people/<int:pk>/transfer/", views.transfer, name="transfer"),
]
