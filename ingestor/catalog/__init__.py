"""Kalshi events and markets as stored here: lenient parsing, filters, row mapping, feeds."""
