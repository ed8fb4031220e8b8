import datetime

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

class RecallChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECALL_CHANNEL_UNSPECIFIED: _ClassVar[RecallChannel]
    RECALL_CHANNEL_CORRESPONDENT: _ClassVar[RecallChannel]
    RECALL_CHANNEL_CENTRAL_BANK: _ClassVar[RecallChannel]
    RECALL_CHANNEL_POLICE: _ClassVar[RecallChannel]

class RecallStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECALL_STATUS_UNSPECIFIED: _ClassVar[RecallStatus]
    RECALL_STATUS_LOCATED: _ClassVar[RecallStatus]
    RECALL_STATUS_HELD: _ClassVar[RecallStatus]
    RECALL_STATUS_RETURNED: _ClassVar[RecallStatus]
    RECALL_STATUS_REFUSED: _ClassVar[RecallStatus]
    RECALL_STATUS_NO_ANSWER: _ClassVar[RecallStatus]

class RecoveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECOVERY_STATE_UNSPECIFIED: _ClassVar[RecoveryState]
    RECOVERY_STATE_ACTIVE: _ClassVar[RecoveryState]
    RECOVERY_STATE_RECOVERED: _ClassVar[RecoveryState]
    RECOVERY_STATE_ENDED: _ClassVar[RecoveryState]

class ChannelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_STATE_UNSPECIFIED: _ClassVar[ChannelState]
    CHANNEL_STATE_REQUESTING: _ClassVar[ChannelState]
    CHANNEL_STATE_ACKNOWLEDGED: _ClassVar[ChannelState]
    CHANNEL_STATE_LOCATED: _ClassVar[ChannelState]
    CHANNEL_STATE_HELD: _ClassVar[ChannelState]
    CHANNEL_STATE_RETURNED: _ClassVar[ChannelState]
    CHANNEL_STATE_REFUSED: _ClassVar[ChannelState]
    CHANNEL_STATE_SILENT: _ClassVar[ChannelState]
RECALL_CHANNEL_UNSPECIFIED: RecallChannel
RECALL_CHANNEL_CORRESPONDENT: RecallChannel
RECALL_CHANNEL_CENTRAL_BANK: RecallChannel
RECALL_CHANNEL_POLICE: RecallChannel
RECALL_STATUS_UNSPECIFIED: RecallStatus
RECALL_STATUS_LOCATED: RecallStatus
RECALL_STATUS_HELD: RecallStatus
RECALL_STATUS_RETURNED: RecallStatus
RECALL_STATUS_REFUSED: RecallStatus
RECALL_STATUS_NO_ANSWER: RecallStatus
RECOVERY_STATE_UNSPECIFIED: RecoveryState
RECOVERY_STATE_ACTIVE: RecoveryState
RECOVERY_STATE_RECOVERED: RecoveryState
RECOVERY_STATE_ENDED: RecoveryState
CHANNEL_STATE_UNSPECIFIED: ChannelState
CHANNEL_STATE_REQUESTING: ChannelState
CHANNEL_STATE_ACKNOWLEDGED: ChannelState
CHANNEL_STATE_LOCATED: ChannelState
CHANNEL_STATE_HELD: ChannelState
CHANNEL_STATE_RETURNED: ChannelState
CHANNEL_STATE_REFUSED: ChannelState
CHANNEL_STATE_SILENT: ChannelState

class RequestRecallRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class RequestRecallResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class RecallOrder(_message.Message):
    __slots__ = ("idempotency_key", "recovery_id", "case_id", "requested_by", "channel", "from_account", "destination", "amount", "sent_at", "reason", "reminder")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FROM_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REMINDER_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    recovery_id: str
    case_id: str
    requested_by: str
    channel: RecallChannel
    from_account: _common_pb2.AccountRef
    destination: _common_pb2.ForeignDestination
    amount: _common_pb2.Money
    sent_at: _timestamp_pb2.Timestamp
    reason: str
    reminder: int
    def __init__(self, idempotency_key: _Optional[str] = ..., recovery_id: _Optional[str] = ..., case_id: _Optional[str] = ..., requested_by: _Optional[str] = ..., channel: _Optional[_Union[RecallChannel, str]] = ..., from_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., destination: _Optional[_Union[_common_pb2.ForeignDestination, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., reminder: _Optional[int] = ...) -> None: ...

class RecallAcknowledgement(_message.Message):
    __slots__ = ("idempotency_key", "recovery_id", "reference", "acknowledged_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    recovery_id: str
    reference: str
    acknowledged_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., recovery_id: _Optional[str] = ..., reference: _Optional[str] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecallUpdate(_message.Message):
    __slots__ = ("idempotency_key", "recovery_id", "case_id", "sequence", "status", "location", "amount", "return_reference", "reason", "reported_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RETURN_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    recovery_id: str
    case_id: str
    sequence: int
    status: RecallStatus
    location: _common_pb2.ForeignDestination
    amount: _common_pb2.Money
    return_reference: str
    reason: str
    reported_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., recovery_id: _Optional[str] = ..., case_id: _Optional[str] = ..., sequence: _Optional[int] = ..., status: _Optional[_Union[RecallStatus, str]] = ..., location: _Optional[_Union[_common_pb2.ForeignDestination, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., return_reference: _Optional[str] = ..., reason: _Optional[str] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecallChannelView(_message.Message):
    __slots__ = ("channel", "institution", "state", "reference", "acknowledged_at", "last_heard_at", "updates", "reminders", "attempts", "detail")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARD_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    REMINDERS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    channel: RecallChannel
    institution: str
    state: ChannelState
    reference: str
    acknowledged_at: _timestamp_pb2.Timestamp
    last_heard_at: _timestamp_pb2.Timestamp
    updates: int
    reminders: int
    attempts: int
    detail: str
    def __init__(self, channel: _Optional[_Union[RecallChannel, str]] = ..., institution: _Optional[str] = ..., state: _Optional[_Union[ChannelState, str]] = ..., reference: _Optional[str] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_heard_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updates: _Optional[int] = ..., reminders: _Optional[int] = ..., attempts: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class CurrencyEstimate(_message.Message):
    __slots__ = ("amount", "rate", "rate_date")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    RATE_DATE_FIELD_NUMBER: _ClassVar[int]
    amount: _common_pb2.Money
    rate: str
    rate_date: str
    def __init__(self, amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., rate: _Optional[str] = ..., rate_date: _Optional[str] = ...) -> None: ...

class CrossBorderRecovery(_message.Message):
    __slots__ = ("recovery_id", "from_account", "destination", "amount", "sent_at", "window_ends_at", "state", "channels", "trail", "returned", "held_abroad", "outstanding", "lost", "estimate", "next_deadline", "next_deadline_what", "escalated_to", "events")
    RECOVERY_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TRAIL_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    HELD_ABROAD_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    NEXT_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    NEXT_DEADLINE_WHAT_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_TO_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    recovery_id: str
    from_account: _common_pb2.AccountRef
    destination: _common_pb2.ForeignDestination
    amount: _common_pb2.Money
    sent_at: _timestamp_pb2.Timestamp
    window_ends_at: _timestamp_pb2.Timestamp
    state: RecoveryState
    channels: _containers.RepeatedCompositeFieldContainer[RecallChannelView]
    trail: _containers.RepeatedCompositeFieldContainer[_common_pb2.ForeignDestination]
    returned: _common_pb2.Money
    held_abroad: _common_pb2.Money
    outstanding: _common_pb2.Money
    lost: _common_pb2.Money
    estimate: CurrencyEstimate
    next_deadline: _timestamp_pb2.Timestamp
    next_deadline_what: str
    escalated_to: str
    events: _containers.RepeatedCompositeFieldContainer[RecoveryEvent]
    def __init__(self, recovery_id: _Optional[str] = ..., from_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., destination: _Optional[_Union[_common_pb2.ForeignDestination, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[RecoveryState, str]] = ..., channels: _Optional[_Iterable[_Union[RecallChannelView, _Mapping]]] = ..., trail: _Optional[_Iterable[_Union[_common_pb2.ForeignDestination, _Mapping]]] = ..., returned: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., held_abroad: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., outstanding: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., lost: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., estimate: _Optional[_Union[CurrencyEstimate, _Mapping]] = ..., next_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_deadline_what: _Optional[str] = ..., escalated_to: _Optional[str] = ..., events: _Optional[_Iterable[_Union[RecoveryEvent, _Mapping]]] = ...) -> None: ...

class RecoveryEvent(_message.Message):
    __slots__ = ("at", "what")
    AT_FIELD_NUMBER: _ClassVar[int]
    WHAT_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    what: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., what: _Optional[str] = ...) -> None: ...
