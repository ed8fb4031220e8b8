"""The hub's own data types: what workflows decide over and what activities carry.

Pure dataclasses (Temporal's JSON converter round-trips them), no I/O, safe to import inside the
workflow sandbox. Money is integer minor units plus an ISO 4217 code; times are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio.common import SearchAttributeKey

# --- names shared by the workflow side and the activity side ----------------------------------

TASK_QUEUE_DEFAULT = "stopline-cases"
REQUEST_STOP_PAYMENT = "request_stop_payment"
REQUEST_ACCOUNT_QUERY = "request_account_query"
CASE_WORKFLOW = "CaseWorkflow"
HOLD_WORKFLOW = "HoldWorkflow"
RECORD_DECISION = "record_decision"
REQUEST_FREEZE = "request_freeze"
REQUEST_RELEASE = "request_release"
HOLD_CHANGED_SIGNAL = "hold_changed"
DECIDE_HOLD_UPDATE = "decide_hold"
FREEZE_RESULT_UPDATE = "freeze_result"
# Numbers, regulators and returns.
NUMBER_WORKFLOW = "NumberWorkflow"
LOCATE_NUMBER = "locate_number"
REQUEST_NUMBER_BLOCK = "request_number_block"
REQUEST_NUMBER_UNBLOCK = "request_number_unblock"
NOTIFY_TELECOM_REGULATOR = "notify_telecom_regulator"
REPORT_BREACH = "report_breach"
REQUEST_RETURN_FUNDS = "request_return_funds"
NUMBER_CHANGED_SIGNAL = "number_changed"
UNBLOCK_NUMBER_UPDATE = "unblock_number"
RETURN_FUNDS_SIGNAL = "return_funds"
RETURN_RESULT_UPDATE = "return_result"
CONCLUDE_CASE_UPDATE = "conclude_case"
LINK_CASE_UPDATE = "link_case"
ACKNOWLEDGE_ESCALATION_UPDATE = "acknowledge_escalation"
BREACH_REPORTED_SIGNAL = "breach_reported"
# Why an officer's decision was not accepted (ApplicationError types from the update validator).
ERR_DECISION_INVALID = "DecisionInvalid"  # the decision itself is incomplete or too large
ERR_DECISION_NOT_APPLICABLE = "DecisionNotApplicable"  # the hold is not in a state it applies to
ERR_DECISION_NOT_PERMITTED = "DecisionNotPermitted"  # the signer may not take this decision
ERR_REPORT_CONFLICT = "ReportConflict"  # a case id reported again with other content

# How many hops the chase follows from the victim's receiving accounts (hop 1) before recording
# the rest as beyond reach; one real case ran to 87 accounts, most within 5 layers.
DEFAULT_CHASE_DEPTH = 8

# Emergency stop-payments hold money for 48 hours (see ../shared/DESIGN.md, "emergency stop-payment"),
# and one account may be stopped at most twice for one case: the second stop extends the first.
STOP_PAYMENT_HOLD = timedelta(hours=48)
MAX_STOPS_PER_ACCOUNT = 2
# Before a stop lapses: the freeze decision is asked for this long ahead, a reminder follows,
# and if nobody has decided by EXTEND_LEAD before expiry the second stop goes out.
FREEZE_DECISION_LEAD = timedelta(hours=12)
FREEZE_REMINDER_LEAD = timedelta(hours=4)
EXTEND_LEAD = timedelta(hours=1)
# A fast freeze lasts 6 months (183 days: the longest six calendar months); each renewal adds as
# much and must be filed before expiry. The renewal decision is asked for 30 days ahead.
FREEZE_DURATION = timedelta(days=183)
RENEWAL_DECISION_LEAD = timedelta(days=30)
RENEWAL_REMINDER_LEAD = timedelta(days=7)
# An institution that acknowledged a freeze must send its result within this; after it the hold
# goes on as if no freeze had been asked (its own deadlines still run).
FREEZE_ANSWER_DEADLINE = timedelta(hours=24)

# Return of funds: pro rata returns wait for a 30-day public notice (other victims may come
# forward); the institution completes each return within 3 working days and sends a receipt.
PUBLIC_NOTICE = timedelta(days=30)
RETURN_WORKING_DAYS = 3
# Escalation: cases of 500,000 CNY or more are directed by a city-level leader.
ESCALATION_THRESHOLD_MINOR = 50_000_000
ESCALATION_CURRENCY = "CNY"

# Search attributes: what operators filter on in `temporal workflow list --query` and the Web UI.
# No personal data goes here (no names, no account numbers): only ids, status and amounts.
SA_CASE_ID = SearchAttributeKey.for_keyword("StoplineCaseId")
SA_STATUS = SearchAttributeKey.for_keyword("StoplineStatus")
SA_AMOUNT_MINOR = SearchAttributeKey.for_int("StoplineAmountMinor")
SA_CURRENCY = SearchAttributeKey.for_keyword("StoplineCurrency")
SEARCH_ATTRIBUTES = (SA_CASE_ID, SA_STATUS, SA_AMOUNT_MINOR, SA_CURRENCY)


def stop_step_id(account: Account) -> str:
    """The stop-payment step for one account: its activity id (stable, so operators' views can
    match pending attempts to accounts) and part of its idempotency key."""
    return f"stop/{account.institution}/{account.number}"


def query_step_id(account: Account) -> str:
    """The account-query step for one account (activity id and idempotency key part)."""
    return f"query/{account.institution}/{account.number}"


def hold_workflow_id(case_workflow: str, account: Account) -> str:
    """The child workflow that watches one hold's deadlines (one per account per case)."""
    return f"{case_workflow}/hold/{account.institution}/{account.number}"


