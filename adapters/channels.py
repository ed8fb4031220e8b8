"""One long-lived gRPC channel per institution endpoint, shared by every call to it."""

from __future__ import annotations

import grpc

# Temporal owns retries (with backoff, visibility and durable state); a second retry layer in
# the channel would hide failures from the workflow and multiply load on a struggling bank.
#
# Reconnect backoff is capped at 5 s (gRPC's default grows to 120 s): after a bank's outage the
# channel must notice it is back within one Temporal retry interval, not minutes later.
CHANNEL_OPTIONS = (
    ("grpc.enable_retries", 0),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
)


class ChannelPool:
    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    def get(self, endpoint: str) -> grpc.aio.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            # Issue #3 replaces this with mutual TLS against the registry's certificates.
            channel = grpc.aio.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
            self._channels[endpoint] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()
