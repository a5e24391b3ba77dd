"""Community-care intake (phase 2): clinic management systems submit records machine to
machine (docs/interop.md)."""