def case_workflow_id(case_id: str) -> str:
    """One workflow per case: a repeated report can never start the work twice."""
    return f"case-{case_id}"


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Account:
    institution: str
    number: str

    def __str__(self) -> str:
        return f"{self.institution}/{self.number}"


@dataclass(frozen=True)
class Amount:
    minor_units: int
    currency: str

    def __add__(self, other: Amount) -> Amount:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Amount(self.minor_units + other.minor_units, self.currency)

    @classmethod
    def zero(cls, currency: str) -> Amount:
        return cls(0, currency)


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportedTransfer:
    from_account: Account
    to_account: Account | None  # None: sent abroad by the victim's own institution (see abroad)
    amount: Amount
    transferred_at: datetime
    to_holder_name: str = ""
    abroad: ForeignDestination | None = None


@dataclass(frozen=True)
class CaseInput:
    """A validated report: the workflow's input."""

    case_id: str
    reporting_unit: str
    reported_at: datetime
    transfers: list[ReportedTransfer]
    suspect_phone_numbers: list[str] = field(default_factory=list)
    summary: str = ""
    max_depth: int = DEFAULT_CHASE_DEPTH
    device_ids: list[str] = field(default_factory=list)
    deadlines: AnswerDeadlines = field(default_factory=lambda: AnswerDeadlines())
    escalation: EscalationPolicy | None = None
    # Rates for the estimates shown beside amounts recovered abroad (see EstimateRate).
    estimate_rates: tuple[EstimateRate, ...] = ()
    # A recall channel silent (or unreachable) this long is given up for; 0: RECALL_GIVE_UP_AFTER.
    recall_give_up_days: int = 0

    @property
    def currency(self) -> str:
        return self.transfers[0].amount.currency

    @property
    def total(self) -> Amount:
        return Amount(sum(t.amount.minor_units for t in self.transfers), self.currency)


@dataclass(frozen=True)
class StopTarget:
    """One receiving account and the defrauded amount that reached it."""

    account: Account
    amount: Amount
    last_transfer_at: datetime
    holder_name: str = ""


def stop_targets(case: CaseInput) -> list[StopTarget]:
    """One stop per receiving account (never two for one case), summing every transfer to it.

    Order follows first appearance in the report so operators see accounts as reported.
    """
    order: list[Account] = []
    sums: dict[Account, int] = {}
    last: dict[Account, datetime] = {}
    names: dict[Account, set[str]] = {}
    for t in case.transfers:
        acct = t.to_account
        if acct is None:  # sent abroad: recalled, not stopped at home
            continue
        if acct not in sums:
            order.append(acct)
            sums[acct] = 0
            last[acct] = t.transferred_at
            names[acct] = set()
        sums[acct] += t.amount.minor_units
        last[acct] = max(last[acct], t.transferred_at)
        if t.to_holder_name:
            names[acct].add(t.to_holder_name)
    return [
        StopTarget(
            account=a,
            amount=Amount(sums[a], case.currency),
            last_transfer_at=last[a],
            # Only ask the bank to check a name when the victim saw one consistent name.
            holder_name=next(iter(names[a])) if len(names[a]) == 1 else "",
        )
        for a in order
    ]


