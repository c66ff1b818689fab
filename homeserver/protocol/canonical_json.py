"""Canonical JSON: the byte encoding every hash and signature in Matrix is computed over.

Spec: appendices, "Canonical JSON"; rooms v6 "Canonical JSON" (strict values from v6 on).

Encoding is delegated to the `canonicaljson` library (stdlib C encoder with sorted keys, no
whitespace, UTF-8 output). This module adds the room-version-6+ value restrictions and a decoder
that refuses the non-JSON constants Python's parser accepts by default.

Decisions worth knowing (see also the module tests):

* Lax mode (rooms v1-v5) encodes floats the way Python prints them (`1.5`, `50.0`). That is the
  representation deployed servers signed legacy events with; re-writing `50.0` as `50` would
  break their hashes and signatures. Spec: appendices, Canonical JSON warning ("Servers SHOULD
  be capable of handling JSON which is considered invalid by these restrictions").
* Strict mode (rooms v6+) rejects every float, including integral ones such as `1e10`: the
  grammar allows no fractions or exponents and v6 requires strict enforcement. The spec's
  example turning `1e10` into `10000000000` is therefore not reproduced; see the tests.
* `decode_json_strict` accepts duplicate object keys and keeps the last value, as the stdlib
  does. Hashes and signatures are computed over our re-encoding, so a sender relying on a
  different duplicate-key rule simply produces an event whose hashes do not verify.
"""

from __future__ import annotations

import json
import re
from typing import Any

from canonicaljson import encode_canonical_json as _encode

# Spec: appendices, Canonical JSON: integers must be in [-(2**53)+1, (2**53)-1].
MIN_SAFE_INTEGER = -(2**53) + 1
MAX_SAFE_INTEGER = 2**53 - 1

# A JSON escape that decodes to a UTF-16 surrogate code unit; only such escapes can smuggle a
# lone surrogate into a decoded string (raw UTF-8 cannot encode one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class CanonicalJSONError(ValueError):
    """The value cannot be encoded or decoded as (canonical) JSON."""


def encode_canonical_json(value: Any, *, strict: bool = False) -> bytes:
    """Encode `value` as canonical JSON bytes.

    With `strict=True` (pass `room_version.strict_canonicaljson`) floats and integers outside
    the interoperable range are refused. Raises CanonicalJSONError for values JSON cannot
    represent (NaN, infinities, lone surrogates, excessive nesting); non-JSON Python types raise
    TypeError, as they indicate a programming error rather than bad input.
    """
    if strict:
        # Spec: rooms v6, Canonical JSON: servers MUST strictly enforce the JSON format.
        validate_strict_json(value)
    try:
        return _encode(value)
    except RecursionError as exc:
        raise CanonicalJSONError("JSON value is nested too deeply") from exc
    except ValueError as exc:  # NaN/Infinity, circular references, lone surrogates
        raise CanonicalJSONError(f"value cannot be encoded as canonical JSON: {exc}") from exc


def validate_strict_json(value: Any) -> None:
    """Raise CanonicalJSONError unless `value` satisfies the strict canonical JSON rules.

    Spec: appendices, Canonical JSON: numbers must be integers in [-(2**53)+1, (2**53)-1];
    float values are not permitted. Object keys must be strings. Iterative, so arbitrarily
    deep input cannot exhaust the interpreter stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) or item is None or item is True or item is False:
            continue
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise CanonicalJSONError(f"object key {key!r} is not a string")
                stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float):
            raise CanonicalJSONError(f"float value {item!r} is not allowed in canonical JSON")
        elif isinstance(item, int):
            if not MIN_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise CanonicalJSONError(
                    f"integer {item} is outside [{MIN_SAFE_INTEGER}, {MAX_SAFE_INTEGER}]"
                )
        else:
            raise CanonicalJSONError(f"{type(item).__name__} is not a JSON type")


def _reject_constant(name: str) -> Any:
    # Spec: appendices, Canonical JSON grammar: only false / null / true are literal names.
    raise CanonicalJSONError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json_strict(data: bytes | bytearray | str) -> Any:
    """Parse JSON text, refusing what RFC 8259 and the Matrix grammar do not allow.

    Rejects NaN / Infinity / -Infinity, invalid UTF-8, lone surrogate escapes (`"\\ud800"`),
    trailing garbage and nesting deep enough to exhaust the stack. Duplicate keys are accepted
    (last value wins). Number types are kept as parsed: floats stay floats, so strict room
    versions must still call validate_strict_json (or encode with strict=True).
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CanonicalJSONError(f"JSON is not valid UTF-8: {exc}") from exc
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except RecursionError as exc:
        raise CanonicalJSONError("JSON value is nested too deeply") from exc
    except CanonicalJSONError:
        raise
    except ValueError as exc:  # json.JSONDecodeError, over-long integer literals
        raise CanonicalJSONError(f"invalid JSON: {exc}") from exc
    # Spec: appendices, Canonical JSON: the encoding is UTF-8, which cannot represent a lone
    # surrogate; accepting one would only make the value fail later, when it is hashed.
    if _SURROGATE_ESCAPE.search(text) and _contains_lone_surrogate(value):
        raise CanonicalJSONError("JSON string contains a lone UTF-16 surrogate")
    return value


def _contains_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
