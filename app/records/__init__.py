"""Patient records: sealed, sharded storage; upload, download, share, versions, shred."""
