"""``eboxd plugins``, ``eboxd exporter``, ``eboxd exports`` and ``eboxd export zip`` on both databases."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.cli import exporters
from daemon.cli._state import State
from daemon.db.models import Export, OutboxRow
from daemon.plugins import manager as plugin_manager
from daemon.secrets import create_key_file
from daemon.store import FilesystemStore
from tests.cli.conftest import _Root, assert_one_line_error
from tests.plugins.conftest import seed_documents

NUMBER = "0123456749"


@click.group(cls=_Root)
@click.pass_context
def root(ctx: click.Context) -> None:
    ctx.obj = State(None)


for _command in exporters.COMMANDS:
    root.add_command(_command)


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test loads the installed plugins anew (a test may add a broken one to ``sys.path``)."""
    monkeypatch.setattr(plugin_manager, "_default", None)


@pytest.fixture
def store(db_env: dict[str, str]) -> FilesystemStore:
    """The document store the commands use (the default: under the data directory, with its master key)."""
    create_key_file(Path(db_env["EBOXD_DAEMON__DATA_DIR"]) / "master.key")
    return FilesystemStore(Path(db_env["EBOXD_DAEMON__DATA_DIR"]) / "documents")


@pytest.fixture
def seeded(engine: Engine, store: FilesystemStore, tmp_path: Path) -> list[int]:
    """Five stored documents of enterprise NUMBER, published 2024-05-01 … 05-05."""
    _, ids = seed_documents(engine, store, tmp_path, [f"brief {i}.pdf" for i in range(5)], number=NUMBER)
    return ids


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a path short enough to sit on one line of a table."""
    path = Path(tempfile.mkdtemp(prefix="ebx"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def eboxd(*args: str, **kwargs: Any) -> Result:
    return CliRunner().invoke(root, list(args), catch_exceptions=False, **kwargs)


def _rows(engine: Engine) -> list[Export]:
    with Session(engine) as session:
        return list(session.scalars(sa.select(Export).order_by(Export.id)))


# -- eboxd exporter enable / list / disable ---------------------------------------------------


def test_exporter_enable_list_disable(engine: Engine, seeded: list[int], short_dir: Path) -> None:
    out = short_dir / "handover"
    enabled = eboxd("exporter", "enable", "zip", "--enterprise", NUMBER, "--dir", str(out), "--set", "layout=files")
    assert enabled.exit_code == 0, enabled.output
    assert enabled.stdout.strip() == f"exporter zip enabled for {NUMBER} → {out}"
    assert out.is_dir()  # check() tried the folder

    listed = eboxd("exporter", "list", "--enterprise", NUMBER)
    [line] = [line for line in listed.stdout.splitlines() if "zip" in line]
    assert line.split()[:4] == [NUMBER, "zip", str(out), "yes"]
    assert f"dir={out}" in line
    assert "layout=files" in line

    disabled = eboxd("exporter", "disable", "zip", "--enterprise", NUMBER)
    assert disabled.stdout.strip() == f"exporter zip disabled for {NUMBER} (1 target)"
    [line] = [line for line in eboxd("exporter", "list").stdout.splitlines() if "zip" in line]
    assert line.split()[3] == "no"

    again = eboxd("exporter", "disable", "zip", "--enterprise", NUMBER)
    assert_one_line_error(again, 1, f"exporter zip is not enabled for {NUMBER}")


@pytest.mark.parametrize(("args", "needle"), [
    (["--set", "layout=tar"], "zip: layout must be one of zip, files, got 'tar'"),
    (["--set", "colour=red"], "exporter 'zip' has no setting 'colour' (settings: dir, layout)"),
    (["--set", "novalue"], "expected NAME=VALUE, got 'novalue'"),
])
def test_exporter_enable_refuses_invalid_settings(engine: Engine, seeded: list[int], tmp_path: Path,
                                                  args: list[str], needle: str) -> None:
    result = eboxd("exporter", "enable", "zip", "--enterprise", NUMBER, "--dir", str(tmp_path / "out"), *args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output
    assert "zip" not in eboxd("exporter", "list").stdout.split("settings", 1)[1]  # nothing saved


def test_exporter_enable_refuses_an_unknown_exporter_and_an_unwritable_folder(
        engine: Engine, seeded: list[int], tmp_path: Path) -> None:
    unknown = eboxd("exporter", "enable", "nope", "--enterprise", NUMBER, "--dir", str(tmp_path))
    assert_one_line_error(unknown, 2, "no exporter named 'nope'", "zip")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    unwritable = eboxd("exporter", "enable", "zip", "--enterprise", NUMBER, "--dir", str(blocker / "sub"))
    assert_one_line_error(unwritable, 2, f"zip: cannot write into {blocker / 'sub'}")
    unregistered = eboxd("exporter", "enable", "zip", "--enterprise", "0403170701", "--dir", str(tmp_path))
    assert_one_line_error(unregistered, 1, "is not registered")


# -- eboxd exports list / retry ---------------------------------------------------------------


def _ledger(engine: Engine, store: FilesystemStore, seeded: list[int], folder: Path) -> str:
    """One completed export (document 0) and one that failed after its last retry (document 1)."""
    from daemon.exports import run_export  # noqa: PLC0415
    from daemon.plugins import get_plugin_manager  # noqa: PLC0415
    from daemon.secrets import SecretBox  # noqa: PLC0415

    out = folder / "handover"
    eboxd("exporter", "enable", "zip", "--enterprise", NUMBER, "--dir", str(out), "--set", "layout=files")
    secrets, manager = SecretBox.from_config(State(None).config), get_plugin_manager()
    run_export(engine, store, secrets, manager, seeded[0], "zip", str(out), last_attempt=False)
    (out / NUMBER).rename(out / "moved")
    (out / NUMBER).write_text("a file where the enterprise folder should be")
    run_export(engine, store, secrets, manager, seeded[1], "zip", str(out), last_attempt=True)
    (out / NUMBER).unlink()
    return str(out)


def test_exports_list_shows_the_ledger_and_failed_ones_with_their_reason(
        engine: Engine, store: FilesystemStore, seeded: list[int], short_dir: Path) -> None:
    _ledger(engine, store, seeded, short_dir)
    completed, failed = _rows(engine)
    everything = eboxd("exports", "list").stdout
    assert f"{completed.id}  " in everything
    assert "completed" in everything
    assert "failed" in everything
    only_failed = eboxd("exports", "list", "--failed").stdout.splitlines()
    [line] = [line for line in only_failed if line.split() and line.split()[0].isdigit()]
    assert line.split()[:6] == [str(failed.id), NUMBER, str(seeded[1]), "zip", failed.target, "failed"]
    assert "Error" in line  # the reason, e.g. NotADirectoryError / FileExistsError
    other = eboxd("exports", "list", "--failed", "--enterprise", "0403170701")
    assert_one_line_error(other, 1, "is not registered")


def test_exports_retry_queues_failed_exports_again(engine: Engine, store: FilesystemStore, seeded: list[int],
                                                   short_dir: Path) -> None:
    _ledger(engine, store, seeded, short_dir)
    _, failed = _rows(engine)
    usage = eboxd("exports", "retry")
    assert usage.exit_code == 2
    assert "give export ids, or --all" in usage.stderr
    assert eboxd("exports", "retry", "999999").stdout.strip() == "0 exports queued again"
    assert eboxd("exports", "retry", str(failed.id)).stdout.strip() == "1 export queued again"
    assert [row.status for row in _rows(engine)] == ["completed", "pending"]
    with engine.connect() as conn:
        tasks = conn.execute(sa.select(OutboxRow.payload).where(OutboxRow.topic == "export_document")).scalars().all()
    assert [task["document_id"] for task in tasks] == [seeded[1]]
    assert "failed" not in eboxd("exports", "list", "--failed").stdout.split("error", 1)[1]
    assert eboxd("exports", "retry", "--all").stdout.strip() == "0 exports queued again"


# -- eboxd export zip --------------------------------------------------------------------------


def _bundle(path: Path) -> tuple[list[str], dict[str, Any]]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        [index_name] = [n for n in names if n.endswith("/data/index.json")]
        return names, json.loads(zf.read(index_name))


def test_export_zip_writes_the_selected_documents_with_a_manifest(
        engine: Engine, seeded: list[int], tmp_path: Path) -> None:
    out = tmp_path / "bundle.zip"
    result = eboxd("export", "zip", "--enterprise", NUMBER, "--since", "2024-05-02", "--until", "2024-05-04",
                   "-o", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{out}: 3 documents, ")
    names, index = _bundle(out)
    assert index["administration"] == NUMBER
    assert index["period"] == "2024-05"
    assert sorted(doc["document_id"] for doc in index["documents"]) == seeded[1:4]
    assert {doc["document_date"] for doc in index["documents"]} == {"2024-05-02", "2024-05-03", "2024-05-04"}
    pdfs = [n for n in names if n.endswith(".pdf")]
    assert sorted(f"{index_top(names)}/data/{doc['file']}" for doc in index["documents"]) == sorted(pdfs)

    by_id = eboxd("export", "zip", "--enterprise", NUMBER, "--ids", str(seeded[0]), "--ids", str(seeded[4]),
                  "-o", str(tmp_path), "--no-progress")
    [written] = tmp_path.glob(f"{NUMBER}_2024-05_*.zip")  # -o a folder: the standard bundle name
    assert by_id.stdout.startswith(f"{written}: 2 documents")
    assert sorted(doc["document_id"] for doc in _bundle(written)[1]["documents"]) == [seeded[0], seeded[4]]


def index_top(names: list[str]) -> str:
    return names[0].split("/", 1)[0]


def test_export_zip_progress_counts_only_the_selected_documents(engine: Engine, seeded: list[int],
                                                                tmp_path: Path) -> None:
    result = eboxd("export", "zip", "--enterprise", NUMBER, "--since", "2024-05-04", "-o", str(tmp_path / "b.zip"))
    assert result.exit_code == 0, result.output
    assert "2/2" in result.stderr  # the bar's final state: two of two, not two of five
    assert "/5" not in result.stderr


def test_export_zip_over_the_mailbox_limit_writes_parts(engine: Engine, seeded: list[int], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from eboxd_zip import parts  # noqa: PLC0415

    monkeypatch.setattr(parts, "PART_LIMIT", parts.FIXED_COST + 2 * 2600)  # about two documents a part
    result = eboxd("export", "zip", "--enterprise", NUMBER, "-o", str(tmp_path / "b.zip"), "--no-progress")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) > 1
    assert [line.split(":")[0] for line in lines] == [str(tmp_path / f"b_part{n}of{len(lines)}.zip")
                                                      for n in range(1, len(lines) + 1)]
    documents = [doc["document_id"] for n in range(1, len(lines) + 1)
                 for doc in _bundle(tmp_path / f"b_part{n}of{len(lines)}.zip")[1]["documents"]]
    assert sorted(documents) == seeded

    whole = eboxd("export", "zip", "--enterprise", NUMBER, "-o", str(tmp_path / "w.zip"), "--max-mb", "0",
                  "--no-progress")
    assert whole.stdout.splitlines() == [f"{tmp_path / 'w.zip'}: 5 documents, {_payload(tmp_path / 'w.zip')} bytes"]


def _payload(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(info.file_size for info in zf.infolist() if "/data/" in info.filename)


def test_export_with_an_exporter_that_writes_no_bundles_is_refused(engine: Engine, seeded: list[int],
                                                                  tmp_path: Path) -> None:
    result = eboxd("export", "nope", "--enterprise", NUMBER, "-o", str(tmp_path / "b.zip"))
    assert_one_line_error(result, 2, "no exporter named 'nope'")


# -- eboxd plugins ------------------------------------------------------------------------------


@pytest.fixture
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution whose entry point cannot be imported."""
    site = tmp_path / "site"
    dist_info = site / "eboxd_broken-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eboxd-broken\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[eboxd]\nbroken = eboxd_broken_is_not_there\n")
    monkeypatch.syspath_prepend(str(site))
    return "eboxd-broken"


