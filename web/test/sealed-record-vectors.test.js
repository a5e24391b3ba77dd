// The browser's sealed-record implementation on the repository's language-neutral
// vectors (tests/app/crypto/testdata/sealed_record_v2_vectors.json), in Node's WebCrypto:
// every good vector sealed byte for byte and opened; every corrupted case refused with
// the one opaque error, before any fetch where the vector says so, and never releasing a
// byte of the bad shard or after it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { concat, fromBase64, fromHex, toBase64, toHex } from '../src/crypto/bytes.js';
import {
  InvalidRecord,
  RecordSealer,
  contextEncoding,
  openManifest,
  shardAssociatedData,
} from '../src/crypto/sealed-record.js';

const VECTORS = JSON.parse(
  readFileSync(new URL('../../tests/app/crypto/testdata/sealed_record_v2_vectors.json', import.meta.url)),
);

const ctxKey = (ctx) => JSON.stringify(Object.keys(ctx).sort().map((k) => [k, ctx[k]]));

/** The vectors' key-service stub: only the listed (wrapped key, context) pairs unwrap. */
async function unwrap(encryptedDataKey, context) {
  const entry = VECTORS.key_service.find(
    (e) => e.encrypted_data_key_b64 === toBase64(encryptedDataKey) && ctxKey(e.context) === ctxKey(context),
  );
  if (!entry) throw new Error('refused');
  return fromHex(entry.data_key);
}

/** The vector's random bytes as one stream, read in chunks of any size. */
function streamOf(chunks) {
  const all = concat(...chunks.map(fromHex));
  let at = 0;
  return (n) => {
    if (at + n > all.length) throw new Error('random stream exhausted');
    const out = all.slice(at, at + n);
    at += n;
    return out;
  };
}

for (const v of VECTORS.good) {
  test(`good vector ${v.name}: sealed byte for byte`, async () => {
    assert.equal(toHex(contextEncoding(v.context)), v.context_encoding);
    const plaintext = fromHex(v.plaintext);
    const sealer = await RecordSealer.create({
      dataKey: fromHex(v.data_key),
      encryptedDataKey: fromBase64(v.encrypted_data_key_b64),
      context: v.context,
      shardSize: v.shard_size,
      totalLength: plaintext.length,
      random: streamOf(v.random_bytes),
    });
    assert.equal(sealer.shardCount, v.shards.length);
    const shards = [];
    for (let i = 0; i < sealer.shardCount; i++) {
      const aad = shardAssociatedData(
        contextEncoding(v.context), i, sealer.shardCount, v.shard_size, plaintext.length,
      );
      assert.equal(toHex(aad), v.associated_data[i]);
      const start = i * v.shard_size;
      shards.push(toHex(await sealer.sealShard(i, plaintext.subarray(start, start + sealer.plaintextSize(i)))));
    }
    assert.deepEqual(shards, v.shards);
    assert.equal(await sealer.manifest(), v.manifest);
  });

  test(`good vector ${v.name}: opened`, async () => {
    const opener = await openManifest(v.manifest, v.context, unwrap);
    assert.equal(opener.totalLength, fromHex(v.plaintext).length);
    const parts = [];
    for await (const part of opener.shards(async (i) => fromHex(v.shards[i]))) parts.push(part);
    assert.equal(toHex(concat(...parts)), v.plaintext);
  });
}

const base = VECTORS.good.find((g) => g.name === VECTORS.corrupted_base);

for (const c of VECTORS.corrupted) {
  test(`corrupted vector ${c.name}: refused`, async () => {
    const fetched = [];
    const released = [];
    const fetchShard = async (i) => {
      fetched.push(i);
      const s = c.shards[i];
      return s == null ? null : fromHex(s);
    };
    await assert.rejects(async () => {
      const opener = await openManifest(c.manifest, c.context, unwrap);
      for await (const part of opener.shards(fetchShard)) released.push(part);
    }, InvalidRecord);
    if (c.refused_before_fetch) {
      assert.deepEqual(fetched, [], 'nothing may be fetched before the manifest is accepted');
    } else {
      const expected = fromHex(base.plaintext).subarray(0, c.released_shards * base.shard_size);
      assert.equal(toHex(concat(...released)), toHex(expected));
    }
  });
}

test('the opaque error says nothing about what failed', async () => {
  const messages = new Set();
  for (const c of VECTORS.corrupted) {
    try {
      const opener = await openManifest(c.manifest, c.context, unwrap);
      for await (const _ of opener.shards(async (i) => (c.shards[i] == null ? null : fromHex(c.shards[i])))) {
        // drain
      }
    } catch (error) {
      messages.add(`${error.name}: ${error.message}`);
    }
  }
  assert.equal(messages.size, 1);
});
