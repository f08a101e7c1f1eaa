"""Property-based tests of the CODA parser (fixed budget): random and mutated files raise only
CodaError; written files read back exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.banking import make_ogm
from daemon.banking.coda import CodaError, parse_coda
from daemon.banking.coda_writer import MovementSpec, StatementSpec, coda_bytes

BUDGET = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLE = (Path(__file__).parent / "fixtures" / "coda" / "febelfin-coda_CODA.txt").read_bytes()[:6000]
SAMPLE = SAMPLE[: SAMPLE.rfind(b"\n") + 1]

amounts = st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"), places=2,
                      allow_nan=False, allow_infinity=False)
texts = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"),
                max_size=149).map(lambda s: "".join(ch for ch in s if ch.encode("cp1252", "ignore")))


@st.composite
def movements(draw: st.DrawFn) -> MovementSpec:
    amount = draw(amounts)
    kind = draw(st.sampled_from(["ogm", "free", "batch"]))
    if kind == "ogm":
        return MovementSpec.ogm(amount, make_ogm(draw(st.integers(0, 10**10 - 1))).digits,
                                counterparty_name=draw(st.text("ABCDEFGH ", max_size=35)).strip())
    if kind == "free":
        return MovementSpec(amount, communication=draw(texts))
    details = draw(st.lists(amounts, min_size=1, max_size=3))
    return MovementSpec(sum(details, Decimal(0)), type="1",
                        details=[MovementSpec(d, type="5", communication=f"d{i}") for i, d in enumerate(details)])


@st.composite
def statements(draw: st.DrawFn) -> StatementSpec:
    return StatementSpec(old_balance=draw(amounts), movements=draw(st.lists(movements(), max_size=6)))


def only_coda_errors(data: bytes) -> None:
    error: CodaError | None = None
    try:
        for statement in parse_coda(data, name="fuzz.cod"):
            for movement in statement.all_movements():
                assert movement.amount == movement.amount.quantize(Decimal("0.001"))
    except CodaError as exc:
        error = exc
    if error is not None:
        assert error.file == "fuzz.cod"
        assert str(error).startswith("fuzz.cod")


@BUDGET
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    only_coda_errors(data)


@BUDGET
@given(st.data())
def test_mutated_sample(data: st.DataObject) -> None:
    raw = bytearray(SAMPLE)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate", "dup_line", "drop_line"]))
        if not raw:
            break
        at = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[at] = data.draw(st.sampled_from(list(b"0123456789 A\n\r\x81\xe9-")))
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
    only_coda_errors(bytes(raw))


@BUDGET
@given(st.lists(statements(), min_size=1, max_size=3), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_written_files_read_back(specs: list[StatementSpec], newline: str, final: bool) -> None:
    parsed = parse_coda(coda_bytes(specs, newline=newline, final_newline=final))
    assert len(parsed) == len(specs)
    for spec, statement in zip(specs, parsed, strict=True):
        assert statement.warnings == []
        assert statement.old_balance == spec.old_balance
        assert len(statement.movements) == len(spec.movements)
        for want, got in zip(spec.movements, statement.movements, strict=True):
            assert got.amount == want.amount
            assert len(got.details) == len(want.details)
            if want.structured:
                assert got.communication.ogm == want.communication[3:]
            else:
                assert got.communication.text == want.communication.strip()
