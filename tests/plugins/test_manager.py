"""The plugin manager: entry-point loading, error isolation, EBOXD_DISABLE_PLUGINS, each hook."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

from daemon.plugins import PluginManager, hookimpl, hookspecs
from tests.plugins.conftest import EXAMPLE_PLUGIN

REPO = Path(__file__).resolve().parents[2]
SPECS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("eboxd_")]


def test_every_hookspec_is_documented_with_its_signature() -> None:
    docs = (REPO / "docs/plugins.md").read_text(encoding="utf-8")
    for name in SPECS:
        signature = str(inspect.signature(getattr(hookspecs, name))).replace("'", "")
        assert f"{name}{signature}" in docs, f"docs/plugins.md lacks `{name}{signature}`"


def test_every_hookspec_has_a_test() -> None:
    here = Path(__file__).parent
    tests = "".join(path.read_text(encoding="utf-8") for path in here.rglob("test_*.py"))
    for name in SPECS:
        assert re.search(rf"def test_hook_{name}\b", tests), f"no test_hook_{name}"


def test_hook_eboxd_register_exporters(manager: PluginManager) -> None:
    exporter = manager.exporter("zip")
    assert exporter is not None
    assert exporter.name == "zip"


def test_hook_eboxd_export_finished() -> None:
    seen = []
    plugin = types.SimpleNamespace(eboxd_export_finished=hookimpl(
        lambda document_id, exporter, target, status, receipt, error: seen.append((document_id, status))))
    broken = types.SimpleNamespace(eboxd_export_finished=hookimpl(
        lambda document_id, exporter, target, status, receipt, error: 1 / 0))
    pm = PluginManager()
    assert pm.register(plugin, name="observer")
    assert pm.register(broken, name="broken")
    pm.export_finished(document_id=7, exporter="zip", target="/x", status="completed", receipt={}, error=None)
    assert seen == [(7, "completed")]
    assert [f.stage for f in pm.failures] == ["hook"]


def test_third_party_plugin_is_discovered_through_entry_points(installed_example: Path) -> None:
    pm = PluginManager().load(disabled=())
    names = {info.name: info for info in pm.plugins()}
    assert names["example"].distribution == "eboxd-example"
    assert names["example"].source.startswith(str(EXAMPLE_PLUGIN))
    assert "zip" in names
    assert names["zip"].distribution == "eboxd-zip"
    assert {"example", "zip"} <= set(pm.exporters())


def test_disable_plugins_by_entry_point_or_distribution(installed_example: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBOXD_DISABLE_PLUGINS", "eboxd-example, zip")
    pm = PluginManager().load()
    assert {"example", "zip"}.isdisjoint(info.name for info in pm.plugins())
    monkeypatch.setenv("EBOXD_DISABLE_PLUGINS", "*")
    assert PluginManager().load().plugins() == []


def test_a_broken_plugin_is_reported_by_distribution_and_does_not_stop_others(
        installed_example: Path) -> None:
    dist_info = installed_example / "eboxd_broken-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eboxd-broken\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[eboxd]\nbroken = eboxd_broken_does_not_exist\n")
    pm = PluginManager().load(disabled=())
    assert [(f.distribution, f.stage) for f in pm.failures] == [("eboxd-broken", "load")]
    assert "ModuleNotFoundError" in str(pm.failures[0])
    assert {"example", "zip"} <= set(pm.exporters())


def test_a_misspelt_hook_is_refused_without_harming_others(manager: PluginManager) -> None:
    misspelt = types.SimpleNamespace(eboxd_register_exporter=hookimpl(lambda register: None))
    assert not manager.register(misspelt, name="typo", distribution="eboxd-typo")
    assert manager.failures[0].distribution == "eboxd-typo"
    manager.check_pending()
    assert "zip" in manager.exporters()


def test_register_validates_and_dedups(manager: PluginManager) -> None:
    class Junk:
        name = "../evil"

    zip_exporter = manager.exporter("zip")

    def junk(register):
        register(object())
        register(Junk())
        register(zip_exporter)  # a second "zip"

    def raising(register):
        raise RuntimeError("boom")

    manager.register(types.SimpleNamespace(eboxd_register_exporters=hookimpl(junk)), name="junk")
    manager.register(types.SimpleNamespace(eboxd_register_exporters=hookimpl(raising)), name="raising")
    assert set(manager.exporters()) == {"zip"}
    assert [f.name for f in manager.failures].count("junk") == 2
    assert any(f.name == "raising" and "boom" in f.error for f in manager.failures)
