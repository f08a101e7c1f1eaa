"""The C group scanner (``_scan.group``) against its regex twin (``python_scan_group``): the same
fields, of the same types and string forms, and None in the same places, on written groups and on
groups mutated character by character (line ends, digits, Unicode spaces and digits, wide
characters), at every position of the text."""

from __future__ import annotations

import gc
import os
import tracemalloc
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.banking.coda import scan
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_lines

BUDGET = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PURE = bool(os.environ.get("EBOXD_CODA_PURE_PYTHON"))


def test_the_c_scanner_is_built_and_used() -> None:
    """``make test`` builds it (``setup.py``); a silent build failure would leave the slower path."""
    if PURE:
        assert scan.scan_group is scan.python_scan_group
        return
    assert scan.accelerated
    assert scan.scan_group is not scan.python_scan_group


c_group: Any = None
if scan.accelerated:
    from daemon.banking.coda import _scan  # type: ignore[attr-defined]

    c_group = _scan.group
needs_c = pytest.mark.skipif(c_group is None, reason="EBOXD_CODA_PURE_PYTHON set: only the regex path is loaded")


def _form(fields: Any) -> Any:
    """Fields with what == would hide: Decimal signs and exponents, str/bool/int types, ASCII flags."""
    if fields is None:
        return None
    out = []
    for value in fields:
        if isinstance(value, Decimal):
            out.append(("Decimal", str(value)))
        elif isinstance(value, str):
            out.append((value, value.isascii()))
        else:
            out.append((type(value).__name__, value))
    return out


def assert_same_everywhere(text: str) -> None:
    for pos in range(len(text) + 1):
        assert _form(c_group(text, pos)) == _form(scan.python_scan_group(text, pos)), (pos, text[pos:pos + 400])


def _group_text() -> str:
    """A statement's records: groups with and without 2.2/2.3, OGM and free text, a zero debit."""
    movements = [
        MovementSpec(Decimal("-12.5"), communication="101" + "010806817183", structured=True,
                     counterparty_account="BE68539007547034", counterparty_name="Acme", counterparty_bic="GKCCBEBB",
                     end_to_end_id="E2E-1"),
        MovementSpec(Decimal("40"), communication="Factuur " * 12, counterparty_account="539007547034"),
        MovementSpec(Decimal("-3"), type="1", details=[MovementSpec(Decimal("-3"), type="5", communication="d1")]),
        MovementSpec(Decimal("0"), communication="nul"),
        MovementSpec(Decimal("999999999999.999")),
    ]
    return "".join(line + "\n" for line in coda_lines([StatementSpec(movements=movements)]))


TEXT = _group_text()
# what a record may hold after decoding: line ends, digits ASCII or not (٣, ²), what str.strip()
# removes besides the space (\x1c, \x85, \xa0, \u2003), Latin-1, cp1252's € and a 4-byte character
_CHARACTERS = st.sampled_from(["0", "1", "2", "3", "9", " ", "\n", "\r", "\t", "A", "-", "٣", "²", "\x1c", "\x85",
                               "\xa0", "\u2003", "é", "€", "\U0001f4b6", "NOTPROVIDED"])


@needs_c
def test_written_groups() -> None:
    assert_same_everywhere(TEXT)
    assert_same_everywhere(TEXT.replace("\n", "\r\n"))
    assert_same_everywhere(TEXT[:-1])  # no final line end


_REPLACEMENTS = ["0", "1", "2", "3", "9", "/", ":", " ", "\n", "\r", "\t", "A", "٣", "²", "\x1c", "\x85", "\xa0",
                 "\u2003", "é", "€", "\U0001f4b6"]
_GROUP_STARTS = [i + 1 for i, ch in enumerate(TEXT) if ch == "\n" and TEXT.startswith("2", i + 1)]


@needs_c
@pytest.mark.parametrize("replacement", _REPLACEMENTS, ids=ascii)
def test_every_character_of_the_groups_replaced(replacement: str) -> None:
    """Each character of the text's groups in turn replaced, deleted, or preceded by another, read
    at each record start: every field check, strip and line-end check of the two paths meets
    every odd character."""
    last = TEXT.index("\n8")
    for at in range(_GROUP_STARTS[0], last):
        for text in (TEXT[:at] + replacement + TEXT[at + 1:], TEXT[:at] + TEXT[at + 1:],
                     TEXT[:at] + replacement + TEXT[at:]):
            for pos in _GROUP_STARTS:
                if pos <= at:
                    assert _form(c_group(text, pos)) == _form(scan.python_scan_group(text, pos)), (at, pos)


@needs_c
@BUDGET
@given(st.data())
def test_mutated_groups(data: st.DataObject) -> None:
    text = list(TEXT[:1200])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(text) - 1))
        op = data.draw(st.sampled_from(["replace", "replace", "delete", "insert"]))
        if op == "replace":
            text[at] = data.draw(_CHARACTERS)
        elif op == "delete":
            del text[at]
        else:
            text.insert(at, data.draw(_CHARACTERS))
    joined = "".join(text)
    start = data.draw(st.integers(0, len(joined)))
    for pos in range(start, min(start + 400, len(joined) + 1)):
        assert _form(c_group(joined, pos)) == _form(scan.python_scan_group(joined, pos)), pos


@needs_c
@pytest.mark.parametrize("wide", ["€", "\U0001f4b6"])
def test_wide_strings_are_read_not_refused(wide: str) -> None:
    """A block holding one wider character (2- or 4-byte string) is scanned all the same, and its
    ASCII fields come out as ASCII strings."""
    text = TEXT.replace("Factuur ", "Factuur" + wide, 1)
    assert_same_everywhere(text)
    read = [c_group(text, pos) for pos in range(len(text))]
    holding = [fields for fields in read if fields is not None and wide in fields[10]]
    assert len(holding) == 1
    assert holding[0][7].isascii()
    assert holding[0][4].isascii()


@needs_c
def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        c_group(b"21", 0)
    with pytest.raises(TypeError):
        c_group(TEXT)
    assert c_group(TEXT, -1) is None
    assert c_group(TEXT, len(TEXT) + 10) is None
    assert c_group(TEXT, 2**63 - 1) is None  # no position arithmetic overflows
    with pytest.raises(OverflowError):
        c_group(TEXT, 2**64)


@needs_c
def test_no_memory_kept_by_the_scanner() -> None:
    """Every object the C code makes is freed with its tuple (a missed reference count would keep
    about a hundred bytes per call): no growth over 200,000 calls, ASCII, wide and refused."""
    texts = [TEXT, TEXT.replace("Factuur ", "Factuur€", 1), TEXT.replace("\n", "\r\n")]
    positions = [*_GROUP_STARTS, 5, len(TEXT) - 3]

    def scan_all(rounds: int) -> None:
        for _ in range(rounds):
            for text in texts:
                for pos in positions:
                    c_group(text, pos)

    scan_all(100)  # caches and free lists filled
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        scan_all(200_000 // (len(texts) * len(positions)))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown


@needs_c
@BUDGET
@given(st.text(alphabet=st.sampled_from(["2", "1", "3", "0", " ", "\n", "é", "€", "\U0001f4b6"]), max_size=900),
       st.integers(-3, 1000))
def test_any_text_at_any_position(text: str, pos: int) -> None:
    """Short, long, wide or line-less text, positions before, inside and past it: same answer, no crash."""
    if pos < 0:  # re's match() would read from 0; the parser never asks
        assert c_group(text, pos) is None
    else:
        assert _form(c_group(text, pos)) == _form(scan.python_scan_group(text, pos))
