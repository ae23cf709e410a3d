"""An activation no longer points at a payment (billing.Payment.activation does the reverse)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('network', '0005_access_grants'),
        ('billing', '0008_copy_grants_from_payments'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveField(
            model_name='activation',
            name='payment',
        ),
        migrations.AlterField(
            model_name='activation',
            name='owner',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='activations', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='activation',
            name='router',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='activations', to='network.router'),
        ),
        migrations.AlterField(
            model_name='activation',
            name='package',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='activations', to='network.package'),
        ),
    ]
