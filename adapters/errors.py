"""What went wrong when calling an institution, and whether trying again can help."""

from __future__ import annotations

import grpc

# The institution understood us and said no: asking again with the same request changes nothing.
# UNAUTHENTICATED is here too: our signature or key was refused, and a retry carries the same.
NON_RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


class InstitutionError(Exception):
    """A call to an institution failed."""

    def __init__(self, institution: str, code: grpc.StatusCode | None, message: str):
        self.institution = institution
        self.code = code
        self.message = message
        code_name = code.name if code is not None else "ERROR"
        super().__init__(f"{institution}: {code_name}: {message}")

    @property
    def retryable(self) -> bool:
        return self.code not in NON_RETRYABLE_CODES


def from_rpc_error(institution: str, err: grpc.aio.AioRpcError) -> InstitutionError:
    return InstitutionError(institution, err.code(), err.details() or "")
