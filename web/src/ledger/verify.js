/**
 * The audit ledger checked in the browser, trusting only a public key: RFC 9162
 * inclusion proofs (as `app/ledger/merkle.py`: preconditions first, typed errors) and
 * the signed tree head (ECDSA P-256 with SHA-256 over the checkpoint text, DER signature
 * as KMS returns it; docs/ledger.md "Sequencing and signed tree heads").
 *
 * Guarantees: `verifyEntryInclusion` recomputes the leaf hash from the entry's canonical
 * bytes itself (never the server's leaf hash), checks the proof against the head's root
 * and the head's signature against the given public key; any failure throws a
 * `LedgerVerificationError` naming what failed.
 */

import { ascii, concat, equalBytes, fromBase64 } from '../crypto/bytes.js';

export const CHECKPOINT_FORMAT = 'health-hub/ledger/v1';
const HASH_SIZE = 32;

export class LedgerVerificationError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'LedgerVerificationError';
    /** One of IndexOutOfRange, InvalidHashLength, InvalidProofLength, RootMismatch,
     * BadSignature, MalformedHead, BadPublicKey. */
    this.kind = kind;
  }
}

const subtle = () => globalThis.crypto.subtle;

async function sha256(data) {
  return new Uint8Array(await subtle().digest('SHA-256', data));
}

/** SHA-256(0x00 || entry). */
export function leafHash(entry) {
  return sha256(concat(new Uint8Array([0]), entry));
}

function nodeHash(left, right) {
  return sha256(concat(new Uint8Array([1]), left, right));
}

function bitLength(n) {
  return n === 0 ? 0 : Math.floor(Math.log2(n)) + 1;
}

function popCount(n) {
  let count = 0;
  for (let v = n; v > 0; v = Math.floor(v / 2)) count += v % 2;
  return count;
}

/** Exact number of hashes in the audit path of leaf `index` in a tree of `size`. */
export function inclusionProofLength(index, size) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new LedgerVerificationError('IndexOutOfRange', `leaf index ${index} is not below tree size ${size}`);
  }
  // XOR of numbers below 2**53 without 32-bit truncation: compare halves.
  const hi = Math.floor(index / 2 ** 26) ^ Math.floor((size - 1) / 2 ** 26);
  const lo = (index % 2 ** 26) ^ ((size - 1) % 2 ** 26);
  const inner = hi ? bitLength(hi) + 26 : bitLength(lo);
  const border = popCount(Math.floor(index / 2 ** inner));
  return inner + border;
}

function checkHash(what, value) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new LedgerVerificationError('InvalidHashLength', `${what} is not ${HASH_SIZE} bytes`);
  }
}

/**
 * RFC 9162 2.1.3.2: check that `leaf` is leaf `index` of the tree of `size` with `root`.
 * @throws {LedgerVerificationError}
 */
export async function verifyInclusion(leaf, index, size, proof, root) {
  const expectedLength = inclusionProofLength(index, size);
  checkHash('leaf hash', leaf);
  checkHash('root', root);
  if (proof.length !== expectedLength) {
    throw new LedgerVerificationError('InvalidProofLength', `proof has ${proof.length} hashes, expected ${expectedLength}`);
  }
  proof.forEach((p, i) => checkHash(`proof element ${i}`, p));
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new LedgerVerificationError('InvalidProofLength', 'proof does not reach the root');
  if (!equalBytes(r, root)) {
    throw new LedgerVerificationError('RootMismatch', 'the recomputed root differs from the signed root');
  }
}

/** The exact text a tree head's signature covers. */
export function checkpointMessage(head) {
  if (typeof head.origin !== 'string' || !head.origin || !/^[\x20-\x7e]+$/.test(head.origin)) {
    throw new LedgerVerificationError('MalformedHead', 'origin must be one non-empty ASCII line');
  }
  for (const field of ['size', 'timestamp_ms']) {
    if (!Number.isSafeInteger(head[field]) || head[field] < 0) {
      throw new LedgerVerificationError('MalformedHead', `${field} must be a non-negative integer`);
    }
  }
  return ascii([CHECKPOINT_FORMAT, head.origin, String(head.size), head.root, String(head.timestamp_ms)].join('\n') + '\n');
}

/** A DER ECDSA signature (SEQUENCE of two INTEGERs) as WebCrypto's r || s, 32 bytes each. */
export function derToP1363(der) {
  const fail = () => {
    throw new LedgerVerificationError('BadSignature', 'the signature is not a DER ECDSA signature');
  };
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) fail();
  let at = 2;
  const parts = [];
  for (let k = 0; k < 2; k++) {
    if (der[at] !== 0x02) fail();
    const len = der[at + 1];
    let value = der.subarray(at + 2, at + 2 + len);
    if (value.length !== len || len === 0) fail();
    while (value.length > 1 && value[0] === 0) value = value.subarray(1);
    if (value.length > 32) fail();
    const padded = new Uint8Array(32);
    padded.set(value, 32 - value.length);
    parts.push(padded);
    at += 2 + len;
  }
  if (at !== der.length) fail();
  return concat(...parts);
}

/** Import a PEM SubjectPublicKeyInfo of a P-256 key for ECDSA verification. */
export async function importPublicKeyPem(pem) {
  const body = String(pem)
    .replace(/-----BEGIN PUBLIC KEY-----|-----END PUBLIC KEY-----/g, '')
    .replace(/\s+/g, '');
  try {
    return await subtle().importKey('spki', fromBase64(body), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  } catch {
    throw new LedgerVerificationError('BadPublicKey', 'not a P-256 public key in PEM form');
  }
}

/** SHA-256 fingerprint (hex, colon-separated) of a PEM public key's DER bytes. */
export async function publicKeyFingerprint(pem) {
  const body = String(pem).replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const digest = await sha256(fromBase64(body));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * Verify a signed tree head (the JSON of `GET /audit/head`) with a public key.
 * @throws {LedgerVerificationError}
 */
export async function verifyTreeHead(head, publicKey) {
  if (head?.format !== undefined && head.format !== CHECKPOINT_FORMAT) {
    throw new LedgerVerificationError('MalformedHead', 'unknown checkpoint format');
  }
  let root;
  let signature;
  try {
    root = fromBase64(head.root);
    signature = fromBase64(head.signature);
  } catch {
    throw new LedgerVerificationError('MalformedHead', 'root or signature is not base64');
  }
  checkHash('root', root);
  const message = checkpointMessage(head);
  const ok = await subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, publicKey, derToP1363(signature), message);
  if (!ok) throw new LedgerVerificationError('BadSignature', 'the tree head signature does not verify with this public key');
  return root;
}

/**
 * The auditor's check of one entry: the head's signature, then the entry's own leaf hash
 * through the audit path to the signed root.
 * @param {{canonical: string, index: number, proof: string[], head: object, publicKey: CryptoKey}} input
 * @throws {LedgerVerificationError}
 */
export async function verifyEntryInclusion({ canonical, index, proof, head, publicKey }) {
  const root = await verifyTreeHead(head, publicKey);
  const leaf = await leafHash(fromBase64(canonical));
  const path = proof.map((p) => {
    try {
      return fromBase64(p);
    } catch {
      throw new LedgerVerificationError('InvalidHashLength', 'a proof element is not base64');
    }
  });
  await verifyInclusion(leaf, index, head.size, path, root);
  return { leaf, root };
}
