"""Access decisions: Cedar policies over entities read fresh for each request."""
