"""Every operator has exactly one portal key, however the user was created; a password change, by
whatever path (admin, `set_password` + save, `changepassword`), signs the operator out everywhere;
a change to a paid access grant reaches its payment's live subscribers."""

from django.conf import settings
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from billing import notifications
from billing.models import OperatorProfile
from network.models import Activation
from network.signals import activation_changed
from project.auth import sign_out_everywhere


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="billing.operator_profile")
def create_operator_profile(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        OperatorProfile.objects.get_or_create(user=instance)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="billing.password_change_seen")
def note_password_change(sender, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    instance._password_changed = False
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    # Django re-hashing a verified password with newer parameters (`check_password`'s setter) saves
    # only the password and forgets the raw one first: the same password, nobody to sign out.
    if update_fields is not None and set(update_fields) == {"password"} and getattr(instance, "_password", 1) is None:
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._password_changed = stored is not None and stored != instance.password


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="billing.password_change_signs_out")
def sign_out_after_password_change(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if getattr(instance, "_password_changed", False):
        instance._password_changed = False
        sign_out_everywhere(instance)


@receiver(activation_changed, dispatch_uid="billing.activation_changed")
def publish_activation_change(sender, owner_id: int, source: str, reference: str, **kwargs) -> None:
    """The grant a payment bought changed (network sends this after commit): the payment's subscribers
    re-read it, activation included. A paid grant's reference is its payment's id, so nothing is read
    on the way to the router (the claim sends this too). Grants of other sources have no payment."""
    if source == Activation.Source.PAYMENT and reference:
        notifications.publish_payment_changed(payment_id=reference, operator_id=owner_id)