# --- stop-payment request and answer ----------------------------------------------------------


@dataclass(frozen=True)
class StopPaymentInput:
    idempotency_key: str
    case_id: str
    requested_by: str
    account: Account
    amount: Amount
    transfer_time: datetime
    holder_name: str = ""
    hold_seconds: int = int(STOP_PAYMENT_HOLD.total_seconds())
    extends_hold_id: str = ""  # the second stop of an account: the first's hold, to extend
    prior_attempts: int = 0  # calls already made with this key (a first quick try as a local activity)


class StopOutcome(StrEnum):
    HELD = "held"
    PARTIALLY_HELD = "partially_held"
    REFUSED = "refused"


@dataclass(frozen=True)
class StopPaymentResult:
    """A verified answer from the institution."""

    outcome: StopOutcome
    held: Amount
    refusal_reason: str = ""
    detail: str = ""
    hold_id: str = ""
    answered_at: datetime | None = None
    hold_expires_at: datetime | None = None
    attempts: int = 1  # calls it took to get this answer


# --- account query and answer ------------------------------------------------------------------


@dataclass(frozen=True)
class AccountQueryInput:
    idempotency_key: str
    case_id: str
    requested_by: str
    account: Account
    transfers_since: datetime
    prior_attempts: int = 0  # calls already made with this key (a first quick try as a local activity)


class Channel(StrEnum):
    TRANSFER = "transfer"
    CASH = "cash"  # withdrawn at a counter or ATM: out of reach
    ABROAD = "abroad"  # sent to a foreign institution: cross-border recovery's job


@dataclass(frozen=True)
class ForeignDestination:
    """Where money sent abroad went: what a recall quotes."""

    bic: str
    account: str
    payment_reference: str  # e.g. a SWIFT gpi UETR
    amount: Amount | None = None  # as sent abroad, in its own currency; None: as debited


@dataclass(frozen=True)
class OnwardTransfer:
    """Money that left an account, as its institution reported it."""

    amount: Amount
    transferred_at: datetime
    channel: Channel
    to_account: Account | None = None  # None for cash
    # Whether the receiving institution is on the platform (a bank or payment company in the
    # registry), so the chase can ask it to stop the money; decided by the activity.
    on_platform: bool = False
    abroad: ForeignDestination | None = None  # Channel.ABROAD, when the institution said where


@dataclass(frozen=True)
class AccountQueryResult:
    """A verified AccountReport."""

    found: bool
    holder_name: str = ""
    balance: Amount | None = None
    held: Amount | None = None
    transfers: list[OnwardTransfer] = field(default_factory=list)
    attempts: int = 1


# Error types the activities raise (ApplicationError.type) and the workflow tells apart.
ERR_ANSWER_REJECTED = "AnswerRejected"  # the institution's answer failed verification
ERR_ANSWER_UNVERIFIED = "AnswerNotVerifiableYet"  # retryable: registry lag or clock skew
ERR_REQUEST_REJECTED = "RequestRejected"  # the institution refused the request itself


# --- what operators see -----------------------------------------------------------------------


class StopState(StrEnum):
    ASKED = "asked"
    HELD = "held"
    PARTIALLY_HELD = "partially_held"
    REFUSED = "refused"
    ANSWER_REJECTED = "answer_rejected"
    FAILED = "failed"

    @property
    def answered(self) -> bool:
        return self is not StopState.ASKED


class CaseStatus(StrEnum):
    STOPPING = "stopping"
    STOPS_ANSWERED = "stops_answered"
    CONCLUDED = "concluded"  # an officer concluded it: frozen money is going back to victims
    CLOSED = "closed"  # nothing held, frozen or being returned any more


