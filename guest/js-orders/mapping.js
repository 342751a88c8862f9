// The jushuitan-orders mapping in plain JavaScript: the same rules, the same
// error texts and the same JSON as the Rust plugin (`guest/jushuitan-orders`).
// Kept free of the component glue (see plugin.js) so Node can run it as is.

import { JsonNumber, parse, stringify } from './serde-compat.js';
import * as decimal from './decimal.js';

export const NAME = 'jushuitan-orders';
export const VERSION = '0.1.0';
export const DESCRIPTION = 'Jushuitan outbound orders: renames, YYYYMMDD dates, exact amounts (JavaScript)';
export const CONTRACT = '0.1.0';

// Unicode White_Space, which Rust's `str::trim` strips.
const WHITESPACE = '\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';
// The date-time shapes the SDK's time module accepts.
const DATETIME = [
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?$/,
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?$/,
  /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})$/,
  /^(\d{4})-(\d{2})-(\d{2})()()()$/,
];

class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

export function trim(text) {
  let start = 0;
  let end = text.length;
  while (start < end && WHITESPACE.includes(text[start])) start++;
  while (end > start && WHITESPACE.includes(text[end - 1])) end--;
  return text.slice(start, end);
}

function describe(value) {
  const chars = Array.from(stringify(value));
  return chars.length > 60 ? `${chars.slice(0, 57).join('')}...` : chars.join('');
}

const missing = (field) => new FieldError(field, `required field \`${field}\` is missing`);
const invalid = (field, expected, got) => new FieldError(field, `field \`${field}\`: expected ${expected}, got ${describe(got)}`);

function get(obj, key) {
  return obj instanceof Map && obj.has(key) ? obj.get(key) : undefined;
}

function required(obj, key, field = key) {
  const value = get(obj, key);
  if (value === undefined || value === null) throw missing(field);
  return value;
}

function requiredText(obj, key) {
  const value = required(obj, key);
  if (typeof value === 'string') {
    if (trim(value) === '') throw missing(key);
    return value;
  }
  if (value === true || value === false || value instanceof JsonNumber) return stringify(value);
  throw invalid(key, 'a string or number', value);
}

function toDecimal(value, field) {
  let text;
  if (typeof value === 'string') text = trim(value);
  else if (value instanceof JsonNumber) text = value.toString();
  else throw invalid(field, 'a number', value);
  const d = decimal.parse(text);
  if (d === null) throw new FieldError(field, `field \`${field}\`: expected a number, got ${describe(value)}`);
  return d;
}

function daysIn(y, m) {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

function parseDate(text) {
  text = trim(text);
  for (const shape of DATETIME) {
    const m = shape.exec(text);
    if (!m) continue;
    const [y, mo, d, h, mi, s] = m.slice(1).map((g) => (g ? Number(g) : 0));
    if (mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(y, mo) && h <= 23 && mi <= 59 && s <= 59) {
      return `${m[1]}${m[2]}${m[3]}`;
    }
  }
  return null;
}

function reformatDate(value, field) {
  if (typeof value !== 'string') throw invalid(field, 'a date-time text', value);
  const date = parseDate(value);
  if (date === null) {
    throw new FieldError(field, `field \`${field}\`: expected a date-time like 2024-03-01 12:30:00, got ${describe(value)}`);
  }
  return date;
}

/** The options (`[mapping.options]`): `{ options }` or `{ error }`. */
export function options(text) {
  let value;
  try {
    value = parse(text.trim() === '' ? '{}' : text);
  } catch (e) {
    return { error: `options are not valid JSON: ${e.message}` };
  }
  if (!(value instanceof Map)) {
    return { error: `jushuitan-orders options: invalid type: ${describe(value)}, expected struct JushuitanOrders` };
  }
  for (const key of value.keys()) {
    if (key !== 'skip_statuses') return { error: `jushuitan-orders options: unknown field \`${key}\`, expected \`skip_statuses\`` };
  }
  const statuses = value.has('skip_statuses') ? value.get('skip_statuses') : [];
  if (!Array.isArray(statuses) || !statuses.every((s) => typeof s === 'string')) {
    return { error: `jushuitan-orders options: invalid type: ${describe(statuses)}, expected a sequence of strings` };
  }
  return { options: { skipStatuses: statuses } };
}

function mapOrder(opts, order) {
  const id = requiredText(order, 'o_id');
  const rawStatus = get(order, 'status');
  const status = typeof rawStatus === 'string' ? rawStatus : '';
  if (opts.skipStatuses.includes(status)) return { tag: 'skip', val: `status \`${status}\` is listed in skip_statuses` };
  const date = reformatDate(required(order, 'io_date'), 'io_date');
  let amount = decimal.ZERO;
  let items;
  if (order instanceof Map && order.has('items') && order.get('items') === null) {
    // `items: null`: the amount is what was paid less the freight.
    const paid = toDecimal(required(order, 'pay_amount'), 'pay_amount');
    const freight = get(order, 'freight');
    amount = decimal.sub(paid, freight === undefined || freight === null ? decimal.ZERO : toDecimal(freight, 'freight'));
    items = [];
  } else {
    items = required(order, 'items');
    if (!Array.isArray(items)) throw invalid('items', 'an array', items);
  }
  const detail = [];
  items.forEach((item, i) => {
    const qtyField = `items[${i}].qty`;
    const qty = toDecimal(required(item, 'qty', qtyField), qtyField);
    if (decimal.isNegative(qty)) {
      throw new FieldError(qtyField, `field \`${qtyField}\`: expected a quantity >= 0, got ${decimal.toText(qty)}`);
    }
    const priceField = `items[${i}].sale_price`;
    const priceValue = required(item, 'sale_price', priceField);
    amount = decimal.add(amount, decimal.mul(qty, toDecimal(priceValue, priceField)));
    const sku = get(item, 'sku_id');
    detail.push(new Map([['product_id', sku === undefined ? null : sku], ['qty', item.get('qty')], ['unit_price', priceValue]]));
  });
  const out = new Map([['id', id]]);
  for (const key of ['io_id', 'so_id', 'shop_id', 'status', 'modified']) {
    if (order.has(key)) out.set(key, order.get(key));
  }
  const name = get(order, 'receiver_name');
  out.set('name', name === undefined ? null : name);
  out.set('date', date);
  out.set('amount', new JsonNumber(decimal.toText(decimal.normalize(decimal.round2(amount)))));
  out.set('items_detail', detail);
  return { tag: 'mapped', val: [stringify(out)] };
}

/** One record given as JSON text → the WIT `outcome` as jco represents it. */
export function mapText(opts, record) {
  let order;
  try {
    order = parse(record);
  } catch (e) {
    return { tag: 'error', val: { field: undefined, message: `input is not valid JSON: ${e.message}` } };
  }
  try {
    return mapOrder(opts, order);
  } catch (e) {
    if (e instanceof FieldError) return { tag: 'error', val: { field: e.field, message: e.message } };
    throw e;
  }
}
