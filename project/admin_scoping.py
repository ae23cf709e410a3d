"""Admin pages show an operator only their own objects; superusers see everything.

Scoped: the change lists and change pages (``get_queryset``), the choices of the foreign keys an
operator may set (``owned_choices``), and the related-object list filters (use
``admin.RelatedOnlyFieldListFilter``, which offers only values found in the scoped list, never
another operator's routers).
"""

from __future__ import annotations

from django.contrib import admin


class OwnedByOperatorAdmin(admin.ModelAdmin):
    owner_path = "owner"  # the lookup from this model to the operator (Django user)
    # Foreign key field → the lookup from the related model to its operator: the form's choices for
    # that field are the operator's own objects only (e.g. {"router": "owner"}).
    owned_choices: dict[str, str] = {}

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self.owner_path: request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        lookup = self.owned_choices.get(db_field.name)
        if lookup is not None and not request.user.is_superuser:
            kwargs["queryset"] = db_field.remote_field.model._default_manager.filter(**{lookup: request.user})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
