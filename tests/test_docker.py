"""The Dockerfile: hadolint-clean, and its install steps work (no Docker engine runs here)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .procs import command

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [command("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_final_stage_is_minimal_and_non_root() -> None:
    build, final = stages()
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+ AS build", build[0][1]), "pinned slim base"
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", final[0][1])
    words = dict(final)
    assert not any(k == "RUN" for k, _ in final), "no build tools or package installs in the final stage"
    assert re.fullmatch(r"\d+:\d+", words["USER"]) and not words["USER"].startswith("0:"), "fixed non-root UID"
    assert words["EXPOSE"] == "10370"
    assert json.loads(words["ENTRYPOINT"]) == ["drs-exporter"]
    assert json.loads(words["CMD"]) == ["--config.file=/etc/drs-exporter/drs-exporter.yml"]
    assert "PYTHONDONTWRITEBYTECODE=1" in words["ENV"], "nothing written at run time (read-only root)"
    labels = " ".join(v for k, v in final if k == "LABEL")
    for key in ("title", "description", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_install_steps_produce_a_working_entrypoint(tmp_path: Path) -> None:
    """Run the build stage's COPY and RUN steps in a scratch root, then the entrypoint's --version."""
    build = stages()[0]
    ignore = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]

    def allowed(path: str) -> bool:
        verdict = True
        for pattern in ignore:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!").rstrip("/")):
                verdict = negated
        return verdict

    root = tmp_path / "root"
    workdir = "/"
    env = dict(os.environ)
    shim = tmp_path / "shim"
    shim.mkdir()
    # The base image's `python`; here the interpreter this venv was made from.
    (shim / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    env["PATH"] = f"{shim}:{env['PATH']}"
    env.pop("VIRTUAL_ENV", None)
    for word, args in build[1:]:
        if word == "WORKDIR":
            workdir = args
            (root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif word == "ENV":
            for key, value in (item.split("=", 1) for item in shlex.split(args)):
                env[key] = value
        elif word == "COPY":
            *sources, dest = shlex.split(args)
            target = root / workdir.lstrip("/") / dest
            for source in sources:
                assert allowed(source), f"{source} is excluded by .dockerignore"
                src = ROOT / source
                if src.is_dir():
                    shutil.copytree(
                        src,
                        target if not dest.endswith("/") else target / src.name,
                        ignore=shutil.ignore_patterns("__pycache__"),
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target / src.name)
        elif word == "RUN":
            script = args.replace("/opt/venv", str(root / "opt/venv")).replace("/src", str(root / "src"))
            result = subprocess.run(
                ["bash", "-c", script],
                cwd=root / workdir.lstrip("/"),
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    entrypoint = root / "opt/venv/bin/drs-exporter"
    result = subprocess.run([str(entrypoint), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("drs-exporter, version ")
    assert (root / "opt/venv/bin/drs-simulator").exists()
