"""The ownership contract, held once as data.

Guardrails, the generated `sql/roles.sql`, the supervisor's environment allowlists and the
tests all read these tables; nothing else restates who owns what.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingestor.config import (
    ROLE_NAMES,
    SETTINGS_BY_ROLE,
    BaseRoleSettings,
)

ROLES: tuple[str, ...] = ROLE_NAMES

# Every table of the schema. Partitions are reached through their parent, so only parents appear.
TABLES: tuple[str, ...] = (
    "events",
    "markets",
    "active_markets",
    "market_candles",
    "market_ticks",
    "lifecycle_events",
    "work_queue",
    "prediction_runs",
    "market_predictions",
    "rag_documents",
    "ingest_state",
    "schema_version",
    "ws_gaps",
    "market_quotes_latest",
    "backfill_runs",
)

READ = frozenset({"SELECT"})
UPSERT = frozenset({"SELECT", "INSERT", "UPDATE"})
APPEND = frozenset({"SELECT", "INSERT"})
FULL = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})

# role -> table -> privileges. A table a role does not list is not reachable by that role.
# ingest_state writes are further narrowed per key by row-level security (see STATE_KEYS).
TABLE_PRIVILEGES: dict[str, dict[str, frozenset[str]]] = {
    "rest": {
        "events": FULL,
        "markets": FULL,
        "active_markets": FULL,
        "market_candles": UPSERT,
        "lifecycle_events": READ,
        "work_queue": APPEND,
        "ingest_state": UPSERT,
        "schema_version": READ,
        "ws_gaps": READ,
        "backfill_runs": UPSERT,
    },
    "ws": {
        "active_markets": READ,
        "market_ticks": APPEND,
        "lifecycle_events": APPEND,
        "ingest_state": UPSERT,
        "schema_version": READ,
        "ws_gaps": UPSERT,
        "market_quotes_latest": UPSERT,
    },
    "worker": {
        "markets": READ,
        "market_candles": UPSERT,
        "work_queue": FULL,
        "ingest_state": UPSERT,
        "schema_version": READ,
    },
    "rag": {
        "events": READ,
        "markets": READ,
        "market_candles": READ,
        "market_ticks": READ,
        "market_quotes_latest": READ,
        "prediction_runs": FULL,
        "market_predictions": FULL,
        "rag_documents": FULL,
        "ingest_state": UPSERT,
        "schema_version": READ,
    },
    "portal": {
        **{table: READ for table in TABLES},
        "work_queue": APPEND,
    },
}

# Tables each role owns (writes); the rest of its grants are reads.
OWNED_TABLES: dict[str, frozenset[str]] = {
    role: frozenset(
        t for t, privs in grants.items() if privs - READ and t not in {"ingest_state"}
    )
    - ({"work_queue"} if role == "portal" else set())
    for role, grants in TABLE_PRIVILEGES.items()
}

# ingest_state key -> roles that may write it. The first one is the key's owner of record.
STATE_KEYS: dict[str, tuple[str, ...]] = {
    "last_discovery_ts": ("rest",),
    "last_min_close_ts": ("rest", "worker"),
    "last_worker_ts": ("worker",),
    "last_tick_ts": ("ws",),
    "last_ws_tick_ts": ("ws",),
    "last_prediction_ts": ("rag",),
}

# Keys whose value is a cursor position rather than the time of the latest event: their
# freshness is the age of the last write (updated_at), not the age of the value.
CURSOR_STATE_KEYS: frozenset[str] = frozenset({"last_min_close_ts"})

# work_queue operation -> roles allowed to perform it.
QUEUE_OPERATIONS: dict[str, tuple[str, ...]] = {
    "enqueue": ("rest", "portal"),
    "claim": ("worker",),
    "renew": ("worker",),
    "complete": ("worker",),
    "fail": ("worker",),
    "release": ("worker",),
    "maintain": ("worker",),
}

# Sequences a role needs USAGE on to insert rows with generated ids.
SEQUENCES: dict[str, str] = {
    "work_queue": "work_queue_id_seq",
    "lifecycle_events": "lifecycle_events_id_seq",
    "prediction_runs": "prediction_runs_id_seq",
    "market_predictions": "market_predictions_id_seq",
    "rag_documents": "rag_documents_id_seq",
    "ws_gaps": "ws_gaps_id_seq",
    "backfill_runs": "backfill_runs_id_seq",
}

# SECURITY DEFINER functions a role may call (partition upkeep runs in the long-lived rest role).
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "ingestor_ensure_partitions(integer)": ("rest",),
}

# Which secret-bearing variables may reach which role's process. Anything in this table is
# stripped from every other role's environment, whatever its settings model says.
SECRET_VARIABLES: dict[str, tuple[str, ...]] = {
    "KALSHI_API_KEY_ID": ("rest", "ws", "worker"),
    "KALSHI_PRIVATE_KEY_PEM_PATH": ("rest", "ws", "worker"),
    "OPENAI_API_KEY": ("rag",),
    "OPENAI_BASE_URL": ("rag",),
    "AZURE_OPENAI_API_KEY": ("rag",),
    "AZURE_OPENAI_ENDPOINT": ("rag",),
    "AZURE_OPENAI_DEPLOYMENT": ("rag",),
    "AZURE_OPENAI_API_VERSION": ("rag",),
    "WEB_PORTAL_PASSWORD": ("portal",),
    "WEB_PORTAL_SECRET_KEY": ("portal",),
}

# Process basics every child gets, by exact name or prefix.
BASE_ENV_NAMES: tuple[str, ...] = ("PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME", "TMPDIR")
BASE_ENV_PREFIXES: tuple[str, ...] = ("PYTHON", "LC_")


@dataclass(frozen=True)
class RoleContract:
    name: str
    settings: type[BaseRoleSettings]
    privileges: dict[str, frozenset[str]]
    state_keys: tuple[str, ...]
    queue_operations: tuple[str, ...]

    @property
    def db_group(self) -> str:
        return db_group_role(self.name)

    def env_allowlist(self) -> list[str]:
        """Variables this role's process may receive: its settings, minus others' secrets."""
        names = set(self.settings.env_names())
        for var, roles in SECRET_VARIABLES.items():
            if self.name not in roles:
                names.discard(var)
        return sorted(names)


def db_group_role(role: str) -> str:
    """The NOLOGIN database role holding a service's grants."""
    return f"kalshi_{role}"


def db_login_user(role: str) -> str:
    """The default login user created for a service by `ingestor migrate --roles --create-users`."""
    return f"kalshi_{role}_user"


def role_contract(role: str) -> RoleContract:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
    return RoleContract(
        name=role,
        settings=SETTINGS_BY_ROLE[role],
        privileges=TABLE_PRIVILEGES[role],
        state_keys=tuple(k for k, owners in STATE_KEYS.items() if role in owners),
        queue_operations=tuple(op for op, roles in QUEUE_OPERATIONS.items() if role in roles),
    )


def state_key_owners(key: str) -> tuple[str, ...]:
    try:
        return STATE_KEYS[key]
    except KeyError:
        raise ValueError(
            f"unknown ingest_state key {key!r}; known keys: {', '.join(STATE_KEYS)}"
        ) from None
