from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from daemon.config import Config, load_config, sections
from daemon.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "eboxd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file() -> None:
    config = load_config(environ={})
    assert config.source == "defaults"
    assert config.database_url.startswith("sqlite:///")
    assert config.broker.url.startswith("amqp://")
    assert config.ebox.environment == "sandbox"


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[broker]\nheartbeat_seconds = 20\n[worker]\nqueues = ["poll", "fetch"]\n')
    config = load_config(path, environ={"EBOXD_BROKER__HEARTBEAT_SECONDS": "30",
                                        "EBOXD_DATABASE__URL": "postgresql+psycopg://u@h/db",
                                        "EBOXD_WORKER__THREADS": "4", "EBOXD_DATABASE__ECHO": "yes"})
    assert config.broker.heartbeat_seconds == 30  # the environment wins over the file
    assert config.worker.queues == ("poll", "fetch")
    assert config.worker.threads == 4
    assert config.database.echo is True
    assert config.database_url == "postgresql+psycopg://u@h/db"


def test_data_dir_follows_systemd_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    assert load_config(environ={}).database_url == f"sqlite:///{tmp_path / 'eboxd.db'}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[brokr]\nurl = 'x'\n", "eboxd.toml:1: unknown section [brokr] (did you mean 'broker'?)"),
        ("[broker]\nurl = 'amqp://x'\nheartbeet_seconds = 5\n",
         "eboxd.toml:3: unknown key [broker] heartbeet_seconds (did you mean 'heartbeat_seconds'?)"),
        ("[broker]\nheartbeat_seconds = 'fast'\n", "eboxd.toml:2: [broker] heartbeat_seconds: expected an integer"),
        ("[database]\necho = 1\n", "[database] echo: expected true or false, got 1"),
        ("[worker]\nmax_backoff_seconds = 3600\n", "[worker] max_backoff_seconds: must be at most 1200"),
        ("[service]\nhttp_port = 70000\n", "[service] http_port: must be at most 65535"),
        ("[logging]\nlevel = 'loud'\n", "[logging] level: must be one of debug, info, warning, error"),
        ("[worker]\nqueues = 'poll'\n", "[worker] queues: expected a list of strings"),
        ("broker = 3\n", "'broker' must be a [section] table"),
        ("[broker\n", "invalid TOML"),
    ],
)
def test_bad_file_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    assert message in str(caught.value)
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"EBOXD_BROKER__HEARTBEAT_SECONDS": "soon"}, "EBOXD_BROKER__HEARTBEAT_SECONDS: expected an integer"),
        ({"EBOXD_BROKR__URL": "x"}, "EBOXD_BROKR__URL: unknown section 'brokr'"),
        ({"EBOXD_BROKER__URI": "x"}, "unknown key [broker] uri (did you mean 'url'?)"),
        ({"EBOXD_DATABASE__ECHO": "perhaps"}, "expected a boolean"),
        ({"EBOXD_OUTBOX__BATCH_SIZE": "0"}, "must be at least 1"),
    ],
)
def test_bad_environment_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match="environment EBOXD_") as caught:
        load_config(environ=environ)
    assert message in str(caught.value)


def test_unrelated_environment_variables_are_ignored() -> None:
    load_config(environ={"EBOXD_TEST_AMQP_URL": "amqp://x", "EBOXD_CONFIG_UNUSED": "1"})


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "absent.toml", environ={})


def test_example_file_documents_every_key_with_its_default() -> None:
    example = tomllib.loads((REPO / "config" / "eboxd.example.toml").read_text(encoding="utf-8"))
    defaults = Config()
    assert set(example) == set(sections())
    for name, cls in sections().items():
        documented = example[name]
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(documented) == fields, f"[{name}] in the example differs from the code"
        for key, value in documented.items():
            expected = getattr(getattr(defaults, name), key)
            assert (tuple(value) if isinstance(value, list) else value) == expected, f"[{name}] {key}"
    # And the example itself loads.
    load_config(REPO / "config" / "eboxd.example.toml", environ={})
