"""The append-only decision log (SQLite or PostgreSQL), its review queue and appeals."""
