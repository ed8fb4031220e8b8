import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stopline.v1 import common_pb2 as _common_pb2
from stopline.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StopPaymentOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_PAYMENT_OUTCOME_UNSPECIFIED: _ClassVar[StopPaymentOutcome]
    STOP_PAYMENT_OUTCOME_HELD: _ClassVar[StopPaymentOutcome]
    STOP_PAYMENT_OUTCOME_PARTIALLY_HELD: _ClassVar[StopPaymentOutcome]
    STOP_PAYMENT_OUTCOME_REFUSED: _ClassVar[StopPaymentOutcome]

class RefusalReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFUSAL_REASON_UNSPECIFIED: _ClassVar[RefusalReason]
    REFUSAL_REASON_UNKNOWN_ACCOUNT: _ClassVar[RefusalReason]
    REFUSAL_REASON_ACCOUNT_CLOSED: _ClassVar[RefusalReason]
    REFUSAL_REASON_NAME_MISMATCH: _ClassVar[RefusalReason]
    REFUSAL_REASON_NO_FUNDS: _ClassVar[RefusalReason]
    REFUSAL_REASON_STOP_LIMIT_REACHED: _ClassVar[RefusalReason]
    REFUSAL_REASON_CURRENCY_MISMATCH: _ClassVar[RefusalReason]

class TransferChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_CHANNEL_UNSPECIFIED: _ClassVar[TransferChannel]
    TRANSFER_CHANNEL_TRANSFER: _ClassVar[TransferChannel]
    TRANSFER_CHANNEL_CASH: _ClassVar[TransferChannel]
    TRANSFER_CHANNEL_ABROAD: _ClassVar[TransferChannel]

class FreezeOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FREEZE_OUTCOME_UNSPECIFIED: _ClassVar[FreezeOutcome]
    FREEZE_OUTCOME_FROZEN: _ClassVar[FreezeOutcome]
    FREEZE_OUTCOME_REFUSED: _ClassVar[FreezeOutcome]
    FREEZE_OUTCOME_ACCEPTED: _ClassVar[FreezeOutcome]

class ReturnOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETURN_OUTCOME_UNSPECIFIED: _ClassVar[ReturnOutcome]
    RETURN_OUTCOME_RETURNED: _ClassVar[ReturnOutcome]
    RETURN_OUTCOME_ACCEPTED: _ClassVar[ReturnOutcome]
    RETURN_OUTCOME_REFUSED: _ClassVar[ReturnOutcome]
STOP_PAYMENT_OUTCOME_UNSPECIFIED: StopPaymentOutcome
STOP_PAYMENT_OUTCOME_HELD: StopPaymentOutcome
STOP_PAYMENT_OUTCOME_PARTIALLY_HELD: StopPaymentOutcome
STOP_PAYMENT_OUTCOME_REFUSED: StopPaymentOutcome
REFUSAL_REASON_UNSPECIFIED: RefusalReason
REFUSAL_REASON_UNKNOWN_ACCOUNT: RefusalReason
REFUSAL_REASON_ACCOUNT_CLOSED: RefusalReason
REFUSAL_REASON_NAME_MISMATCH: RefusalReason
REFUSAL_REASON_NO_FUNDS: RefusalReason
REFUSAL_REASON_STOP_LIMIT_REACHED: RefusalReason
REFUSAL_REASON_CURRENCY_MISMATCH: RefusalReason
TRANSFER_CHANNEL_UNSPECIFIED: TransferChannel
TRANSFER_CHANNEL_TRANSFER: TransferChannel
TRANSFER_CHANNEL_CASH: TransferChannel
TRANSFER_CHANNEL_ABROAD: TransferChannel
FREEZE_OUTCOME_UNSPECIFIED: FreezeOutcome
FREEZE_OUTCOME_FROZEN: FreezeOutcome
FREEZE_OUTCOME_REFUSED: FreezeOutcome
FREEZE_OUTCOME_ACCEPTED: FreezeOutcome
RETURN_OUTCOME_UNSPECIFIED: ReturnOutcome
RETURN_OUTCOME_RETURNED: ReturnOutcome
RETURN_OUTCOME_ACCEPTED: ReturnOutcome
RETURN_OUTCOME_REFUSED: ReturnOutcome

class StopPaymentRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class StopPaymentResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class StopPaymentOrder(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "account_holder_name", "amount", "transfer_time", "requested_by", "hold_duration", "extends_hold_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_HOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    HOLD_DURATION_FIELD_NUMBER: _ClassVar[int]
    EXTENDS_HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    account_holder_name: str
    amount: _common_pb2.Money
    transfer_time: _timestamp_pb2.Timestamp
    requested_by: str
    hold_duration: _duration_pb2.Duration
    extends_hold_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., account_holder_name: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., transfer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requested_by: _Optional[str] = ..., hold_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., extends_hold_id: _Optional[str] = ...) -> None: ...

