"""Candlestick backfill: cursor windows, the per-market fetch shared with the worker, repair."""
