"""JSON text exactly as serde_json (the Rust SDK's JSON library) writes it.

The golden test requires byte-identical outcomes from the Rust, Python and
JavaScript plugins, so numbers and strings are rendered the way serde_json
renders them: integers as they are (outside the 64-bit range they become
floats), floats as the shortest round-trip digits laid out as serde_json's
float writer (the `zmij` crate) does (`1e-7`, `0.00001`, `100.0`, `1e+16`:
plain digits while the leading digit's exponent is within -5..=15, otherwise
`d.ddde±x`), object keys in code-point order
(serde_json's default map is a BTreeMap), and strings escaped only where JSON
requires it.
"""

import json

_I64_MIN = -(1 << 63)
_U64_MAX = (1 << 64) - 1


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def loads(text):
    """Parses JSON text with serde_json's number model."""
    value = json.loads(text, parse_constant=_reject_constant)
    return _numbers(value)


def _numbers(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and not _I64_MIN <= v <= _U64_MAX:
        return float(v)
    if isinstance(v, list):
        return [_numbers(x) for x in v]
    if isinstance(v, dict):
        return {k: _numbers(x) for k, x in v.items()}
    return v


def float_text(x):
    """A float laid out as serde_json writes it."""
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x == 0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest round-trip digits: "1e-07", "1.5e+16", "0.0001"
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    k = (int(exp) if exp else 0) - len(frac)  # value = int(digits) * 10**k
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    return sign + _layout(stripped, len(stripped) + k)


def _layout(d, kk):
    """Digits `d` with the decimal point after `kk` of them, as serde_json lays them out."""
    n = len(d)
    k = kk - n
    if 0 <= k and kk <= 16:
        return d + "0" * k + ".0"
    if 0 < kk <= 16:
        return d[:kk] + "." + d[kk:]
    if -5 < kk <= 0:
        return "0." + "0" * (-kk) + d
    if n == 1:
        return f"{d}e{kk - 1:+d}"
    return f"{d[0]}.{d[1:]}e{kk - 1:+d}"


def _key(k):
    return [ord(c) for c in k]


def dumps(v):
    """Compact JSON text, as serde_json's `Value::to_string`."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v) if _I64_MIN <= v <= _U64_MAX else float_text(float(v))
    if isinstance(v, float):
        return float_text(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: _key(kv[0]))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps(x) for k, x in items) + "}"
    raise TypeError(f"not a JSON value: {type(v).__name__}")
