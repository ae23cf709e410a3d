"""``/simulator/…``: included by project.urls only when SIMULATORS_ENABLED."""

from django.urls import path, re_path

from billing.simulator import views

app_name = "simulator"

urlpatterns = [
    path("", views.index, name="index"),
    path("intasend/", views.intasend_root, name="intasend-root"),
    re_path(r"^intasend/api/v1/(?P<endpoint>.*)$", views.intasend_api, name="intasend-api"),
    path("intasend/checkout/<str:checkout_id>/express/", views.checkout, name="checkout"),
    path("phone/", views.phone, name="phone"),
    path("phone/<str:invoice_id>/<str:action>/", views.phone_action, name="phone-action"),
]
