"""Starting the gateway: HubService plus health checking and server reflection on grpc.aio."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.service import HubServicer
from stopline.v1 import hub_pb2, hub_pb2_grpc
from trust.tls import TlsIdentity

HUB_SERVICE = hub_pb2.DESCRIPTOR.services_by_name["HubService"].full_name
# Larger than any valid report (validation caps a report at 256 KiB and says so by field); a
# request past this is cut off by gRPC itself with RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES = 1024 * 1024


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
    hub_pb2_grpc.add_HubServiceServicer_to_server(hub, server)
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
