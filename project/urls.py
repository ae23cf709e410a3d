from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from billing.views import intasend_webhook, payment_result, revenue_csv, voucher_sheet
from project.admin_login import ThrottledAdminLoginForm
from project.health import healthz
from project.landing import demo_hotspot_login, favicon, landing
from project.metrics import metrics_view
from project.views import graphql_view

# One sign-in throttle for the admin and tokenAuth (project/signin.py).
admin.site.login_form = ThrottledAdminLoginForm

# /static/ is answered before routing, by project.static_files (in MIDDLEWARE).
urlpatterns = [
    path("", landing, name="landing"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    # Bearer tokens and public keys, not cookies, authenticate API calls: no CSRF surface. With or
    # without the slash, as the WebSocket route: APPEND_SLASH cannot redirect a POST (a 500 under
    # DEBUG, and a 301 clients follow as a GET without the body).
    re_path(r"^graphql/?$", csrf_exempt(graphql_view())),
    path("payments/webhook/", intasend_webhook, name="intasend-webhook"),
    path("healthz/", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    # Where IntaSend's checkout returns the payer (INTASEND_SUCCESS_URL_BASE / INTASEND_FAIL_URL_BASE).
    path("payment/success/<uuid:payment_id>/", payment_result, {"outcome": "success"}, name="payment-success"),
    path("payment/failed/<uuid:payment_id>/", payment_result, {"outcome": "failed"}, name="payment-failed"),
    path("portal/", include("portal.urls")),
    # A batch's printable vouchers behind a signed link valid 10 minutes (VoucherBatch.printUrl).
    path("vouchers/sheet/<str:token>/", voucher_sheet, name="voucher-sheet"),
    # One revenue report as CSV behind a signed link valid 10 minutes (revenueReportCsvUrl).
    path("reports/revenue/<str:token>/", revenue_csv, name="revenue-csv"),
]

if settings.SIMULATORS_ENABLED:
    # Development stand-ins for IntaSend and the router: absent, not just hidden, when off.
    urlpatterns += [
        path("simulator/router/", include("network.simulator.urls")),
        path("simulator/", include("billing.simulator.urls")),
        # The demo router's hotspot address is this server: its /login is where a voucher's QR code lands.
        path("login", demo_hotspot_login, name="demo-hotspot-login"),
    ]
