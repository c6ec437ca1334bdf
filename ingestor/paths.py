"""Where the program keeps its per-user files: embedded database, run state, demo keys."""

from __future__ import annotations

import os
from pathlib import Path


def ingestor_home(override: str | os.PathLike[str] | None = None) -> Path:
    """INGESTOR_HOME, else $XDG_DATA_HOME/kalshi-ingestor, else ~/.local/share/kalshi-ingestor."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("INGESTOR_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "kalshi-ingestor"


def embedded_pg_dir(home: Path | None = None) -> Path:
    return (home or ingestor_home()) / "pg"


def run_dir(home: Path | None = None) -> Path:
    """Supervisor status file and other run-time state."""
    return (home or ingestor_home()) / "run"


def supervisor_status_file(home: Path | None = None) -> Path:
    return run_dir(home) / "supervisor-status.json"
