"""Canonical JSON against the spec's examples (appendices, Canonical JSON) and strict rules."""

from __future__ import annotations

import pytest

from homeserver.protocol.canonical_json import (
    MAX_SAFE_INTEGER,
    MIN_SAFE_INTEGER,
    CanonicalJSONError,
    decode_json_strict,
    encode_canonical_json,
    validate_strict_json,
)

# Spec: appendices, Canonical JSON, "Examples": (input JSON text, canonical output).
SPEC_EXAMPLES = [
    ("{}", "{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {"medium": "email", "address": "john.doe@example.org"},
                {"medium": "msisdn", "address": "123456789"}
            ]
        }
    }
}""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ),
    ('{\n    "a": "日本語"\n}', '{"a":"日本語"}'),
    ('{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'),
    ('{\n    "a": "\\u65E5"\n}', '{"a":"日"}'),
    ('{\n    "a": null\n}', '{"a":null}'),
]


@pytest.mark.parametrize(("source", "canonical"), SPEC_EXAMPLES)
@pytest.mark.parametrize("strict", [False, True])
def test_spec_examples(source: str, canonical: str, strict: bool) -> None:
    value = decode_json_strict(source.encode("utf-8"))
    assert encode_canonical_json(value, strict=strict) == canonical.encode("utf-8")


def test_spec_example_negative_zero_becomes_zero() -> None:
    # Spec example {"a": -0, "b": 1e10}: the -0 half. "negative zero -0 MUST NOT appear".
    assert encode_canonical_json(decode_json_strict(b'{"a": -0}'), strict=True) == b'{"a":0}'


def test_spec_example_exponent_is_a_documented_divergence() -> None:
    # The spec example turns 1e10 into 10000000000. We do not: 1e10 parses as a float; strict
    # rooms (v6+) reject it, legacy rooms keep the representation deployed servers signed.
    value = decode_json_strict(b'{"a": -0, "b": 1e10}')
    assert value == {"a": 0, "b": 1e10}
    assert isinstance(value["b"], float)
    assert encode_canonical_json(value) == b'{"a":0,"b":10000000000.0}'
    with pytest.raises(CanonicalJSONError, match="float"):
        encode_canonical_json(value, strict=True)


def test_output_is_utf8_not_ascii_escapes() -> None:
    assert encode_canonical_json({"a": "é😀"}) == '{"a":"é😀"}'.encode()


def test_control_characters_use_the_grammar_escapes() -> None:
    # Spec grammar: \b \t \n \f \r \" \\ short escapes, other C0 controls as lowercase \u00XX,
    # and U+007F and above (including U+2028) left unescaped.
    value = {"k": '\b\t\n\f\r"\\\x00\x1f\x7f\u2028'}
    assert encode_canonical_json(value) == (
        b'{"k":"\\b\\t\\n\\f\\r\\"\\\\\\u0000\\u001f\x7f\xe2\x80\xa8"}'
    )


def test_keys_sort_by_code_point_including_astral() -> None:
    # U+FF5E sorts before U+1F600 by code point (but after it in UTF-16 code unit order).
    value = {"\U0001f600": 1, "\uff5e": 2, "Z": 3, "a": 4}
    assert encode_canonical_json(value) == '{"Z":3,"a":4,"\uff5e":2,"\U0001f600":1}'.encode()


def test_safe_integer_bounds_are_the_spec_range() -> None:
    assert MIN_SAFE_INTEGER == -9007199254740991
    assert MAX_SAFE_INTEGER == 9007199254740991


def test_strict_accepts_integers_at_the_bounds() -> None:
    value = {"hi": 2**53 - 1, "lo": -(2**53) + 1, "flag": True, "none": None}
    assert encode_canonical_json(value, strict=True) == (
        b'{"flag":true,"hi":9007199254740991,"lo":-9007199254740991,"none":null}'
    )


