from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Money(_message.Message):
    __slots__ = ("minor_units", "currency")
    MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    minor_units: int
    currency: str
    def __init__(self, minor_units: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class AccountRef(_message.Message):
    __slots__ = ("institution", "account_number")
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    institution: str
    account_number: str
    def __init__(self, institution: _Optional[str] = ..., account_number: _Optional[str] = ...) -> None: ...

class ForeignDestination(_message.Message):
    __slots__ = ("bic", "account", "payment_reference", "amount")
    BIC_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    bic: str
    account: str
    payment_reference: str
    amount: Money
    def __init__(self, bic: _Optional[str] = ..., account: _Optional[str] = ..., payment_reference: _Optional[str] = ..., amount: _Optional[_Union[Money, _Mapping]] = ...) -> None: ...
