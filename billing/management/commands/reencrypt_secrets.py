"""Re-encrypt every stored secret with the newest FIELD_ENCRYPTION_KEY (the first in the list).

Rotation: put the new key first, keep the old ones after it, run this, then drop the old keys.
"""

from django.core.management.base import BaseCommand

from billing.services import secrets_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt stored credentials and router passwords with the newest encryption key."

    def handle(self, *args, **options) -> None:
        count = secrets_reencrypt()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} records with the newest key."))
