"""Access grants stand on their own (DESIGN.md "Access grants"): an activation gets its source, owner,
router, package and customer fields. billing.0008 fills them from each activation's payment, then
0006 drops ``Activation.payment`` (billing keeps the link as ``Payment.activation``)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('network', '0004_personal_data_retention'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('billing', '0006_personal_data_retention'),
    ]

    operations = [
        # No reverse accessor while both sides of the link exist (billing.0007 adds the other one).
        migrations.AlterField(
            model_name='activation',
            name='payment',
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.payment'),
        ),
        migrations.AddField(
            model_name='activation',
            name='source',
            field=models.CharField(choices=[('PAYMENT', 'Payment'), ('VOUCHER', 'Voucher'), ('MANUAL', 'Manual')], db_index=True, default='PAYMENT', max_length=10),
        ),
        migrations.AddField(
            model_name='activation',
            name='owner',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='activations', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='activation',
            name='router',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='activations', to='network.router'),
        ),
        migrations.AddField(
            model_name='activation',
            name='package',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='activations', to='network.package'),
        ),
        migrations.AddField(
            model_name='activation',
            name='reference',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name='activation',
            name='phone_number',
            field=models.CharField(blank=True, max_length=12),
        ),
        migrations.AddField(
            model_name='activation',
            name='mac_address',
            field=models.CharField(blank=True, max_length=17),
        ),
        migrations.AddField(
            model_name='activation',
            name='ip_address',
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='activation',
            name='granted_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name='activation',
            name='renews',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='renewal_requests', to='network.activation'),
        ),
        migrations.AlterField(
            model_name='activation',
            name='status',
            field=models.CharField(choices=[('PENDING', 'Pending'), ('ACTIVE', 'Active'), ('FAILED', 'Failed'), ('EXPIRED', 'Expired'), ('REVOKED', 'Revoked')], db_index=True, default='PENDING', max_length=10),
        ),
        migrations.AlterField(
            model_name='activation',
            name='personal_data_erased_at',
            field=models.DateTimeField(blank=True, editable=False, help_text="When the phone, MAC, IP and the router's error text were erased (data retention)", null=True),
        ),
        migrations.AddIndex(
            model_name='activation',
            index=models.Index(fields=['router', 'access_code'], name='network_act_router_code'),
        ),
    ]
