"""deploy/Dockerfile (no Docker engine here): hadolint, and the build's promises read from it."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import tomllib

import pytest

from tests.deploy.support import (
    DOCKERFILE,
    DOCKERIGNORE,
    REPO,
    cli_commands,
    hadolint_command,
    known_env_names,
)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending
    return out


INSTRUCTIONS = instructions()


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in INSTRUCTIONS:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def env_values(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", args):
                values[key] = value
    return values


def arg_default(name: str) -> str:
    for keyword, args in INSTRUCTIONS:
        if keyword == "ARG" and args.startswith(f"{name}="):
            return args.split("=", 1)[1]
    raise AssertionError(f"ARG {name} has no default")


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [*hadolint_command(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_311_slim_base_for_every_stage() -> None:
    base = arg_default("PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    froms = [args for keyword, args in INSTRUCTIONS if keyword == "FROM"]
    assert [f.split()[0] for f in froms] == ["${PYTHON_IMAGE}"] * len(froms)
    assert len(froms) == 2 and froms[0].endswith("AS build") and froms[1].endswith("AS runtime")


def test_torch_pinned_cpu_wheel_before_the_project() -> None:
    assert arg_default("TORCH_VERSION") == "2.13.0"
    assert arg_default("TORCH_INDEX_URL") == "https://download.pytorch.org/whl/cpu"
    runs = [args for keyword, args in stages()[0] if keyword == "RUN"]
    torch_run = next(i for i, r in enumerate(runs) if '"torch==${TORCH_VERSION}"' in r)
    assert '--index-url "${TORCH_INDEX_URL}"' in runs[torch_run]
    project_run = next(i for i, r in enumerate(runs) if re.search(r"pip install .* \. ", r))
    assert torch_run < project_run
    # the pin the Makefile uses is the one the image uses
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "torch==2.13.0" in makefile


def test_postgres_driver_installed() -> None:
    runs = " ".join(args for keyword, args in stages()[0] if keyword == "RUN")
    assert '"psycopg[binary]==${PSYCOPG_VERSION}"' in runs
    assert re.fullmatch(r"\d+\.\d+\.\d+", arg_default("PSYCOPG_VERSION"))


def test_model_prepared_at_build_time_into_models() -> None:
    build, runtime = stages()
    assert env_values(build)["CHATDA_MODELS_DIR"] == "/models"
    assert any(k == "RUN" and "chatda model prepare" in a for k, a in build)
    # readable by the non-root user (the conversion writes the weights with mode 0600)
    prepare = next(a for k, a in build if k == "RUN" and "chatda model prepare" in a)
    assert "chmod -R a+rX" in prepare and "/models" in prepare
    assert ("COPY", "--from=build /models /models") in runtime
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    env = env_values(runtime)
    assert env["CHATDA_MODELS_DIR"] == "/models"
    assert env["HF_HUB_OFFLINE"] == "1"  # nothing downloaded at run time


def test_int8_onnx_model_is_an_opt_in_build_step() -> None:
    build, _ = stages()
    assert arg_default("ONNX_INT8") == "false"
    run = next(a for k, a in build if k == "RUN" and "chatda model prepare" in a)
    prepare = " ".join(run.split())
    export = prepare.index('if [ "${ONNX_INT8}" = "true" ]; then chatda train export-onnx')
    # before the registry is opened to the service user; the fp32 model stays (the CPU default)
    assert "rm " not in prepare
    assert export < prepare.index("chmod -R a+rX")


def test_tuned_model_is_an_opt_in_build_step() -> None:
    """Base serves (the adapter's gate kept it), so @tuned's 465 MB are built on request."""
    build, _ = stages()
    assert arg_default("TUNED") == "false"
    run = " ".join(next(a for k, a in build if k == "RUN" and "chatda model prepare" in a).split())
    assert run.startswith(
        'if [ "${TUNED}" = "true" ]; then chatda model prepare; '
        "else chatda model prepare --no-tuned; fi"
    )


def test_runtime_env_names_are_real_settings() -> None:
    for stage in stages():
        chatda = {k for k in env_values(stage) if k.startswith("CHATDA_")}
        assert chatda - known_env_names() == set()


def test_non_root_user() -> None:
    runtime = stages()[1]
    users = [a for k, a in runtime if k == "USER"]
    assert users, "no USER in the runtime stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert gid.isdigit() and int(gid) != 0
    assert any(k == "RUN" and f"--uid {uid}" in a for k, a in runtime)


def test_entrypoint_cmd_and_healthcheck() -> None:
    runtime = dict((k, a) for k, a in stages()[1] if k in {"ENTRYPOINT", "CMD", "EXPOSE"})
    assert json.loads(runtime["ENTRYPOINT"]) == ["chatda"]
    cmd = json.loads(runtime["CMD"])
    assert cmd == ["serve", "--host", "0.0.0.0"]
    assert cmd[0] in cli_commands()
    assert runtime["EXPOSE"] == "8000"
    (check,) = [a for k, a in stages()[1] if k == "HEALTHCHECK"]
    options, _, command = check.partition(" CMD ")
    assert "/readyz" in command  # healthy = ready to serve
    assert json.loads(command)[0] == "python"  # no curl in python:slim
    assert "--start-period=" in options


def test_every_package_is_copied() -> None:
    """A package pyproject installs but the Dockerfile forgets would break only in the image."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns}
    copy_sources: set[str] = set()
    for k, a in stages()[0]:
        if k == "COPY" and not a.startswith("--from"):
            copy_sources.update(a.split()[:-1])
    assert packages <= copy_sources
    assert {"pyproject.toml", "README.md"} <= copy_sources  # README: pyproject's readme


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    hit = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        pattern = pattern.removeprefix("**/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes + parts):
            hit = not negate
    return hit


@pytest.mark.parametrize("path", [".venv", ".git", ".chatda", ".env", "tests", "artifacts"])
def test_dockerignore_excludes(path: str) -> None:
    assert ignored(path)


def test_dockerignore_keeps_what_the_build_copies() -> None:
    for keyword, args in stages()[0]:
        if keyword == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), source
                assert not ignored(source), source
