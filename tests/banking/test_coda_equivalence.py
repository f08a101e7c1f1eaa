"""The fast CODA parser against the one it replaced (``coda_reference.py``): same statements,
movements, communications, warnings and digests, and the same error (line, columns, expected,
got) on every input: samples, written files, mutated files, random bytes, both reading modes."""

from __future__ import annotations

import dataclasses
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.banking import find_ogms
from daemon.banking.coda import CodaError, iter_movements, parse_coda
from daemon.banking.coda import groups as coda_groups
from daemon.banking.coda import reader as coda_reader
from daemon.banking.coda.decoding import _single_ogm
from daemon.banking.coda.model import Communication, new_communication
from daemon.banking.coda.scan import python_scan_group
from daemon.banking.coda_writer import InfoSpec, MovementSpec, StatementSpec, coda_bytes
from tests.banking import coda_reference as reference

FIXTURES = Path(__file__).parent / "fixtures" / "coda"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "coda-samples"
BUDGET = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True, params=["scanner", "regex"])
def scan_path(request: pytest.FixtureRequest) -> Any:
    """Every test twice: with the group scanner in use (C when built) and with its regex twin."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "regex":
            patch.setattr(coda_groups, "scan_group", python_scan_group)
        yield request.param


def snapshot(value: Any) -> Any:
    """A comparable form of parser output: public dataclass fields by name (the two parsers have
    distinct classes), Decimals with their exponent."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, snapshot(getattr(value, f.name)))
                                            for f in dataclasses.fields(value) if not f.name.startswith("_")))
    if isinstance(value, (list, tuple)):
        return [snapshot(item) for item in value]
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return value


def outcome(parse: Any, data: bytes) -> Any:
    try:
        return "ok", snapshot(parse(data, name="x.cod"))
    except (reference.CodaError, CodaError) as exc:  # anything else fails the test
        return "error", (exc.file, exc.line, exc.columns, exc.expected, exc.got)


def streamed(module: Any, data: bytes) -> Any:
    events: list[Any] = []
    for statement, movement in module.iter_movements(data, name="x.cod",
                                                     on_statement=lambda s: events.append(("statement", s))):
        events.append((statement.first_line, movement))
    return events


def assert_same(data: bytes) -> None:
    assert outcome(parse_coda, data) == outcome(reference.parse_coda, data)
    new = outcome(lambda d, name: streamed(_new_module, d), data)
    old = outcome(lambda d, name: streamed(reference, d), data)
    assert new == old


class _NewModule:
    iter_movements = staticmethod(iter_movements)


_new_module = _NewModule()


def sample_files() -> list[Path]:
    return sorted(p for folder in (FIXTURES, SHARED) if folder.exists() for p in folder.iterdir()
                  if p.suffix in (".txt", ".cod", ".BC2"))


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_samples(path: Path) -> None:
    data = path.read_bytes()
    assert_same(data)
    assert_same(data.replace(b"\r\n", b"\n"))
    assert_same(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _variety() -> bytes:
    """Every record type and hierarchy case the writer knows: details, type 9 under a 7, information."""
    movements = [
        MovementSpec(Decimal("-12.5"), communication="101" + "010806817183", structured=True,
                     counterparty_account="BE68539007547034", counterparty_name="Acme", counterparty_bic="GKCCBEBB",
                     end_to_end_id="E2E-1"),
        MovementSpec(Decimal("40"), communication="Factuur +++010/8068/17183+++ en meer tekst " * 3,
                     counterparty_account="539007547034", information=[
                         InfoSpec("001" + "Jan Peeters".ljust(70) + "Straat 1".ljust(35) + "1000 Brussel", True)]),
        MovementSpec(Decimal("-3"), type="1", details=[
            MovementSpec(Decimal("-1"), type="5", communication="d1"),
            MovementSpec(Decimal("-2"), type="7", details=[MovementSpec(Decimal("-2"), type="9")]),
        ]),
        MovementSpec(Decimal("7"), communication="127" + "271126" + "1C0" + "BE00ZZZ0123456789".ljust(35)
                     + "MANDATE-1".ljust(35) + "+++010/8068/17183+++".ljust(62), structured=True),
        MovementSpec(Decimal("1"), type="5", communication="orphan detail"),
    ]
    return coda_bytes([StatementSpec(movements=movements, free_messages=["hello"]),
                       StatementSpec(structure="0", account="539007547034", coda_sequence=2),
                       StatementSpec(new_balance=Decimal(1), record_count=99, duplicate=True, application_code="07",
                                     movements=movements[:1])])


VARIETY = _variety()


def test_variety() -> None:
    assert_same(VARIETY)
    assert_same(VARIETY.decode("cp1252").encode("utf-8"))
    assert_same(b"\xef\xbb\xbf" + VARIETY.replace(b"\n", b"\r\n")[:-2])


@BUDGET
@given(st.data())
def test_mutated(data: st.DataObject) -> None:
    raw = bytearray(VARIETY)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate", "dup_line", "drop_line"]))
        if not raw:
            break
        at = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[at] = data.draw(st.sampled_from(list(b"0123456789 A\n\r\t\x81\xe9\xc3-")))
        elif op == "delete":
            del raw[at]
        elif op == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=5))
        elif op == "truncate":
            del raw[at:]
        else:
            lines = bytes(raw).split(b"\n")
            index = at % len(lines)
            if op == "dup_line":
                lines.insert(index, lines[index])
            else:
                del lines[index]
            raw = bytearray(b"\n".join(lines))
    assert_same(bytes(raw))


