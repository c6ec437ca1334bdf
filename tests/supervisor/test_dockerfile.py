"""The Dockerfile, checked by its steps (no Docker engine here): each RUN step is a command the
Makefile also runs, the image runs as non-root, and CMD/HEALTHCHECK are real commands."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from ingestor.cli import COMMANDS
from ingestor.supervisor import health

from .conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
MAKEFILE = REPO / "Makefile"
# Steps with no counterpart on a developer machine: creating the image's non-root account.
IMAGE_ONLY_PROGRAMS = {"useradd"}
# Make's own bookkeeping in the install recipe, not an install step.
MAKE_BOOKKEEPING_PROGRAMS = {"touch"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def commands(shell: str) -> list[list[str]]:
    """A shell line split into its `&&` commands, each as normalised argv."""
    return [shlex.split(part) for part in shell.split("&&") if part.strip()]


def make_variables(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for match in re.finditer(r"^([A-Z_]+)\s*[?:]?=\s*(.*?)\s*$", text, re.MULTILINE):
        out.setdefault(match.group(1), match.group(2))
    return out


def expand(text: str, variables: dict[str, str]) -> str:
    for _ in range(10):
        text = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)
    return text


def install_recipe() -> list[list[str]]:
    """The commands `make install` runs, with Make variables expanded."""
    text = MAKEFILE.read_text()
    variables = make_variables(text)
    install_deps = re.search(r"^install:\s*(.*)$", text, re.MULTILINE)
    assert install_deps, "Makefile has no install target"
    target = install_deps.group(1).strip()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(expand(line.strip(), variables))
    return [argv for line in recipe for argv in commands(line)]


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_base_image_is_python_311_slim(docker: list[tuple[str, str]]) -> None:
    assert docker[0] == ("FROM", "python:3.11-slim")


@pytest.mark.skipif(not MAKEFILE.exists(), reason="the Makefile has not been written yet")
def test_every_run_step_is_a_makefile_install_command_in_the_same_order(
    docker: list[tuple[str, str]],
) -> None:
    make_steps = [c for c in install_recipe() if c[0] not in MAKE_BOOKKEEPING_PROGRAMS]
    docker_steps = [
        argv
        for word, args in docker
        if word == "RUN"
        for argv in commands(args)
        if argv[0] not in IMAGE_ONLY_PROGRAMS
    ]
    assert docker_steps == make_steps
    assert any("-e" in step and ".[test]" in step for step in docker_steps)


def test_image_runs_as_a_non_root_user_after_installing(docker: list[tuple[str, str]]) -> None:
    words = [w for w, _ in docker]
    users = [args for w, args in docker if w == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    useradd = [args for w, args in docker if w == "RUN" and args.startswith("useradd")]
    assert useradd and useradd[0].split()[-1] == users[-1]


def test_copied_sources_exist(docker: list[tuple[str, str]]) -> None:
    for word, args in docker:
        if word == "COPY":
            *sources, _dest = args.split()
            for source in sources:
                assert (REPO / source).exists(), source


def test_cmd_is_supervisord_with_the_copied_config(docker: list[tuple[str, str]]) -> None:
    cmd = [json.loads(args) for w, args in docker if w == "CMD"]
    assert cmd == [["supervisord", "-c", "/app/supervisord.conf", "-n"]]
    workdir = [args for w, args in docker if w == "WORKDIR"]
    assert workdir == ["/app"]
    assert any(w == "COPY" and "supervisord.conf" in args for w, args in docker)


def test_healthcheck_runs_ingestor_health_with_valid_arguments(
    docker: list[tuple[str, str]],
) -> None:
    (check,) = [args for w, args in docker if w == "HEALTHCHECK"]
    argv = json.loads(check[check.index("CMD") + 3 :].strip())
    assert argv[:2] == ["ingestor", "health"]
    parser = argparse.ArgumentParser()
    health.add_arguments(parser)
    parsed = parser.parse_args(argv[2:])
    assert parsed.role == "all"


def test_migrate_is_documented_as_a_one_off_command() -> None:
    text = DOCKERFILE.read_text()
    assert "migrate" in COMMANDS
    assert re.search(r"^#.*docker run --rm .*ingestor migrate", text, re.MULTILINE)


def test_parsing_helpers_on_a_known_input() -> None:
    parsed = instructions("FROM x\n# c\nRUN a 'b c' && \\\n    d\nUSER u\n")
    assert parsed == [("FROM", "x"), ("RUN", "a 'b c' &&  d"), ("USER", "u")]
    assert commands(parsed[1][1]) == [["a", "b c"], ["d"]]
    assert expand("$(BIN)/pip", {"BIN": "$(VENV)/bin", "VENV": ".venv"}) == ".venv/bin/pip"


def test_makefile_and_dockerfile_are_at_the_repo_root() -> None:
    assert Path(DOCKERFILE).is_file()
    assert (REPO / "supervisord.conf").is_file()
