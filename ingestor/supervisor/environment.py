"""Each child's environment, built from scratch: process basics plus the role's allowlist.

Secrets are scoped by `contract.SECRET_VARIABLES` (through `RoleContract.env_allowlist`), so a
role never sees another role's credentials, whatever the supervisor's own environment holds.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ingestor import contract
from ingestor.errors import ConfigurationError

log = logging.getLogger(__name__)

ENV_FILE_VARIABLE = "ENV_FILE"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DSN_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_PEM_FILE_LIMIT = 64 * 1024


class EnvFileError(ConfigurationError):
    """An env file cannot be read or has a line that is not KEY=VALUE."""


@dataclass(frozen=True)
class ChildEnvironment:
    """A role's environment and the warnings its construction produced (logged by the caller)."""

    role: str
    env: dict[str, str]
    warnings: tuple[str, ...] = ()


def parse_env_file(text: str, source: str = "<env file>") -> dict[str, str]:
    """Parse KEY=VALUE lines; blank lines, `# comments` and an `export ` prefix are allowed."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise EnvFileError(f"{source}:{number}: expected KEY=VALUE, got {raw.strip()[:40]!r}")
        out[key] = _env_value(value.strip())
    return out


def _env_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    # An unquoted value ends at a ' #' comment, as in shell and docker env files.
    comment = re.search(r"\s#", value)
    return value[: comment.start()].rstrip() if comment else value


def load_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read and parse an env file, or raise EnvFileError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EnvFileError(f"env file {path}: {exc.strerror or exc}") from None
    return parse_env_file(text, str(path))


def supervisor_environment(
    base: Mapping[str, str], env_file: str | os.PathLike[str] | None = None
) -> dict[str, str]:
    """What the supervisor sees: `base`, plus an env file's variables that `base` lacks.

    The file is `env_file`, else `ENV_FILE` from `base`; variables already set win, so an
    operator can always override a file from the command line.
    """
    merged = dict(base)
    path = env_file or base.get(ENV_FILE_VARIABLE)
    if path:
        for key, value in load_env_file(path).items():
            merged.setdefault(key, value)
    return merged


def is_base_variable(name: str) -> bool:
    """Process basics every child gets (PATH, HOME, LANG, PYTHON*, LC_* ...)."""
    return name in contract.BASE_ENV_NAMES or name.startswith(contract.BASE_ENV_PREFIXES)


def build_child_env(role: str, source: Mapping[str, str]) -> ChildEnvironment:
    """The environment for `role`'s process, built from scratch out of `source`.

    Process basics, plus exactly the role's allowlisted variables. `<NAME>_<ROLE>` in `source`
    overrides `<NAME>` for that role (so `DATABASE_URL_REST` becomes rest's `DATABASE_URL`);
    a missing `DATABASE_URL_<ROLE>` falls back to `DATABASE_URL` with a warning.
    `SERVICE_ROLE` and `KALSHI_RUN_MODE` are set to the role, `PYTHONUNBUFFERED` to 1.
    """
    allowlist = contract.role_contract(role).env_allowlist()
    foreign_secrets = {
        name for name, roles in contract.SECRET_VARIABLES.items() if role not in roles
    }
    env = {k: v for k, v in source.items() if is_base_variable(k) and k not in foreign_secrets}
    suffix = f"_{role.upper()}"
    for name in allowlist:
        if name + suffix in source:
            env[name] = source[name + suffix]
        elif name in source:
            env[name] = source[name]
    warnings: list[str] = []
    if "DATABASE_URL" + suffix not in source and "DATABASE_URL" in source:
        warnings.append(
            f"role {role}: DATABASE_URL{suffix} is not set; using DATABASE_URL, so {role} "
            "logs in as that user instead of its own"
        )
    env["SERVICE_ROLE"] = role
    env["KALSHI_RUN_MODE"] = role
    env["PYTHONUNBUFFERED"] = "1"
    return ChildEnvironment(role=role, env=env, warnings=tuple(warnings))


def url_password(value: str) -> list[str]:
    """Passwords inside a URL or a key=value DSN, raw and percent-decoded."""
    found: list[str] = []
    if "://" in value and "@" in value:
        try:
            parts = urlsplit(value)
            userinfo = parts.netloc.rpartition("@")[0]
        except ValueError:
            userinfo = ""
        if ":" in userinfo:
            raw = userinfo.split(":", 1)[1]
            found += [raw, unquote(raw)]
    for match in _DSN_PASSWORD.finditer(value):
        token = match.group(1)
        found += [token, token.strip("'")]
    return [p for p in found if p]


def _pem_body_lines(path: str) -> list[str]:
    try:
        p = Path(path)
        if not p.is_file() or p.stat().st_size > _PEM_FILE_LIMIT:
            return []
        text = p.read_text(encoding="ascii", errors="ignore")
    except OSError:
        return []
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("-----") and len(line.strip()) >= 16
    ]


def secret_values(source: Mapping[str, str], extra: Iterable[str] = ()) -> set[str]:
    """Literal secret values the supervisor knows: SECRET_VARIABLES (and their per-role
    overrides), passwords of every URL it holds, and the body of the Kalshi private key."""
    secrets: set[str] = set(extra)
    names = set(contract.SECRET_VARIABLES)
    for name, value in source.items():
        if not value:
            continue
        base = name.rsplit("_", 1)[0] if "_" in name else name
        if name in names or (base in names and name.rsplit("_", 1)[1].lower() in contract.ROLES):
            secrets.add(value)
            if name.startswith("KALSHI_PRIVATE_KEY_PEM_PATH"):
                secrets.update(_pem_body_lines(value))
        secrets.update(url_password(value))
    return {s for s in secrets if s}
