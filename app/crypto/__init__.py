"""Sealed records: sharded envelope encryption (KMS data keys, HKDF subkeys, AES-256-GCM shards)."""
