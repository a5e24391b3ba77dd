/**
 * Byte encodings shared by the sealed-record format, the key handover and the ledger
 * verifier: hex, strict standard base64, length prefixes, big-endian integers.
 *
 * Guarantees: `fromBase64` accepts only canonical RFC 4648 standard base64 with padding
 * (what Python's `base64.b64encode` writes), so one byte string has one text form, as the
 * Python reader requires; integers are written exactly up to 2**53 - 1 (a Number).
 */

/** @param {...Uint8Array} parts */
export function concat(...parts) {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const encoder = new TextEncoder();

/** ASCII text as bytes; anything else is refused (the format's identifiers are ASCII). */
export function ascii(text) {
  if (typeof text !== 'string' || !/^[\x00-\x7f]*$/.test(text)) {
    throw new TypeError('expected ASCII text');
  }
  return encoder.encode(text);
}

/** 4-byte big-endian unsigned integer. */
export function u32(value) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError('u32');
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** 8-byte big-endian unsigned integer, exact for 0..2**53-1. */
export function u64(value) {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('u64');
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(value / 2 ** 32));
  view.setUint32(4, value >>> 0);
  return out;
}

/** LP(b): the length of `b` as 4 bytes big-endian, then `b`. */
export function lengthPrefixed(...parts) {
  return concat(...parts.flatMap((p) => [u32(p.length), p]));
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new TypeError('expected hex');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = new Map(Array.from(ALPHABET, (c, i) => [c, i]));

/** Standard base64 with padding. */
export function toBase64(bytes) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63];
    out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.length ? ALPHABET[n & 63] : '=';
  }
  return out;
}

/**
 * Canonical standard base64 only: padded, no whitespace, no stray bits.
 * @throws {TypeError} on anything else.
 */
export function fromBase64(text) {
  if (typeof text !== 'string' || text.length % 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new TypeError('expected canonical base64');
  }
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let at = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text[i + j];
      n = (n << 6) | (c === '=' ? 0 : LOOKUP.get(c));
    }
    for (let k = 0; k < 3 && at < out.length; k++) out[at++] = (n >> (16 - 8 * k)) & 255;
  }
  if (toBase64(out) !== text) throw new TypeError('non-canonical base64');
  return out;
}

/** Constant-time equality of two byte strings of public length. */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
