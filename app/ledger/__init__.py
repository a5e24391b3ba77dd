"""Tamper-evident audit ledger: RFC 9162 Merkle tree, canonical audit entries, proofs."""
