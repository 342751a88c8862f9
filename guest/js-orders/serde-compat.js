// JSON exactly as serde_json (the Rust SDK's JSON library) reads and writes it.
//
// The golden test requires byte-identical outcomes from the Rust, Python and
// JavaScript plugins. JavaScript's own JSON.parse forgets whether a number was
// written `100` or `100.0` (serde_json keeps integers and floats apart), and
// JSON.stringify lays floats out differently (`1e+16` vs `10000000000000000`,
// `1e-6` vs `0.000001`, `100.0` vs `100`), so this module parses numbers into
// `JsonNumber` values that remember their kind, and renders them the way
// serde_json does: integers as they are (outside the 64-bit range they become
// floats), floats as the shortest round-trip digits laid out as serde_json's
// float writer (the `zmij` crate) does (plain digits while the leading digit's
// exponent is within -5..=15, otherwise `d.ddde±x`), object keys in
// code-point order (serde_json's default map is a BTreeMap).

const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;

/** A JSON number that remembers whether serde_json sees an integer or a float. */
export class JsonNumber {
  constructor(text) {
    this.text = text;
    const integral = !/[.eE]/.test(text);
    const big = integral ? BigInt(text) : null;
    if (integral && big >= I64_MIN && big <= U64_MAX && text !== '-0') {
      this.integer = big;
      this.float = null;
    } else {
      this.integer = null;
      this.float = Number(text);
    }
  }

  /** serde_json's rendering of this number. */
  toString() {
    return this.integer !== null ? this.integer.toString() : floatText(this.float);
  }
}

/** A float laid out as serde_json writes it. */
export function floatText(x) {
  if (!Number.isFinite(x)) return 'null';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() with no argument gives the shortest round-trip digits.
  const [mantissa, exp] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  return sign + layout(digits, Number(exp) + 1);
}

function layout(d, kk) {
  const n = d.length;
  const k = kk - n;
  if (k >= 0 && kk <= 16) return d + '0'.repeat(k) + '.0';
  if (kk > 0 && kk <= 16) return `${d.slice(0, kk)}.${d.slice(kk)}`;
  if (kk > -5 && kk <= 0) return `0.${'0'.repeat(-kk)}${d}`;
  const exp = kk - 1 >= 0 ? `+${kk - 1}` : `${kk - 1}`;
  if (n === 1) return `${d}e${exp}`;
  return `${d[0]}.${d.slice(1)}e${exp}`;
}

/** Parses JSON text; objects become Maps (any key is safe), numbers JsonNumbers. */
export function parse(text) {
  const p = { text, at: 0 };
  const value = parseValue(p);
  skipSpace(p);
  if (p.at !== text.length) fail(p, 'trailing characters');
  return value;
}

function fail(p, what) {
  throw new SyntaxError(`${what} at character ${p.at}`);
}

function skipSpace(p) {
  while (p.at < p.text.length && ' \t\n\r'.includes(p.text[p.at])) p.at++;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;

function parseValue(p) {
  skipSpace(p);
  const c = p.text[p.at];
  if (c === '{') return parseObject(p);
  if (c === '[') return parseArray(p);
  if (c === '"') return parseString(p);
  for (const [word, value] of [['true', true], ['false', false], ['null', null]]) {
    if (p.text.startsWith(word, p.at)) {
      p.at += word.length;
      return value;
    }
  }
  NUMBER.lastIndex = p.at;
  const m = NUMBER.exec(p.text);
  if (!m) fail(p, 'expected a value');
  p.at += m[0].length;
  return new JsonNumber(m[0]);
}

function parseString(p) {
  STRING.lastIndex = p.at;
  const m = STRING.exec(p.text);
  if (!m) fail(p, 'invalid string');
  p.at += m[0].length;
  return JSON.parse(m[0]);
}

function parseArray(p) {
  p.at++;
  const out = [];
  skipSpace(p);
  if (p.text[p.at] === ']') {
    p.at++;
    return out;
  }
  for (;;) {
    out.push(parseValue(p));
    skipSpace(p);
    const c = p.text[p.at++];
    if (c === ']') return out;
    if (c !== ',') fail(p, 'expected `,` or `]`');
  }
}

function parseObject(p) {
  p.at++;
  const out = new Map();
  skipSpace(p);
  if (p.text[p.at] === '}') {
    p.at++;
    return out;
  }
  for (;;) {
    skipSpace(p);
    if (p.text[p.at] !== '"') fail(p, 'expected a key');
    const key = parseString(p);
    skipSpace(p);
    if (p.text[p.at++] !== ':') fail(p, 'expected `:`');
    out.set(key, parseValue(p));
    skipSpace(p);
    const c = p.text[p.at++];
    if (c === '}') return out;
    if (c !== ',') fail(p, 'expected `,` or `}`');
  }
}

function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

/** Compact JSON text, as serde_json's `Value::to_string`. */
export function stringify(v) {
  if (v === null || v === undefined) return 'null';
  if (v === true || v === false) return String(v);
  if (v instanceof JsonNumber) return v.toString();
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stringify).join(',')}]`;
  if (v instanceof Map) {
    const keys = [...v.keys()].sort(byCodePoint);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stringify(v.get(k))}`).join(',')}}`;
  }
  throw new TypeError(`not a JSON value: ${typeof v}`);
}
