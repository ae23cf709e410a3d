"""Reads with access rules: someone else's router or package looks exactly like a missing one."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from network.models import Activation, Package, Router
from project.errors import ApplicationError, ErrorCode
from project.ids import as_pk


def routers_for(operator: AbstractBaseUser) -> QuerySet[Router]:
    """The operator's routers; deleted ones are gone from the API (their history is read through it)."""
    return Router.objects.filter(owner=operator, deleted_at__isnull=True)


def router_get_for(*, operator: AbstractBaseUser, router_id: object, for_update: bool = False) -> Router:
    pk = as_pk(router_id)
    routers = routers_for(operator)
    if for_update:
        routers = routers.select_for_update()
    router = routers.filter(pk=pk).first() if pk else None
    if router is None:
        raise ApplicationError(ErrorCode.ROUTER_NOT_FOUND, "Router not found", field="routerId")
    return router


def packages_for(*, operator: AbstractBaseUser, router_id: object, active_only: bool) -> QuerySet[Package]:
    router = router_get_for(operator=operator, router_id=router_id)
    packages = Package.objects.filter(router=router, deleted_at__isnull=True)
    return packages.filter(is_active=True) if active_only else packages


def package_get_active(*, router: Router, package_id: object) -> Package:
    pk = as_pk(package_id)
    package = (
        Package.objects.filter(router=router, pk=pk, is_active=True, deleted_at__isnull=True).first() if pk else None
    )
    if package is None:
        raise ApplicationError(
            ErrorCode.PACKAGE_NOT_FOUND, "Package not found or not active for this router", field="packageId"
        )
    return package


def package_get_for(*, operator: AbstractBaseUser, package_id: object, for_update: bool = False) -> Package:
    """One of the operator's packages, active or not; `for_update` locks the row (inside a transaction)."""
    pk = as_pk(package_id)
    packages = Package.objects.filter(
        router__owner=operator, router__deleted_at__isnull=True, pk=pk, deleted_at__isnull=True
    )
    if for_update:
        packages = packages.select_for_update(of=("self",))
    package = packages.select_related("router").first() if pk else None
    if package is None:
        raise ApplicationError(ErrorCode.PACKAGE_NOT_FOUND, "Package not found", field="packageId")
    return package


RENEW_CODE_INVALID_MESSAGE = "This code cannot be renewed with this package"


def activation_for_renewal(*, router: Router, code: str, package: Package) -> Activation:
    """The grant a ``PaymentInput.renewCode`` extends: the newest ACTIVE activation holding that code on
    that router, with time left, sold as the same package.

    Unknown, foreign, ended and other-package codes all raise the same CODE_INVALID (no oracle telling
    a guessed code from a real one bought as another package).
    """
    wanted = (code or "").strip().upper()
    head = None
    if 0 < len(wanted) <= Activation._meta.get_field("access_code").max_length:
        head = (
            Activation.objects.filter(
                router=router,
                access_code=wanted,
                status=Activation.Status.ACTIVE,
                expires_at__gt=timezone.now(),
            )
            .order_by("-expires_at", "-pk")
            .first()
        )
    if head is None or head.package_id != package.pk:
        raise ApplicationError(ErrorCode.CODE_INVALID, RENEW_CODE_INVALID_MESSAGE, field="renewCode")
    return head