@dataclass
class AccountStop:
    account: Account
    requested: Amount
    state: StopState = StopState.ASKED
    held: Amount | None = None
    attempts: int = 0
    reason: str = ""
    hold_id: str = ""
    answered_at: datetime | None = None
    hold_expires_at: datetime | None = None
    depth: int = 1  # 1: received the victim's money; 2: received it from a hop-1 account; ...
    traced: bool = False  # the chase has accounted for where this account's money went
    hold_state: HoldState | None = None  # once something is held: where its deadlines stand
    # Of what the stop held, how much went back to the account: a lapse, a release, or a freeze
    # of less than was held. held + released is what the stop held.
    released: Amount | None = None
    stops_used: int = 0
    freeze_decision_due_at: datetime | None = None
    hold_events: list[HoldEvent] = field(default_factory=list)
    # Of what the stop held, how much went back to the victims (after the case was concluded).
    returned: Amount | None = None
    # The victims whose money reached this account (the chase carries them hop to hop).
    victims: list[Account] = field(default_factory=list)


class HoldState(StrEnum):
    """Where a hold stands over its deadlines."""

    HELD = "held"  # the first stop-payment is in force
    EXTENDED = "extended"  # the second (and last) stop-payment is in force
    LAPSED = "lapsed"  # it expired with no freeze (or renewal) decided: the money was released
    FREEZING = "freezing"  # a freeze was approved; the institution is being asked
    FROZEN = "frozen"  # frozen for 6 months; renew before expiry
    RELEASING = "releasing"  # a release was decided; the institution is being asked
    RELEASED = "released"  # released on an officer's decision
    RETURNING = "returning"  # frozen money is being returned to victims
    RETURNED = "returned"  # all of it went back to victims

    @property
    def ended(self) -> bool:
        return self in (HoldState.LAPSED, HoldState.RELEASED, HoldState.RETURNED)


@dataclass(frozen=True)
class HoldInput:
    case_id: str
    case_workflow_id: str
    requested_by: str
    account: Account
    held: Amount
    hold_id: str
    expires_at: datetime
    transfer_time: datetime
    holder_name: str = ""
    deadlines: AnswerDeadlines = field(default_factory=lambda: AnswerDeadlines())


@dataclass(frozen=True)
class HoldEvent:
    at: datetime
    what: str


@dataclass
class HoldView:
    """A hold as its workflow sees it (its `status` query), and what it tells its case by signal
    whenever something changes; a signal carries only the events since the last one."""

    account: Account
    state: HoldState
    held: Amount
    hold_id: str
    expires_at: datetime
    stops_used: int = 1
    freeze_decision_due_at: datetime | None = None  # set once the decision has been asked for
    events: list[HoldEvent] = field(default_factory=list)
    freeze_id: str = ""
    returns: list[ReturnView] = field(default_factory=list)  # every signal carries all of them
    returned: Amount | None = None


class DecisionKind(StrEnum):
    FREEZE = "freeze"
    RENEW = "renew"
    RELEASE = "release"


@dataclass(frozen=True)
class HoldDecisionInput:
    """An officer's decision on a hold, as the gateway verified it (signer has role approve)."""

    kind: DecisionKind
    decided_by: str  # the police unit that signed it
    officer: str
    document_ref: str = ""  # freeze and renew
    reason: str = ""  # release
    amount: Amount | None = None  # freeze: at most what is held


@dataclass(frozen=True)
class FreezeInput:
    idempotency_key: str
    case_id: str
    account: Account
    amount: Amount
    approved_by: str
    officer: str
    document_ref: str
    approved_at: datetime
    hold_id: str = ""  # a first freeze: the hold it replaces
    renews_freeze_id: str = ""  # a renewal: the freeze it extends
    duration_seconds: int = int(FREEZE_DURATION.total_seconds())


@dataclass(frozen=True)
class FreezeResult:
    frozen: bool
    amount: Amount
    freeze_id: str = ""
    frozen_at: datetime | None = None
    expires_at: datetime | None = None
    detail: str = ""
    pending: bool = False  # acknowledged: the institution sends the result later


@dataclass(frozen=True)
class FreezeCallback:
    """An institution's later result for an acknowledged freeze, verified by the gateway."""

    idempotency_key: str
    institution: str
    result: FreezeResult


@dataclass(frozen=True)
class ReleaseInput:
    idempotency_key: str
    case_id: str
    account: Account
    reason: str
    decided_by: str
    hold_id: str = ""
    freeze_id: str = ""


@dataclass(frozen=True)
class ReleaseResult:
    released: Amount
    released_at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class DecisionRecord:
    """A workflow decision that moved money, for the audit log (kind `decision`)."""

    case_id: str
    institution: str
    decision: str  # e.g. "hold_extended", "hold_lapsed"
    details: dict = field(default_factory=dict)


