"""Trust: Ed25519 keys, the institution registry and the signed envelope.

Plain library: knows nothing of Temporal or gRPC servers, so institutions (and the sandbox) can
use it exactly as the hub does.
"""
