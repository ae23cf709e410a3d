from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import signals  # noqa: F401  (gives every new user a public key)
        from billing.simulator import checks  # noqa: F401  (warns about simulators left on)
