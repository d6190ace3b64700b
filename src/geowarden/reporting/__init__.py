"""The compliance report over the audit log: figures (DuckDB), HTML, PDF, CSV and Parquet."""
