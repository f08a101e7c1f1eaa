"""EPC069-12 payloads of payment requests, checked field by field, and the QR codes segno builds
from them, read back with a real QR decoder (zxing-cpp) from the PNG and the SVG image.

The images are turned into grey pixels here without an imaging library: PNG by its own
definition (zlib and the five row filters), SVG by drawing segno's path (``M``/``m``/``h``/``v``
commands of one-module-wide lines) on a grid.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from decimal import Decimal

import pytest
import segno
import zxingcpp

from daemon.banking.rf import make_rf
from daemon.db.models import PaymentRequest
from daemon.payments.manage import EPC_MAX_BYTES, PaymentRefused, epc_payload

EPC_FIELDS = ("service_tag", "version", "charset", "identification", "bic", "name", "iban", "amount", "purpose",
              "structured_reference", "unstructured_text", "information")


# --- reading QR images back ------------------------------------------------------------------

GreyImage = tuple[int, int, bytes]  # width, height, one byte per pixel (0 black … 255 white)


def png_to_grey(data: bytes) -> GreyImage:
    """Decode a non-interlaced PNG (greyscale, palette or RGB[A], any bit depth up to 8)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, header, palette, compressed = 8, b"", b"", []
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in the {kind!r} chunk"
        header = body if kind == b"IHDR" else header
        palette = body if kind == b"PLTE" else palette
        if kind == b"IDAT":
            compressed.append(body)
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert interlace == 0, "interlaced PNG"
    assert depth <= 8, f"{depth}-bit PNG"
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    stride, step = (width * depth * channels + 7) // 8, max(1, depth * channels // 8)
    raw, previous, grey = zlib.decompress(b"".join(compressed)), bytearray(stride), bytearray()
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                nearest = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                row[i] = (row[i] + nearest[2]) & 0xFF
        previous = row
        for x in range(width):
            if depth < 8:
                per_byte, mask = 8 // depth, (1 << depth) - 1
                value = row[x // per_byte] >> (8 - depth * (x % per_byte + 1)) & mask
                grey.append(palette[3 * value + 1] if colour == 3 else value * 255 // mask)
            elif colour in (0, 4):
                grey.append(row[x * channels])
            elif colour == 3:
                grey.append(palette[3 * row[x] + 1])
            else:
                grey.append(sum(row[x * channels:x * channels + 3]) // 3)
    return width, height, bytes(grey)


def svg_to_grey(svg: bytes) -> GreyImage:
    """Draw the dark modules of a segno SVG (one path of horizontal/vertical unit-wide lines)."""
    text = svg.decode("utf-8")
    width, height = (int(float(re.search(rf'<svg[^>]* {name}="([0-9.]+)"', text).group(1)))  # type: ignore[union-attr]
                     for name in ("width", "height"))
    (path,) = re.findall(r"<path[^>]*>", text)
    scale_match = re.search(r'transform="scale\(([0-9.]+)\)"', path)
    scale = int(float(scale_match.group(1))) if scale_match else 1
    commands = re.findall(r"([MmHhVv])([-0-9. ]+)", re.search(r' d="([^"]+)"', path).group(1))  # type: ignore[union-attr]
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for command, arguments in commands:
        numbers = [float(n) for n in arguments.split()] if " " in arguments.strip() else [float(arguments)]
        if command in "Mm":
            x, y = (numbers[0], numbers[1]) if command == "M" else (x + numbers[0], y + numbers[1])
        elif command in "Hh":
            end = numbers[0] if command == "H" else x + numbers[0]
            dark.update((column, int(y)) for column in range(int(min(x, end)), int(max(x, end))))
            x = end
        else:
            end = numbers[0] if command == "V" else y + numbers[0]
            dark.update((int(x), row) for row in range(int(min(y, end)), int(max(y, end))))
            y = end
    grey = bytes(0 if (px // scale, py // scale) in dark else 255 for py in range(height) for px in range(width))
    return width, height, grey


def decode_qr(image: GreyImage) -> bytes:
    """The bytes of the one QR code in the image, as zxing-cpp reads them (error level M checked)."""
    width, height, grey = image
    found = zxingcpp.read_barcodes(memoryview(grey).cast("B", (height, width)),
                                   formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, f"{len(found)} QR codes found"
    (code,) = found
    assert code.valid
    assert code.ec_level == "M"
    return bytes(code.bytes)


def epc_fields(decoded: bytes) -> dict[str, str]:
    """Decoded EPC payload → field name → value; trailing fields a generator left out are empty."""
    lines = decoded.decode("utf-8").split("\n")
    assert len(lines) <= len(EPC_FIELDS), lines
    return dict(zip(EPC_FIELDS, lines + [""] * (len(EPC_FIELDS) - len(lines)), strict=True))


def png_of(code: segno.QRCode, scale: int = 4) -> bytes:
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def svg_of(code: segno.QRCode, scale: int = 4) -> bytes:
    out = io.BytesIO()
    code.save(out, kind="svg", scale=scale, border=4)
    return out.getvalue()


def request(**kwargs: object) -> PaymentRequest:
    values: dict[str, object] = {"id": 7, "amount": Decimal("1234.50"), "currency": "EUR",
                                 "iban": "BE68539007547034", "bic": None, "reference": "010806817183",
                                 "reference_kind": "ogm", "beneficiary_name": "SPF Financiën"}
    values.update(kwargs)
    return PaymentRequest(**values)


def fields(payload: bytes) -> list[str]:
    return payload.decode("utf-8").split("\n")


def test_ogm_in_structured_field_utf8_no_bic() -> None:
    assert fields(epc_payload(request())) == [
        "BCD", "002", "1", "SCT", "", "SPF Financiën", "BE68539007547034", "EUR1234.50", "", "010806817183"]


def test_rf_and_bic() -> None:
    got = fields(epc_payload(request(reference="RF18539007547034", reference_kind="rf", bic="gkccbebb")))
    assert got[4] == "GKCCBEBB"
    assert got[9] == "RF18539007547034"
    assert len(got) == 10


def test_free_reference_goes_unstructured_and_no_reference_drops_fields() -> None:
    got = fields(epc_payload(request(reference="Factuur 17", reference_kind="free")))
    assert got[9:] == ["", "Factuur 17"]
    assert fields(epc_payload(request(reference=None, reference_kind=None)))[-1] == "EUR1234.50"


@pytest.mark.parametrize(("changes", "needle"), [
    ({"iban": None}, "has no IBAN"),
    ({"currency": "USD"}, "euros only"),
    ({"amount": None}, "has no amount"),
    ({"amount": Decimal("1000000000.00")}, "outside"),
    ({"amount": Decimal("0.00")}, "outside"),
    ({"beneficiary_name": None}, "beneficiary name"),
    ({"iban": "BE68539007547035"}, "check digits"),
])
def test_refusals(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(PaymentRefused, match=needle):
        epc_payload(request(**changes))


def test_size_limit_and_qr_parameters() -> None:
    longest = request(beneficiary_name="é" * 70, reference="x" * 35, reference_kind="free", bic="GKCCBEBBXXX")
    payload = epc_payload(longest)
    assert len(payload) <= EPC_MAX_BYTES
    code = segno.make_qr(payload, error="m", boost_error=False)
    assert code.error == "M"
    assert code.version <= 13


# --- the QR codes, read back ------------------------------------------------------------------

def expected(**fields: str) -> dict[str, str]:
    base = dict.fromkeys(EPC_FIELDS, "")
    base.update(service_tag="BCD", version="002", charset="1", identification="SCT")
    base.update(fields)
    return base


LONG_RF = make_rf("ABCDEFGHIJ0123456789Z").value  # 25 characters, the longest RF
QR_CASES = {
    "ogm, no BIC": ({}, expected(name="SPF Financiën", iban="BE68539007547034", amount="EUR1234.50",
                                  structured_reference="010806817183")),
    "rf and BIC": ({"reference": "RF18539007547034", "reference_kind": "rf", "bic": "gkccbebb"},
                   expected(bic="GKCCBEBB", name="SPF Financiën", iban="BE68539007547034", amount="EUR1234.50",
                            structured_reference="RF18539007547034")),
    "free text": ({"reference": "Factuur 2026/17 – dossier Ærø", "reference_kind": "free", "bic": "KREDBEBB"},
                  expected(bic="KREDBEBB", name="SPF Financiën", iban="BE68539007547034", amount="EUR1234.50",
                           unstructured_text="Factuur 2026/17 – dossier Ærø")),
    "no reference": ({"reference": None, "reference_kind": None, "amount": Decimal("0.01")},
                     expected(name="SPF Financiën", iban="BE68539007547034", amount="EUR0.01")),
    "accented name, IBAN with spaces": (
        {"beneficiary_name": "  Société  Générale d'Électricité Łódź — Ñandú  ", "iban": "be68 5390 0754 7034"},
        expected(name="Société Générale d'Électricité Łódź — Ñandú", iban="BE68539007547034", amount="EUR1234.50",
                 structured_reference="010806817183")),
    "longest values, free text": (
        {"beneficiary_name": "é" * 70, "bic": "GKCCBEBBXXX", "iban": "MT84MALT011000012345MTLCAST001S",
         "amount": Decimal("999999999.99"), "reference": "ü" * 35, "reference_kind": "free"},
        expected(bic="GKCCBEBBXXX", name="é" * 70, iban="MT84MALT011000012345MTLCAST001S",
                 amount="EUR999999999.99", unstructured_text="ü" * 35)),
    "longest values, RF": (
        {"beneficiary_name": "Ö" * 80, "bic": "GKCCBEBBXXX", "iban": "LC55HEMM000100010012001200023015",
         "amount": Decimal("999999999.99"), "reference": LONG_RF, "reference_kind": "rf"},
        expected(bic="GKCCBEBBXXX", name="Ö" * 70, iban="LC55HEMM000100010012001200023015",
                 amount="EUR999999999.99", structured_reference=LONG_RF)),
}


@pytest.mark.parametrize("case", list(QR_CASES))
@pytest.mark.parametrize("image", ["png", "svg"])
def test_qr_decodes_to_the_expected_epc_fields(case: str, image: str) -> None:
    changes, fields_expected = QR_CASES[case]
    payload = epc_payload(request(**changes))
    assert len(payload) <= EPC_MAX_BYTES
    code = segno.make_qr(payload, error="m", boost_error=False)
    assert code.version <= 13  # type: ignore[operator]
    picture = png_to_grey(png_of(code)) if image == "png" else svg_to_grey(svg_of(code))
    decoded = decode_qr(picture)
    assert decoded == payload
    assert epc_fields(decoded) == fields_expected


def test_image_readers_see_what_segno_drew() -> None:
    """The two readers agree with segno's own module matrix, so a decode failure is the code's."""
    code = segno.make_qr(b"BCD\n002\n1\nSCT", error="m", boost_error=False)
    width, height = code.symbol_size(scale=3, border=4)
    size = len(code.matrix)

    def is_dark(column: int, row: int) -> bool:  # module coordinates, the 4-module quiet zone around
        return 4 <= column < 4 + size and 4 <= row < 4 + size and bool(code.matrix[row - 4][column - 4])

    truth = bytes(0 if is_dark(px // 3, py // 3) else 255 for py in range(height) for px in range(width))
    assert png_to_grey(png_of(code, scale=3)) == (width, height, truth)
    assert svg_to_grey(svg_of(code, scale=3)) == (width, height, truth)


def test_decoder_refuses_a_damaged_code() -> None:
    """Guard against a decoder that reads anything: wipe the middle of the code, nothing is read."""
    code = segno.make_qr(epc_payload(request()), error="m", boost_error=False)
    width, height, grey = png_to_grey(png_of(code))
    damaged = bytearray(grey)
    for y in range(height // 4, 3 * height // 4):
        damaged[y * width + width // 4:y * width + 3 * width // 4] = bytes(width // 2)
    assert zxingcpp.read_barcodes(memoryview(bytes(damaged)).cast("B", (height, width)),
                                  formats=zxingcpp.BarcodeFormat.QRCode) == []
