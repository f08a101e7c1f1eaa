"""The hooks through which plugins extend the CLI and ``eboxd sandbox``: registration, validation,
error isolation, and a plugin command reached through the ``eboxd`` group without shadowing."""

from __future__ import annotations

import types
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

import daemon.plugins.manager as manager_module
from daemon.cli import cli
from daemon.plugins import PluginManager, hookimpl
from daemon.sandbox.httpkit import Response, start_server


def _plugin(hook: str, function: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{hook: hookimpl(function)})


@click.command("hello")
def hello() -> None:
    click.echo("hello from a plugin")


@click.command("status")
def fake_status() -> None:
    click.echo("shadowed!")


def test_hook_eboxd_register_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = PluginManager()
    assert pm.register(_plugin("eboxd_register_commands", lambda register: (register(hello),
                                                                             register(fake_status))), name="good")
    assert pm.register(_plugin("eboxd_register_commands", lambda register: register("not a command")), name="junk")
    assert pm.register(_plugin("eboxd_register_commands", lambda register: register(hello)), name="twice")
    assert pm.register(_plugin("eboxd_register_commands", lambda register: 1 / 0), name="broken")
    assert set(pm.commands()) == {"hello", "status"}
    failures = sorted((f.name, f.stage) for f in pm.failures)
    assert [f for f in failures if f[0] in ("broken", "junk")] == [("broken", "hook"), ("junk", "register")]
    assert [f for f in failures if f[0] in ("good", "twice")] in ([("good", "register")], [("twice", "register")])
    assert any("already registered" in str(f) for f in pm.failures)
    monkeypatch.setattr(manager_module, "_default", pm)
    runner = CliRunner()
    assert runner.invoke(cli, ["hello"]).stdout == "hello from a plugin\n"
    assert "hello" in runner.invoke(cli, ["--help"]).stdout
    assert cli.get_command(click.Context(cli), "status") is not fake_status  # built-ins win


class _EchoSandbox:
    name = "echo"
    description = "answers its path"
    default_port = 0

    def start(self, host: str, port: int, *, seed: int) -> Any:
        server = start_server(lambda request: Response(200, f"{seed}:{request.path}".encode()), host, port)
        server.summary = lambda: f"echo on {server.url}"  # type: ignore[attr-defined]
        return server


def test_hook_eboxd_register_sandboxes() -> None:
    pm = PluginManager()
    assert pm.register(_plugin("eboxd_register_sandboxes", lambda register: register(_EchoSandbox())), name="echo")
    assert pm.register(_plugin("eboxd_register_sandboxes", lambda register: register(object())), name="junk")
    sandboxes = pm.sandboxes()
    assert list(sandboxes) == ["echo"]
    assert [(f.name, f.stage) for f in pm.failures] == [("junk", "register")]
    running = sandboxes["echo"].start("127.0.0.1", 0, seed=3)
    try:
        assert httpx.get(f"{running.url}/x", timeout=5).text == "3:/x"
        assert running.summary().startswith("echo on http://127.0.0.1:")
    finally:
        running.shutdown()


def test_sandbox_with_an_unknown_plugin_sandbox_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_module, "_default", PluginManager())
    result = CliRunner().invoke(cli, ["sandbox", "--port", "0", "--with", "nope"])
    assert result.exit_code == 2
    assert "no plugin sandbox 'nope'" in result.output


