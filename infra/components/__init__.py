"""One ComponentResource per concern. Each takes plain, typed arguments; none reads config."""
