"""Break-glass: time-boxed emergency access to one patient's groups and records."""