def test_plugins_lists_where_each_comes_from(db_env: dict[str, str]) -> None:
    import eboxd_zip  # noqa: PLC0415

    result = eboxd("plugins")
    assert result.exit_code == 0, result.output
    [zip_line] = [line for line in result.stdout.splitlines() if line.split()[:1] == ["zip"]]
    assert zip_line.split()[:3] == ["zip", "eboxd-zip", "0.1.0"]
    assert zip_line.split()[3] == eboxd_zip.__file__
    assert "zip" in result.stdout.splitlines()[-1].removeprefix("exporters: ").split(", ")
    assert "failed" not in result.stderr


def test_a_broken_plugin_is_reported_by_name_and_the_others_still_work(
        engine: Engine, seeded: list[int], tmp_path: Path, broken_plugin: str) -> None:
    result = eboxd("plugins")
    assert result.exit_code == 0, result.output
    [failure] = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert f"plugin {broken_plugin!r} (load): ModuleNotFoundError" in failure
    assert any(line.split()[:1] == ["zip"] for line in result.stdout.splitlines())
    export = eboxd("export", "zip", "--enterprise", NUMBER, "-o", str(tmp_path / "b.zip"), "--no-progress")
    assert export.exit_code == 0, export.output
    assert len(_bundle(tmp_path / "b.zip")[1]["documents"]) == len(seeded)
