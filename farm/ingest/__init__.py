"""The ingest gateway: Keep-compatible webhooks in, wire-v1 batches into Redis, 202 out."""
