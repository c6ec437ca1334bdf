"""The ws role's pieces: sharding, market selection, row building, buffering, gaps, writing."""
