"""The append-only decision log (SQLite or PostgreSQL), the review queue and appeals, and retention."""
