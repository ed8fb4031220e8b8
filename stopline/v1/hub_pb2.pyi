import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from stopline.v1 import common_pb2 as _common_pb2
from stopline.v1 import crossborder_pb2 as _crossborder_pb2
from stopline.v1 import envelope_pb2 as _envelope_pb2
from stopline.v1 import regulator_pb2 as _regulator_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CaseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_STATUS_UNSPECIFIED: _ClassVar[CaseStatus]
    CASE_STATUS_STOPPING: _ClassVar[CaseStatus]
    CASE_STATUS_STOPS_ANSWERED: _ClassVar[CaseStatus]
    CASE_STATUS_CONCLUDED: _ClassVar[CaseStatus]
    CASE_STATUS_CLOSED: _ClassVar[CaseStatus]

class StopState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_STATE_UNSPECIFIED: _ClassVar[StopState]
    STOP_STATE_ASKED: _ClassVar[StopState]
    STOP_STATE_HELD: _ClassVar[StopState]
    STOP_STATE_PARTIALLY_HELD: _ClassVar[StopState]
    STOP_STATE_REFUSED: _ClassVar[StopState]
    STOP_STATE_ANSWER_REJECTED: _ClassVar[StopState]
    STOP_STATE_FAILED: _ClassVar[StopState]

class HoldState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_STATE_UNSPECIFIED: _ClassVar[HoldState]
    HOLD_STATE_HELD: _ClassVar[HoldState]
    HOLD_STATE_EXTENDED: _ClassVar[HoldState]
    HOLD_STATE_LAPSED: _ClassVar[HoldState]
    HOLD_STATE_FREEZING: _ClassVar[HoldState]
    HOLD_STATE_FROZEN: _ClassVar[HoldState]
    HOLD_STATE_RELEASED: _ClassVar[HoldState]
    HOLD_STATE_RELEASING: _ClassVar[HoldState]
    HOLD_STATE_RETURNING: _ClassVar[HoldState]
    HOLD_STATE_RETURNED: _ClassVar[HoldState]

class FlowKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_KIND_UNSPECIFIED: _ClassVar[FlowKind]
    FLOW_KIND_ONWARD: _ClassVar[FlowKind]
    FLOW_KIND_CASH: _ClassVar[FlowKind]
    FLOW_KIND_ABROAD: _ClassVar[FlowKind]
    FLOW_KIND_OFF_PLATFORM: _ClassVar[FlowKind]
    FLOW_KIND_BEYOND_DEPTH: _ClassVar[FlowKind]
    FLOW_KIND_NOT_TRACED: _ClassVar[FlowKind]

class NumberState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NUMBER_STATE_UNSPECIFIED: _ClassVar[NumberState]
    NUMBER_STATE_LOCATING: _ClassVar[NumberState]
    NUMBER_STATE_BLOCKING: _ClassVar[NumberState]
    NUMBER_STATE_BLOCKED: _ClassVar[NumberState]
    NUMBER_STATE_NOT_FOUND: _ClassVar[NumberState]
    NUMBER_STATE_REFUSED: _ClassVar[NumberState]
    NUMBER_STATE_FAILED: _ClassVar[NumberState]
    NUMBER_STATE_UNBLOCKING: _ClassVar[NumberState]
    NUMBER_STATE_UNBLOCKED: _ClassVar[NumberState]

class EscalationLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ESCALATION_LEVEL_UNSPECIFIED: _ClassVar[EscalationLevel]
    ESCALATION_LEVEL_CITY: _ClassVar[EscalationLevel]
    ESCALATION_LEVEL_PROVINCE: _ClassVar[EscalationLevel]

class ReturnState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETURN_STATE_UNSPECIFIED: _ClassVar[ReturnState]
    RETURN_STATE_NOTICE: _ClassVar[ReturnState]
    RETURN_STATE_ORDERED: _ClassVar[ReturnState]
    RETURN_STATE_ACCEPTED: _ClassVar[ReturnState]
    RETURN_STATE_RETURNED: _ClassVar[ReturnState]
    RETURN_STATE_REFUSED: _ClassVar[ReturnState]
    RETURN_STATE_FAILED: _ClassVar[ReturnState]
