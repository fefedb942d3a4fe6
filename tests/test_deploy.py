"""The deployment recipe in deploy/, checked by its own tools (systemd-analyze verify for
the unit, caddy validate for the Caddyfile) and against the app it serves: the body
limits, the address uvicorn listens on, the folder it writes to."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digest import config_secrets
from digest.config import Settings
from digest.web.pages import MAX_BODY, MAX_UPLOAD

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNIT = DEPLOY / "digest.service"
CADDYFILE = DEPLOY / "Caddyfile"
ENV_EXAMPLE = DEPLOY / "digest.env.example"
DEADLINE_SECONDS = 60


def tool(name: str, package: str) -> str:
    """The tool's path; a missing one skips, except under make test (which installs it)."""
    found = shutil.which(name)
    if found is None:
        why = f"{name} is not installed (Debian: apt-get install {package}; make test does)"
        if os.environ.get("DIGEST_REQUIRE_POSTGRES"):  # set by make test: there, fail
            pytest.fail(why)
        pytest.skip(why)
    return found


def unit_settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every setting, in order (a key may repeat)."""
    settings, section = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.append((section, key.strip(), value.strip()))
    return settings


def unit_values(key: str) -> list[str]:
    return [v for s, k, v in unit_settings(UNIT.read_text()) if s == "Service" and k == key]


def checkable_unit(folder: Path) -> Path:
    """The unit as shipped, in ``folder``. verify refuses a unit whose ExecStart binary is
    missing, and /opt/digest exists only on a server: then that one path (and nothing
    else on any line) becomes an executable that exists here."""
    text = UNIT.read_text()
    (start,) = unit_values("ExecStart")
    binary = start.split()[0]
    if not os.access(binary, os.X_OK):
        text = text.replace(f"ExecStart={binary} ", f"ExecStart={sys.executable} ", 1)
    copy = folder / UNIT.name  # verify checks the name too: keep it
    copy.write_text(text)
    return copy


# Warnings about this machine rather than about the unit: the digest user and its
# EnvironmentFile exist only on a server (systemd-analyze 252 says nothing of either
# today; a later one might).
ENVIRONMENT_ONLY = re.compile(r"user|group|EnvironmentFile|/etc/digest/", re.IGNORECASE)


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    unit = checkable_unit(tmp_path)
    done = subprocess.run(
        [analyze, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    # verify exits 0 on a misspelt key or a value it cannot parse ("Unknown key ...,
    # ignoring", "Failed to parse ..."): its own lines on stderr are the real verdict.
    # Lines about other units on this machine (not naming ours) are not ours to fix.
    ours = [
        line
        for line in done.stderr.splitlines()
        if UNIT.name in line and not ENVIRONMENT_ONLY.search(line)
    ]
    assert done.returncode == 0, done.stderr
    assert ours == [], "\n".join(ours)


def test_the_caddyfile_passes_caddy_validate(tmp_path: Path) -> None:
    caddy = tool("caddy", "caddy")
    # validate provisions the config (TLS included) without listening or reaching the
    # network; it keeps its storage under HOME and XDG_*, so those point here.
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    done = subprocess.run(
        [caddy, "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout
    # A warning is a problem with the file ("not formatted; run caddy fmt", a directive
    # that does nothing): none is allowed.
    complaints = [
        line for line in done.stderr.splitlines() if re.search(r'"level":"(warn|error)', line)
    ]
    assert complaints == [], "\n".join(complaints)


UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def caddy_bytes(size: str) -> int:
    """A Caddyfile size (``55MB``, ``50MiB``) in bytes, as Caddy reads it (MB is 10^6)."""
    match = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]*)", size)
    assert match, f"max_size {size!r} is not a size Caddy reads"
    return int(float(match[1]) * UNITS[match[2].upper()])


def test_caddy_lets_the_largest_upload_through_and_little_more() -> None:
    (size,) = re.findall(r"^\s*max_size\s+(\S+)", CADDYFILE.read_text(), re.MULTILINE)
    largest = max(MAX_BODY, MAX_UPLOAD)
    # Above the app's own limit, so the app gives its own 413; not far above, so a huge
    # body stops at the proxy.
    assert largest < caddy_bytes(size) <= largest * 1.25


def test_caddy_proxies_to_where_the_unit_listens() -> None:
    (start,) = unit_values("ExecStart")
    args = start.split()
    host, port = args[args.index("--host") + 1], args[args.index("--port") + 1]
    (upstream,) = re.findall(r"^\s*reverse_proxy\s+(\S+)", CADDYFILE.read_text(), re.MULTILINE)
    assert upstream == f"{host}:{port}"
    # ... and that address is the proxy the README and config.toml tell them to trust.
    readme = (DEPLOY.parent / "README.md").read_text()
    assert f'trusted_proxies = ["{host}"]' in readme
    assert f'trusted_proxies = ["{host}"]' in CADDYFILE.read_text()


def test_the_unit_may_write_its_working_directory() -> None:
    (working,) = unit_values("WorkingDirectory")
    writable = [Path(p.lstrip("-+")) for v in unit_values("ReadWritePaths") for p in v.split()]
    folder = Path(working.lstrip("-"))
    assert any(folder == w or w in folder.parents for w in writable), (folder, writable)
    assert unit_values("ProtectSystem") == ["strict"]


def test_the_env_example_holds_no_secret_and_explains_each_variable() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    names = []
    for i, line in enumerate(lines):
        match = re.fullmatch(r"#?([A-Z][A-Z0-9_]+)=(.*)", line)
        if not match:
            continue
        names.append(match[1])
        assert lines[i - 1].startswith("#"), f"{match[1]} has no comment above it"
        if not line.startswith("#"):  # a live line is one to fill in, never a value
            assert match[2] == "", line
    secrets = Path(config_secrets.__file__).read_text()
    for name in names:  # every name is one digest reads: a secret, or a DIGEST_ setting
        setting = name.removeprefix("DIGEST_").lower()
        assert f'"{name}"' in secrets or setting in Settings.model_fields, name
    assert {"DIGEST_SECRET_KEY", "SENDGRID_API_KEY", "SENDGRID_WEBHOOK_PUBLIC_KEY"} <= set(names)
    assert "DIGEST_DATABASE_URL" in names
