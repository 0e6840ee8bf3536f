"""Cloudflare admin clients: D1 over the REST API (query, export, import, time travel) and R2 over S3."""