@BUDGET
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    assert_same(data)


def test_large_file_crosses_read_blocks() -> None:
    data = VARIETY * 300  # ~ 1 MB: lines span the reader's 64 KiB blocks
    assert_same(data)
    assert_same(data.replace(b"\n", b"\r\n"))


def _ogm_by_find_ogms(text: str) -> str | None:
    """What the reference parser did: the one valid OGM ``find_ogms`` sees in free text."""
    found = {c.digits for c in find_ogms(text) if c.valid} if text.strip() else set()
    return found.pop() if len(found) == 1 else None


_OGM_PIECES = st.sampled_from(["+++", "***", "/", ".", "-", " ", "\u00a0", "\u202f", "\t", "a", "٣", "0", "1",
                               "010", "8068", "17183", "0108", "06817183", "123456789012", "090933755493"])


@BUDGET
@given(st.lists(st.one_of(_OGM_PIECES, st.text(max_size=4)), max_size=40).map("".join))
def test_free_text_ogm_search_matches_find_ogms(text: str) -> None:
    assert _single_ogm(text) == _ogm_by_find_ogms(text.strip())


@pytest.mark.parametrize("text", ["+++010/8068/17183+++", "*** 010 / 8068 / 17183 ***",
                                  "010.8068.17183 en 010/8068/17183", "010806817183 en 090933755493",
                                  "0108068171830", "+++010/8068/17184+++"])
def test_free_text_ogm_examples(text: str) -> None:
    assert _single_ogm(text) == _ogm_by_find_ogms(text)


class _Trickle(io.RawIOBase):
    """A stream that hands out a few bytes per read, as a pipe or socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.position, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        end = self.position + min(self.step, size if size >= 0 else self.step)
        chunk, self.position = self.data[self.position:end], end
        return chunk


@pytest.mark.parametrize("step", [1, 2, 7, 129])
def test_short_reads_give_the_same_result(step: int) -> None:
    data = b"\xef\xbb\xbf" + VARIETY.replace(b"\n", b"\r\n")
    want = snapshot(reference.parse_coda(data, name="x.cod"))
    assert snapshot(parse_coda(_Trickle(data, step), name="x.cod")) == want  # type: ignore[arg-type]


@pytest.mark.parametrize("block_size", [64, 129, 200, 387, 1000])
def test_groups_split_across_read_blocks(block_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2.2/2.3 in the block after its 2.1 goes through the line-by-line reader: same result."""
    monkeypatch.setattr(coda_reader, "_BLOCK_SIZE", block_size)
    assert_same(VARIETY)
    assert_same(VARIETY.replace(b"\n", b"\r\n"))


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def test_groups_with_short_and_blank_lines() -> None:
    """Trimmed 2.2/2.3 lines (padded, with a warning) and blank lines inside a group: the group
    regex does not match them, the line-by-line reader does the same as before."""
    trimmed = b"\n".join(line.rstrip(b" 0") if line[:2] in (b"22", b"23") else line for line in _lines(VARIETY))
    assert_same(trimmed)
    blank = b"\n".join(line + b"\n" if line[:2] == b"21" else line for line in _lines(VARIETY))
    assert_same(blank)
    short_21 = b"\n".join(line.rstrip(b" 0") if line[:2] == b"21" else line for line in _lines(VARIETY))
    assert_same(short_21)


def test_new_communication_is_the_dataclass() -> None:
    """The parser's quick constructor sets every field, as ``Communication(…)`` does."""
    args = (True, "101010806817183", "101", "+++010/8068/17183+++", "010806817183", None, False, {"number": "1"})
    quick = new_communication(*args)
    assert quick == Communication(*args)
    assert [getattr(quick, f.name) for f in dataclasses.fields(Communication)] == list(args)


_DIGITS = st.text(alphabet="0123456789", min_size=12, max_size=12)


@BUDGET
@given(st.one_of(
    st.builds(lambda check, bban: f"BE{check:02d}{bban}", st.integers(0, 99), _DIGITS),  # any check digits
    _DIGITS.map(lambda bban: f"BE{98 - int(bban + '111400') % 97:02d}{bban}"),  # valid ones
    _DIGITS, st.builds(lambda n: f"be{n}", st.text(alphabet="0123456789 ", max_size=18)),
    st.text(alphabet="BE0123456789٣ ", max_size=18)), st.booleans())
def test_account_numbers_as_schwifty_reads_them(number: str, belgian_bban: bool) -> None:
    """The Belgian short cuts of ``iban_of`` (a BBAN's check digits, a Belgian IBAN's checks)
    give what the reference parser's schwifty calls give; digits other than ASCII make no account."""
    from daemon.banking.coda.decoding import iban_of  # noqa: PLC0415

    ours = iban_of.__wrapped__(number, belgian_bban=belgian_bban)
    assert ours == reference._iban_of.__wrapped__(number, belgian_bban=belgian_bban)
    if not number.isascii():
        assert ours is None
