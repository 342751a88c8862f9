"""The jushuitan-orders mapping in plain Python: the same rules, the same
error texts and the same JSON as the Rust plugin (`guest/jushuitan-orders`).

Kept free of the component bindings so it can be run and tested with a
normal Python interpreter too.
"""

import datetime
import re
from decimal import ROUND_HALF_UP, Decimal

import serde_compat

NAME = "jushuitan-orders"
VERSION = "0.1.0"
DESCRIPTION = "Jushuitan outbound orders: renames, YYYYMMDD dates, exact amounts (Python)"
CONTRACT = "0.1.0"

# Unicode White_Space, which Rust's `str::trim` strips.
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# The decimal texts rust_decimal accepts (from_str, then from_scientific).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# The date-time shapes the SDK's time module accepts.
_DATETIME = [
    re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?"),
    re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?"),
    re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})"),
    re.compile(r"(\d{4})-(\d{2})-(\d{2})()()()"),
]


class FieldError(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def trim(text):
    return text.strip(_WHITESPACE)


def describe(value):
    text = serde_compat.dumps(value)
    return text[:57] + "..." if len(text) > 60 else text


def missing(field):
    return FieldError(field, f"required field `{field}` is missing")


def invalid(field, expected, got):
    return FieldError(field, f"field `{field}`: expected {expected}, got {describe(got)}")


def required(obj, key, field=None):
    field = field or key
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        raise missing(field)
    return value


def required_text(obj, key):
    value = required(obj, key)
    if isinstance(value, str):
        if not trim(value):
            raise missing(key)
        return value
    if isinstance(value, (bool, int, float)):
        return serde_compat.dumps(value)
    raise invalid(key, "a string or number", value)


def decimal(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise invalid(field, "a number", value)
    text = trim(value) if isinstance(value, str) else serde_compat.dumps(value)
    if not _DECIMAL.fullmatch(text):
        raise FieldError(field, f"field `{field}`: expected a number, got {describe(value)}")
    return Decimal(text)  # every text the pattern admits is a valid Decimal


def decimal_text(d):
    """Decimal as rust_decimal's Display writes it (never an exponent)."""
    return format(d, "f")


def amount_json(d):
    """Rounded half-up to 2 places, trailing zeros dropped, as a JSON number."""
    rounded = d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = "0" if rounded == 0 else format(rounded.normalize(), "f")
    return serde_compat.loads(text)


def parse_datetime(text):
    text = trim(text)
    for shape in _DATETIME:
        m = shape.fullmatch(text)
        if not m:
            continue
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        try:
            return datetime.datetime(y, mo, d, h, mi, s)
        except ValueError:
            continue
    return None


def reformat_date(value, field):
    if not isinstance(value, str):
        raise invalid(field, "a date-time text", value)
    dt = parse_datetime(value)
    if dt is None:
        raise FieldError(field, f"field `{field}`: expected a date-time like 2024-03-01 12:30:00, got {describe(value)}")
    return f"{dt.year:04d}{dt.month:02d}{dt.day:02d}"


def options(text):
    """The options (`[mapping.options]`), or an error string."""
    text = text if text.strip() else "{}"
    try:
        value = serde_compat.loads(text)
    except ValueError as e:
        return None, f"options are not valid JSON: {e}"
    if not isinstance(value, dict):
        return None, f"jushuitan-orders options: invalid type: {describe(value)}, expected struct JushuitanOrders"
    for key in value:
        if key != "skip_statuses":
            return None, f"jushuitan-orders options: unknown field `{key}`, expected `skip_statuses`"
    statuses = value.get("skip_statuses", [])
    if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
        return None, f"jushuitan-orders options: invalid type: {describe(statuses)}, expected a sequence of strings"
    return {"skip_statuses": statuses}, None


def map_order(opts, order):
    """One order: ("mapped", [json]) | ("skip", reason) | ("error", field, message)."""
    try:
        return _map(opts, order)
    except FieldError as e:
        return ("error", e.field, e.message)


def _map(opts, order):
    oid = required_text(order, "o_id")
    status = order.get("status") if isinstance(order, dict) else None
    status = status if isinstance(status, str) else ""
    if status in opts["skip_statuses"]:
        return ("skip", f"status `{status}` is listed in skip_statuses")
    date = reformat_date(required(order, "io_date"), "io_date")
    amount = Decimal(0)
    if isinstance(order, dict) and "items" in order and order["items"] is None:
        # `items: null`: the amount is what was paid less the freight.
        paid = decimal(required(order, "pay_amount"), "pay_amount")
        freight = order.get("freight")
        amount = paid - (Decimal(0) if freight is None else decimal(freight, "freight"))
        items = []
    else:
        items = required(order, "items")
        if not isinstance(items, list):
            raise invalid("items", "an array", items)
    detail = []
    for i, item in enumerate(items):
        qty_field = f"items[{i}].qty"
        qty = decimal(required(item, "qty", qty_field), qty_field)
        if qty < 0:
            raise FieldError(qty_field, f"field `{qty_field}`: expected a quantity >= 0, got {decimal_text(qty)}")
        price_field = f"items[{i}].sale_price"
        price_value = required(item, "sale_price", price_field)
        amount += qty * decimal(price_value, price_field)
        detail.append({"product_id": item.get("sku_id"), "qty": item["qty"], "unit_price": price_value})
    out = {"id": oid}
    for key in ("io_id", "so_id", "shop_id", "status", "modified"):
        if key in order:
            out[key] = order[key]
    out["name"] = order.get("receiver_name")
    out["date"] = date
    out["amount"] = amount_json(amount)
    out["items_detail"] = detail
    return ("mapped", [serde_compat.dumps(out)])


def map_text(opts, record):
    """One record given as JSON text."""
    try:
        order = serde_compat.loads(record)
    except ValueError as e:
        return ("error", None, f"input is not valid JSON: {e}")
    return map_order(opts, order)
