"""core.validation: the probes of issue 12 (defects 7, 11, 14) as explicit cases, and properties over
arbitrary text and values (hypothesis)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import validation as v
from core.errors import Conflict, InvalidInput

NAMERS = (v.project_name, v.class_name, v.user_name)


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("namer", NAMERS)
@pytest.mark.parametrize("bad", [
    "x" * 1_000_000, "x" * 101, "cl\0ass", "\u200b\u200b\u200b", "\u202eevil", "a\u200db", "tab\there",
    "line\u2028break", "\ue000private", "\ud800", "", "   ", "\u3000\u00a0",
])
def test_names_refused_with_the_field_named(namer, bad: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as raised:
        namer(bad, field="--name")
    message = str(raised.value)
    assert message.startswith("--name: ") and len(message) < 300  # never echoes the whole value


def test_name_is_nfc_and_stripped_and_keeps_ordinary_unicode() -> None:
    assert v.class_name("  Cafe\u0301 ") == "Caf\u00e9"
    assert v.project_name("x" * 100) == "x" * 100
    assert v.user_name("Zoë 日本 ok-1_2.3") == "Zoë 日本 ok-1_2.3"
    assert "U+0000 at position 3" in str(pytest.raises(InvalidInput, v.class_name, "cl\0ass").value)


def test_decomposed_name_counts_after_nfc() -> None:
    assert v.class_name("e\u0301" * 100) == "\u00e9" * 100   # 200 code points in, 100 after NFC


def test_description_keeps_lines_and_limits_length() -> None:
    assert v.description("  two\nlines\tand a tab ") == "two\nlines\tand a tab"
    assert v.description(None) is None and v.description("   ") is None
    with pytest.raises(InvalidInput, match="description: 1,000,000 characters; at most 2,000"):
        v.description("x" * 1_000_000)
    with pytest.raises(InvalidInput, match="U\\+202E"):
        v.description("ok \u202e reversed")


def test_passwords() -> None:
    assert v.password(" a b ") == " a b "  # exactly as typed
    for bad in (" " * 8, "", "\t\n ", "\u3000" * 8, "x" * 1025, "pass\0word", 12345678):
        with pytest.raises(InvalidInput, match="^password: "):
            v.password(bad)


def test_unique_name_compares_ignoring_case() -> None:
    with pytest.raises(Conflict, match="class: 'Cat' is already taken by 'cat'"):
        v.unique_name("Cat", ["dog", "cat"], field="class")
    with pytest.raises(Conflict):
        v.unique_name("STRASSE", ["straße"], field="class")
    with pytest.raises(Conflict):
        v.unique_name("Cafe\u0301", ["CAFÉ"], field="class")
    assert v.unique_name("cats", ["cat", "dog"], field="class") == "cats"


# -- ids and limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1.5, 1.0, True, False, "1.5", "1.0", "-1", " 1", "1 ", "+1", "1_000", "１", "",
                                 None, [1], b"1", 0, -3, 2**63, "9" * 30])
def test_record_id_refuses(bad: object) -> None:
    with pytest.raises(InvalidInput, match="^image_id: "):
        v.record_id(bad, field="image_id")


def test_record_id_accepts_ints_and_digit_strings() -> None:
    import numpy as np

    assert v.record_id(7) == 7 and v.record_id("42") == 42 and v.record_id(np.int64(3)) == 3
    assert v.record_id(2**63 - 1) == 2**63 - 1


def test_capped_limit() -> None:
    assert v.capped_limit(None, maximum=500) == 500 and v.capped_limit("20", maximum=500) == 20
    for bad in (10**9, -1, 0, 501, 1.5, "all"):
        with pytest.raises(InvalidInput, match="^limit: .*500"):
            v.capped_limit(bad, maximum=500)


def test_unique_ids_dedupes_in_order_and_caps_distinct_ids() -> None:
    assert v.unique_ids([5] * 5000 + [2, 5, "3"]) == [5, 2, 3]
    with pytest.raises(InvalidInput, match="ids: more than 500 different ids"):
        v.unique_ids(range(1, 502))
    with pytest.raises(InvalidInput, match=r"ids\[1\]: expected a whole number"):
        v.unique_ids([1, 1.5])
    for bad in ("123", 7, None):
        with pytest.raises(InvalidInput, match="ids: expected a list of ids"):
            v.unique_ids(bad)


# -- labels files (defect 11) ------------------------------------------------------------------


def _file(tmp_path: Path, text: str, name: str = "labels.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("42", "got a number"), ('["cat", ["dog"]]', "item 2 of the list is a list"),
    ('{"cat": "x"}', "class 'cat' has a string"), ('{"cat": [1]}', "class 'cat': prompt 1 is a number"),
    ('{"cat": {}}', "class 'cat' has an object"), ('"cat"', "got a string"), ("null", "got null"),
    ("{}", "no class names"), ("[]", "no class names"), ("{cat: 1}", "not valid JSON"),
    ('{"cat": [], "Cat": []}', "listed twice"), ('{"cat": [], "cat": []}', "listed twice"),
    ('["cl\\u0000ass"]', "U+0000"), ('{"": []}', "empty"), ('{"cat": [""]}', "prompt 1: empty"),
])
def test_labels_json_refused_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(InvalidInput) as raised:
        v.parse_labels_file(path)
    assert str(raised.value).startswith(str(path)) and expected in str(raised.value)


def test_labels_json_object_and_list(tmp_path: Path) -> None:
    specs = v.parse_labels_file(_file(tmp_path, '{"cat": ["a photo of a cat.", " a cat "], "dog": []}'))
    assert specs == [v.LabelSpec("cat", prompts=("a photo of a cat.", "a cat")), v.LabelSpec("dog")]
    assert v.parse_labels_file(_file(tmp_path, '["cat", "dog"]', "x.txt")) == [v.LabelSpec("cat"), v.LabelSpec("dog")]


def test_labels_text_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "\ufeffcat\n# a comment\n\n  dog  \n42\n", "classes.txt")
    assert [s.name for s in v.parse_labels_file(path)] == ["cat", "dog", "42"]
    with pytest.raises(InvalidInput, match="line 2: contains a format character"):
        v.parse_labels_file(_file(tmp_path, "cat\n\u200b\n", "zw.txt"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InvalidInput, match="not UTF-8"):
        v.parse_labels_file(tmp_path / "latin1.txt")
    with pytest.raises(InvalidInput, match="cannot read"):
        v.parse_labels_file(tmp_path / "missing.txt")


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_a_name_is_clean_or_refused(text: str) -> None:
    try:
        name = v.class_name(text)
    except InvalidInput as exc:
        assert str(exc).startswith("class: ") and len(str(exc)) < 300
        return
    assert name == unicodedata.normalize("NFC", name) == name.strip() and 1 <= len(name) <= v.NAME_MAX
    assert not any(unicodedata.category(c) in v.FORBIDDEN_CATEGORIES for c in name)
    assert v.class_name(name) == name  # idempotent


@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.text(max_size=25), st.none()))
def test_record_id_is_a_positive_int_or_refused(value: object) -> None:
    try:
        number = v.record_id(value)
    except InvalidInput:
        assert not (type(value) is int and 1 <= value < 2**63)
        return
    assert type(number) is int and number >= 1 and type(value) in (int, str)
    assert str(number) == str(value).lstrip("0") or type(value) is int


@given(st.lists(st.integers(min_value=1, max_value=30), max_size=200))
def test_unique_ids_property(ids: list[int]) -> None:
    result = v.unique_ids(ids, maximum=30)
    assert result == list(dict.fromkeys(ids))


@given(st.text(max_size=20), st.lists(st.text(max_size=20), max_size=5))
def test_unique_name_iff_no_casefold_match(name: str, existing: list[str]) -> None:
    taken = any(v.name_key(name) == v.name_key(other) for other in existing)
    try:
        assert v.unique_name(name, existing, field="class") == name and not taken
    except Conflict:
        assert taken


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_labels_file_gives_specs_or_a_named_error(tmp_path_factory, data: object) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("labels") / "labels.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    try:
        specs = v.parse_labels_file(path)
    except InvalidInput as exc:
        assert str(exc).startswith(str(path))
        return
    assert specs and all(v.class_name(s.name) == s.name for s in specs)
    assert len({v.name_key(s.name) for s in specs}) == len(specs)
