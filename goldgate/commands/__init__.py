"""Subcommands of the `goldgate` CLI, one module per area (local, release, ops)."""
