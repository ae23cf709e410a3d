"""The link between a payment and its access grant moves to billing's side (DESIGN.md "Access grants")."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0006_personal_data_retention'),
        ('network', '0005_access_grants'),
    ]

    operations = [
        # related_name '+' until network.0006 has dropped Activation.payment; 0009 names it.
        migrations.AddField(
            model_name='payment',
            name='activation',
            field=models.OneToOneField(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='network.activation'),
        ),
    ]
