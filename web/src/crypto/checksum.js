/**
 * S3's transport checksum of a shard object, CRC64NVME (docs/records.md: "Transport
 * integrity is S3's job"), computed with the AWS SDK's own implementation and written as
 * S3 expects it in `x-amz-checksum-crc64nvme`: the 8-byte big-endian CRC, base64.
 */
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';

import { toBase64 } from './bytes.js';

export async function crc64nvmeBase64(bytes) {
  const crc = new Crc64Nvme();
  crc.update(bytes);
  return toBase64(await crc.digest());
}
