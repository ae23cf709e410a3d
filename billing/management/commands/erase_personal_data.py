"""Erase the personal data past DATA_RETENTION_DAYS now, instead of waiting for the nightly job."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from billing.retention import personal_data_erase_expired


class Command(BaseCommand):
    help = (
        "Erase phone numbers, MAC and IP addresses and raw webhook bodies older than DATA_RETENTION_DAYS "
        "(what the nightly job does); amounts, states and receipts stay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be erased")

    def handle(self, *args: object, dry_run: bool, **options: object) -> None:
        days = settings.DATA_RETENTION_DAYS
        counts = personal_data_erase_expired(now=timezone.now(), retention_days=days, dry_run=dry_run)
        verb = "Would erase" if dry_run else "Erased"
        self.stdout.write(f"{verb} personal data older than {days} days: {counts}")
