import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fromBase64, toHex } from '../src/crypto/bytes.js';
import { crc64nvmeBase64 } from '../src/crypto/checksum.js';

test('CRC64NVME check value (CRC-64/NVME of "123456789")', async () => {
  const value = await crc64nvmeBase64(new TextEncoder().encode('123456789'));
  assert.equal(toHex(fromBase64(value)), 'ae8b14860a799888');
});
