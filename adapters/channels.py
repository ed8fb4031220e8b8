"""One long-lived gRPC channel per institution endpoint, shared by every call to it."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from adapters.errors import InstitutionError, from_rpc_error
from trust.errors import TrustError
from trust.registry import Registry
from trust.tls import TlsIdentity, target_name_options

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


def open_channel(endpoint: str, institution_id: str, tls: TlsIdentity | None, options=CHANNEL_OPTIONS) -> grpc.aio.Channel:
    """A channel to `institution_id` at `endpoint`: mutual TLS under our certificate, with the
    handshake checking the server's certificate names `institution_id`; plaintext only when
    `tls` is None (the explicit local-debugging flag)."""
    if tls is None:
        return grpc.aio.insecure_channel(endpoint, options=list(options))
    return grpc.aio.secure_channel(
        endpoint, tls.channel_credentials(), options=[*options, *target_name_options(institution_id)]
    )


class ChannelPool:
    def __init__(self, tls: TlsIdentity | None = None) -> None:
        self._tls = tls
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    def get(self, endpoint: str, institution_id: str) -> grpc.aio.Channel:
        channel = self._channels.get((endpoint, institution_id))
        if channel is None:
            channel = open_channel(endpoint, institution_id, self._tls)
            self._channels[(endpoint, institution_id)] = channel
        return channel

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()


# An institution answers in seconds: a stop-payment, a block, a regulator's receipt. That is the
# deadline of a first call; each retry doubles it up to MAX_TIMEOUT_SECONDS, so an institution that
# is merely slow (10 s, 30 s under load) is heard by a later attempt instead of being cut off at the
# same point for ever, while a hung connection is still given up on fast the first time.
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_TIMEOUT_SECONDS = 60.0


def call_deadline(first_seconds: float, attempt: int) -> float:
    """The deadline of call number `attempt` (1, 2, ...): `first_seconds` doubled per retry, capped."""
    return min(first_seconds * 2 ** (max(attempt, 1) - 1), max(first_seconds, MAX_TIMEOUT_SECONDS))


class InstitutionClient:
    """What every institution client shares: the institution's endpoint from the registry, one
    pooled channel per endpoint, a deadline on every call (growing with the attempt), and
    failures as InstitutionError.
    A subclass names its gRPC stub (`STUB`) and its calls."""

    STUB: type = type(None)

    def __init__(self, channels: ChannelPool, registry: Callable[[], Registry], timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        self._channels = channels
        self._registry = registry
        self._timeout = timeout_seconds

    def _stub(self, institution: str):
        try:
            endpoint = self._registry().endpoint(institution)
        except TrustError as e:
            # Retryable on purpose: an operator can fix the registry and the request then goes through.
            raise InstitutionError(institution, grpc.StatusCode.UNAVAILABLE, str(e)) from None
        return self.STUB(self._channels.get(endpoint, institution))

    async def _call(self, institution: str, method: str, request, attempt: int):
        """Call `attempt` with its deadline; the signed envelope of the answer, unopened."""
        try:
            stub = self._stub(institution)
            response = await getattr(stub, method)(request, timeout=call_deadline(self._timeout, attempt))
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(institution, err) from None
        return response.envelope
