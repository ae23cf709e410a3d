"""Each activation gets what it needs from its payment (owner, router, package, the customer's phone,
MAC and IP, the renewal asked for, when it was granted), and each payment points at its activation."""

from django.db import migrations


def forwards(apps, schema_editor):
    Activation = apps.get_model('network', 'Activation')
    Payment = apps.get_model('billing', 'Payment')
    activations = Activation.objects.filter(payment__isnull=False).select_related('payment').order_by('pk')
    for activation in activations.iterator(chunk_size=500):
        payment = activation.payment
        Activation.objects.filter(pk=activation.pk).update(
            source='PAYMENT',
            owner_id=payment.owner_id,
            router_id=payment.router_id,
            package_id=payment.package_id,
            reference=str(payment.pk),
            phone_number=payment.phone_number,
            mac_address=payment.mac_address,
            ip_address=payment.ip_address,
            granted_at=payment.completed_at or activation.created_at,
            renews_id=payment.renews_id,
        )
        Payment.objects.filter(pk=payment.pk).update(activation_id=activation.pk)


def backwards(apps, schema_editor):
    Activation = apps.get_model('network', 'Activation')
    Payment = apps.get_model('billing', 'Payment')
    linked = Payment.objects.filter(activation__isnull=False).values_list('pk', 'activation_id')
    for payment_id, activation_id in linked.iterator(chunk_size=500):
        Activation.objects.filter(pk=activation_id).update(payment_id=payment_id)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_payment_activation'),
        ('network', '0005_access_grants'),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
