/**
 * The sealed-record format `hub-sealed-record/2` in the browser (WebCrypto only), as
 * specified byte by byte in `app.crypto.envelope.ShardedEnvelope` and docs/records.md
 * "Sealed-record format v2": a record version sealed under its data key `K` into
 * AES-256-GCM shards, with an HKDF-derived key commitment and an HMAC-SHA256 manifest.
 *
 * Guarantees (the Python implementation's, kept here):
 * - callers never pass nonces or subkeys; a sealer seals one record version;
 * - opening refuses, before any shard is fetched, a manifest that is not a canonical
 *   encoding of a well-formed v2 manifest, is for another context, whose key does not
 *   unwrap under that context, or whose key commitment or MAC does not match;
 * - each shard is checked (size from the manifest, last 16 bytes equal to the committed
 *   tag, then AES-GCM with its nonce and associated data) before any of its bytes is
 *   released; lengths, count and order come only from the authenticated manifest;
 * - every integrity or decryption failure is the one opaque `InvalidRecord`.
 */

import {
  ascii,
  concat,
  equalBytes,
  fromBase64,
  lengthPrefixed,
  toBase64,
  u64,
} from './bytes.js';

export const FORMAT = 'hub-sealed-record/2';
export const MIN_SHARD_SIZE = 16;
export const MAX_SHARD_SIZE = 64 * 1024 * 1024;
export const MAX_TOTAL_LENGTH = Number.MAX_SAFE_INTEGER; // 2**53 - 1
const MAX_SHARDS = 2 ** 32 - 1;
const MAX_EDK_BYTES = 6144;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const VERSION = /^[1-9][0-9]{0,9}$/;
const MAX_VERSION = 2 ** 31 - 1;
const FIELDS = [
  'commitment',
  'encrypted_data_key',
  'encryption_context',
  'format',
  'key_salt',
  'mac',
  'shard_size',
  'shards',
  'total_length',
];

/** The one opaque error of every integrity or decryption failure. */
export class InvalidRecord extends Error {
  constructor() {
    super('The record could not be opened: it is not intact or not for this key.');
    this.name = 'InvalidRecord';
  }
}

const subtle = () => globalThis.crypto.subtle;

/** Random bytes from the platform's CSPRNG (the default random source). */
export function secureRandom(length) {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(at, Math.min(length, at + 65536)));
  }
  return out;
}

/**
 * A record version's encryption context, validated as the Python `RecordContext`.
 * @param {{record_id: string, patient_id: string, version: string|number, institution: string}} ctx
 * @returns {{record_id: string, patient_id: string, version: string, institution: string}}
 */
export function recordContext(ctx) {
  const keys = Object.keys(ctx ?? {}).sort();
  if (keys.join() !== 'institution,patient_id,record_id,version') throw new TypeError('context keys');
  for (const name of ['record_id', 'patient_id', 'institution']) {
    if (typeof ctx[name] !== 'string' || !IDENTIFIER.test(ctx[name])) {
      throw new TypeError(`${name} must be an opaque identifier token`);
    }
  }
  const version = typeof ctx.version === 'number' ? String(ctx.version) : ctx.version;
  if (typeof version !== 'string' || !VERSION.test(version) || Number(version) > MAX_VERSION) {
    throw new TypeError('version must be a decimal integer in 1..2**31-1');
  }
  return {
    record_id: ctx.record_id,
    patient_id: ctx.patient_id,
    version,
    institution: ctx.institution,
  };
}

/** CTX = LP(record_id) || LP(patient_id) || u64(version) || LP(institution). */
export function contextEncoding(ctx) {
  const c = recordContext(ctx);
  return concat(
    lengthPrefixed(ascii(c.record_id), ascii(c.patient_id)),
    u64(Number(c.version)),
    lengthPrefixed(ascii(c.institution)),
  );
}

/** HKDF info for `label`: LP(F) || LP(label) || CTX. */
export function hkdfInfo(label, ctxEncoding) {
  return concat(lengthPrefixed(ascii(FORMAT), ascii(label)), ctxEncoding);
}

/** AAD_i = LP(F) || CTX || u64(i) || u64(n) || u64(S) || u64(T). */
export function shardAssociatedData(ctxEncoding, index, count, shardSize, totalLength) {
  return concat(
    lengthPrefixed(ascii(FORMAT)),
    ctxEncoding,
    u64(index),
    u64(count),
    u64(shardSize),
    u64(totalLength),
  );
}

