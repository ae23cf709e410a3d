from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from billing.views import intasend_webhook, payment_result
from project.admin_login import ThrottledAdminLoginForm
from project.health import healthz
from project.views import graphql_view

# One sign-in throttle for the admin and tokenAuth (project/signin.py).
admin.site.login_form = ThrottledAdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    # Bearer tokens and public keys, not cookies, authenticate API calls: no CSRF surface.
    path("graphql/", csrf_exempt(graphql_view())),
    path("payments/webhook/", intasend_webhook, name="intasend-webhook"),
    path("healthz/", healthz, name="healthz"),
    # Where IntaSend's checkout returns the payer (INTASEND_SUCCESS_URL_BASE / INTASEND_FAIL_URL_BASE).
    path("payment/success/<uuid:payment_id>/", payment_result, {"outcome": "success"}, name="payment-success"),
    path("payment/failed/<uuid:payment_id>/", payment_result, {"outcome": "failed"}, name="payment-failed"),
    path("portal/", include("portal.urls")),
]

if settings.SIMULATORS_ENABLED:
    # Development stand-ins for IntaSend and the router: absent, not just hidden, when off.
    urlpatterns += [
        path("simulator/router/", include("network.simulator.urls")),
        path("simulator/", include("billing.simulator.urls")),
    ]

# The admin's CSS and JS under `make run` (daphne serves no static files itself). Only with DEBUG on:
# in production collect them (`manage.py collectstatic`, STATIC_ROOT) and let the web server serve them.
urlpatterns += staticfiles_urlpatterns()
