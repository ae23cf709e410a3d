"""The operators' audit log: what each operator (or someone acting for them) did, through the API or the admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One action, append-only: written once by ``project.audit.record``, never changed or deleted."""

    class Via(models.TextChoices):
        API = "API"
        ADMIN = "ADMIN"

    # Whose log it is in: the operator whose object changed.
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audit_entries")
    # Who did it (the operator, or a superuser in the admin); the name is kept if the user goes.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_name = models.CharField(max_length=150)
    via = models.CharField(max_length=5, choices=Via.choices, default=Via.API)
    action = models.CharField(max_length=64)  # e.g. "updateRouter", "admin.change"
    object_type = models.CharField(max_length=32, blank=True)  # e.g. "Router"
    object_id = models.CharField(max_length=64, blank=True)
    # {"field": [before, after]} for updates; what was given for creations. Never a secret.
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["operator", "-at", "-id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name}: {self.action}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("Audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit entries are append-only")
