"""The CODA parser against the published samples and our own fixtures (written by the CODA writer)."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import io
import pickle
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.banking.coda import CodaError, Communication, iter_movements, iter_statements, parse_coda
from daemon.banking.coda_writer import InfoSpec, MovementSpec, StatementSpec, coda_bytes, coda_lines, record

FIXTURES = Path(__file__).parent / "fixtures" / "coda"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "coda-samples"
D = Decimal


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not available (local, non-BSD sample)")
    return path


def codes(statement: object) -> set[str]:
    return {w.code for w in statement.warnings}  # type: ignore[attr-defined]


# --- the published samples ---------------------------------------------------------------------

def test_febelfin_example() -> None:
    [st] = parse_coda(FIXTURES / "febelfin-coda_CODA.txt")
    assert st.account.structure == "0"
    assert st.account.number == "435000000080"
    assert st.account.iban == "BE47435000000080"
    assert st.account.currency == "EUR"
    assert st.old_balance == D("0.000")
    assert st.new_balance == D("9405296.990")
    assert st.record_count == 260
    assert st.debit_total == D("3085871.600")
    assert st.credit_total == D("12491168.590")
    assert codes(st) == set()
    assert len(st.movements) == 59
    assert len(list(st.all_movements())) == 111
    types = {m.type for m in st.all_movements()}
    assert types == set("0123568")
    ogms = {m.communication.ogm for m in st.all_movements() if m.communication.ogm}
    assert ogms == {"269021157996", "702600521948"}
    paid = next(m for m in st.movements if m.communication.ogm == "269021157996")
    assert paid.amount == D("817.560")
    assert paid.counterparty.name == "LA CROIX D OR SPRL"
    assert paid.counterparty.iban == "BE96370121620105"
    assert paid.communication.text == "+++269/0211/57996+++"


def test_febelfin_hierarchy_and_shared_detail_counter() -> None:
    [st] = parse_coda(FIXTURES / "febelfin-coda_CODA.txt")
    seq7 = next(m for m in st.movements if m.sequence == 7)
    assert [d.detail for d in seq7.details] == [1, 3, 5]
    assert all(d.type == "5" for d in seq7.details)
    assert sum(d.amount for d in seq7.details) == seq7.amount
    seq51 = next(m for m in st.movements if m.sequence == 51)
    assert [d.amount for d in seq51.details] == [D("269.50"), D("-80.85"), D("-47.16"), D("-1.89"), D("-0.40")]
    assert sum(d.amount for d in seq51.details) == seq51.amount
    seq49 = next(m for m in st.movements if m.sequence == 49)
    assert len([i for m in seq49.walk() for i in m.information]) == 4


def test_febelfin_foreign_currency_105_and_counterparty() -> None:
    [st] = parse_coda(FIXTURES / "febelfin-coda_CODA.txt")
    seq42 = next(m for m in st.movements if m.sequence == 42)
    assert seq42.counterparty.name == "TITANIA A/S"
    assert seq42.counterparty.bic == "NDEANOKKXXX"
    assert seq42.counterparty.iban == "NO1160060431712"
    [detail] = seq42.details
    fields = detail.communication.fields
    assert detail.communication.type == "105"
    assert fields["currency"] == "NOK"
    assert fields["amount"] == D("6730.240")
    assert fields["original_amount"] == D("56059.600")
    assert fields["rate"] == D("8.32950600")


def test_empty_statement_without_final_newline() -> None:
    data = (FIXTURES / "febelfin-coda_CODA-empty.txt").read_bytes()
    assert not data.endswith(b"\n")
    [st] = parse_coda(data)
    assert st.movements == []
    assert st.new_balance == st.old_balance == 0
    assert st.account.iban is None  # all-zero IBAN
    assert codes(st) == {"application_code"}  # '00', not '05': a warning, not a rejection


def test_oca_sample_hand_anonymised() -> None:
    [st] = parse_coda(shared("oca-l10n-belgium_Ontvangen_CODA.2012-01-11-18.59.15.txt"))
    assert st.account.iban == "BE46737018594236"
    assert codes(st) == {"balance", "account_mismatch"}
    ogm = next(m for m in st.movements if m.communication.ogm)
    assert ogm.communication.ogm == "240283842818"
    assert ogm.amount == D("3044.450")
    assert ogm.counterparty.name == "PARTNER 2"
    assert ogm.counterparty.bic == "BBRUBEBB"
    loans = [m for m in st.movements if m.type == "3"]
    assert len(loans) == 2
    assert all(len(m.details) == 2 for m in loans)


def test_foreign_account_with_record_4() -> None:
    [st] = parse_coda(shared("pycoda_Coda_foreign_account.txt"))
    assert st.account.structure == "3"
    assert st.account.iban.startswith("FR")
    assert st.free_messages
    assert st.record_count == 7
    assert codes(st) == set()


def test_two_statements_crlf_no_final_newline() -> None:
    first, second = parse_coda(shared("pycoda_Coda_v2_3_multi_statements.txt"))
    assert codes(first) == set()
    assert codes(second) == {"account_mismatch"}
    assert first.movements[0].sequence == 1
    assert second.movements[0].sequence == 1
    dom80 = next(m for m in first.all_movements() if m.communication.type == "107")
    assert dom80.amount == D("-62095.010")
    single = [m for m in first.movements if m.type == "2" and len(m.details) == 1]
    assert single
    assert single[0].details[0].amount == single[0].amount
    salary = next(m for m in second.movements if m.transaction_code.code.startswith("10105"))
    assert salary.type == "1"
    assert salary.details == []
    assert len({first.movement_key(m) for m in first.all_movements()}) == len(list(first.all_movements()))


def test_sepa_direct_debit_127() -> None:
    [st] = parse_coda(shared("php-coda-parser_sample10.cod"))
    [batch] = st.movements
    first, second = batch.details
    comm = first.communication
    assert comm.type == "127"
    assert comm.fields["type"] == "1"
    assert comm.fields["scheme"] == "2"
    assert comm.fields["settlement_date"] == dt.date(2024, 6, 6)
    assert comm.fields["communication"] == "243690000141"
    assert first.end_to_end_id == "243690000141"
    assert first.category_purpose == "SUPP"
    assert first.counterparty.name == "KLANT1 MET NAAM1"
    assert first.counterparty.bic == "KREDBEBB"
    assert second.amount == D("750.000")


# --- our own fixtures --------------------------------------------------------------------------

OGM = "010806817183"
RF = "RF18539007547034"


def sample_statement(**kwargs: object) -> StatementSpec:
    return StatementSpec(
        old_balance=D("1000.00"),
        movements=[
            MovementSpec.ogm(D("-123.45"), OGM, counterparty_account="BE71096123456769",
                             counterparty_name="SPF Finances", counterparty_bic="GKCCBEBB", end_to_end_id="E2E-1"),
            MovementSpec.rf(D("-50.00"), RF, counterparty_name="Leverancier"),
            MovementSpec(D("200.00"), communication="Factuur 2026/17 " + "x" * 60 + " einde",
                         counterparty_account="001548226815"),
            MovementSpec(D("-30.00"), type="1", details=[
                MovementSpec(D("-10.00"), type="5", communication="eerste"),
                MovementSpec(D("-20.00"), type="5", communication="tweede",
                             information=[InfoSpec("001" + "Jan Janssens".ljust(70) + "Kerkstraat 1".ljust(35)
                                                   + "9000 Gent", structured=True)]),
            ]),
        ], **kwargs)  # type: ignore[arg-type]


def test_round_trip_of_written_file() -> None:
    [st] = parse_coda(coda_bytes([sample_statement()]))
    assert codes(st) == set()
    assert st.new_balance == D("996.55")
    ogm, rf, free, batch = st.movements
    assert ogm.communication.ogm == OGM
    assert ogm.amount == D("-123.45")
    assert ogm.is_debit
    assert ogm.counterparty.iban == "BE71096123456769"
    assert ogm.counterparty.bic == "GKCCBEBB"
    assert ogm.end_to_end_id == "E2E-1"
    assert rf.communication.rf == RF
    assert rf.communication.type == "100"
    # a free communication across 2.1 and 2.2, assembled before trimming
    assert free.communication.text == "Factuur 2026/17 " + "x" * 60 + " einde"
    assert free.counterparty.iban == "BE53001548226815"
    assert [d.detail for d in batch.details] == [1, 2]
    assert batch.details[1].information[0].detail == 3
    assert batch.details[1].counterparty.name == "Jan Janssens"
    assert batch.details[1].counterparty.address == "Kerkstraat 1, 9000 Gent"


def test_ogm_typed_in_free_text_is_found() -> None:
    spec = StatementSpec(movements=[MovementSpec(D("-5"), communication="betaling +++010/8068/17183+++ dank")])
    [st] = parse_coda(coda_bytes([spec]))
    assert st.movements[0].communication.ogm == OGM
    assert st.movements[0].communication.from_text


def test_free_communication_found_on_first_read_equals_the_eager_one() -> None:
    """A free communication's OGM is looked for when first read: every field, equality, repr, copies
    and pickles are those of the eagerly built dataclass, and an unknown attribute still raises."""
    texts = ["betaling +++010/8068/17183+++ dank", "Factuur 12 omschrijving", ""]
    spec = StatementSpec(movements=[MovementSpec(D("-5"), communication=text) for text in texts])
    for movement, text in zip(parse_coda(coda_bytes([spec]))[0].movements, texts, strict=True):
        communication = movement.communication
        assert communication.text == text
        eager = Communication(False, communication.raw, text=text, ogm=OGM if "+++" in text else None,
                              from_text="+++" in text)
        assert copy.copy(communication) == eager
        assert pickle.loads(pickle.dumps(communication)) == eager
        assert communication == eager
        assert repr(communication) == repr(eager)
        assert (communication.type, communication.rf, communication.fields) == (None, None, {})
        with pytest.raises(AttributeError, match="no_such_field"):
            communication.no_such_field  # noqa: B018 -- the attribute access is the test


@pytest.mark.parametrize(("reference", "valid"), [("RF18539007547034", True), ("RF19539007547034", False),
                                                  ("rf18 5390 0754 7034", True), ("", False)])
def test_rf_checked_on_first_read_equals_the_eager_one(reference: str, valid: bool) -> None:
    spec = StatementSpec(movements=[MovementSpec(D("-5"), communication="100" + reference, structured=True)])
    [st] = parse_coda(coda_bytes([spec]))
    communication = st.movements[0].communication
    value = reference.replace(" ", "").upper()
    eager = Communication(True, communication.raw, type="100", text=value, rf=value if valid else None,
                          fields={"reference": value})
    assert pickle.loads(pickle.dumps(communication)) == eager
    assert communication.rf == (value if valid else None)
    assert communication == eager


def test_digest_is_of_the_records_whatever_the_bytes() -> None:
    """The statement digest is SHA-256 of records 1…9 as text (UTF-8, no line ends): the same for
    LF and CRLF, cp1252 and UTF-8, and whatever the read blocks cut (one statement spans several)."""
    spec = StatementSpec(movements=[MovementSpec(D(n % 7 - 3), communication=f"Crème {n}", counterparty_name="Liège €",
                                                 counterparty_account="BE68539007547034") for n in range(600)])
    lines = list(coda_lines([spec]))
    expected = hashlib.sha256("".join(lines[1:]).encode("utf-8")).hexdigest()
    for newline in ("\n", "\r\n"):
        for encoding in ("cp1252", "utf-8"):
            [st] = parse_coda(coda_bytes([spec], newline=newline, encoding=encoding))
            assert st.digest == expected, (newline, encoding)
    ascii_spec = StatementSpec(movements=[MovementSpec(D(n % 7 - 3), communication=f"betaling {n}")
                                          for n in range(600)])
    ascii_lines = list(coda_lines([ascii_spec]))
    [st] = parse_coda(coda_bytes([ascii_spec]))  # the ASCII blocks hashed from their bytes
    assert st.digest == hashlib.sha256("".join(ascii_lines[1:]).encode("ascii")).hexdigest()


def test_all_movements_lists_details_depth_first() -> None:
    spec = StatementSpec(movements=[
        MovementSpec(D("-3"), type="1", details=[
            MovementSpec(D("-1"), type="5", communication="d1"),
            MovementSpec(D("-2"), type="7", details=[MovementSpec(D("-2"), type="9", communication="d9")]),
            MovementSpec(D("0"), type="5", communication="d3")]),
        MovementSpec(D("4"), communication="next")])
    [st] = parse_coda(coda_bytes([spec]))
    assert [(m.type, m.amount) for m in st.all_movements()] == [
        ("1", D("-3")), ("5", D("-1")), ("7", D("-2")), ("9", D("-2")), ("5", D("0")), ("0", D("4"))]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("final", [True, False])
@pytest.mark.parametrize("encoding", ["cp1252", "utf-8"])
def test_line_ends_encodings(newline: str, final: bool, encoding: str) -> None:
    spec = StatementSpec(movements=[MovementSpec(D("-1"), counterparty_name="Crème brûlée à Liège €")])
    [st] = parse_coda(coda_bytes([spec], newline=newline, final_newline=final, encoding=encoding))
    assert st.movements[0].counterparty.name == "Crème brûlée à Liège €"


def test_undefined_cp1252_bytes_fall_back_to_latin1() -> None:
    data = coda_bytes([StatementSpec(movements=[MovementSpec(D("-1"), counterparty_name="AB")])])
    data = data.replace(b"AB   ", b"A\x81B  ", 1)
    [st] = parse_coda(data)
    assert st.movements[0].counterparty.name == "A\x81B"


def test_short_lines_blank_lines_and_bom() -> None:
    lines = [line.rstrip() for line in coda_lines([sample_statement()])]
    data = ("\ufeff" + "\n\n".join(lines)).encode("utf-8")
    [st] = parse_coda(data)
    assert "short_line" in codes(st)
    assert codes(st) == {"short_line"}
    assert len(st.movements) == 4


def test_several_statements_and_streaming() -> None:
    specs = [sample_statement(account="BE68539007547034"), StatementSpec(account="BE71096123456769"),
             sample_statement(account="BE71096123456769", coda_sequence=2)]
    data = coda_bytes(specs)
    statements = parse_coda(data)
    assert [len(s.movements) for s in statements] == [4, 0, 4]
    seen: list[object] = []
    pairs = list(iter_movements(io.BytesIO(data), on_statement=seen.append))
    assert len(pairs) == 8
    assert len(seen) == 3
    assert all(not s.movements for s in seen)  # streaming mode keeps no movement list
    assert pairs[0][0] is seen[0]
    assert pairs[-1][0] is seen[2]


def test_trailer_inconsistencies_are_warnings() -> None:
    spec = sample_statement(new_balance=D("1"), record_count=3, debit_total=D("1"), credit_total=D("2"),
                            account_8="BE71096123456769")
    [st] = parse_coda(coda_bytes([spec]))
    assert codes(st) == {"balance", "record_count", "debit_total", "credit_total", "account_mismatch"}


def test_duplicate_flag_and_keys() -> None:
    [a] = parse_coda(coda_bytes([sample_statement()]))
    [b] = parse_coda(coda_bytes([sample_statement(duplicate=True)]))
    assert "duplicate" in codes(b)
    assert [a.movement_key(m) for m in a.all_movements()] == [b.movement_key(m) for m in b.all_movements()]
    assert a.digest == b.digest  # records 1…9 only: a re-delivery has the same digest
    [c] = parse_coda(coda_bytes([sample_statement(coda_sequence=2)]))
    assert a.movement_key(a.movements[0]) != c.movement_key(c.movements[0])


def test_unknown_transaction_codes_are_not_fatal() -> None:
    spec = StatementSpec(movements=[MovementSpec(D("-1"), type="0", family="00", transaction="00", category="000")])
    [st] = parse_coda(coda_bytes([spec]))
    assert st.movements[0].transaction_code.code == "00000000"


def test_orphan_detail_is_kept_with_a_warning() -> None:
    spec = StatementSpec(movements=[MovementSpec(D("-1"), type="5")])
    [st] = parse_coda(coda_bytes([spec]))
    assert len(st.movements) == 1
    assert "orphan_detail" in codes(st)


# --- malformed input ---------------------------------------------------------------------------

def corrupt(line_no: int, column: int, text: str) -> bytes:
    lines = list(coda_lines([sample_statement()]))
    line = lines[line_no - 1]
    lines[line_no - 1] = line[:column - 1] + text + line[column - 1 + len(text):]
    return "\n".join(lines).encode()


@pytest.mark.parametrize(("line", "column", "text", "columns", "expected"), [
    (3, 33, "00000000012A450", (33, 47), "the amount, 3 implied decimals (15 digits)"),
    (3, 32, "7", (32, 32), "the sign of the amount"),
    (3, 48, "311326", (48, 53), "the value date as DDMMYY"),
    (2, 44, "x", (44, 58), "the old balance"),
    (1, 128, "1", (128, 128), "version 2 (CODA 2.x)"),
    (3, 1, "7", (1, 1), "a record type among 0, 1, 2, 3, 4, 8, 9"),
    (4, 3, "0009", (3, 10), "the sequence and detail numbers of the 2.1 at line 3"),
    (3, 62, "2", (62, 62), "communication type"),
    (2, 2, "9", (2, 2), "account structure"),
])
def test_malformed_fields_name_line_and_columns(line: int, column: int, text: str, columns: tuple[int, int],
                                                 expected: str) -> None:
    with pytest.raises(CodaError) as caught:
        parse_coda(corrupt(line, column, text), name="bad.cod")
    err = caught.value
    assert err.file == "bad.cod"
    assert err.line == line
    assert err.columns == columns
    assert expected in err.expected
    assert str(err).startswith(f"bad.cod:{line}: column")


def test_truncated_file_needs_record_9() -> None:
    lines = list(coda_lines([sample_statement()]))[:-1]
    with pytest.raises(CodaError, match="record 9"):
        parse_coda("\n".join(lines).encode(), name="partial.cod")


def test_orphan_22_and_long_lines() -> None:
    lines = list(coda_lines([sample_statement()]))
    with pytest.raises(CodaError, match=r"right after its record 2\.1"):
        parse_coda("\n".join(lines[:2] + lines[3:]).encode())
    lines[2] += "XYZ"
    with pytest.raises(CodaError, match="columns 129-131: expected a record of 128 characters"):
        parse_coda("\n".join(lines).encode())


def test_not_coda_and_empty() -> None:
    with pytest.raises(CodaError, match="record 0"):
        parse_coda(b"hello world\n")
    with pytest.raises(CodaError, match="empty file"):
        parse_coda(b"")
    with pytest.raises(CodaError, match="readable file"):
        parse_coda(Path("/nonexistent/x.cod"))


def test_record_helper_rejects_overflow() -> None:
    with pytest.raises(ValueError, match="overflows"):
        record((127, "abc"))


def test_lazy_iteration_reports_errors_after_good_statements() -> None:
    data = coda_bytes([sample_statement()]) + b"garbage\n"
    it = iter_statements(data, name="mixed.cod")
    assert len(next(it).movements) == 4
    with pytest.raises(CodaError, match=r"mixed\.cod:"):
        next(it)


def _big_file(path: Path, statements: int) -> Path:
    spec = sample_statement()
    with path.open("w", encoding="cp1252", newline="\n") as out:
        for _ in range(statements):
            out.writelines(line + "\n" for line in coda_lines([spec]))
    return path


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    import tracemalloc  # noqa: PLC0415

    peaks = []
    for count in (200, 1600):
        path = _big_file(tmp_path / f"{count}.cod", count)
        tracemalloc.start()
        seen = sum(1 for _ in iter_statements(path))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert seen == count
    assert peaks[1] < peaks[0] * 1.5, peaks


def test_streaming_one_long_statement_keeps_memory_flat(tmp_path: Path) -> None:
    """iter_movements keeps only the movement being built, even within one statement (the digest of
    the records is computed as they pass, not at the end)."""
    import tracemalloc  # noqa: PLC0415

    peaks = []
    for count in (2_000, 16_000):
        spec = StatementSpec(movements=[MovementSpec(D(n % 97 + 1), communication=f"payment {n}",
                                                     counterparty_account="BE68539007547034") for n in range(count)])
        path = tmp_path / f"{count}.cod"
        path.write_bytes(coda_bytes([spec]))
        tracemalloc.start()
        seen = sum(1 for _ in iter_movements(path))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert seen == count
    assert peaks[1] < peaks[0] * 1.5, peaks


def test_a_counterparty_account_in_other_digits_is_no_account() -> None:
    """Arabic-Indic digits in a UTF-8 file's 2.3 are not an account number; the file is read (the
    IBAN library raised KeyError on them, which failed the whole file)."""
    spec = StatementSpec(movements=[MovementSpec(Decimal("-5"), counterparty_account="٣" * 12,
                                                 counterparty_name="Someone")])
    (statement,) = parse_coda(coda_bytes([spec], encoding="utf-8"))
    (movement,) = statement.movements
    assert movement.counterparty.name == "Someone"
    assert movement.counterparty.iban is None