/** The bytes the manifest MAC covers (every field but the MAC, seals in index order). */
export function manifestAuthenticatedBytes(m, ctxEncoding) {
  return concat(
    lengthPrefixed(ascii(FORMAT)),
    ctxEncoding,
    lengthPrefixed(m.encryptedDataKey),
    m.keySalt,
    u64(m.shardSize),
    u64(m.totalLength),
    u64(m.seals.length),
    ...m.seals.flatMap((s) => [s.nonce, s.tag]),
    m.commitment,
  );
}

export function shardCountFor(totalLength, shardSize) {
  return Math.max(1, Math.ceil(totalLength / shardSize));
}

export function plaintextSize(index, totalLength, shardSize, count) {
  return index < count - 1 ? shardSize : totalLength - shardSize * (count - 1);
}

function isShardSize(value) {
  return Number.isInteger(value) && value >= MIN_SHARD_SIZE && value <= MAX_SHARD_SIZE;
}

/**
 * The three subkeys of one data key: `Ke` (an AES-GCM CryptoKey), the commitment `C`
 * (bytes), `Km` (an HMAC CryptoKey). HKDF-SHA256 with L = 32 through WebCrypto.
 */
export async function deriveSubkeys(dataKey, salt, ctxEncoding, usages = ['encrypt', 'decrypt']) {
  const ikm = await subtle().importKey('raw', dataKey, 'HKDF', false, ['deriveBits']);
  const derive = async (label) =>
    new Uint8Array(
      await subtle().deriveBits(
        { name: 'HKDF', hash: 'SHA-256', salt, info: hkdfInfo(label, ctxEncoding) },
        ikm,
        256,
      ),
    );
  const [ke, commitment, km] = await Promise.all([
    derive('shard-encryption-key'),
    derive('key-commitment'),
    derive('manifest-mac-key'),
  ]);
  return {
    encryptionKey: await subtle().importKey('raw', ke, 'AES-GCM', false, usages),
    commitment,
    macKey: await subtle().importKey('raw', km, { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]),
  };
}

