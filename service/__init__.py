"""The goldgate Job API: a stdlib-only async core served by a Cloudflare Python Worker (D1 + R2)
in the cloud and by a local ASGI server (SQLite + an S3-protocol store) on the embedded target.

Entry points: `service.app.create_app` (the core), `service.local_server` (local),
`service.cloudflare_entry` (Workers), `service.metrics.compute` (percentiles from job_metrics).
"""
