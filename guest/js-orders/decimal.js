// Exact decimals on BigInt (value = m / 10^s), as rust_decimal does them for
// money: sums and products never touch floating point.

export const ZERO = { m: 0n, s: 0 };

// The decimal texts rust_decimal accepts (from_str, then from_scientific).
const DECIMAL = /^([+-]?)(?:([0-9]+)\.?([0-9]*)|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?$/;

/** Parses decimal text, or returns null. */
export function parse(text) {
  const m = DECIMAL.exec(text);
  if (!m) return null;
  const whole = m[2] ?? '';
  const frac = m[3] ?? m[4] ?? '';
  let s = frac.length - Number(m[5] ?? 0);
  let mant = BigInt(whole + frac || '0');
  if (s < 0) {
    mant *= 10n ** BigInt(-s);
    s = 0;
  }
  return { m: m[1] === '-' ? -mant : mant, s };
}

const scaleUp = (d, s) => d.m * 10n ** BigInt(s - d.s);

export function add(a, b) {
  const s = Math.max(a.s, b.s);
  return { m: scaleUp(a, s) + scaleUp(b, s), s };
}

export function sub(a, b) {
  return add(a, { m: -b.m, s: b.s });
}

export function mul(a, b) {
  return { m: a.m * b.m, s: a.s + b.s };
}

/** Below zero (rust_decimal's `is_sign_negative() && !is_zero()`). */
export function isNegative(d) {
  return d.m < 0n;
}

/** Rounds half away from zero to 2 places. */
export function round2(d) {
  if (d.s <= 2) return d;
  const div = 10n ** BigInt(d.s - 2);
  let q = d.m / div;
  const r = d.m % div;
  const twice = (r < 0n ? -r : r) * 2n;
  if (twice >= div) q += d.m < 0n ? -1n : 1n;
  return { m: q, s: 2 };
}

/** Drops trailing zeros. */
export function normalize(d) {
  let { m, s } = d;
  while (s > 0 && m % 10n === 0n) {
    m /= 10n;
    s -= 1;
  }
  return { m, s };
}

/** rust_decimal's Display: plain digits, the scale kept, never an exponent. */
export function toText(d) {
  const sign = d.m < 0n ? '-' : '';
  const digits = (d.m < 0n ? -d.m : d.m).toString().padStart(d.s + 1, '0');
  return d.s === 0 ? sign + digits : `${sign}${digits.slice(0, -d.s)}.${digits.slice(-d.s)}`;
}
