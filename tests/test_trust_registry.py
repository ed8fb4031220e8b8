"""The registry's number ranges and regulators: which carrier holds a number's range (longest
prefix wins), who regulates whom, and that both survive the registry file and are validated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trust.errors import RegistryError
from trust.keys import SigningKey
from trust.registry import Institution, InstitutionKind, Registry, registered_key

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
K = InstitutionKind


def inst(inst_id: str, kind: InstitutionKind, **fields) -> Institution:
    key = SigningKey.generate(inst_id)
    return Institution(inst_id, inst_id, kind, keys=(registered_key(key.public_key, key.key_id, EPOCH),), **fields)


def centre(*extra: Institution) -> Registry:
    """Two carriers with nested ranges, both regulators, a bank and a payment company."""
    return Registry(
        [
            inst("hub", K.HUB),
            inst("qilu-mobile", K.CARRIER, number_prefixes=("+86134", "+86135", "+86170")),
            inst("jinan-unicom", K.CARRIER, number_prefixes=("+861701", "+86186")),
            inst("sd-telecom-authority", K.TELECOM_REGULATOR),
            inst("sd-bank-regulator", K.BANK_REGULATOR),
            inst("qilu-bank", K.BANK),
            inst("huaxia-pay", K.PAYMENT_COMPANY),
            inst("police-boxing", K.POLICE_UNIT),
            *extra,
        ]
    )


def test_a_number_belongs_to_the_carrier_with_the_longest_matching_prefix():
    registry = centre()
    assert registry.carrier_for_number("+8613412345678") == "qilu-mobile"
    assert registry.carrier_for_number("+8617055501110") == "qilu-mobile"  # +86170 only
    assert registry.carrier_for_number("+8617012345678") == "jinan-unicom"  # +861701 is longer
    assert registry.carrier_for_number("+8618612345678") == "jinan-unicom"
    assert registry.carrier_for_number("+8613812345678") is None  # nobody on the platform holds +86138
    assert registry.carrier_for_number("+4930123456") is None
    assert registry.carrier_for_number("") is None


def test_regulators_come_from_the_entry_or_else_from_the_kind():
    registry = centre(inst("national-regulator", K.BANK_REGULATOR), inst("rural-bank", K.BANK, regulator="sd-bank-regulator"))
    assert registry.telecom_regulator() == "sd-telecom-authority"
    assert registry.regulator_of("qilu-mobile") == "sd-telecom-authority"
    assert registry.regulator_of("rural-bank") == "sd-bank-regulator"  # named explicitly
    # Two bank regulators and no explicit one: which one is ambiguous, and the error says how to fix it.
    with pytest.raises(RegistryError, match=r"2 of kind bank_regulator .*name the right one"):
        registry.regulator_of("qilu-bank")
    with pytest.raises(RegistryError, match="2 of kind bank_regulator"):
        registry.bank_regulator()

    single = centre()
    assert single.bank_regulator() == "sd-bank-regulator"
    assert single.regulator_of("qilu-bank") == "sd-bank-regulator"
    assert single.regulator_of("huaxia-pay") == "sd-bank-regulator"
    with pytest.raises(RegistryError, match="police_unit: it has no regulator"):
        single.regulator_of("police-boxing")
    with pytest.raises(RegistryError, match="not in the registry"):
        single.regulator_of("nobody-bank")


def test_a_registry_without_the_regulator_of_a_kind_says_so():
    registry = Registry([inst("hub", K.HUB), inst("qilu-mobile", K.CARRIER, number_prefixes=("+86134",))])
    with pytest.raises(RegistryError, match="lists no telecom_regulator"):
        registry.regulator_of("qilu-mobile")
    with pytest.raises(RegistryError, match="lists no telecom_regulator"):
        registry.telecom_regulator()


def test_number_prefixes_and_regulators_round_trip_through_the_file(tmp_path):
    registry = centre(inst("rural-bank", K.BANK, regulator="sd-bank-regulator"))
    registry.save(tmp_path / "registry.json")
    loaded = Registry.load(tmp_path / "registry.json")
    assert loaded.to_dict() == registry.to_dict()
    assert loaded.institution("qilu-mobile").number_prefixes == ("+86134", "+86135", "+86170")
    assert loaded.institution("rural-bank").regulator == "sd-bank-regulator"
    assert loaded.carrier_for_number("+8617012345678") == "jinan-unicom"
    # Entries without them are written as before (no empty keys added to operators' files).
    bank = next(e for e in registry.to_dict()["institutions"] if e["id"] == "qilu-bank")
    assert "number_prefixes" not in bank and "regulator" not in bank


@pytest.mark.parametrize(
    "prefixes, problem",
    [
        (["86134"], r"number_prefixes\[0\]: '86134' is not \"\+\" and 1-15 digits"),
        (["+86 134"], r"number_prefixes\[0\]: '\+86 134'"),
        (["+86134", "+"], r"number_prefixes\[1\]: '\+'"),
        (["+0134"], r"number_prefixes\[0\]: '\+0134'"),
        (["+86134", "+86134"], r"number_prefixes\[1\]: '\+86134' is listed twice"),
        ("+86134", r"number_prefixes: must be a list"),
        ([86134], r"number_prefixes\[0\]: 86134"),
    ],
)
def test_a_bad_number_prefix_is_refused_naming_the_field(prefixes, problem):
    data = centre().to_dict()
    data["institutions"][1]["number_prefixes"] = prefixes
    with pytest.raises(RegistryError, match=r"institutions\[1\] \(qilu-mobile\)\." + problem):
        Registry.from_dict(data)


def test_ranges_and_regulators_must_make_sense_across_the_registry():
    data = centre().to_dict()
    data["institutions"][5]["number_prefixes"] = ["+86999"]
    with pytest.raises(RegistryError, match=r"institutions\[5\] \(qilu-bank\)\.number_prefixes: only a carrier"):
        Registry.from_dict(data)

    data = centre().to_dict()
    data["institutions"][2]["number_prefixes"] = ["+86134"]
    with pytest.raises(RegistryError, match="'\\+86134' is held by both 'qilu-mobile' and 'jinan-unicom'"):
        Registry.from_dict(data)

    data = centre().to_dict()
    data["institutions"][5]["regulator"] = "no-such-regulator"
    with pytest.raises(RegistryError, match="its regulator 'no-such-regulator' is not in the registry"):
        Registry.from_dict(data)
    data["institutions"][5]["regulator"] = "huaxia-pay"
    with pytest.raises(RegistryError, match="'huaxia-pay' is a payment_company, not a regulator"):
        Registry.from_dict(data)
    data["institutions"][5]["regulator"] = "Not An Id"
    with pytest.raises(RegistryError, match=r"institutions\[5\] \(qilu-bank\)\.regulator"):
        Registry.from_dict(data)
