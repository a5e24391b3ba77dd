// The browser's RFC 9162 inclusion verifier on the ledger's CT vectors
// (tests/app/ledger/testdata/ct_vectors.json): the good ones verify, each corrupted one
// fails with the error the Python verifier names.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { fromHex } from '../src/crypto/bytes.js';
import { LedgerVerificationError, derToP1363, leafHash, verifyInclusion } from '../src/ledger/verify.js';

const CT = JSON.parse(readFileSync(new URL('../../tests/app/ledger/testdata/ct_vectors.json', import.meta.url)));

CT.inclusion.forEach((v, n) => {
  test(`inclusion vector ${n}: ${v.desc} (index ${v.index}, size ${v.size})`, async () => {
    const leaf = v.leaf_hash != null ? fromHex(v.leaf_hash) : await leafHash(fromHex(v.leaf_data));
    const run = () => verifyInclusion(leaf, v.index, v.size, v.proof.map(fromHex), fromHex(v.root));
    if (v.error == null) {
      await run();
    } else {
      await assert.rejects(run, (e) => e instanceof LedgerVerificationError && e.kind === v.error);
    }
  });
});

test('a DER signature with short integers becomes r || s of 32 bytes each', () => {
  const der = new Uint8Array([0x30, 6, 0x02, 1, 5, 0x02, 1, 7]);
  const raw = derToP1363(der);
  assert.equal(raw.length, 64);
  assert.equal(raw[31], 5);
  assert.equal(raw[63], 7);
  assert.throws(() => derToP1363(new Uint8Array([0x30, 7, 0x02, 1, 5, 0x02, 1, 7])), LedgerVerificationError);
});
