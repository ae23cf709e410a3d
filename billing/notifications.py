"""Tell live subscribers that a payment changed. Ids only: subscribers re-read the row."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

from project.embedded import run_on_server_loop

logger = logging.getLogger(__name__)

PAYMENT_CHANGED = "payment.changed"
# What a channel layer raises while its backend (Redis) is down or restarting.
CHANNEL_LAYER_ERRORS: tuple[type[BaseException], ...] = (OSError, RedisError)


def payment_group(payment_id: object) -> str:
    return f"payment.{payment_id}"


def operator_group(operator_id: object) -> str:
    return f"operator.{operator_id}"


def publish_payment_changed(*, payment_id: object, operator_id: object) -> None:
    """Queue the hint for after the current transaction commits (immediately when there is none)."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        message = {"type": PAYMENT_CHANGED, "payment_id": str(payment_id)}

        async def send_all() -> None:
            await layer.group_send(payment_group(payment_id), message)
            await layer.group_send(operator_group(operator_id), message)

        try:
            if not run_on_server_loop(send_all):
                async_to_sync(send_all)()
        except Exception:  # a hint lost is recovered by the subscribers' resync; never fail the write
            logger.exception("Could not publish change of payment %s", payment_id)

    transaction.on_commit(send, robust=True)