/** Canonical JSON as Python's `json.dumps(sort_keys=True, separators=(",", ":"),
 * ensure_ascii=True)` writes it (strings, safe integers, arrays, objects). */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${canonicalJson(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => (c === '\u007f' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    );
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new TypeError('not representable in the manifest encoding');
}

function manifestJson(m, ctx) {
  return canonicalJson({
    commitment: toBase64(m.commitment),
    encrypted_data_key: toBase64(m.encryptedDataKey),
    encryption_context: ctx,
    format: FORMAT,
    key_salt: toBase64(m.keySalt),
    mac: toBase64(m.mac),
    shard_size: m.shardSize,
    shards: m.seals.map((s) => ({ nonce: toBase64(s.nonce), tag: toBase64(s.tag) })),
    total_length: m.totalLength,
  });
}

/**
 * Seals one record version shard by shard: `sealShard(i, plaintext)` in any order (the
 * random source is read as one stream: the 32-byte salt at creation, then 12 bytes per
 * `sealShard` call), then `manifest()` once every shard is sealed.
 */
export class RecordSealer {
  /** Use `RecordSealer.create`. */
  constructor(fields) {
    Object.assign(this, fields);
  }

  /**
   * @param {object} options
   * @param {Uint8Array} options.dataKey the 32-byte data key K
   * @param {Uint8Array} options.encryptedDataKey K wrapped by KMS (EDK), for the manifest
   * @param {object} options.context the record version's encryption context
   * @param {number} options.shardSize plaintext bytes per shard (16 B..64 MiB)
   * @param {number} options.totalLength the plaintext's length (0..2**53-1)
   * @param {(n: number) => Uint8Array} [options.random] the random source
   * @throws {RangeError|TypeError} on invalid options
   */
  static async create({ dataKey, encryptedDataKey, context, shardSize, totalLength, random }) {
    const ctx = recordContext(context);
    if (!(dataKey instanceof Uint8Array) || dataKey.length !== KEY_BYTES) {
      throw new RangeError('data key must be 32 bytes');
    }
    if (!(encryptedDataKey instanceof Uint8Array) || !encryptedDataKey.length) {
      throw new RangeError('the wrapped data key is required');
    }
    if (encryptedDataKey.length > MAX_EDK_BYTES) throw new RangeError('wrapped key too long');
    if (!isShardSize(shardSize)) throw new RangeError('shard size must be 16 B..64 MiB');
    if (!Number.isSafeInteger(totalLength) || totalLength < 0) {
      throw new RangeError('total length must be 0..2**53-1');
    }
    const count = shardCountFor(totalLength, shardSize);
    if (count > MAX_SHARDS) throw new RangeError('too many shards');
    const draw = random ?? secureRandom;
    const keySalt = draw(32);
    const ctxEncoding = contextEncoding(ctx);
    const keys = await deriveSubkeys(dataKey, keySalt, ctxEncoding, ['encrypt']);
    return new RecordSealer({
      ctx,
      ctxEncoding,
      keys,
      draw,
      keySalt,
      encryptedDataKey,
      shardSize,
      totalLength,
      shardCount: count,
      seals: new Array(count),
    });
  }

  /** Plaintext bytes shard `index` must have. */
  plaintextSize(index) {
    return plaintextSize(index, this.totalLength, this.shardSize, this.shardCount);
  }

  /**
   * Seal shard `index`; returns the object to store (ciphertext || 16-byte tag).
   * @param {number} index
   * @param {Uint8Array} plaintext exactly `plaintextSize(index)` bytes
   */
  async sealShard(index, plaintext) {
    if (!Number.isInteger(index) || index < 0 || index >= this.shardCount) {
      throw new RangeError('no such shard');
    }
    if (plaintext.length !== this.plaintextSize(index)) throw new RangeError('wrong shard size');
    const nonce = this.draw(NONCE_BYTES);
    const aad = shardAssociatedData(
      this.ctxEncoding,
      index,
      this.shardCount,
      this.shardSize,
      this.totalLength,
    );
    const sealed = new Uint8Array(
      await subtle().encrypt(
        { name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 },
        this.keys.encryptionKey,
        plaintext,
      ),
    );
    this.seals[index] = { nonce, tag: sealed.slice(sealed.length - TAG_BYTES) };
    return sealed;
  }

  /** The manifest's stored text (canonical JSON), once every shard is sealed. */
  async manifest() {
    for (let i = 0; i < this.shardCount; i++) {
      if (!this.seals[i]) throw new Error(`shard ${i} is not sealed yet`);
    }
    const m = {
      encryptedDataKey: this.encryptedDataKey,
      keySalt: this.keySalt,
      shardSize: this.shardSize,
      totalLength: this.totalLength,
      seals: this.seals,
      commitment: this.keys.commitment,
    };
    const mac = new Uint8Array(
      await subtle().sign('HMAC', this.keys.macKey, manifestAuthenticatedBytes(m, this.ctxEncoding)),
    );
    return manifestJson({ ...m, mac }, this.ctx);
  }
}

/** Strict parse of a stored v2 manifest; any deviation throws (the caller makes it opaque). */
function parseManifest(text) {
  if (typeof text !== 'string' || !/^[\x20-\x7e]*$/.test(text)) throw new TypeError('ascii');
  const obj = JSON.parse(text);
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new TypeError('object');
  if (Object.keys(obj).sort().join() !== FIELDS.join() || obj.format !== FORMAT) {
    throw new TypeError('fields');
  }
  if (!Array.isArray(obj.shards)) throw new TypeError('shards');
  const seals = obj.shards.map((entry) => {
    if (entry === null || typeof entry !== 'object' || Object.keys(entry).sort().join() !== 'nonce,tag') {
      throw new TypeError('shard entry');
    }
    return { nonce: fromBase64(entry.nonce), tag: fromBase64(entry.tag) };
  });
  const ctx = recordContext(obj.encryption_context);
  if (typeof obj.encryption_context.version !== 'string') throw new TypeError('version');
  const m = {
    ctx,
    encryptedDataKey: fromBase64(obj.encrypted_data_key),
    keySalt: fromBase64(obj.key_salt),
    shardSize: obj.shard_size,
    totalLength: obj.total_length,
    seals,
    commitment: fromBase64(obj.commitment),
    mac: fromBase64(obj.mac),
  };
  const wellFormed =
    m.encryptedDataKey.length > 0 &&
    m.encryptedDataKey.length <= MAX_EDK_BYTES &&
    m.keySalt.length === 32 &&
    m.commitment.length === 32 &&
    m.mac.length === 32 &&
    isShardSize(m.shardSize) &&
    Number.isSafeInteger(m.totalLength) &&
    m.totalLength >= 0 &&
    seals.length === shardCountFor(m.totalLength, m.shardSize) &&
    seals.every((s) => s.nonce.length === NONCE_BYTES && s.tag.length === TAG_BYTES);
  if (!wellFormed) throw new TypeError('structure');
  if (manifestJson(m, ctx) !== text) throw new TypeError('not canonical');
  return m;
}

function sameContext(a, b) {
  return (
    a.record_id === b.record_id &&
    a.patient_id === b.patient_id &&
    a.version === b.version &&
    a.institution === b.institution
  );
}

/**
 * An authenticated manifest, ready to open shards. Obtain with `openManifest`.
 * `totalLength` and `shardCount` are the authenticated ones: the only lengths to trust.
 */
export class RecordOpener {
  constructor(m, ctxEncoding, keys) {
    this._m = m;
    this._ctxEncoding = ctxEncoding;
    this._keys = keys;
    this.totalLength = m.totalLength;
    this.shardSize = m.shardSize;
    this.shardCount = m.seals.length;
  }

  /** Stored bytes of shard `index`: its plaintext plus the 16-byte tag. */
  ciphertextSize(index) {
    return plaintextSize(index, this.totalLength, this.shardSize, this.shardCount) + TAG_BYTES;
  }

  /**
   * Verify and decrypt shard `index` (its stored object); returns its plaintext.
   * @throws {InvalidRecord} on a missing, resized, replaced or forged shard
   */
  async openShard(index, object) {
    if (!Number.isInteger(index) || index < 0 || index >= this.shardCount) throw new InvalidRecord();
    if (!(object instanceof Uint8Array) || object.length !== this.ciphertextSize(index)) {
      throw new InvalidRecord();
    }
    const seal = this._m.seals[index];
    if (!equalBytes(object.subarray(object.length - TAG_BYTES), seal.tag)) throw new InvalidRecord();
    const aad = shardAssociatedData(
      this._ctxEncoding,
      index,
      this.shardCount,
      this.shardSize,
      this.totalLength,
    );
    try {
      return new Uint8Array(
        await subtle().decrypt(
          { name: 'AES-GCM', iv: seal.nonce, additionalData: aad, tagLength: 128 },
          this._keys.encryptionKey,
          object,
        ),
      );
    } catch {
      throw new InvalidRecord();
    }
  }

  /**
   * Open every shard in index order, yielding each verified plaintext shard; throws
   * `InvalidRecord` instead of ending early, so a short record never looks complete.
   * @param {(index: number) => Promise<Uint8Array|null>} fetchShard
   */
  async *shards(fetchShard) {
    let released = 0;
    for (let i = 0; i < this.shardCount; i++) {
      const object = await fetchShard(i);
      if (object == null) throw new InvalidRecord();
      const plaintext = await this.openShard(i, object);
      released += plaintext.length;
      yield plaintext;
    }
    if (released !== this.totalLength) throw new InvalidRecord();
  }
}

/**
 * Steps 1-5 of opening: strict parse, expected context, unwrap, key commitment, MAC.
 * Nothing is fetched before this resolves.
 * @param {string} manifestText the stored manifest (canonical JSON)
 * @param {object} expectedContext the context the caller expects, from its own state
 * @param {(encryptedDataKey: Uint8Array, context: object) => Promise<Uint8Array>} unwrapDataKey
 *   the key service (KMS through the hub's key handover); it must refuse another context
 * @returns {Promise<RecordOpener>}
 * @throws {InvalidRecord} on any failure
 */
export async function openManifest(manifestText, expectedContext, unwrapDataKey) {
  let m;
  let expected;
  try {
    m = parseManifest(manifestText);
    expected = recordContext(expectedContext);
  } catch {
    throw new InvalidRecord();
  }
  if (!sameContext(m.ctx, expected)) throw new InvalidRecord();
  let dataKey;
  try {
    dataKey = await unwrapDataKey(m.encryptedDataKey, m.ctx);
  } catch {
    throw new InvalidRecord();
  }
  if (!(dataKey instanceof Uint8Array) || dataKey.length !== KEY_BYTES) throw new InvalidRecord();
  const ctxEncoding = contextEncoding(m.ctx);
  const keys = await deriveSubkeys(dataKey, m.keySalt, ctxEncoding, ['decrypt']);
  if (!equalBytes(keys.commitment, m.commitment)) throw new InvalidRecord();
  const macOk = await subtle().verify(
    'HMAC',
    keys.macKey,
    m.mac,
    manifestAuthenticatedBytes(m, ctxEncoding),
  );
  if (!macOk) throw new InvalidRecord();
  return new RecordOpener(m, ctxEncoding, keys);
}
