/**
 * Records sealed and opened in this browser, straight to and from S3 (docs/records.md,
 * the upload sessions): the service hands over the record version's data key wrapped
 * for a fresh key pair made here (HPKE), issues presigned URLs, and commits the manifest;
 * content is sealed before it leaves the browser and opened only after it is verified.
 *
 * Guarantees: plaintext never goes to the API or S3; a download is handed to the user
 * only once every shard has verified and the authenticated length is reached (an
 * `InvalidRecord` otherwise, and nothing is shown); the manifest must be for the record
 * and version that were asked for.
 */

import { fromBase64, toBase64, toHex } from '../crypto/bytes.js';
import { crc64nvmeBase64 } from '../crypto/checksum.js';
import { RecipientKey } from '../crypto/handover.js';
import { InvalidRecord, RecordSealer, openManifest } from '../crypto/sealed-record.js';

// Sealed shards held at once while uploading: bounds memory to a few shards.
const SHARDS_PER_BATCH = 4;
const PUTS_IN_FLIGHT = 2;

async function putShard(url, headers, body, fetchImpl) {
  const allowed = {};
  for (const [name, value] of Object.entries(headers)) {
    // the browser sets Content-Length itself (a forbidden header name)
    if (name.toLowerCase() !== 'content-length') allowed[name] = value;
  }
  const response = await fetchImpl(url, { method: 'PUT', headers: allowed, body, credentials: 'omit', cache: 'no-store' });
  if (!response.ok) {
    const error = new Error(`storage refused shard (HTTP ${response.status})`);
    error.code = 'shard_put_failed';
    throw error;
  }
}

async function inParallel(items, limit, work) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await work(queue.shift());
  });
  await Promise.all(workers);
}

/**
 * Seal `file` in this browser and upload it as a new record (`patientId`) or as the next
 * version of `recordId`.
 * @param {import('../api/client.js').HubApi} api
 * @param {{file: Blob, contentType: string, patientId?: string, recordId?: string,
 *   category?: string, title?: string, onProgress?: (sent: number, total: number, phase: string) => void}} options
 * @returns {Promise<object>} the committed record's metadata
 */
export async function uploadSealed(api, { file, contentType, patientId, recordId, category, title, onProgress = () => {}, fetchImpl = globalThis.fetch.bind(globalThis) }) {
  const recipient = await RecipientKey.generate();
  const start = { content_type: contentType, length: file.size, public_key: toBase64(recipient.publicBytes) };
  const session = recordId
    ? await api.post(`/records/${encodeURIComponent(recordId)}/uploads`, start)
    : await api.post(`/patients/${encodeURIComponent(patientId)}/uploads`, { ...start, category, title });
  const context = session.key.encryption_context;
  const dataKey = await recipient.unwrap(fromBase64(session.key.wrapped_data_key), context);
  const sealer = await RecordSealer.create({
    dataKey,
    encryptedDataKey: fromBase64(session.key.encrypted_data_key),
    context,
    shardSize: session.shard_size,
    totalLength: file.size,
  });
  dataKey.fill(0);
  const total = file.size;
  let sent = 0;
  onProgress(0, total, 'sealing');
  const perRequest = Math.max(1, Math.min(SHARDS_PER_BATCH, session.max_shards_per_request || SHARDS_PER_BATCH));
  let stored = [];
  for (let first = 0; first < sealer.shardCount; first += perRequest) {
    const batch = [];
    for (let i = first; i < Math.min(sealer.shardCount, first + perRequest); i++) {
      const offset = i * session.shard_size;
      const plain = new Uint8Array(await file.slice(offset, offset + sealer.plaintextSize(i)).arrayBuffer());
      const object = await sealer.sealShard(i, plain);
      batch.push({ index: i, object, checksum: await crc64nvmeBase64(object), plainLength: plain.length });
    }
    const issued = await api.post(`/uploads/${session.upload_id}/shards`, {
      shards: batch.map((s) => ({ index: s.index, size: s.object.length, checksum_crc64nvme: s.checksum })),
      stored,
    });
    const byIndex = new Map(issued.urls.map((u) => [u.index, u]));
    await inParallel(batch, PUTS_IN_FLIGHT, async (shard) => {
      const target = byIndex.get(shard.index);
      if (!target) throw new Error(`no URL issued for shard ${shard.index}`);
      await putShard(target.url, target.headers, shard.object, fetchImpl);
      sent += shard.plainLength;
      onProgress(sent, total, 'uploading');
    });
    stored = batch.map((s) => s.index);
  }
  if (stored.length) await api.post(`/uploads/${session.upload_id}/shards`, { shards: [], stored });
  onProgress(total, total, 'committing');
  return api.post(`/uploads/${session.upload_id}/commit`, { manifest: await sealer.manifest() });
}

/**
 * Download and open a record version in this browser.
 * @returns {Promise<{blob: Blob, contentType: string, version: number, sha256: string}>}
 * @throws {InvalidRecord} when anything fails to verify (nothing is returned then)
 */
export async function downloadOpened(api, { recordId, version, onProgress = () => {}, fetchImpl = globalThis.fetch.bind(globalThis) }) {
  const recipient = await RecipientKey.generate();
  const ask = (first) =>
    api.post(`/records/${encodeURIComponent(recordId)}/downloads`, {
      public_key: toBase64(recipient.publicBytes),
      ...(version ? { version } : {}),
      first,
    });
  let ticket = await ask(0);
  const served = ticket.key.encryption_context;
  // The expected context: the record and version asked for; the keyed patient reference
  // and the institution (which the browser cannot compute) as the service states them.
  const expected = {
    record_id: recordId,
    version: String(version ?? ticket.version),
    patient_id: served.patient_id,
    institution: served.institution,
  };
  const wrapped = fromBase64(ticket.key.wrapped_data_key);
  const edk = ticket.key.encrypted_data_key;
  const opener = await openManifest(ticket.manifest, expected, async (encrypted, ctx) => {
    if (toBase64(encrypted) !== edk) throw new InvalidRecord();
    return recipient.unwrap(wrapped, ctx);
  });
  const fetchShard = async (index) => {
    if (index >= ticket.first + ticket.shard_urls.length) ticket = await ask(index);
    const url = ticket.shard_urls[index - ticket.first];
    if (!url) return null;
    const response = await fetchImpl(url, { credentials: 'omit', cache: 'no-store' });
    if (!response.ok) return null;
    return new Uint8Array(await response.arrayBuffer());
  };
  const parts = [];
  let opened = 0;
  onProgress(0, opener.totalLength);
  for await (const part of opener.shards(fetchShard)) {
    parts.push(part);
    opened += part.length;
    onProgress(opened, opener.totalLength);
  }
  const blob = new Blob(parts, { type: ticket.content_type });
  const sha256 = toHex(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', await blob.arrayBuffer())));
  return { blob, contentType: ticket.content_type, version: ticket.version, sha256 };
}
