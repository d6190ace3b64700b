"""Batch analytics over API logs (``geowarden analyze``): load and enrich the logs into DuckDB or
Spark, run the analyses (shared keys, account networks, campaigns, infrastructure), report the
findings and feed them back to the live decision as flags. See ``docs/analytics.md``."""
