"""The process's live hub (project.live_hub) on whichever channel layer is configured (Redis in the
scaled CI pass): a group left and joined again at once keeps hearing its hints. The discard of the
leave and the add of the join travel on different connections of the layer's pool, so without order
the discard could land last and the group would go deaf until the resync."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from project.live_hub import LiveHub


@pytest.mark.asyncio
async def test_a_group_left_and_joined_again_at_once_still_hears_its_hints(monkeypatch):
    hub = LiveHub.here()
    layer = get_channel_layer()
    discard = layer.group_discard

    async def slow_discard(group, channel):
        await asyncio.sleep(0.05)  # its connection is the slower one this time: the add overtakes it
        await discard(group, channel)

    monkeypatch.setattr(hub.layer, "group_discard", slow_discard)
    heard: list[dict] = []
    keep_alive, first, second = (lambda m: None), (lambda m: None), heard.append
    await hub.join("hub-test.other", keep_alive)  # the hub and its channel outlive the group's churn
    try:
        for round_ in range(5):
            await hub.join("hub-test.group", first)
            leaving = asyncio.ensure_future(hub.leave("hub-test.group", first))
            await asyncio.sleep(0)  # the discard is on its way
            await hub.join("hub-test.group", second)
            await leaving
            await layer.group_send(
                "hub-test.group", {"type": "payment.changed", "group": "hub-test.group", "n": round_}
            )
            for _ in range(200):
                if len(heard) > round_:
                    break
                await asyncio.sleep(0.01)
            assert [m["n"] for m in heard] == list(range(round_ + 1)), f"round {round_}: the group went deaf"
            await hub.leave("hub-test.group", second)
    finally:
        await hub.leave("hub-test.other", keep_alive)
