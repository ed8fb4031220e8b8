import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stopline.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_TYPE_UNSPECIFIED: _ClassVar[RequestType]
    REQUEST_TYPE_STOP_PAYMENT: _ClassVar[RequestType]
    REQUEST_TYPE_ACCOUNT_QUERY: _ClassVar[RequestType]
    REQUEST_TYPE_FREEZE: _ClassVar[RequestType]
    REQUEST_TYPE_RELEASE: _ClassVar[RequestType]
    REQUEST_TYPE_RETURN_FUNDS: _ClassVar[RequestType]
    REQUEST_TYPE_BLOCK_NUMBERS: _ClassVar[RequestType]
    REQUEST_TYPE_UNBLOCK_NUMBERS: _ClassVar[RequestType]
    REQUEST_TYPE_QUERY_NUMBER: _ClassVar[RequestType]

class InterceptionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERCEPTION_KIND_UNSPECIFIED: _ClassVar[InterceptionKind]
    INTERCEPTION_KIND_BLOCKED: _ClassVar[InterceptionKind]
    INTERCEPTION_KIND_UNBLOCKED: _ClassVar[InterceptionKind]
REQUEST_TYPE_UNSPECIFIED: RequestType
REQUEST_TYPE_STOP_PAYMENT: RequestType
REQUEST_TYPE_ACCOUNT_QUERY: RequestType
REQUEST_TYPE_FREEZE: RequestType
REQUEST_TYPE_RELEASE: RequestType
REQUEST_TYPE_RETURN_FUNDS: RequestType
REQUEST_TYPE_BLOCK_NUMBERS: RequestType
REQUEST_TYPE_UNBLOCK_NUMBERS: RequestType
REQUEST_TYPE_QUERY_NUMBER: RequestType
INTERCEPTION_KIND_UNSPECIFIED: InterceptionKind
INTERCEPTION_KIND_BLOCKED: InterceptionKind
INTERCEPTION_KIND_UNBLOCKED: InterceptionKind

class ReportBreachRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReportBreachResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class NotifyInterceptionRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class NotifyInterceptionResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class LogEntryRef(_message.Message):
    __slots__ = ("index", "leaf_hash")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    index: int
    leaf_hash: bytes
    def __init__(self, index: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ...) -> None: ...

class BreachReport(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "institution", "request_type", "request_idempotency_key", "asked_at", "answer_due_at", "evidence", "log_size", "detail")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ASKED_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    institution: str
    request_type: RequestType
    request_idempotency_key: str
    asked_at: _timestamp_pb2.Timestamp
    answer_due_at: _timestamp_pb2.Timestamp
    evidence: _containers.RepeatedCompositeFieldContainer[LogEntryRef]
    log_size: int
    detail: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., institution: _Optional[str] = ..., request_type: _Optional[_Union[RequestType, str]] = ..., request_idempotency_key: _Optional[str] = ..., asked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answer_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., evidence: _Optional[_Iterable[_Union[LogEntryRef, _Mapping]]] = ..., log_size: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class InterceptionNotice(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "carrier", "phone_numbers", "kind", "reason", "acted_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTED_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    carrier: str
    phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    kind: InterceptionKind
    reason: str
    acted_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., carrier: _Optional[str] = ..., phone_numbers: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[InterceptionKind, str]] = ..., reason: _Optional[str] = ..., acted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegulatorReceipt(_message.Message):
    __slots__ = ("idempotency_key", "reference", "received_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    reference: str
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., reference: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
