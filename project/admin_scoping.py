"""Admin pages show an operator only their own objects; superusers see everything."""

from __future__ import annotations

from django.contrib import admin


class OwnedByOperatorAdmin(admin.ModelAdmin):
    owner_path = "owner"  # the lookup from this model to the operator (Django user)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self.owner_path: request.user})