class FlowKind(StrEnum):
    """Where a piece of defrauded money went from an account the chase reached."""

    ONWARD = "onward"  # to another account on the platform, which the chase follows
    CASH = "cash"  # withdrawn: lost
    ABROAD = "abroad"  # sent abroad: handed on to cross-border recovery
    OFF_PLATFORM = "off_platform"  # to an institution not on the platform: still at large
    BEYOND_DEPTH = "beyond_depth"  # the chase stopped following at its depth limit: at large
    NOT_TRACED = "not_traced"  # neither held nor seen leaving (refused stop, unknown account,
    # money that arrived after the account was stopped, a failed query): at large

    @property
    def at_large(self) -> bool:
        return self in (FlowKind.OFF_PLATFORM, FlowKind.BEYOND_DEPTH, FlowKind.NOT_TRACED)


@dataclass(frozen=True)
class MoneyFlow:
    """One piece of defrauded money leaving an account the chase reached."""

    from_account: Account
    amount: Amount
    kind: FlowKind
    to_account: Account | None = None
    moved_at: datetime | None = None
    note: str = ""
    abroad: ForeignDestination | None = None  # FlowKind.ABROAD: where, when reported


@dataclass
class CaseView:
    case_id: str
    workflow_id: str
    status: CaseStatus
    reporting_unit: str
    reported_at: datetime
    total_reported: Amount
    total_held: Amount
    stops: list[AccountStop]
    suspect_phone_numbers: list[str] = field(default_factory=list)
    summary: str = ""
    flows: list[MoneyFlow] = field(default_factory=list)
    total_lost: Amount | None = None  # withdrawn as cash
    total_abroad: Amount | None = None  # sent abroad
    # Neither held, released, lost nor abroad: still moving, beyond reach or not yet traced.
    # With the other totals it adds up to total_reported, to the fen.
    total_at_large: Amount | None = None
    total_released: Amount | None = None  # was held, then lapsed or released on a decision
    total_returned: Amount | None = None  # went back to victims
    victims: list[Victim] = field(default_factory=list)
    linked_cases: list[LinkedCaseView] = field(default_factory=list)
    numbers: list[NumberView] = field(default_factory=list)
    escalation: EscalationView | None = None
    returns: list[ReturnView] = field(default_factory=list)
    breaches: list[BreachView] = field(default_factory=list)
    recoveries: list[RecoveryView] = field(default_factory=list)
    # Over every recovery, per currency sent abroad (never converted).
    abroad_returned: list[Amount] = field(default_factory=list)
    abroad_held: list[Amount] = field(default_factory=list)
    abroad_lost: list[Amount] = field(default_factory=list)


@dataclass(frozen=True)
class Victim:
    account: Account
    lost: Amount
    case_id: str


@dataclass
class LinkedCaseView:
    case_id: str
    reporting_unit: str
    total_reported: Amount
    shared: str
    linked_at: datetime
    fingerprint: str = ""


@dataclass(frozen=True)
class LinkCaseInput:
    """A new case that shares an account, number or device with this one: it joins the chase."""

    case: CaseInput
    shared: str  # what they share, for operators ("account icbc/6222...")
    fingerprint: str = ""  # of the validated report: a repeat with other content is refused


@dataclass(frozen=True)
class ConclusionInput:
    decided_by: str
    officer: str
    document_ref: str


# --- supervision: answer deadlines and breach reports ------------------------------------------


class RequestType(StrEnum):
    """What the hub asks of institutions; each has its own answer deadline."""

    STOP_PAYMENT = "stop_payment"
    ACCOUNT_QUERY = "account_query"
    FREEZE = "freeze"
    RELEASE = "release"
    RETURN_FUNDS = "return_funds"
    BLOCK_NUMBERS = "block_numbers"
    UNBLOCK_NUMBERS = "unblock_numbers"
    QUERY_NUMBER = "query_number"


@dataclass(frozen=True)
class AnswerDeadlines:
    """How long each institution has to answer each kind of request before the hub reports it to
    its regulator (seconds). The hub keeps waiting (and retrying) after a breach: the report is
    made once per request, not once per retry. Returns of funds are due in 3 working days,
    counted on the calendar (see workflows/calendar.py), not here."""

    stop_payment: int = 10 * 60  # an emergency stop is answered in seconds by a working bank
    account_query: int = 10 * 60
    freeze: int = 24 * 3600  # an acknowledged freeze's result
    release: int = 60 * 60
    block_numbers: int = 30 * 60
    unblock_numbers: int = 30 * 60
    query_number: int = 10 * 60

    def of(self, request_type: RequestType) -> timedelta:
        return timedelta(seconds=getattr(self, request_type.value))