CASE_STATUS_UNSPECIFIED: CaseStatus
CASE_STATUS_STOPPING: CaseStatus
CASE_STATUS_STOPS_ANSWERED: CaseStatus
CASE_STATUS_CONCLUDED: CaseStatus
CASE_STATUS_CLOSED: CaseStatus
STOP_STATE_UNSPECIFIED: StopState
STOP_STATE_ASKED: StopState
STOP_STATE_HELD: StopState
STOP_STATE_PARTIALLY_HELD: StopState
STOP_STATE_REFUSED: StopState
STOP_STATE_ANSWER_REJECTED: StopState
STOP_STATE_FAILED: StopState
HOLD_STATE_UNSPECIFIED: HoldState
HOLD_STATE_HELD: HoldState
HOLD_STATE_EXTENDED: HoldState
HOLD_STATE_LAPSED: HoldState
HOLD_STATE_FREEZING: HoldState
HOLD_STATE_FROZEN: HoldState
HOLD_STATE_RELEASED: HoldState
HOLD_STATE_RELEASING: HoldState
HOLD_STATE_RETURNING: HoldState
HOLD_STATE_RETURNED: HoldState
FLOW_KIND_UNSPECIFIED: FlowKind
FLOW_KIND_ONWARD: FlowKind
FLOW_KIND_CASH: FlowKind
FLOW_KIND_ABROAD: FlowKind
FLOW_KIND_OFF_PLATFORM: FlowKind
FLOW_KIND_BEYOND_DEPTH: FlowKind
FLOW_KIND_NOT_TRACED: FlowKind
NUMBER_STATE_UNSPECIFIED: NumberState
NUMBER_STATE_LOCATING: NumberState
NUMBER_STATE_BLOCKING: NumberState
NUMBER_STATE_BLOCKED: NumberState
NUMBER_STATE_NOT_FOUND: NumberState
NUMBER_STATE_REFUSED: NumberState
NUMBER_STATE_FAILED: NumberState
NUMBER_STATE_UNBLOCKING: NumberState
NUMBER_STATE_UNBLOCKED: NumberState
ESCALATION_LEVEL_UNSPECIFIED: EscalationLevel
ESCALATION_LEVEL_CITY: EscalationLevel
ESCALATION_LEVEL_PROVINCE: EscalationLevel
RETURN_STATE_UNSPECIFIED: ReturnState
RETURN_STATE_NOTICE: ReturnState
RETURN_STATE_ORDERED: ReturnState
RETURN_STATE_ACCEPTED: ReturnState
RETURN_STATE_RETURNED: ReturnState
RETURN_STATE_REFUSED: ReturnState
RETURN_STATE_FAILED: ReturnState

class UnblockNumberRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class UnblockNumberResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class NumberUnblockDecision(_message.Message):
    __slots__ = ("case_id", "phone_number", "officer", "reason")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    phone_number: str
    officer: str
    reason: str
    def __init__(self, case_id: _Optional[str] = ..., phone_number: _Optional[str] = ..., officer: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ConcludeCaseRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ConcludeCaseResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class CaseConclusion(_message.Message):
    __slots__ = ("case_id", "officer", "document_ref")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_REF_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    officer: str
    document_ref: str
    def __init__(self, case_id: _Optional[str] = ..., officer: _Optional[str] = ..., document_ref: _Optional[str] = ...) -> None: ...

class AcknowledgeEscalationRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class AcknowledgeEscalationResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class EscalationAcknowledgement(_message.Message):
    __slots__ = ("case_id", "officer", "note")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    officer: str
    note: str
    def __init__(self, case_id: _Optional[str] = ..., officer: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class CaseDecisionReceipt(_message.Message):
    __slots__ = ("case_id", "decision", "accepted_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    decision: str
    accepted_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., decision: _Optional[str] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportReturnResultRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReportReturnResultResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReportRecallUpdateRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReportRecallUpdateResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class FindCasesRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class CaseSearch(_message.Message):
    __slots__ = ("account", "phone_number", "device_id")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    account: _common_pb2.AccountRef
    phone_number: str
    device_id: str
    def __init__(self, account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., phone_number: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...

class CaseLink(_message.Message):
    __slots__ = ("case_id", "lead_case_id", "how", "since")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_CASE_ID_FIELD_NUMBER: _ClassVar[int]
    HOW_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    lead_case_id: str
    how: str
    since: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., lead_case_id: _Optional[str] = ..., how: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FindCasesResponse(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CaseLink]
    def __init__(self, cases: _Optional[_Iterable[_Union[CaseLink, _Mapping]]] = ...) -> None: ...

class ReportFreezeResultRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReportFreezeResultResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class CallbackReceipt(_message.Message):
    __slots__ = ("idempotency_key", "accepted_at")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    accepted_at: _timestamp_pb2.Timestamp
    def __init__(self, idempotency_key: _Optional[str] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DecideHoldRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class DecideHoldResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class FreezeDecision(_message.Message):
    __slots__ = ("amount", "officer", "document_ref")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_REF_FIELD_NUMBER: _ClassVar[int]
    amount: _common_pb2.Money
    officer: str
    document_ref: str
    def __init__(self, amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., officer: _Optional[str] = ..., document_ref: _Optional[str] = ...) -> None: ...

class RenewDecision(_message.Message):
    __slots__ = ("officer", "document_ref")
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_REF_FIELD_NUMBER: _ClassVar[int]
    officer: str
    document_ref: str
    def __init__(self, officer: _Optional[str] = ..., document_ref: _Optional[str] = ...) -> None: ...

class ReleaseDecision(_message.Message):
    __slots__ = ("officer", "reason")
    OFFICER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    officer: str
    reason: str
    def __init__(self, officer: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class HoldDecision(_message.Message):
    __slots__ = ("case_id", "account", "freeze", "renew", "release")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    RENEW_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    account: _common_pb2.AccountRef
    freeze: FreezeDecision
    renew: RenewDecision
    release: ReleaseDecision
    def __init__(self, case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., freeze: _Optional[_Union[FreezeDecision, _Mapping]] = ..., renew: _Optional[_Union[RenewDecision, _Mapping]] = ..., release: _Optional[_Union[ReleaseDecision, _Mapping]] = ...) -> None: ...

class HoldDecisionReceipt(_message.Message):
    __slots__ = ("case_id", "account", "hold_state", "accepted_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    HOLD_STATE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    account: _common_pb2.AccountRef
    hold_state: HoldState
    accepted_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., hold_state: _Optional[_Union[HoldState, str]] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportCaseRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class ReportCaseResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class CaseReport(_message.Message):
    __slots__ = ("case_id", "reporting_unit", "reported_at", "transfers", "suspect_phone_numbers", "summary", "device_ids")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTING_UNIT_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    SUSPECT_PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    reporting_unit: str
    reported_at: _timestamp_pb2.Timestamp
    transfers: _containers.RepeatedCompositeFieldContainer[VictimTransfer]
    suspect_phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    device_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, case_id: _Optional[str] = ..., reporting_unit: _Optional[str] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transfers: _Optional[_Iterable[_Union[VictimTransfer, _Mapping]]] = ..., suspect_phone_numbers: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ..., device_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class VictimTransfer(_message.Message):
    __slots__ = ("from_account", "to_account", "to_account_holder_name", "amount", "transferred_at", "abroad")
    FROM_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_HOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSFERRED_AT_FIELD_NUMBER: _ClassVar[int]
    ABROAD_FIELD_NUMBER: _ClassVar[int]
    from_account: _common_pb2.AccountRef
    to_account: _common_pb2.AccountRef
    to_account_holder_name: str
    amount: _common_pb2.Money
    transferred_at: _timestamp_pb2.Timestamp
    abroad: _common_pb2.ForeignDestination
    def __init__(self, from_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., to_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., to_account_holder_name: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., transferred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., abroad: _Optional[_Union[_common_pb2.ForeignDestination, _Mapping]] = ...) -> None: ...

class CaseReceipt(_message.Message):
    __slots__ = ("case_id", "workflow_id", "created", "accepted_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    workflow_id: str
    created: bool
    accepted_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., created: _Optional[bool] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AccountStop(_message.Message):
    __slots__ = ("account", "requested", "state", "held", "reason", "attempts", "last_error", "hold_id", "hold_expires_at", "answered_at", "depth", "released", "traced", "hold_state", "stops_used", "freeze_decision_due_at", "hold_events", "returned")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    TRACED_FIELD_NUMBER: _ClassVar[int]
    HOLD_STATE_FIELD_NUMBER: _ClassVar[int]
    STOPS_USED_FIELD_NUMBER: _ClassVar[int]
    FREEZE_DECISION_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    HOLD_EVENTS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    account: _common_pb2.AccountRef
    requested: _common_pb2.Money
    state: StopState
    held: _common_pb2.Money
    reason: str
    attempts: int
    last_error: str
    hold_id: str
    hold_expires_at: _timestamp_pb2.Timestamp
    answered_at: _timestamp_pb2.Timestamp
    depth: int
    released: _common_pb2.Money
    traced: bool
    hold_state: HoldState
    stops_used: int
    freeze_decision_due_at: _timestamp_pb2.Timestamp
    hold_events: _containers.RepeatedCompositeFieldContainer[HoldEvent]
    returned: _common_pb2.Money
    def __init__(self, account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., requested: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., state: _Optional[_Union[StopState, str]] = ..., held: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., hold_id: _Optional[str] = ..., hold_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., depth: _Optional[int] = ..., released: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., traced: _Optional[bool] = ..., hold_state: _Optional[_Union[HoldState, str]] = ..., stops_used: _Optional[int] = ..., freeze_decision_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hold_events: _Optional[_Iterable[_Union[HoldEvent, _Mapping]]] = ..., returned: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class HoldEvent(_message.Message):
    __slots__ = ("at", "what")
    AT_FIELD_NUMBER: _ClassVar[int]
    WHAT_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    what: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., what: _Optional[str] = ...) -> None: ...

class MoneyFlow(_message.Message):
    __slots__ = ("from_account", "to_account", "amount", "kind", "moved_at", "note", "abroad")
    FROM_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MOVED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ABROAD_FIELD_NUMBER: _ClassVar[int]
    from_account: _common_pb2.AccountRef
    to_account: _common_pb2.AccountRef
    amount: _common_pb2.Money
    kind: FlowKind
    moved_at: _timestamp_pb2.Timestamp
    note: str
    abroad: _common_pb2.ForeignDestination
    def __init__(self, from_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., to_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., kind: _Optional[_Union[FlowKind, str]] = ..., moved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., abroad: _Optional[_Union[_common_pb2.ForeignDestination, _Mapping]] = ...) -> None: ...

class CaseView(_message.Message):
    __slots__ = ("case_id", "workflow_id", "status", "reporting_unit", "reported_at", "total_reported", "total_held", "stops", "suspect_phone_numbers", "summary", "flows", "total_lost", "total_abroad", "total_at_large", "total_released", "total_returned", "victims", "linked_cases", "numbers", "escalation", "returns", "breaches", "recoveries", "abroad_returned", "abroad_held", "abroad_lost")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPORTING_UNIT_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REPORTED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_HELD_FIELD_NUMBER: _ClassVar[int]
    STOPS_FIELD_NUMBER: _ClassVar[int]
    SUSPECT_PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LOST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ABROAD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AT_LARGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RELEASED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RETURNED_FIELD_NUMBER: _ClassVar[int]
    VICTIMS_FIELD_NUMBER: _ClassVar[int]
    LINKED_CASES_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    BREACHES_FIELD_NUMBER: _ClassVar[int]
    RECOVERIES_FIELD_NUMBER: _ClassVar[int]
    ABROAD_RETURNED_FIELD_NUMBER: _ClassVar[int]
    ABROAD_HELD_FIELD_NUMBER: _ClassVar[int]
    ABROAD_LOST_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    workflow_id: str
    status: CaseStatus
    reporting_unit: str
    reported_at: _timestamp_pb2.Timestamp
    total_reported: _common_pb2.Money
    total_held: _common_pb2.Money
    stops: _containers.RepeatedCompositeFieldContainer[AccountStop]
    suspect_phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    flows: _containers.RepeatedCompositeFieldContainer[MoneyFlow]
    total_lost: _common_pb2.Money
    total_abroad: _common_pb2.Money
    total_at_large: _common_pb2.Money
    total_released: _common_pb2.Money
    total_returned: _common_pb2.Money
    victims: _containers.RepeatedCompositeFieldContainer[Victim]
    linked_cases: _containers.RepeatedCompositeFieldContainer[LinkedCase]
    numbers: _containers.RepeatedCompositeFieldContainer[NumberBlock]
    escalation: Escalation
    returns: _containers.RepeatedCompositeFieldContainer[FundsReturn]
    breaches: _containers.RepeatedCompositeFieldContainer[BreachNotice]
    recoveries: _containers.RepeatedCompositeFieldContainer[_crossborder_pb2.CrossBorderRecovery]
    abroad_returned: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    abroad_held: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    abroad_lost: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    def __init__(self, case_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., reporting_unit: _Optional[str] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_reported: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total_held: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., stops: _Optional[_Iterable[_Union[AccountStop, _Mapping]]] = ..., suspect_phone_numbers: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ..., flows: _Optional[_Iterable[_Union[MoneyFlow, _Mapping]]] = ..., total_lost: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total_abroad: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total_at_large: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total_released: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total_returned: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., victims: _Optional[_Iterable[_Union[Victim, _Mapping]]] = ..., linked_cases: _Optional[_Iterable[_Union[LinkedCase, _Mapping]]] = ..., numbers: _Optional[_Iterable[_Union[NumberBlock, _Mapping]]] = ..., escalation: _Optional[_Union[Escalation, _Mapping]] = ..., returns: _Optional[_Iterable[_Union[FundsReturn, _Mapping]]] = ..., breaches: _Optional[_Iterable[_Union[BreachNotice, _Mapping]]] = ..., recoveries: _Optional[_Iterable[_Union[_crossborder_pb2.CrossBorderRecovery, _Mapping]]] = ..., abroad_returned: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., abroad_held: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., abroad_lost: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ...) -> None: ...

class Victim(_message.Message):
    __slots__ = ("account", "lost", "case_id")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    account: _common_pb2.AccountRef
    lost: _common_pb2.Money
    case_id: str
    def __init__(self, account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., lost: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., case_id: _Optional[str] = ...) -> None: ...

class LinkedCase(_message.Message):
    __slots__ = ("case_id", "reporting_unit", "total_reported", "shared", "linked_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTING_UNIT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REPORTED_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    LINKED_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    reporting_unit: str
    total_reported: _common_pb2.Money
    shared: str
    linked_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., reporting_unit: _Optional[str] = ..., total_reported: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., shared: _Optional[str] = ..., linked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NumberBlock(_message.Message):
    __slots__ = ("phone_number", "carrier", "state", "block_id", "detail", "blocked_at", "unblocked_at", "unblock_reason", "regulator_notified")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_AT_FIELD_NUMBER: _ClassVar[int]
    UNBLOCKED_AT_FIELD_NUMBER: _ClassVar[int]
    UNBLOCK_REASON_FIELD_NUMBER: _ClassVar[int]
    REGULATOR_NOTIFIED_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    carrier: str
    state: NumberState
    block_id: str
    detail: str
    blocked_at: _timestamp_pb2.Timestamp
    unblocked_at: _timestamp_pb2.Timestamp
    unblock_reason: str
    regulator_notified: bool
    def __init__(self, phone_number: _Optional[str] = ..., carrier: _Optional[str] = ..., state: _Optional[_Union[NumberState, str]] = ..., block_id: _Optional[str] = ..., detail: _Optional[str] = ..., blocked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unblocked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unblock_reason: _Optional[str] = ..., regulator_notified: _Optional[bool] = ...) -> None: ...

class Escalation(_message.Message):
    __slots__ = ("level", "directed_by", "escalated_at", "acknowledge_by", "acknowledged", "acknowledged_by_officer", "acknowledged_at", "events")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    DIRECTED_BY_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_BY_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_OFFICER_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    level: EscalationLevel
    directed_by: str
    escalated_at: _timestamp_pb2.Timestamp
    acknowledge_by: _timestamp_pb2.Timestamp
    acknowledged: bool
    acknowledged_by_officer: str
    acknowledged_at: _timestamp_pb2.Timestamp
    events: _containers.RepeatedCompositeFieldContainer[HoldEvent]
    def __init__(self, level: _Optional[_Union[EscalationLevel, str]] = ..., directed_by: _Optional[str] = ..., escalated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledge_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged: _Optional[bool] = ..., acknowledged_by_officer: _Optional[str] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., events: _Optional[_Iterable[_Union[HoldEvent, _Mapping]]] = ...) -> None: ...

class FundsReturn(_message.Message):
    __slots__ = ("account", "victim_account", "amount", "state", "rule", "notice_ends_at", "due_by", "return_id", "returned_at", "detail")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    VICTIM_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    NOTICE_ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_BY_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    RETURNED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    account: _common_pb2.AccountRef
    victim_account: _common_pb2.AccountRef
    amount: _common_pb2.Money
    state: ReturnState
    rule: str
    notice_ends_at: _timestamp_pb2.Timestamp
    due_by: _timestamp_pb2.Timestamp
    return_id: str
    returned_at: _timestamp_pb2.Timestamp
    detail: str
    def __init__(self, account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., victim_account: _Optional[_Union[_common_pb2.AccountRef, _Mapping]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., state: _Optional[_Union[ReturnState, str]] = ..., rule: _Optional[str] = ..., notice_ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., return_id: _Optional[str] = ..., returned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ...) -> None: ...

class BreachNotice(_message.Message):
    __slots__ = ("institution", "request_type", "regulator", "reference", "reported_at", "answer_due_at")
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    REGULATOR_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    institution: str
    request_type: _regulator_pb2.RequestType
    regulator: str
    reference: str
    reported_at: _timestamp_pb2.Timestamp
    answer_due_at: _timestamp_pb2.Timestamp
    def __init__(self, institution: _Optional[str] = ..., request_type: _Optional[_Union[_regulator_pb2.RequestType, str]] = ..., regulator: _Optional[str] = ..., reference: _Optional[str] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answer_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCaseRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class CaseQuery(_message.Message):
    __slots__ = ("case_id",)
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    def __init__(self, case_id: _Optional[str] = ...) -> None: ...

class GetCaseResponse(_message.Message):
    __slots__ = ("case",)
    CASE_FIELD_NUMBER: _ClassVar[int]
    case: CaseView
    def __init__(self, case: _Optional[_Union[CaseView, _Mapping]] = ...) -> None: ...

class ListCasesRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.Envelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class CaseListQuery(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: CaseStatus
    page_size: int
    page_token: bytes
    def __init__(self, status: _Optional[_Union[CaseStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[bytes] = ...) -> None: ...

class CaseSummary(_message.Message):
    __slots__ = ("case_id", "workflow_id", "status", "total_reported", "started_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REPORTED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    workflow_id: str
    status: CaseStatus
    total_reported: _common_pb2.Money
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., total_reported: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("cases", "next_page_token")
    CASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CaseSummary]
    next_page_token: bytes
    def __init__(self, cases: _Optional[_Iterable[_Union[CaseSummary, _Mapping]]] = ..., next_page_token: _Optional[bytes] = ...) -> None: ...
