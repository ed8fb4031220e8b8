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

class NumberOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NUMBER_OUTCOME_UNSPECIFIED: _ClassVar[NumberOutcome]
    NUMBER_OUTCOME_BLOCKED: _ClassVar[NumberOutcome]
    NUMBER_OUTCOME_ALREADY_BLOCKED: _ClassVar[NumberOutcome]
    NUMBER_OUTCOME_NOT_SERVED: _ClassVar[NumberOutcome]
    NUMBER_OUTCOME_REFUSED: _ClassVar[NumberOutcome]
    NUMBER_OUTCOME_UNBLOCKED: _ClassVar[NumberOutcome]
    NUMBER_OUTCOME_NOT_BLOCKED: _ClassVar[NumberOutcome]
NUMBER_OUTCOME_UNSPECIFIED: NumberOutcome
NUMBER_OUTCOME_BLOCKED: NumberOutcome
NUMBER_OUTCOME_ALREADY_BLOCKED: NumberOutcome
NUMBER_OUTCOME_NOT_SERVED: NumberOutcome
NUMBER_OUTCOME_REFUSED: NumberOutcome
NUMBER_OUTCOME_UNBLOCKED: NumberOutcome
NUMBER_OUTCOME_NOT_BLOCKED: NumberOutcome

class BlockNumbersRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class BlockNumbersResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class UnblockNumbersRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class UnblockNumbersResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class QueryNumberRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class QueryNumberResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class NumberBlockOrder(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "requested_by", "phone_numbers", "reason")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    requested_by: str
    phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., requested_by: _Optional[str] = ..., phone_numbers: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class NumberUnblockOrder(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "phone_numbers", "reason", "decided_by", "officer")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    decided_by: str
    officer: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., phone_numbers: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., decided_by: _Optional[str] = ..., officer: _Optional[str] = ...) -> None: ...

class NumberResult(_message.Message):
    __slots__ = ("phone_number", "outcome", "block_id", "detail", "served_by")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    outcome: NumberOutcome
    block_id: str
    detail: str
    served_by: str
    def __init__(self, phone_number: _Optional[str] = ..., outcome: _Optional[_Union[NumberOutcome, str]] = ..., block_id: _Optional[str] = ..., detail: _Optional[str] = ..., served_by: _Optional[str] = ...) -> None: ...

class NumberBlockAnswer(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "results", "answered_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    results: _containers.RepeatedCompositeFieldContainer[NumberResult]
    answered_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[NumberResult, _Mapping]]] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NumberQuery(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "phone_number")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    phone_number: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., phone_number: _Optional[str] = ...) -> None: ...

class NumberReport(_message.Message):
    __slots__ = ("idempotency_key", "phone_number", "served", "served_by", "blocked")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SERVED_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    phone_number: str
    served: bool
    served_by: str
    blocked: bool
    def __init__(self, idempotency_key: _Optional[str] = ..., phone_number: _Optional[str] = ..., served: _Optional[bool] = ..., served_by: _Optional[str] = ..., blocked: _Optional[bool] = ...) -> None: ...