@dataclass(frozen=True)
class BreachInput:
    """Report `institution` to its regulator: it left a request unanswered past its deadline."""

    idempotency_key: str  # one report per request: workflow id + step + "breach"
    case_id: str
    institution: str
    request_type: RequestType
    request_idempotency_key: str  # the request left unanswered (its audit entries are the evidence)
    asked_at: datetime
    answer_due_at: datetime
    detail: str = ""


@dataclass(frozen=True)
class BreachResult:
    regulator: str
    reference: str
    reported_at: datetime
    evidence_entries: int  # audit log entries cited


@dataclass
class BreachView:
    """What operators see of one breach report."""

    institution: str
    request_type: RequestType
    regulator: str
    reference: str
    reported_at: datetime
    answer_due_at: datetime


# --- numbers: interception of calls and SMS ----------------------------------------------------


@dataclass(frozen=True)
class LocateNumberInput:
    idempotency_key: str
    case_id: str
    phone_number: str  # E.164


@dataclass(frozen=True)
class LocateNumberResult:
    """Which carrier serves the number now: the range holder's answer, or the carrier it was
    ported to. carrier == "" when no carrier on the platform serves it."""

    phone_number: str
    carrier: str
    range_holder: str = ""
    detail: str = ""


class NumberOutcome(StrEnum):
    BLOCKED = "blocked"
    ALREADY_BLOCKED = "already_blocked"
    NOT_SERVED = "not_served"
    REFUSED = "refused"
    UNBLOCKED = "unblocked"
    NOT_BLOCKED = "not_blocked"


@dataclass(frozen=True)
class NumberResult:
    phone_number: str
    outcome: NumberOutcome
    block_id: str = ""
    detail: str = ""
    served_by: str = ""


@dataclass(frozen=True)
class NumberBlockInput:
    idempotency_key: str
    case_id: str
    requested_by: str
    carrier: str
    phone_numbers: list[str]
    reason: str


@dataclass(frozen=True)
class NumberUnblockInput:
    idempotency_key: str
    case_id: str
    carrier: str
    phone_numbers: list[str]
    reason: str
    decided_by: str
    officer: str


@dataclass(frozen=True)
class NumberBlockResult:
    """A carrier's verified answer: one result per number ordered, in order."""

    results: list[NumberResult]
    answered_at: datetime | None = None


class InterceptionKind(StrEnum):
    BLOCKED = "blocked"
    UNBLOCKED = "unblocked"


@dataclass(frozen=True)
class InterceptionNoticeInput:
    idempotency_key: str
    case_id: str
    carrier: str
    phone_numbers: list[str]
    kind: InterceptionKind
    reason: str
    acted_at: datetime


@dataclass(frozen=True)
class RegulatorReceiptResult:
    regulator: str
    reference: str
    received_at: datetime | None = None


class NumberState(StrEnum):
    LOCATING = "locating"
    BLOCKING = "blocking"
    BLOCKED = "blocked"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    FAILED = "failed"
    UNBLOCKING = "unblocking"
    UNBLOCKED = "unblocked"


@dataclass
class NumberView:
    phone_number: str
    state: NumberState = NumberState.LOCATING
    carrier: str = ""
    block_id: str = ""
    detail: str = ""
    blocked_at: datetime | None = None
    unblocked_at: datetime | None = None
    unblock_reason: str = ""
    regulator_notified: bool = False


@dataclass(frozen=True)
class NumberInput:
    case_id: str
    case_workflow_id: str
    requested_by: str
    phone_number: str
    reason: str
    deadlines: AnswerDeadlines


@dataclass(frozen=True)
class UnblockDecisionInput:
    decided_by: str
    officer: str
    reason: str


def number_workflow_id(case_workflow: str, phone_number: str) -> str:
    return f"{case_workflow}/number/{phone_number}"


# --- return of funds ---------------------------------------------------------------------------


class ReturnOutcome(StrEnum):
    RETURNED = "returned"
    ACCEPTED = "accepted"
    REFUSED = "refused"


