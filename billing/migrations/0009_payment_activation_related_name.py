"""``activation.payment`` from billing's side, now that network's own field of that name is gone."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0008_copy_grants_from_payments'),
        ('network', '0006_activation_without_payment'),
    ]

    operations = [
        migrations.AlterField(
            model_name='payment',
            name='activation',
            field=models.OneToOneField(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='payment', to='network.activation'),
        ),
    ]
