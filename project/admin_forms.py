"""Admin forms that apply the API's own validation rules, so the admin and the API accept the same values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django import forms

from project.errors import ApplicationError


class ServiceRulesForm(forms.ModelForm):
    """Runs each field through its service rule (field name → callable returning the clean value or raising
    ``ApplicationError``); the rule's message is shown on the field."""

    service_rules: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for field, rule in self.service_rules.items():
            if field in cleaned:
                try:
                    cleaned[field] = rule(cleaned[field])
                except ApplicationError as error:
                    self.add_error(field, error.message)
        return cleaned