class StopPaymentAnswer(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "outcome", "held", "requested", "refusal_reason", "detail", "hold_id", "held_at", "hold_expires_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_AT_FIELD_NUMBER: _ClassVar[int]
    HOLD_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    outcome: StopPaymentOutcome
    held: _common_pb2.Money
    requested: _common_pb2.Money
    refusal_reason: RefusalReason
    detail: str
    hold_id: str
    held_at: _timestamp_pb2.Timestamp
    hold_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., outcome: _Optional[_Union[StopPaymentOutcome, str]] = ..., held: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., requested: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., refusal_reason: _Optional[_Union[RefusalReason, str]] = ..., detail: _Optional[str] = ..., hold_id: _Optional[str] = ..., held_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hold_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueryAccountRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class QueryAccountResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class AccountQuery(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "transfers_since")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_SINCE_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    transfers_since: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., transfers_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OutgoingTransfer(_message.Message):
    __slots__ = ("to_account", "amount", "transferred_at", "channel", "abroad")
    TO_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSFERRED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ABROAD_FIELD_NUMBER: _ClassVar[int]
    to_account: _common_pb2.AccountRef
    amount: _common_pb2.Money
    transferred_at: _timestamp_pb2.Timestamp
    channel: TransferChannel
    abroad: _common_pb2.ForeignDestination
    def __init__(self, to_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., transferred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[_Union[TransferChannel, str]] = ..., abroad: _Optional[_Union[_common_pb2.ForeignDestination, _Mapping]] = ...) -> None: ...

class AccountReport(_message.Message):
    __slots__ = ("idempotency_key", "account", "found", "holder_name", "balance", "held", "transfers")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    HOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    account: _common_pb2.AccountRef
    found: bool
    holder_name: str
    balance: _common_pb2.Money
    held: _common_pb2.Money
    transfers: _containers.RepeatedCompositeFieldContainer[OutgoingTransfer]
    def __init__(self, idempotency_key: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., found: _Optional[bool] = ..., holder_name: _Optional[str] = ..., balance: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., held: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., transfers: _Optional[_Iterable[_Union[OutgoingTransfer, _Mapping]]] = ...) -> None: ...

class FreezeRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class FreezeResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class FreezeApproval(_message.Message):
    __slots__ = ("approved_by", "officer", "document_ref", "approved_at")
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_REF_FIELD_NUMBER: _ClassVar[int]
    APPROVED_AT_FIELD_NUMBER: _ClassVar[int]
    approved_by: str
    officer: str
    document_ref: str
    approved_at: _timestamp_pb2.Timestamp
    def __init__(self, approved_by: _Optional[str] = ..., officer: _Optional[str] = ..., document_ref: _Optional[str] = ..., approved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FreezeOrder(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "amount", "hold_id", "renews_freeze_id", "freeze_duration", "approval")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    RENEWS_FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    FREEZE_DURATION_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    amount: _common_pb2.Money
    hold_id: str
    renews_freeze_id: str
    freeze_duration: _duration_pb2.Duration
    approval: FreezeApproval
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., hold_id: _Optional[str] = ..., renews_freeze_id: _Optional[str] = ..., freeze_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., approval: _Optional[_Union[FreezeApproval, _Mapping]] = ...) -> None: ...

class FreezeAnswer(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "outcome", "frozen", "freeze_id", "frozen_at", "freeze_expires_at", "detail")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    FROZEN_AT_FIELD_NUMBER: _ClassVar[int]
    FREEZE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    outcome: FreezeOutcome
    frozen: _common_pb2.Money
    freeze_id: str
    frozen_at: _timestamp_pb2.Timestamp
    freeze_expires_at: _timestamp_pb2.Timestamp
    detail: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., outcome: _Optional[_Union[FreezeOutcome, str]] = ..., frozen: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., freeze_id: _Optional[str] = ..., frozen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., freeze_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReleaseOrder(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "hold_id", "freeze_id", "reason", "decided_by")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    hold_id: str
    freeze_id: str
    reason: str
    decided_by: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., hold_id: _Optional[str] = ..., freeze_id: _Optional[str] = ..., reason: _Optional[str] = ..., decided_by: _Optional[str] = ...) -> None: ...

class ReleaseAnswer(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "released", "released_at", "detail")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    released: _common_pb2.Money
    released_at: _timestamp_pb2.Timestamp
    detail: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., released: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., released_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

class ReturnFundsRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReturnFundsResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReturnOrder(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "freeze_id", "to_account", "amount", "due_by", "decided_by", "officer", "document_ref")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FREEZE_ID_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DUE_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_REF_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    freeze_id: str
    to_account: _common_pb2.AccountRef
    amount: _common_pb2.Money
    due_by: _timestamp_pb2.Timestamp
    decided_by: str
    officer: str
    document_ref: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., freeze_id: _Optional[str] = ..., to_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., due_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ..., officer: _Optional[str] = ..., document_ref: _Optional[str] = ...) -> None: ...

class ReturnReceipt(_message.Message):
    __slots__ = ("idempotency_key", "case_id", "account", "to_account", "outcome", "returned", "return_id", "returned_at", "detail")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    RETURNED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    case_id: str
    account: _common_pb2.AccountRef
    to_account: _common_pb2.AccountRef
    outcome: ReturnOutcome
    returned: _common_pb2.Money
    return_id: str
    returned_at: _timestamp_pb2.Timestamp
    detail: str
    def __init__(self, idempotency_key: _Optional[str] = ..., case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., to_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., outcome: _Optional[_Union[ReturnOutcome, str]] = ..., returned: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., return_id: _Optional[str] = ..., returned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...
