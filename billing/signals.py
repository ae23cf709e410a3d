"""Every operator has exactly one portal key, however the user was created."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.models import OperatorProfile


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="billing.operator_profile")
def create_operator_profile(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        OperatorProfile.objects.get_or_create(user=instance)
