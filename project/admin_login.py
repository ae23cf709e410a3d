"""The admin's login form, signing in through the same throttled service as `tokenAuth`.

Installed in project/urls.py (`admin.site.login_form`): a second door without the throttle would let
anyone guess an operator's password there (40 wrong ones, then the right one, used to get in).
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from project.client_address import client_address
from project.errors import ApplicationError, ErrorCode
from project.signin import sign_in


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = sign_in(
                    username=username,
                    password=password,
                    client_address=client_address(self.request) if self.request is not None else None,
                    request=self.request,
                )
            except ApplicationError as error:
                if error.code is ErrorCode.AUTHENTICATION_FAILED:
                    raise self.get_invalid_login_error() from None
                raise ValidationError(error.message, code=error.code.value.lower()) from None
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data
