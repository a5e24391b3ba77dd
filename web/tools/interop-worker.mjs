// A JSON-lines worker for the cross-implementation tests (tests/web/): Python sends one
// request per line on stdin and reads one answer per line on stdout. Runs the same
// modules the browser bundles, under Node's WebCrypto.
import { createInterface } from 'node:readline';

import { fromBase64, toBase64 } from '../src/crypto/bytes.js';
import { RecipientKey, wrapDataKey } from '../src/crypto/handover.js';
import { RecordSealer, openManifest } from '../src/crypto/sealed-record.js';
import { importPublicKeyPem, verifyEntryInclusion } from '../src/ledger/verify.js';

const recipients = new Map();

const ops = {
  async seal({ data_key, encrypted_data_key, context, shard_size, plaintext }) {
    const bytes = fromBase64(plaintext);
    const sealer = await RecordSealer.create({
      dataKey: fromBase64(data_key),
      encryptedDataKey: fromBase64(encrypted_data_key),
      context,
      shardSize: shard_size,
      totalLength: bytes.length,
    });
    const shards = [];
    for (let i = 0; i < sealer.shardCount; i++) {
      const start = i * shard_size;
      shards.push(toBase64(await sealer.sealShard(i, bytes.subarray(start, start + sealer.plaintextSize(i)))));
    }
    return { manifest: await sealer.manifest(), shards };
  },
  async open({ manifest, context, data_key, encrypted_data_key, shards }) {
    const unwrap = async (edk, ctx) => {
      if (toBase64(edk) !== encrypted_data_key || JSON.stringify(ctx) !== JSON.stringify(context)) {
        throw new Error('the key service refuses');
      }
      return fromBase64(data_key);
    };
    const opener = await openManifest(manifest, context, unwrap);
    const parts = [];
    for await (const part of opener.shards(async (i) => (shards[i] == null ? null : fromBase64(shards[i])))) {
      parts.push(toBase64(part));
    }
    return { parts };
  },
  async recipient({ id }) {
    const key = await RecipientKey.generate();
    recipients.set(id, key);
    return { public_key: toBase64(key.publicBytes) };
  },
  async unwrap({ id, wrapped, context }) {
    return { data_key: toBase64(await recipients.get(id).unwrap(fromBase64(wrapped), context)) };
  },
  async wrap({ data_key, public_key, context }) {
    return { wrapped: toBase64(await wrapDataKey(fromBase64(data_key), fromBase64(public_key), context)) };
  },
  async verify_inclusion({ canonical, index, proof, head, public_key_pem }) {
    const publicKey = await importPublicKeyPem(public_key_pem);
    await verifyEntryInclusion({ canonical, index, proof, head, publicKey });
    return { verified: true };
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let answer;
  try {
    const request = JSON.parse(line);
    answer = { ok: true, ...(await ops[request.op](request)) };
  } catch (error) {
    answer = { ok: false, error: error.name, kind: error.kind ?? null, message: error.message };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
