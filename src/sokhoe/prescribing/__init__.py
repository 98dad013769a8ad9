"""E-prescription, drug catalogue, checks, dispensing, national prescription system outbox."""