@pytest.mark.parametrize("number", [2**53, -(2**53), 2**64])
def test_strict_rejects_integers_outside_the_range(number: int) -> None:
    with pytest.raises(CanonicalJSONError, match="outside"):
        encode_canonical_json({"a": [{"b": number}]}, strict=True)


@pytest.mark.parametrize("number", [1.5, 0.0, 100.0, -2.5e-3])
def test_strict_rejects_floats_even_nested(number: float) -> None:
    with pytest.raises(CanonicalJSONError, match=r"float value .* is not allowed"):
        encode_canonical_json({"content": {"list": [1, {"x": number}]}}, strict=True)


def test_lax_mode_keeps_legacy_numbers() -> None:
    # Rooms v1-v5: servers SHOULD cope with out-of-range integers and floats.
    value = {"big": 2**60, "pl": 50.0, "frac": 1.5}
    assert encode_canonical_json(value) == (b'{"big":1152921504606846976,"frac":1.5,"pl":50.0}')


def test_strict_rejects_non_string_keys() -> None:
    with pytest.raises(CanonicalJSONError, match="not a string"):
        validate_strict_json({"ok": {1: "one"}})


def test_strict_rejects_non_json_types() -> None:
    with pytest.raises(CanonicalJSONError, match="set"):
        validate_strict_json({"a": {1, 2}})


def test_strict_validation_handles_deep_nesting_without_recursion() -> None:
    deep: list = []
    node = deep
    for _ in range(50_000):
        child: list = []
        node.append(child)
        node = child
    node.append(0.5)
    with pytest.raises(CanonicalJSONError, match="float"):
        validate_strict_json(deep)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_encode_rejects_non_finite_floats(bad: float) -> None:
    with pytest.raises(CanonicalJSONError):
        encode_canonical_json({"a": bad})


def test_encode_rejects_lone_surrogates() -> None:
    with pytest.raises(CanonicalJSONError):
        encode_canonical_json({"a": "\ud800"})


def test_encode_error_is_a_value_error() -> None:
    assert issubclass(CanonicalJSONError, ValueError)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_decode_rejects_non_finite_constants(constant: bytes) -> None:
    with pytest.raises(CanonicalJSONError, match="not valid JSON"):
        decode_json_strict(b'{"a": ' + constant + b"}")


def test_decode_rejects_invalid_utf8() -> None:
    with pytest.raises(CanonicalJSONError, match="UTF-8"):
        decode_json_strict(b'{"a": "\xff"}')


def test_decode_rejects_lone_surrogate_escapes_in_values_and_keys() -> None:
    with pytest.raises(CanonicalJSONError, match="surrogate"):
        decode_json_strict(b'{"a": ["x", "\\udc00"]}')
    with pytest.raises(CanonicalJSONError, match="surrogate"):
        decode_json_strict(b'{"\\uD800": 1}')


def test_decode_joins_surrogate_pairs() -> None:
    value = decode_json_strict(b'{"a": "\\ud83d\\ude00"}')
    assert value == {"a": "😀"}
    assert encode_canonical_json(value) == '{"a":"😀"}'.encode()


def test_decode_keeps_last_duplicate_key() -> None:
    assert decode_json_strict(b'{"a": 1, "a": 2}') == {"a": 2}


@pytest.mark.parametrize("bad", [b"", b"{", b'{"a": 1} x', b"{'a': 1}", b"[1,]"])
def test_decode_rejects_malformed_json(bad: bytes) -> None:
    with pytest.raises(CanonicalJSONError, match="invalid JSON"):
        decode_json_strict(bad)


def test_decode_rejects_excessive_nesting() -> None:
    with pytest.raises(CanonicalJSONError, match="nested"):
        decode_json_strict(b"[" * 200_000 + b"]" * 200_000)


def test_decode_accepts_str_and_keeps_number_types() -> None:
    value = decode_json_strict('{"i": 10, "f": 1.0, "neg": -3}')
    assert value == {"i": 10, "f": 1.0, "neg": -3}
    assert type(value["i"]) is int
    assert type(value["f"]) is float
