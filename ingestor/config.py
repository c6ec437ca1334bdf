"""Settings: one pydantic-settings model per role, named by the variables users already set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ingestor.db.urls import mask_url
from ingestor.errors import ConfigurationError

DEFAULT_KALSHI_HOST = "https://external-api.kalshi.com/trade-api/v2"
CANDLE_PERIODS_ALLOWED = (1, 60, 1440)
ROLE_NAMES = ("rest", "ws", "worker", "rag", "portal")

CommaList = Annotated[list[str], NoDecode]
IntList = Annotated[list[int], NoDecode]


class ConfigError(ConfigurationError):
    """Settings are missing or invalid; the message lists every problem by variable name."""

    def __init__(self, problems: list[str], role: str | None = None) -> None:
        self.problems = problems
        self.role = role
        head = f"invalid configuration for role {role}:" if role else "invalid configuration:"
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _normalise_strike_period(value: str) -> str:
    v = value.strip().lower()
    if v in {"hour", "hourly", "hr", "hrs", "hours", "h"}:
        return "hour"
    if v in {"day", "daily", "days", "d"}:
        return "day"
    if v in {"week", "weekly", "weeks", "w"}:
        return "week"
    if v in {"month", "monthly", "months"}:
        return "month"
    return v


class BaseRoleSettings(BaseSettings):
    """What every process reads: database, logging, guardrails, health."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", env_ignore_empty=True, frozen=True
    )
    role: ClassVar[str] = ""
    secret_fields: ClassVar[frozenset[str]] = frozenset({"database_url"})

    database_url: str | None = None
    ingestor_home: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    service_role: str | None = None
    service_guardrails: bool = False
    kalshi_run_mode: str | None = None
    db_init_schema: bool = False
    db_pool_size: int = Field(default=4, ge=1, le=64)
    service_health_port: int | None = Field(default=None, ge=1, le=65535)
    service_health_host: str = "127.0.0.1"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @classmethod
    def env_names(cls) -> list[str]:
        """The environment variables this model reads (the supervisor's allowlist for the role)."""
        return sorted(name.upper() for name in cls.model_fields)

    def masked(self) -> dict[str, Any]:
        """Effective settings with secrets masked, for `ingestor config ROLE` and logs."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif name == "database_url" and value:
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name.upper()] = value
        return out


class KalshiSettings(BaseRoleSettings):
    """Credentials, endpoints and the REST rate limit (rest, ws and worker only)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"database_url"})

    kalshi_api_key_id: str | None = None
    kalshi_private_key_pem_path: Path | None = None
    kalshi_host: str = DEFAULT_KALSHI_HOST
    kalshi_rest_rate_per_sec: float = Field(default=20.0, gt=0, le=10_000)
    kalshi_rest_burst: int = Field(default=40, ge=1, le=100_000)
    kalshi_rest_retries: int = Field(default=5, ge=0, le=20)
    kalshi_rest_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("kalshi_host")
    @classmethod
    def _check_host(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// and include /trade-api/v2")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _key_pair(self) -> KalshiSettings:
        if bool(self.kalshi_api_key_id) != bool(self.kalshi_private_key_pem_path):
            raise ValueError(
                "KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PEM_PATH must be set together"
            )
        return self

    @property
    def has_credentials(self) -> bool:
        return bool(self.kalshi_api_key_id and self.kalshi_private_key_pem_path)


class CandleSettings(BaseSettings):
    """Candle periods and chunking, shared by rest (inline backfill) and worker (jobs)."""

    candle_periods: IntList = Field(default_factory=lambda: [1, 60])
    candle_lookback_hours: int = Field(default=72, ge=1)

    @field_validator("candle_periods", mode="before")
    @classmethod
    def _periods(cls, v: Any) -> Any:
        return _split_commas(v)

    @field_validator("candle_periods")
    @classmethod
    def _check_periods(cls, v: list[int]) -> list[int]:
        bad = [p for p in v if p not in CANDLE_PERIODS_ALLOWED]
        if bad or not v:
            raise ValueError(f"periods must be among 1,60,1440 (got {v})")
        return sorted(set(v))


class QueueSettings(BaseSettings):
    """The Postgres work queue and its optional RabbitMQ signal."""

    work_queue_enable: bool = False
    work_queue_max_attempts: int = Field(default=5, ge=1, le=100)
    work_queue_name: str = "kalshi.backfill"
    rabbitmq_url: str | None = None
    work_queue_publish: bool | None = None


class RestSettings(KalshiSettings, CandleSettings, QueueSettings):
    role: ClassVar[str] = "rest"

    discovery_seconds: float = Field(default=1800, gt=0)
    backfill_seconds: float = Field(default=900, gt=0)
    strike_periods: CommaList = Field(default_factory=lambda: ["hour", "day"])
    strike_hour_max_hours: float | None = Field(default=None, gt=0)
    strike_day_max_hours: float | None = Field(default=None, gt=0)
    discovery_event_statuses: CommaList = Field(default_factory=lambda: ["open"])
    backfill_event_statuses: CommaList = Field(
        default_factory=lambda: ["open", "closed", "settled"]
    )
    backfill_start_days: float = Field(default=7, gt=0)
    closed_cleanup_seconds: float = Field(default=3600, ge=0)
    closed_cleanup_grace_minutes: float = Field(default=30, ge=0)
    partition_months_ahead: int = Field(default=3, ge=1, le=36)

    @field_validator("strike_periods", mode="before")
    @classmethod
    def _strikes(cls, v: Any) -> Any:
        v = _split_commas(v)
        return [_normalise_strike_period(s) for s in v] if isinstance(v, list) else v

    @field_validator("discovery_event_statuses", "backfill_event_statuses", mode="before")
    @classmethod
    def _statuses(cls, v: Any) -> Any:
        v = _split_commas(v)
        if isinstance(v, list):
            v = ["open" if s.lower() == "active" else s.lower() for s in v]
        return v

    @field_validator("discovery_event_statuses", "backfill_event_statuses")
    @classmethod
    def _check_statuses(cls, v: list[str]) -> list[str]:
        allowed = {"unopened", "open", "closed", "settled"}
        bad = [s for s in v if s not in allowed]
        if bad or not v:
            raise ValueError(f"statuses must be among {','.join(sorted(allowed))} (got {v})")
        return v


class WsSettings(KalshiSettings):
    role: ClassVar[str] = "ws"

    kalshi_ws_url: str | None = None
    ws_sub_refresh_seconds: float = Field(default=60, gt=0)
    ws_shard_count: int = Field(default=1, ge=1, le=1024)
    ws_shard_id: int = Field(default=0, ge=0)
    ws_batch_size: int = Field(default=500, ge=1, le=10_000)
    max_active_tickers: int = Field(default=5000, ge=1)
    ws_db_batch_size: int = Field(default=2000, ge=1)
    ws_db_flush_seconds: float = Field(default=0.25, gt=0)
    ws_queue_maxsize: int = Field(default=100_000, ge=100)
    ws_stale_seconds: float = Field(default=30, gt=0)
    # Keep below the supervisor's --grace-seconds, or the flush is cut short by SIGKILL.
    ws_shutdown_flush_seconds: float = Field(default=8, gt=0)

    @field_validator("kalshi_ws_url")
    @classmethod
    def _check_ws(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return v

    @field_validator("ws_shard_id")
    @classmethod
    def _shard(cls, v: int, info: ValidationInfo) -> int:
        count = info.data.get("ws_shard_count")
        if count is not None and v >= count:
            raise ValueError(f"must be below WS_SHARD_COUNT={count}")
        return v


class WorkerSettings(KalshiSettings, CandleSettings, QueueSettings):
    role: ClassVar[str] = "worker"

    work_queue_poll_seconds: float = Field(default=10, gt=0)
    work_queue_lock_timeout_seconds: float = Field(default=900, gt=0)
    work_queue_retry_seconds: float = Field(default=60, ge=0)
    work_queue_cleanup_hours: float = Field(default=24, gt=0)
    work_queue_worker_id: str | None = None
    work_queue_prefetch: int = Field(default=4, ge=1, le=1000)
    work_queue_job_types: CommaList = Field(default_factory=lambda: ["backfill_market"])

    @field_validator("work_queue_job_types", mode="before")
    @classmethod
    def _jobs(cls, v: Any) -> Any:
        return _split_commas(v)


class RagSettings(BaseRoleSettings):
    role: ClassVar[str] = "rag"
    secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"database_url", "azure_openai_api_key", "openai_api_key"}
    )

    prediction_enable: bool = False
    prediction_poll_seconds: float = Field(default=60, ge=5)
    prediction_max_events: int = Field(default=25, ge=1)
    prediction_max_markets: int = Field(default=200, ge=1)
    prediction_context_docs: int = Field(default=20, ge=0)
    prediction_strike_periods: CommaList = Field(default_factory=lambda: ["hour", "day"])
    prediction_agent_name: str = "llama.cpp"
    prediction_prompt: str | None = None
    prediction_prompt_path: Path | None = None
    rag_model_path: Path | None = None
    rag_embedding_model_path: Path | None = None
    rag_embedding_dim: int = Field(default=384, ge=1, le=16_000)
    rag_top_k: int = Field(default=8, ge=1, le=200)
    rag_llm_temperature: float = Field(default=0.2, ge=0, le=2)
    rag_llm_max_tokens: int = Field(default=200, ge=1)
    rag_llm_threads: int | None = Field(default=None, ge=1)
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: SecretStr | None = None
    azure_openai_deployment: str | None = None
    azure_openai_api_version: str | None = None

    @field_validator("prediction_strike_periods", mode="before")
    @classmethod
    def _strikes(cls, v: Any) -> Any:
        v = _split_commas(v)
        return [_normalise_strike_period(s) for s in v] if isinstance(v, list) else v


