"""Guardrails: with SERVICE_GUARDRAILS=1 a role may only write what the contract gives it.

The role comes from SERVICE_ROLE, else KALSHI_RUN_MODE when that names a role. The database
grants enforce the same contract a second time; this layer fails earlier, with a clearer message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ingestor import contract
from ingestor.errors import GuardrailViolation

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Guardrails:
    enabled: bool
    role: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Guardrails:
        env = os.environ if env is None else env
        enabled = env.get("SERVICE_GUARDRAILS", "").strip().lower() in _TRUE
        role = (env.get("SERVICE_ROLE") or "").strip().lower() or None
        if role is None:
            mode = (env.get("KALSHI_RUN_MODE") or "").strip().lower()
            role = mode if mode in contract.ROLES else None
        return cls(enabled=enabled, role=role)

    def _deny(self, what: str, owners: tuple[str, ...]) -> GuardrailViolation:
        return GuardrailViolation(
            f"guardrail: role {self.role or '(none)'} may not {what}; "
            f"owner: {', '.join(owners)} (see ingestor/contract.py)"
        )

    def check_state_write(self, key: str) -> None:
        owners = contract.state_key_owners(key)
        if self.enabled and self.role not in owners:
            raise self._deny(f"write ingest_state key {key!r}", owners)

    def check_queue(self, operation: str) -> None:
        try:
            allowed = contract.QUEUE_OPERATIONS[operation]
        except KeyError:
            raise ValueError(f"unknown work_queue operation {operation!r}") from None
        if self.enabled and self.role not in allowed:
            raise self._deny(f"{operation} on work_queue", allowed)

    def check_entrypoint(self, role: str) -> None:
        """A role entrypoint refuses to start under another role's identity."""
        if self.enabled and self.role is not None and self.role != role:
            raise GuardrailViolation(
                f"guardrail: the {role} entrypoint was started with role {self.role} "
                "(SERVICE_ROLE / KALSHI_RUN_MODE); refusing to start"
            )


def current() -> Guardrails:
    """Guardrails of this process, read from its environment."""
    return Guardrails.from_env()
