"""Starting the gateway: HubService plus health checking and server reflection on grpc.aio."""

from __future__ import annotations

import functools

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.service import HubServicer
from stopline.v1 import envelope_pb2, hub_pb2
from trust.tls import TlsIdentity

HUB_SERVICE = hub_pb2.DESCRIPTOR.services_by_name["HubService"].full_name
# Larger than any valid report (validation caps a report at 256 KiB and says so by field); a
# request past this is cut off by gRPC itself with RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES = 1024 * 1024


class _Unparsable:
    """What a request that is not its message type's bytes deserialises to: the handler refuses it."""

    def __init__(self, type_name: str, error: DecodeError):
        self.problem = f"request: the bytes received are not a {type_name} ({error})"


def _lenient(cls):
    def parse(data: bytes):
        try:
            return cls.FromString(data)
        except DecodeError as e:
            return _Unparsable(cls.DESCRIPTOR.full_name, e)

    return parse


def _refusing_unparsable(hub: HubServicer, method):
    @functools.wraps(method)
    async def handler(request, context):
        if isinstance(request, _Unparsable):
            # Nothing signed came in; the refusal is audited with an empty envelope, like a
            # request without one.
            await hub._refuse(context, envelope_pb2.Envelope(), grpc.StatusCode.INVALID_ARGUMENT, request.problem)
        return await method(request, context)

    return handler


def add_hub_service(hub: HubServicer, server: grpc.aio.Server) -> None:
    """HubService as the generated code registers it, except that request bytes which do not
    parse are INVALID_ARGUMENT naming the message type (gRPC's own answer is UNKNOWN, as if the
    hub had crashed)."""
    service = hub_pb2.DESCRIPTOR.services_by_name["HubService"]
    handlers = {
        m.name: grpc.unary_unary_rpc_method_handler(
            _refusing_unparsable(hub, getattr(hub, m.name)),
            request_deserializer=_lenient(GetMessageClass(m.input_type)),
            response_serializer=GetMessageClass(m.output_type).SerializeToString,
        )
        for m in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


async def start_gateway(address: str, hub: HubServicer, tls: TlsIdentity | None) -> tuple[grpc.aio.Server, int]:
    """Serve `hub` on `address` ("host:port", port 0 = OS picks) over mutual TLS with the hub's
    certificate (plaintext only when `tls` is None: the explicit local-debugging flag); return
    the server and port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
    )
    add_hub_service(hub, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (HUB_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_secure_port(address, tls.server_credentials()) if tls else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    for service in ("", HUB_SERVICE):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port
