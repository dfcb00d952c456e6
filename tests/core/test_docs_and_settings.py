"""The docs and the deployment settings keep up with the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from chatsite import events

ROOT = Path(__file__).resolve().parents[2]


def test_every_event_type_the_server_emits_is_documented():
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    documented = set(re.findall(r"^### `([a-z.]+)`", protocol, flags=re.M))
    assert documented >= events.EVENT_TYPES, f"undocumented events: {sorted(events.EVENT_TYPES - documented)}"
    # And every type built in events.py is registered (a new builder cannot skip the registry).
    built = set(re.findall(r'_event\(\s*"([a-z.]+)"', (ROOT / "chatsite" / "events.py").read_text()))
    assert built <= events.EVENT_TYPES


def test_every_environment_setting_is_documented():
    source = (ROOT / "chatsite" / "settings.py").read_text()
    read = set(re.findall(r'env(?:_bool|_int|_list)?\("([A-Z_]+)"', source))
    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = sorted(name for name in read if f"`{name}`" not in operations)
    assert not missing, f"settings read from the environment but not in docs/operations.md: {missing}"


def _run_manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "chatsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key_or_allowed_hosts():
    no_secret = _run_manage(["check"], {"DEBUG": "0", "ALLOWED_HOSTS": "chat.example.com"})
    assert no_secret.returncode != 0 and "SECRET_KEY" in no_secret.stderr
    no_hosts = _run_manage(["check"], {"DEBUG": "0", "SECRET_KEY": "k" * 30 + "-production-secret-" + "q" * 20})
    assert no_hosts.returncode != 0 and "ALLOWED_HOSTS" in no_hosts.stderr


def test_check_deploy_is_clean_in_production():
    result = _run_manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DEBUG": "0",
            "SECRET_KEY": "x7#Lq9!vR2@mZ4$wT8^kP1&nB6*cY3(dF5)hJ0_gS" + "aQ2wE4rT6y",
            "ALLOWED_HOSTS": "chat.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
