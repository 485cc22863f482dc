"""Start-up mistakes are one line naming the environment variable and what to do, never a
traceback: ``atrium serve`` and ``atrium migrate`` run as the operator runs them."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

ATRIUM = str(Path(sys.executable).with_name("atrium"))
PG_URL = os.environ.get("ATRIUM_TEST_DATABASE_URL")
PRODUCTION = {
    "ATRIUM_ENVIRONMENT": "production",
    "ATRIUM_DATABASE__URL": "postgresql+asyncpg://atrium@127.0.0.1:9/atrium",
    "ATRIUM_AUTH__SIGNING_KEY_FILE": "/dev/null",
    "ATRIUM_MAIL__SMTP_HOST": "smtp.example.com",
    "ATRIUM_MAIL__LINK_BASE_URL": "https://id.example.com",
    "ATRIUM_METRICS__TOKEN": "a-metrics-bearer-token",
    "ATRIUM_API_KEYS__HMAC_SECRET": "a-test-api-key-hmac-secret",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_atrium(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
    return subprocess.run(
        [ATRIUM, *args],
        env=base
        | {
            "ATRIUM_DATA_DIR": str(tmp_path / "var"),
            "ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB": "1024",
            "ATRIUM_AUTH__ARGON2_TIME_COST": "1",
        }
        | env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line of a refused start (exit status 2, no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "╭" not in result.stderr  # rich's framed traceback
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_atrium(tmp_path, "serve", "--port", str(_free_port()), **env)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            {"ATRIUM_DATABASE__URL": "not a url"},
            ["ATRIUM_DATABASE__URL", "postgresql+asyncpg://"],
            id="bad-url",
        ),
        pytest.param(
            {"ATRIUM_DATABASE__URL": "postgres://atrium:s3cret-pw@127.0.0.1/atrium"},
            ["ATRIUM_DATABASE__URL", "scheme postgres:// is not supported"],
            id="scheme",
        ),
        pytest.param(
            {"ATRIUM_DATABASE__URL": "postgresql+asyncpg://atrium@127.0.0.1:5432"},
            ["ATRIUM_DATABASE__URL", "names no database"],
            id="no-database-name",
        ),
        pytest.param(
            {"ATRIUM_AUTH__ACCESS_TOKEN_TTL_SECONDS": "5"},
            ["ATRIUM_AUTH__ACCESS_TOKEN_TTL_SECONDS='5'", "greater than or equal to 30"],
            id="bad-value",
        ),
        pytest.param(
            {"ATRIUM_HTTP__CORS_ORIGINS": "https://app.example.com"},
            ["ATRIUM_HTTP__CORS_ORIGINS is not valid JSON"],
            id="not-json",
        ),
        pytest.param(
            {"ATRIUM_MAIL__LEASE_SECONDS": "10"},
            ["ATRIUM_MAIL__LEASE_SECONDS must exceed ATRIUM_MAIL__SMTP_TIMEOUT_SECONDS"],
            id="rule-across-settings",
        ),
        pytest.param(
            {"ATRIUM_ENVIRONMENT": "production"},
            [
                "ATRIUM_DATABASE__URL",
                "ATRIUM_AUTH__SIGNING_KEY or ATRIUM_AUTH__SIGNING_KEY_FILE",
                "ATRIUM_API_KEYS__HMAC_SECRET",
                "ATRIUM_MAIL__SMTP_HOST",
                "ATRIUM_MAIL__LINK_BASE_URL",
            ],
            id="production-lists-every-missing-setting",
        ),
        pytest.param(
            {"ATRIUM_ENVIRONMENT": "production", "ATRIUM_DATABASE_URL": "postgresql+asyncpg://x/y"},
            ["requires ATRIUM_DATABASE__URL", "ATRIUM_DATABASE_URL (did you mean"],
            id="production-missing-explained-by-a-typo",
        ),
    ],
)
def test_invalid_settings_stop_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], expected: list[str]
) -> None:
    line = one_error_line(serve(tmp_path, **env))

    for part in expected:
        assert part in line
    assert "Value error" not in line
    assert "s3cret-pw" not in line  # a URL's password is never repeated
    assert not (tmp_path / "var").exists()  # nothing was started


def test_the_same_mistake_stops_migrate(tmp_path: Path) -> None:
    line = one_error_line(run_atrium(tmp_path, "migrate", ATRIUM_DATABASE__URL="mysql://x/y"))

    assert "ATRIUM_DATABASE__URL" in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "postgresql+asyncpg://atrium@atrium-db.invalid:5432/atrium",
            "host 'atrium-db.invalid' of ATRIUM_DATABASE__URL cannot be resolved",
            id="unknown-host",
        ),
        pytest.param(
            "postgresql+asyncpg://atrium@127.0.0.1:{closed}/atrium",
            "nothing accepts connections at 127.0.0.1:{closed} (ATRIUM_DATABASE__URL)",
            id="closed-port",
        ),
    ],
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_an_unreachable_database_is_one_line(
    tmp_path: Path, url: str, expected: str, command: str
) -> None:
    closed = str(_free_port())
    args = ("serve", "--port", str(_free_port())) if command == "serve" else ("migrate",)

    result = run_atrium(tmp_path, *args, ATRIUM_DATABASE__URL=url.format(closed=closed))

    assert expected.format(closed=closed) in one_error_line(result)


@pytest.mark.skipif(PG_URL is None, reason="needs ATRIUM_TEST_DATABASE_URL")
def test_a_missing_database_is_named_with_the_command_to_create_it(tmp_path: Path) -> None:
    assert PG_URL is not None
    url = make_url(PG_URL).set(database="atrium_no_such_database")

    line = one_error_line(
        run_atrium(
            tmp_path, "migrate", ATRIUM_DATABASE__URL=url.render_as_string(hide_password=False)
        )
    )

    assert "the database 'atrium_no_such_database' does not exist" in line
    assert "createdb" in line


def _unwritable_dir(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        # Permissions do not stop root; sysfs refuses new folders to everyone.
        return Path("/sys/atrium-test") / tmp_path.name
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return locked / "var"


def test_an_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    data_dir = _unwritable_dir(tmp_path)

    line = one_error_line(serve(tmp_path, ATRIUM_DATA_DIR=str(data_dir)))

    assert f"ATRIUM_DATA_DIR='{data_dir}' is not a writable folder" in line


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    line = one_error_line(run_atrium(tmp_path, "migrate", ATRIUM_DATA_DIR=str(tmp_path / "file")))

    assert "ATRIUM_DATA_DIR" in line


def test_a_refused_admin_password_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(
        serve(tmp_path, ATRIUM_ADMIN_EMAIL="admin@example.com", ATRIUM_ADMIN_PASSWORD="admin2024")
    )

    assert line.startswith("error: ATRIUM_ADMIN_PASSWORD is refused (weak_password)")


def test_production_refuses_a_missing_signing_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "signing.pem"

    line = one_error_line(
        serve(tmp_path, **(PRODUCTION | {"ATRIUM_AUTH__SIGNING_KEY_FILE": str(key_file)}))
    )

    assert f"ATRIUM_AUTH__SIGNING_KEY_FILE='{key_file}' does not exist" in line
    assert not key_file.exists()  # no key of this node's own in its place


# --- unknown variables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("ATRIUM_DATABASE_URL", "ATRIUM_DATABASE__URL"),
        (
            "ATRIUM_METRICS__ENUMERATION_SAFE_REGISTRATION",
            "ATRIUM_AUTH__ENUMERATION_SAFE_REGISTRATION",
        ),
        ("ATRIUM_AUTH__ACESS_TOKEN_TTL_SECONDS", "ATRIUM_AUTH__ACCESS_TOKEN_TTL_SECONDS"),
    ],
)
def test_an_unknown_variable_is_a_warning_in_development(
    tmp_path: Path, variable: str, suggestion: str
) -> None:
    result = run_atrium(tmp_path, "migrate", "--sql", **{variable: "1"})

    assert result.returncode == 0, result.stderr
    assert (
        f"warning: unknown variable {variable} (did you mean {suggestion}?) is ignored"
        in result.stderr.splitlines()
    )


def test_an_unknown_variable_stops_production(tmp_path: Path) -> None:
    line = one_error_line(
        run_atrium(tmp_path, "migrate", "--sql", **PRODUCTION, ATRIUM_REDIS_URL="redis://r")
    )

    assert "unknown variables: ATRIUM_REDIS_URL (did you mean ATRIUM_REDIS__URL?)" in line


def test_known_and_test_suite_variables_are_not_reported(tmp_path: Path) -> None:
    result = run_atrium(
        tmp_path,
        "migrate",
        "--sql",
        ATRIUM_TEST_DATABASE_URL="postgresql+asyncpg://x/y",
        ATRIUM_AUTH='{"issuer": "https://id.example.com"}',
        atrium_log_level="warning",
    )

    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


def test_an_unreadable_key_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    bad = tmp_path / "previous.pem"
    bad.write_text("not a key")

    line = one_error_line(serve(tmp_path, ATRIUM_AUTH__VERIFICATION_KEY_FILES=f'["{bad}"]'))

    assert line.startswith(f"error: ATRIUM_AUTH__VERIFICATION_KEY_FILES: {bad}:")


def test_a_signing_key_that_is_not_a_key_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(serve(tmp_path, ATRIUM_AUTH__SIGNING_KEY="not a key"))

    assert line.startswith("error: ATRIUM_AUTH__SIGNING_KEY: ")
    assert "not a key" not in line  # a secret is never repeated


def test_every_atrium_variable_of_the_repository_is_known_or_tooling() -> None:
    """A variable that a script, manifest or document of the repository sets is either a
    setting or declared as tooling: production would otherwise refuse to start with it."""
    import re

    from atrium.config import unknown_variables

    root = Path(__file__).resolve().parent.parent
    paths = [
        *root.glob("deploy/**/*"),
        root / "Dockerfile",
        root / "Makefile",
        root / "README.md",
        *root.glob("docs/*.md"),
    ]
    found = set()
    for path in paths:
        if path.is_file():
            found |= set(re.findall(r"\bATRIUM_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    # Deliberate mistakes shown by the documentation, and group prefixes in prose.
    examples = {"ATRIUM_DATABASE_URL", "ATRIUM_AUTH__ACESS_TOKEN_TTL_SECONDS"}
    names = sorted(n for n in found - examples if not n.endswith("__"))

    # The settings groups of the applications shipped in src/atrium/apps are known when
    # they are listed in ATRIUM_APPS (the command line checks them then).
    from atrium.core.apps import declared_apps, settings_variables

    shipped = [
        p.name for p in (root / "src/atrium/apps").iterdir() if (p / "__init__.py").is_file()
    ]
    of_apps = set().union(*(settings_variables(a) for a in declared_apps(shipped)))
    assert [u for u in unknown_variables(names) if u.split(" ", 1)[0] not in of_apps] == []