@dataclass(frozen=True)
class ReturnInput:
    idempotency_key: str
    case_id: str
    account: Account  # the frozen account the money comes from
    freeze_id: str
    to_account: Account  # the victim's
    amount: Amount
    due_by: datetime
    decided_by: str
    officer: str
    document_ref: str


@dataclass(frozen=True)
class ReturnResult:
    outcome: ReturnOutcome
    returned: Amount
    return_id: str = ""
    returned_at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class ReturnCallback:
    """An institution's later receipt for a return it acknowledged, verified by the gateway."""

    idempotency_key: str
    institution: str
    result: ReturnResult
    to_account: Account | None = None  # the victim's account the receipt says it paid


# --- escalation of large cases -----------------------------------------------------------------


@dataclass(frozen=True)
class EscalationPolicy:
    """Cases of `threshold` or more (linked cases counted together) are directed by a city-level
    leader (`city_unit`), who must acknowledge within `acknowledge_seconds`; otherwise the case
    goes to the province (`province_unit`), with the same deadline."""

    threshold: Amount
    city_unit: str
    province_unit: str
    acknowledge_seconds: int = 2 * 3600


class EscalationLevel(StrEnum):
    CITY = "city"
    PROVINCE = "province"


@dataclass
class EscalationView:
    level: EscalationLevel
    directed_by: str
    escalated_at: datetime
    acknowledge_by: datetime
    acknowledged: bool = False
    acknowledged_by_officer: str = ""
    acknowledged_at: datetime | None = None
    events: list[HoldEvent] = field(default_factory=list)


@dataclass(frozen=True)
class EscalationAckInput:
    unit: str  # the signer, as the gateway verified it
    officer: str
    note: str = ""


class ReturnState(StrEnum):
    NOTICE = "notice"
    ORDERED = "ordered"
    ACCEPTED = "accepted"
    RETURNED = "returned"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass
class ReturnView:
    account: Account
    victim_account: Account
    amount: Amount
    rule: str  # "direct" or "pro rata"
    state: ReturnState = ReturnState.ORDERED
    notice_ends_at: datetime | None = None
    due_by: datetime | None = None
    return_id: str = ""
    returned_at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True)
class ReturnShare:
    victim: Account
    amount: Amount
    rule: str


@dataclass(frozen=True)
class ReturnOrders:
    """The case's order to a hold: pay these shares of the frozen money back (after the public
    notice when one runs)."""

    shares: list[ReturnShare]
    decided_by: str
    officer: str
    document_ref: str
    notice_ends_at: datetime | None = None


# --- cross-border recovery ---------------------------------------------------------------------

CROSS_BORDER_WORKFLOW = "CrossBorderRecoveryWorkflow"
LIST_RECALL_CHANNELS = "list_recall_channels"
REQUEST_RECALL = "request_recall"
RECALL_UPDATE_UPDATE = "recall_update"
RECOVERY_CHANGED_SIGNAL = "recovery_changed"
# "<institution> <sequence>" -> the fingerprint of that update as applied ("" if none): answers
# a channel's repeat after the recovery has closed.
APPLIED_UPDATE_QUERY = "applied_update"
# The callback names a request the recovery never sent (NOT_FOUND), or repeats an update the
# recovery applied already (ALREADY_EXISTS: the channel's outbox may stop sending it).
ERR_UNKNOWN_REQUEST = "UnknownRequest"
ERR_ALREADY_APPLIED = "AlreadyApplied"

# Money sent abroad is best recalled within 72 hours of the transfer (FinCEN's Rapid Response
# experience; after that the chain of banks has usually paid it out).
RECOVERY_WINDOW = timedelta(hours=72)
# A channel that has said nothing for this long is reminded (inside the window; weekly after).
RECALL_REMINDER_AFTER = timedelta(hours=24)
RECALL_REMINDER_AFTER_WINDOW = timedelta(days=7)
# Still silent this long after the request: the province centre takes it up, with a day of the
# window left to act.
RECALL_ESCALATE_AFTER = timedelta(hours=48)
# Silent this long: the channel is given up for (what it had not returned counts lost when every
# channel has ended).
RECALL_GIVE_UP_AFTER = timedelta(days=90)