class PortalSettings(BaseRoleSettings):
    role: ClassVar[str] = "portal"
    secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"database_url", "web_portal_password", "web_portal_secret_key"}
    )

    web_portal_host: str = "127.0.0.1"
    web_portal_port: int = Field(default=8000, ge=1, le=65535)
    web_portal_password: SecretStr
    web_portal_secret_key: SecretStr
    web_portal_backfill_mode: Literal["disabled", "queue"] = "disabled"
    web_portal_session_minutes: float = Field(default=720, gt=0)
    web_portal_cookie_secure: bool = False
    web_portal_login_max_attempts: int = Field(default=5, ge=1)
    web_portal_login_window_seconds: float = Field(default=300, gt=0)

    @field_validator("web_portal_password")
    @classmethod
    def _password(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters")
        return v

    @field_validator("web_portal_secret_key")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return v


class AdminSettings(BaseRoleSettings):
    """`ingestor migrate` and other schema tasks: an admin URL that may create tables and roles."""

    role: ClassVar[str] = "admin"

    partition_months_ahead: int = Field(default=3, ge=1, le=36)


SETTINGS_BY_ROLE: dict[str, type[BaseRoleSettings]] = {
    "rest": RestSettings,
    "ws": WsSettings,
    "worker": WorkerSettings,
    "rag": RagSettings,
    "portal": PortalSettings,
    "admin": AdminSettings,
}


def _problem(err: dict[str, Any], model: type[BaseRoleSettings]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if loc and loc[0] in model.model_fields:
        name = loc[0].upper()
        value = err.get("input")
        shown = ""
        visible = err.get("type") != "missing" and loc[0] not in model.secret_fields
        if visible and isinstance(value, str | int | float):
            shown = f" (got {value!r})"
        if err.get("type") == "missing":
            msg = "is required but not set"
        return f"{name}: {msg}{shown}"
    return msg


def load_settings(role: str, env: dict[str, str] | None = None) -> BaseRoleSettings:
    """The role's settings from `env` (default: the process environment), or ConfigError."""
    model = SETTINGS_BY_ROLE.get(role)
    if model is None:
        raise ConfigError([f"unknown role {role!r}; valid: {', '.join(SETTINGS_BY_ROLE)}"])
    try:
        if env is None:
            return model()
        names = {n.upper() for n in model.model_fields}
        values = {k.lower(): v for k, v in env.items() if k.upper() in names and v != ""}
        return model.model_validate(values)
    except ValidationError as exc:
        problems = [_problem(e, model) for e in exc.errors(include_url=False)]
        raise ConfigError(sorted(set(problems)), role) from None
