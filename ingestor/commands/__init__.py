"""Subcommands of `ingestor`, one module each."""