class RecallChannel(StrEnum):
    CORRESPONDENT = "correspondent"  # SWIFT gpi Stop and Recall through the correspondent
    CENTRAL_BANK = "central_bank"  # the central bank's international channel
    POLICE = "police"  # police to police (INTERPOL I-GRIP)


class RecallStatus(StrEnum):
    LOCATED = "located"  # moved on to another bank: the recall follows it there
    HELD = "held"
    RETURNED = "returned"
    REFUSED = "refused"  # final for the channel
    NO_ANSWER = "no_answer"  # the channel gave up: final for it


class ChannelState(StrEnum):
    REQUESTING = "requesting"
    ACKNOWLEDGED = "acknowledged"
    LOCATED = "located"
    HELD = "held"
    RETURNED = "returned"
    REFUSED = "refused"
    SILENT = "silent"

    @property
    def ended(self) -> bool:
        return self in (ChannelState.REFUSED, ChannelState.SILENT)


class RecoveryState(StrEnum):
    ACTIVE = "active"
    RECOVERED = "recovered"
    ENDED = "ended"


@dataclass(frozen=True)
class EstimateRate:
    """`rate` units of `to` per unit of `currency`, as published on `rate_date`: used only for
    estimates shown beside an amount that stays in its own currency."""

    currency: str
    to: str
    rate: str  # a decimal string, never a float: "7.6120"
    rate_date: str  # YYYY-MM-DD


@dataclass(frozen=True)
class CurrencyEstimate:
    amount: Amount
    rate: str
    rate_date: str


@dataclass(frozen=True)
class RecallChannelRef:
    channel: RecallChannel
    institution: str


@dataclass(frozen=True)
class RecoveryInput:
    case_id: str
    case_workflow_id: str
    requested_by: str
    from_account: Account
    destination: ForeignDestination
    amount: Amount  # as sent, in its own currency
    sent_at: datetime
    reason: str
    province_unit: str = ""  # escalated to when channels stay silent ("": no escalation)
    estimate_rate: EstimateRate | None = None
    give_up_days: int = 0  # 0: RECALL_GIVE_UP_AFTER

    @property
    def give_up_after(self) -> timedelta:
        return timedelta(days=self.give_up_days) if self.give_up_days > 0 else RECALL_GIVE_UP_AFTER


@dataclass(frozen=True)
class RecallInput:
    idempotency_key: str
    recovery_id: str
    case_id: str
    requested_by: str
    channel: RecallChannel
    institution: str
    from_account: Account
    destination: ForeignDestination
    amount: Amount
    sent_at: datetime
    reason: str
    reminder: int = 0
    try_number: int = 1  # of this request: the recovery retries an unreachable channel itself


@dataclass(frozen=True)
class RecallAck:
    reference: str
    acknowledged_at: datetime
    attempts: int = 1


@dataclass(frozen=True)
class RecallUpdateInput:
    """A channel's signed RecallUpdate, verified and converted by the gateway."""

    institution: str  # the signer
    idempotency_key: str
    case_id: str
    sequence: int
    status: RecallStatus
    reported_at: datetime
    fingerprint: str  # SHA-256 of the payload as signed: tells a repeat from a conflict
    location: ForeignDestination | None = None
    amount: Amount | None = None
    return_reference: str = ""
    reason: str = ""


@dataclass
class RecallChannelView:
    channel: RecallChannel
    institution: str
    state: ChannelState = ChannelState.REQUESTING
    reference: str = ""
    acknowledged_at: datetime | None = None
    last_heard_at: datetime | None = None
    updates: int = 0
    reminders: int = 0
    attempts: int = 0
    detail: str = ""


@dataclass
class RecoveryView:
    recovery_id: str
    case_id: str
    from_account: Account
    destination: ForeignDestination
    amount: Amount
    sent_at: datetime
    window_ends_at: datetime
    state: RecoveryState
    channels: list[RecallChannelView]
    trail: list[ForeignDestination]
    returned: Amount
    held_abroad: Amount
    outstanding: Amount
    lost: Amount
    estimate: CurrencyEstimate | None = None
    next_deadline: datetime | None = None
    next_deadline_what: str = ""
    escalated_to: str = ""
    events: list[HoldEvent] = field(default_factory=list)


def recovery_workflow_id(case_workflow_id: str, n: int) -> str:
    """The n-th payment abroad a case found (1, 2, ...)."""
    return f"{case_workflow_id}/recovery/{n}"
