"""``/simulator/router/…``: included by project.urls only when SIMULATORS_ENABLED."""

from django.urls import path

from network.simulator import views

app_name = "router-simulator"

urlpatterns = [
    path("", views.router, name="router"),
    path("state.json", views.router_json, name="state"),
    path("login", views.hotspot_login, name="login"),
]
