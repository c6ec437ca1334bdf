"""Stable sharding of tickers across WS processes: blake2b-64 of the key, modulo the count.

Any tool can compute a key's shard the same way: the first 8 bytes (big-endian, unsigned) of
BLAKE2b with an 8-byte digest over the UTF-8 key, modulo WS_SHARD_COUNT.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) that owns `key`."""
    if count < 1:
        raise ValueError(f"shard count must be >= 1, got {count}")
    if count == 1:
        return 0
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True, slots=True)
class Shard:
    """One process's slice of the markets: WS_SHARD_ID of WS_SHARD_COUNT."""

    shard_id: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.shard_id < self.count:
            raise ValueError(
                f"WS_SHARD_ID={self.shard_id} must be in [0, WS_SHARD_COUNT={self.count})"
            )

    def owns(self, key: str) -> bool:
        """True when this shard is responsible for `key` (a market or event ticker)."""
        return self.count == 1 or shard_of(key, self.count) == self.shard_id

    def __str__(self) -> str:
        return f"{self.shard_id}/{self.count}"
