"""The bad-input catalogue: one test per kind of bad input, each asserting the clear error (what was
wrong and where) and that nothing already stored was lost or changed.

e-Box answers go through the real client against the sandbox (its bad-input fault kinds), polled and
fetched in-process; files, configuration and arguments through the real ``eboxd`` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import Engine
from structlog.testing import capture_logs

from daemon import ebox, payments
from daemon.cli import cli
from daemon.db.models import Document
from daemon.fetch import fetch_message
from daemon.payments.bank_import import import_coda_file
from daemon.sandbox.ebox import knobs
from tests.integration.processes import REPO
from tests.reliability.inputs import NOT_A_PDF, Mailbox, encrypted_pdf, peak_rss_growth, stored, stored_mailbox

CODA_SAMPLE = REPO / "tests" / "banking" / "fixtures" / "coda" / "febelfin-coda_CODA.txt"
MB = 1024 * 1024


@pytest.fixture
def mailbox(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[Mailbox]:
    with stored_mailbox(engine, database_url, tmp_path / "state") as box:
        yield box


def _fetch(box: Mailbox, ebox_id: str) -> None:
    row = box.message_row(ebox_id)
    assert row is not None, f"message {ebox_id} was not stored by the poll"
    fetch_message(box.engine, box.pipeline.access, box.store, box.config, row)


# --- e-Box answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "needle"), [("malformed_json", "is not JSON (application/json): "),
                                              ("invalid_utf8", "not JSON (application/json): 'utf-8' codec can't "
                                                               "decode byte 0xff in position")])
def test_malformed_ebox_listing_fails_the_poll_and_keeps_what_is_stored(mailbox: Mailbox, kind: str,
                                                                         needle: str) -> None:
    before = stored(mailbox.engine, mailbox.store)
    letter = mailbox.sandbox.publish(mailbox.number, kind="contributions")
    mailbox.sandbox.add_fault(kind)  # every JSON answer of the registry: listings and messages
    [error] = mailbox.poll()
    assert error is not None
    assert "MalformedResponse" in error
    assert needle in error
    assert "/ebox/messages" in error, error  # where: the request, and the place in its answer
    assert ("line 1 column" if kind == "malformed_json" else "in position") in error
    assert stored(mailbox.engine, mailbox.store) == before

    mailbox.sandbox.clear_faults()  # the next poll stores the new letter
    assert mailbox.poll() == [None]
    assert mailbox.message_row(letter.message_id) is not None


@pytest.mark.parametrize(("kind", "needle"), [("malformed_json", "is not JSON (application/json): "),
                                              ("invalid_utf8", "can't decode byte 0xff in position"),
                                              ("missing_field", "Message.receiptDate: required field is missing")])
def test_bad_message_body_leaves_the_message_unfetched_until_it_is_good(mailbox: Mailbox, kind: str,
                                                                        needle: str) -> None:
    letter = mailbox.sandbox.publish(mailbox.number, kind="contributions")
    assert mailbox.poll() == [None]
    before = stored(mailbox.engine, mailbox.store)
    field = {"field": "receiptDate"} if kind == "missing_field" else {}
    mailbox.sandbox.add_fault(kind, path=f"/ebox/messages/{letter.message_id}", **field)
    with pytest.raises(ebox.MalformedResponse) as refused:
        _fetch(mailbox, letter.message_id)
    assert needle in str(refused.value)
    if kind == "malformed_json":
        assert "line 1 column" in str(refused.value)
    if kind != "missing_field":
        assert letter.message_id in str(refused.value)  # the GET whose answer was bad
    assert stored(mailbox.engine, mailbox.store) == before  # still pending, nothing half-stored

    mailbox.sandbox.clear_faults()
    _fetch(mailbox, letter.message_id)
    after = stored(mailbox.engine, mailbox.store)
    assert (after.fetched, len(after.documents)) == (before.fetched + 1, len(before.documents) + 1)
    assert before.documents.items() <= after.documents.items()


def test_unknown_fields_are_accepted_and_ignored(mailbox: Mailbox) -> None:
    before = stored(mailbox.engine, mailbox.store)
    mailbox.sandbox.add_fault("unknown_fields")
    letter = mailbox.sandbox.publish(mailbox.number, kind="contributions")
    assert mailbox.poll() == [None]
    _fetch(mailbox, letter.message_id)
    after = stored(mailbox.engine, mailbox.store)
    assert (after.messages, after.fetched) == (before.messages + 1, before.fetched + 1)
    assert after.payment_requests == before.payment_requests + 1
    assert before.documents.items() <= after.documents.items()


def test_missing_required_field_refuses_that_message_only(mailbox: Mailbox) -> None:
    before = stored(mailbox.engine, mailbox.store)
    older = mailbox.sandbox.publish(mailbox.number, kind="contributions")
    mailbox.sandbox.advance_clock(5)
    newer = mailbox.sandbox.publish(mailbox.number, kind="contributions")  # first of its listing
    mailbox.sandbox.add_fault("missing_field", field="receiptDate", path="/ebox/messages", count=1)
    with capture_logs() as logs:
        assert mailbox.poll() == [None]
    refused = [entry for entry in logs if entry["event"] == "ebox.item.refused"]
    assert [(r["message_id"], r["field"], r["problem"]) for r in refused] == [
        (newer.message_id, "Messages.items[0].receiptDate", "required field is missing")]
    assert mailbox.message_row(newer.message_id) is None
    assert mailbox.message_row(older.message_id) is not None  # the rest of the page is stored
    assert stored(mailbox.engine).messages == before.messages + 1


def test_huge_attachment_is_refused_while_streaming_in_constant_memory(mailbox: Mailbox) -> None:
    assert mailbox.config.documents.max_size_mb == 100
    letter = mailbox.sandbox.publish(mailbox.number, kind="contributions")
    assert mailbox.poll() == [None]
    before = stored(mailbox.engine, mailbox.store)
    # 150 MB streamed, 75 MB declared (under the limit, so the download starts).
    mailbox.sandbox.add_fault("huge_attachment", size=150 * MB, path=letter.message_id)
    with peak_rss_growth() as growth, pytest.raises(ebox.SizeMismatch) as refused:
        _fetch(mailbox, letter.message_id)
    assert f"more than the expected maximum of {100 * MB} bytes" in str(refused.value)  # the limit cut it
    assert growth[0] < 40 * MB, f"memory grew by {growth[0] / MB:.0f} MiB while streaming"
    staging = mailbox.store.staging()
    assert list(staging.iterdir()) == [], "a partial download was left behind"
    assert stored(mailbox.engine, mailbox.store) == before

    mailbox.sandbox.clear_faults()
    _fetch(mailbox, letter.message_id)
    assert stored(mailbox.engine).fetched == before.fetched + 1


def test_attachment_declared_over_the_limit_is_never_downloaded(mailbox: Mailbox) -> None:
    letter = mailbox.sandbox.publish(mailbox.number, kind="contributions")
    assert mailbox.poll() == [None]
    before = stored(mailbox.engine, mailbox.store)
    mailbox.sandbox.add_fault("huge_attachment", size=300 * MB, path=letter.message_id)  # declares 150 MB
    seen = len(mailbox.sandbox.requests())
    with capture_logs() as logs:
        _fetch(mailbox, letter.message_id)
    skipped = [entry for entry in logs if entry["event"] == "fetch.attachment_too_large"]
    assert {(e["message_id"], e["file"], e["limit_mb"]) for e in skipped} == {
        (letter.message_id, attachment.file_name, 100) for attachment in letter.attachments}
    assert [r for r in mailbox.sandbox.requests()[seen:] if r["path"].endswith("/content")] == []
    after = stored(mailbox.engine, mailbox.store)
    assert (after.fetched, after.documents) == (before.fetched + 1, before.documents)  # fetched, nothing stored


@pytest.mark.parametrize(("content", "reason"), [(NOT_A_PDF, "cannot read the PDF"),
                                                 (encrypted_pdf(), "encrypted")])
def test_unreadable_pdf_is_stored_and_flagged_for_review(mailbox: Mailbox, content: bytes, reason: str,
                                                         tmp_path: Path) -> None:
    before = stored(mailbox.engine, mailbox.store)
    letter = mailbox.sandbox.publish(mailbox.number, kind="contributions")
    knobs.replace_content(mailbox.sandbox.state, letter.message_id, content)
    assert mailbox.poll() == [None]
    with capture_logs() as logs:
        _fetch(mailbox, letter.message_id)  # no crash
    [warning] = [entry for entry in logs if entry["event"] == "fetch.unreadable_pdf"]
    assert reason in warning["reason"]
    row = mailbox.message_row(letter.message_id)
    with mailbox.engine.connect() as conn:
        document = conn.execute(sa.select(Document).where(Document.message_id == row)).one()
    with mailbox.store.open(document.storage_key) as file:
        assert file.read() == content  # stored as received
    info = payments.extract_payment(pdf=content)  # what the fetch read from it
    assert info.needs_review
    assert [(r.field, r.code) for r in info.reviews] == [("document", "unreadable")]
    assert reason in info.reviews[0].message
    after = stored(mailbox.engine, mailbox.store)
    assert (after.fetched, after.payment_requests) == (before.fetched + 1, before.payment_requests)  # none invented
    assert before.documents.items() <= after.documents.items()

    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(content)
    result = eboxd("payment", "extract", str(pdf))
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("eboxd: error: ")
    assert str(pdf) in line
    assert ("not a PDF" if content is NOT_A_PDF else "encrypted") in line


# --- files and arguments, through the real command -----------------------------------------------


def eboxd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EBOXD_") or k.startswith("EBOXD_TEST")}
    return subprocess.run([sys.executable, "-m", "daemon", *args], env={**environ, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO)


@pytest.fixture
def cli_env(engine: Engine, database_url: str, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "eboxd.toml"
    config.write_text("")
    return {"EBOXD_CONFIG": str(config), "EBOXD_DAEMON__DATA_DIR": str(tmp_path / "state"),
            "EBOXD_DATABASE__URL": database_url}


def _coda_variants(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Bad CODA files made from the sample: path and the error expected (file:line: columns …)."""
    data = CODA_SAMPLE.read_bytes()
    lines = data.split(b"\n")
    files = {
        "truncated": (data[: len(data) // 2], ":131: expected record 9 (trailer)"),
        "garbled": (data.replace(b"1000000002578250", b"100000000257825X", 1),
                    ":3: columns 33-47: expected the amount"),
        "reordered": (b"\n".join([lines[0], *lines[2:]]), ":2: column 1: expected record 1 (old balance)"),
    }
    out = {}
    for name, (content, needle) in files.items():
        path = tmp_path / f"{name}.cod"
        path.write_bytes(content)
        out[name] = (path, f"{path}{needle}")
    return out


@pytest.mark.parametrize("variant", ["truncated", "garbled", "reordered"])
def test_bad_coda_file_names_file_line_and_columns_and_imports_nothing(cli_env: dict[str, str], engine: Engine,
                                                                      tmp_path: Path, variant: str) -> None:
    assert import_coda_file(engine, CODA_SAMPLE, queue_matching=False).inserted > 0  # an earlier import
    before = stored(engine)
    assert before.bank_transactions > 0
    path, where = _coda_variants(tmp_path)[variant]
    for command in (["bank", "inspect", str(path)], ["bank", "import-coda", "--no-match", str(path)]):
        result = eboxd(*command, env=cli_env)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        [line] = result.stderr.strip().splitlines()[-1:]
        assert line.startswith("eboxd: error: ")
        assert where in line, line
    assert stored(engine) == before  # nothing of the bad file, the earlier import intact


def test_coda_bytes_outside_utf8_are_read_not_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    """CODA is a fixed-width byte format (Latin-1 in practice): bytes that are not UTF-8 in a free
    text field are read as text, not refused."""
    lines = CODA_SAMPLE.read_bytes().split(b"\n")
    lines[3] = lines[3][:70] + b"\xff\xfe" + lines[3][72:]  # inside the communication
    path = tmp_path / "latin.cod"
    path.write_bytes(b"\n".join(lines))
    result = eboxd("bank", "inspect", "--json", str(path), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "ÿþ" in result.stdout


@pytest.mark.parametrize(("text", "needle"), [
    ('[documents]\nmax_size_mb = "big"\n', ":2: [documents] max_size_mb: expected an integer, got 'big'"),
    ("[poll]\n\ninterval_seconds = true\n", ":3: [poll] interval_seconds: expected a number, got True"),
    ("[worker]\nqueues = \"fetch\"\n", ":2: [worker] queues: expected a list of strings, got 'fetch'"),
    ("[documents]\nmax_size_mb = 0\n", ":2: [documents] max_size_mb: must be at least 1, got 0"),
    ("[documents]\nmax_sise_mb = 5\n", ":2: unknown key [documents] max_sise_mb (did you mean 'max_size_mb'?)"),
    ("[documents\nmax_size_mb = 5\n", "invalid TOML"),
])
def test_config_with_wrong_types_names_file_line_and_field(cli_env: dict[str, str], engine: Engine,
                                                           text: str, needle: str) -> None:
    config = Path(cli_env["EBOXD_CONFIG"])
    config.write_text(text)
    before = stored(engine)
    result = eboxd("status", env=cli_env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"eboxd: error: {config}{needle}" or (
        needle == "invalid TOML" and f"{config}: invalid TOML" in result.stderr and "line 1" in result.stderr)
    assert stored(engine) == before


def test_config_environment_with_wrong_type_names_the_variable(cli_env: dict[str, str]) -> None:
    result = eboxd("config", "check", env={**cli_env, "EBOXD_POLL__INTERVAL_SECONDS": "often"})
    assert result.returncode == 2
    assert result.stderr.strip() == "eboxd: error: environment EBOXD_POLL__INTERVAL_SECONDS: expected a number, " \
                                    "got 'often'"


def test_config_file_not_utf8_names_file_and_line(cli_env: dict[str, str]) -> None:
    config = Path(cli_env["EBOXD_CONFIG"])
    config.write_bytes(b"[daemon]\nnode_name = \"caf\xe9\"\n")  # Latin-1, not UTF-8
    result = eboxd("config", "check", env=cli_env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"eboxd: error: {config}:2: not UTF-8 text (byte 0xe9 at offset ")


@pytest.mark.parametrize(("args", "argument"), [
    (["payment", "edit", "1", "--amount", "-5"], "'--amount'"),
    (["payment", "edit", "1", "--due-date", "2026-02-30"], "'--due-date'"),
    (["payment", "edit", "1", "--iban", "BE00 0000 0000 0000"], "'--iban'"),
    (["status", "--watch", "0"], "'--watch'"),
    (["worker", "--processes", "0"], "'--processes'"),
    (["enterprise", "add", "0123.456.780", "--name", "X"], "'NUMBER'"),
    (["poll", "123"], "'[NUMBER]...'"),
    (["messages", "list", "--enterprise", "BE12"], "'--enterprise'"),
    (["messages", "list", "--limit", "-1"], "'--limit'"),
    (["payment", "review", "--enterprise", "0403170702"], "'--enterprise'"),
    (["bank", "import-coda", "-e", "42", str(CODA_SAMPLE)], "'-e' / '--enterprise'"),
    (["exports", "list", "--limit", "0"], "'--limit'"),
    (["export", "zip", "--enterprise", "0403170701", "--since", "2026-02-30", "-o", "x.zip"], "'--since'"),
    (["payment", "qr", "1", "-o", "qr.png", "--scale", "0"], "'--scale'"),
])
def test_cli_argument_out_of_range_exits_2_naming_it(cli_env: dict[str, str], engine: Engine, args: list[str],
                                                     argument: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    before = stored(engine)
    result = CliRunner().invoke(cli, args)  # the `eboxd` group itself, in-process
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"Invalid value for {argument}" in result.output, result.output
    assert stored(engine) == before
