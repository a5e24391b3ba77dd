/**
 * The record data key handed to this browser: HPKE (RFC 9180) base mode, suite
 * DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, single shot, as the service
 * wraps it (`app/crypto/handover.py`): `enc (65 bytes) || AES-256-GCM(key) (48 bytes)`,
 * with `info = LP("hub-data-key/1") || CTX` binding it to one record version.
 *
 * Guarantees: the private key of each `RecipientKey` is generated non-extractable by
 * WebCrypto and never leaves this object; `unwrap` refuses (opaque `InvalidRecord`)
 * anything that is not a wrapped key for this key pair and this context.
 */

import { ascii, concat, lengthPrefixed } from './bytes.js';
import { InvalidRecord, contextEncoding } from './sealed-record.js';

export const SUITE = 'DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM';
const KEM_ID = 0x0010;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0002;
const N_ENC = 65;
const N_K = 32;
const N_N = 12;
const N_SECRET = 32;
const WRAPPED_BYTES = N_ENC + 32 + 16;

const subtle = () => globalThis.crypto.subtle;
const i2osp2 = (n) => new Uint8Array([(n >> 8) & 255, n & 255]);
const KEM_SUITE_ID = concat(ascii('KEM'), i2osp2(KEM_ID));
const HPKE_SUITE_ID = concat(ascii('HPKE'), i2osp2(KEM_ID), i2osp2(KDF_ID), i2osp2(AEAD_ID));
const VERSION_LABEL = ascii('HPKE-v1');

async function hmac(key, data) {
  // An empty salt is HashLen zero bytes (RFC 5869 2.2); WebCrypto refuses empty HMAC keys.
  const raw = key.length ? key : new Uint8Array(32);
  const k = await subtle().importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', k, data));
}

async function labeledExtract(suiteId, salt, label, ikm) {
  return hmac(salt, concat(VERSION_LABEL, suiteId, ascii(label), ikm));
}

async function labeledExpand(suiteId, prk, label, info, length) {
  // length <= 32 here: a single HKDF-Expand block T(1) = HMAC(prk, info' || 0x01)
  const labeled = concat(i2osp2(length), VERSION_LABEL, suiteId, ascii(label), info);
  return (await hmac(prk, concat(labeled, new Uint8Array([1])))).slice(0, length);
}

async function extractAndExpand(dh, kemContext) {
  const eaePrk = await labeledExtract(KEM_SUITE_ID, new Uint8Array(0), 'eae_prk', dh);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, N_SECRET);
}

async function keySchedule(sharedSecret, info) {
  const empty = new Uint8Array(0);
  const pskIdHash = await labeledExtract(HPKE_SUITE_ID, empty, 'psk_id_hash', empty);
  const infoHash = await labeledExtract(HPKE_SUITE_ID, empty, 'info_hash', info);
  const context = concat(new Uint8Array([0]), pskIdHash, infoHash); // mode_base
  const secret = await labeledExtract(HPKE_SUITE_ID, sharedSecret, 'secret', empty);
  const key = await labeledExpand(HPKE_SUITE_ID, secret, 'key', context, N_K);
  const baseNonce = await labeledExpand(HPKE_SUITE_ID, secret, 'base_nonce', context, N_N);
  return { key, baseNonce };
}

/** HPKE `info` for a record version: LP("hub-data-key/1") || CTX. */
export function handoverInfo(context) {
  return concat(lengthPrefixed(ascii('hub-data-key/1')), contextEncoding(context));
}

async function ecdh(privateKey, publicKey) {
  return new Uint8Array(await subtle().deriveBits({ name: 'ECDH', public: publicKey }, privateKey, 256));
}

async function importPublic(raw) {
  return subtle().importKey('raw', raw, { name: 'ECDH', namedCurve: 'P-256' }, true, []);
}

/** A fresh ephemeral key pair for one key handover (never stored, never exported). */
export class RecipientKey {
  constructor(keyPair, publicBytes) {
    this._private = keyPair.privateKey;
    /** The 65-byte uncompressed point to send to the service. */
    this.publicBytes = publicBytes;
  }

  static async generate() {
    const pair = await subtle().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    const raw = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
    return new RecipientKey(pair, raw);
  }

  /**
   * The 32-byte data key wrapped for this key pair and `context`.
   * @throws {InvalidRecord} another recipient, another context, or a malformed value
   */
  async unwrap(wrapped, context) {
    if (!(wrapped instanceof Uint8Array) || wrapped.length !== WRAPPED_BYTES) throw new InvalidRecord();
    try {
      const enc = wrapped.subarray(0, N_ENC);
      const dh = await ecdh(this._private, await importPublic(enc));
      const shared = await extractAndExpand(dh, concat(enc, this.publicBytes));
      const { key, baseNonce } = await keySchedule(shared, handoverInfo(context));
      const aead = await subtle().importKey('raw', key, 'AES-GCM', false, ['decrypt']);
      const plain = new Uint8Array(
        await subtle().decrypt({ name: 'AES-GCM', iv: baseNonce, additionalData: new Uint8Array(0) }, aead, wrapped.subarray(N_ENC)),
      );
      if (plain.length !== 32) throw new InvalidRecord();
      return plain;
    } catch {
      throw new InvalidRecord();
    }
  }
}

/**
 * HPKE base-mode single-shot seal to `recipientPublic` (what the service does), here so
 * tests can check both directions; the web client itself only unwraps.
 */
export async function wrapDataKey(dataKey, recipientPublic, context) {
  const eph = await subtle().generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
  const enc = new Uint8Array(await subtle().exportKey('raw', eph.publicKey));
  const dh = await ecdh(eph.privateKey, await importPublic(recipientPublic));
  const shared = await extractAndExpand(dh, concat(enc, recipientPublic));
  const { key, baseNonce } = await keySchedule(shared, handoverInfo(context));
  const aead = await subtle().importKey('raw', key, 'AES-GCM', false, ['encrypt']);
  const ct = new Uint8Array(
    await subtle().encrypt({ name: 'AES-GCM', iv: baseNonce, additionalData: new Uint8Array(0) }, aead, dataKey),
  );
  return concat(enc, ct);
}

