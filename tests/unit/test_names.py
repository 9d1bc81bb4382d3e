"""The rules of names and labels (domain/names.py) and of environment variable names
(domain/environments.py), on the entities that use them."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.devices import Device
from domain.environments import RESERVED_VARIABLE_NAMES, Environment, check_variable_name
from domain.errors import InvalidValue
from domain.names import BIDI_CONTROLS, clean_name, forbidden_character, name_key
from domain.test_cases import Condition, Criterion, TestCase
from domain.users import Role, User

allowed_text = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=BIDI_CONTROLS),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip())


@given(allowed_text)
def test_case_and_unicode_form_do_not_make_another_name(name):
    key = name_key(name)
    assert name_key(key) == key
    assert name_key(unicodedata.normalize("NFD", name)) == key
    for variant in (name.upper(), name.lower()):
        # (a few letters change under upper/lower alone, e.g. the dotless i, U+0131, becomes I)
        if variant.casefold() == name.casefold():
            assert name_key(variant) == key
    assert unicodedata.is_normalized("NFC", clean_name(name))


@given(allowed_text, st.sampled_from([*sorted(BIDI_CONTROLS), "\x00", "\x1b", "\x7f", "\x9b"]))
def test_a_forbidden_character_anywhere_is_refused(name, bad):
    for text in (bad + name, name + bad, name[:1] + bad + name[1:]):
        assert forbidden_character(text)
        with pytest.raises(InvalidValue):
            clean_name(text)


def test_names_that_fold_alike_are_one():
    assert len({name_key(n) for n in ("Meter 1", "meter 1", "METER 1", " Meter 1 ")}) == 1
    assert name_key("Stra\u00dfe") == name_key("STRASSE")
    assert name_key("Caf\u00e9") == name_key("CAFE\u0301")
    assert name_key("Meter 1") != name_key("Meter 2")


def test_the_entities_use_the_rules():
    criteria = [Criterion("v", Condition.LT, 1)]
    for make in (
        lambda n: Device("d", n),
        lambda n: TestCase("c", n, criteria),
        lambda n: Environment("e", n),
        lambda n: User("u", "u@lab.example", n, Role.VIEWER, "hash", None, None),
    ):
        with pytest.raises(InvalidValue, match="bidirectional"):
            make("meter\u202e1")
        with pytest.raises(InvalidValue, match="control character"):
            make("meter\x1b")
        assert make("Cafe\u0301").name == "Caf\u00e9"
    assert Device("d", "m", labels={"bench": "A"}).labels == {"bench": "A"}
    with pytest.raises(InvalidValue):
        Device("d", "m", labels={"bench": "A\x07"})
    with pytest.raises(InvalidValue):
        Device("d", "m", labels={"\u2066bench": "A"})


@pytest.mark.parametrize("name", [*sorted(RESERVED_VARIABLE_NAMES), "LD_X", "DEVICELAB_Y"])
def test_reserved_variable_names_are_refused(name):
    with pytest.raises(InvalidValue, match="reserved"):
        check_variable_name(name)
    with pytest.raises(InvalidValue):
        Environment("e", "bench", variables={name: "x"})


@pytest.mark.parametrize("name", ["", "1A", "A-B", "A B", "\u00c4", "A\n", "A" * 129])
def test_variable_names_follow_the_pattern(name):
    with pytest.raises(InvalidValue):
        check_variable_name(name)


@pytest.mark.parametrize("name", ["A", "_", "temp_c", "Path", "LDX", "DEVICELABX", "A" * 128])
def test_plain_variable_names_are_fine(name):
    assert check_variable_name(name) == name
