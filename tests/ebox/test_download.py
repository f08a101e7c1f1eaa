from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest
from structlog.testing import capture_logs

from daemon import ebox

from .conftest import FakeEbox, b64url_sha256, status_message

CONTENT = os.urandom(150_000)
PATH = "/ebox/messages/m1/attachments/a1/content"


def attachment(data: bytes = CONTENT, *, digest: str | None = "auto", size_kb: float | None = None, main=True):
    return ebox.Attachment(
        attachment_id="a1",
        file_name="brief.pdf",
        main_content=main,
        media_type="application/pdf",
        size_kb=round(len(data) / 1024, 2) if size_kb is None else size_kb,
        digest=None if digest is None else ebox.Digest("sha_256", b64url_sha256(data) if digest == "auto" else digest),
    )


class Chunks(httpx.SyncByteStream):
    """A body that yields ``parts`` then optionally fails like a dropped connection."""

    def __init__(self, parts: list[bytes], fail: Exception | None = None) -> None:
        self.parts = parts
        self.fail = fail

    def __iter__(self):
        yield from self.parts
        if self.fail is not None:
            raise self.fail


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_download_streams_verifies_and_renames(client, fake: FakeEbox, tmp_path):
    fake.route("GET", PATH, httpx.Response(200, content=CONTENT, headers={"Content-Type": "application/pdf"}))
    target = tmp_path / "docs" / "brief.pdf"
    with capture_logs() as logs:
        result = client.download_attachment("m1", attachment(), target)
    assert target.read_bytes() == CONTENT
    assert result.path == target
    assert result.size_bytes == len(CONTENT)
    assert result.sha256_hex == hashlib.sha256(CONTENT).hexdigest()
    assert result.sha256_base64url == b64url_sha256(CONTENT)
    assert result.digest_verified
    assert result.content_type == "application/pdf"
    assert leftovers(target.parent) == ["brief.pdf"]
    assert fake.api_requests[0].headers["Accept"].startswith("application/octet-stream")
    assert "ebox.download.main_content" in [e["event"] for e in logs]


def test_padded_and_plain_base64_digests_are_accepted(client, fake, tmp_path):
    digest = hashlib.sha256(CONTENT).digest()
    fake.route("GET", PATH, httpx.Response(200, content=CONTENT))
    for value in (base64.urlsafe_b64encode(digest).decode(), base64.b64encode(digest).decode()):
        assert client.download_attachment("m1", attachment(digest=value), tmp_path / "f").digest_verified


def test_digest_mismatch_leaves_no_file(client, fake, tmp_path):
    fake.route("GET", PATH, httpx.Response(200, content=CONTENT))
    wrong = attachment(digest=b64url_sha256(b"something else"))
    with pytest.raises(ebox.DigestMismatch) as info:
        client.download_attachment("m1", wrong, tmp_path / "brief.pdf")
    assert info.value.expected == b64url_sha256(b"something else")
    assert info.value.actual == b64url_sha256(CONTENT)
    assert leftovers(tmp_path) == []


def test_digest_mismatch_keeps_a_previous_good_file(client, fake, tmp_path):
    target = tmp_path / "brief.pdf"
    target.write_bytes(b"previous good copy")
    fake.route("GET", PATH, httpx.Response(200, content=b"tampered"))
    with pytest.raises(ebox.DigestMismatch):
        client.download_attachment("m1", attachment(), target)
    assert target.read_bytes() == b"previous good copy"
    assert leftovers(tmp_path) == ["brief.pdf"]


def test_connection_dropped_mid_body_leaves_no_file(client, fake, tmp_path):
    stream = Chunks([CONTENT[:50_000]], fail=httpx.RemoteProtocolError("peer closed connection"))
    fake.route(
        "GET", PATH, lambda _r: httpx.Response(200, stream=stream, headers={"Content-Length": str(len(CONTENT))})
    )
    with pytest.raises(ebox.TruncatedDownload, match=r"connection failed after \d+ bytes"):
        client.download_attachment("m1", attachment(), tmp_path / "brief.pdf")
    assert leftovers(tmp_path) == []


def test_short_body_against_content_length_leaves_no_file(client, fake, tmp_path):
    short = CONTENT[:1000]
    fake.route(
        "GET",
        PATH,
        lambda _r: httpx.Response(200, stream=Chunks([short]), headers={"Content-Length": str(len(CONTENT))}),
    )
    with pytest.raises(ebox.TruncatedDownload, match=f"received 1000 of {len(CONTENT)}"):
        client.download_attachment("m1", attachment(digest=None), tmp_path / "brief.pdf")
    assert leftovers(tmp_path) == []


def test_size_mismatch_without_digest_leaves_no_file(client, fake, tmp_path):
    fake.route("GET", PATH, httpx.Response(200, content=CONTENT[:100_000]))
    with pytest.raises(ebox.SizeMismatch, match="100000 bytes received"):
        client.download_attachment("m1", attachment(digest=None, size_kb=len(CONTENT) / 1024), tmp_path / "f")
    assert leftovers(tmp_path) == []


def test_size_within_rounding_is_accepted(client, fake, tmp_path):
    fake.route("GET", PATH, httpx.Response(200, content=CONTENT))
    rounded = float(round(len(CONTENT) / 1024))
    result = client.download_attachment("m1", attachment(digest=None, size_kb=rounded), tmp_path / "f")
    assert not result.digest_verified
    assert result.size_bytes == len(CONTENT)


def test_size_metadata_disagreeing_with_a_verified_digest(client, fake, tmp_path):
    fake.route("GET", PATH, httpx.Response(200, content=CONTENT))
    off = attachment(size_kb=len(CONTENT) / 1024 * 0.8)
    with capture_logs() as logs:
        assert client.download_attachment("m1", off, tmp_path / "a").digest_verified
    assert "ebox.download.size_metadata_mismatch" in [e["event"] for e in logs]
    with pytest.raises(ebox.SizeMismatch):
        client.download_attachment("m1", off, tmp_path / "b", strict_size=True)
    assert leftovers(tmp_path) == ["a"]


def test_runaway_body_is_cut_off(client, fake, tmp_path):
    huge = Chunks([b"x" * 1024 * 1024] * 4)
    fake.route("GET", PATH, lambda _r: httpx.Response(200, stream=huge))
    with pytest.raises(ebox.SizeMismatch, match="expected maximum"):
        client.download_attachment("m1", attachment(data=b"tiny", digest=None), tmp_path / "f")
    assert leftovers(tmp_path) == []


def test_download_by_id_fetches_metadata_first(client, fake, tmp_path):
    fake.json(
        "/ebox/messages/m1/attachments/a1",
        {
            "attachmentId": "a1",
            "fileName": "brief.pdf",
            "mainContent": False,
            "mediaType": "application/pdf",
            "size": len(CONTENT) / 1024,
            "digest": {"digestMethod": "sha_256", "digestValue": b64url_sha256(CONTENT)},
        },
    )
    fake.route("GET", PATH, httpx.Response(200, content=CONTENT))
    assert client.download_attachment("m1", "a1", tmp_path / "f").digest_verified
    assert [r.url.path.rsplit("/", 1)[-1] for r in fake.api_requests] == ["a1", "content"]


def test_missing_content_raises_attachment_not_found(client, fake, tmp_path):
    fake.route("GET", PATH, status_message("NOT_FOUND", "Attachment not found", 404))
    with pytest.raises(ebox.AttachmentNotFound, match="Attachment not found"):
        client.download_attachment("m1", attachment(), tmp_path / "f")
    assert leftovers(tmp_path) == []


def test_download_retries_a_503_before_the_body(client, fake, tmp_path, sleeps):
    fake.route("GET", PATH, [httpx.Response(503), httpx.Response(200, content=CONTENT)])
    assert client.download_attachment("m1", attachment(), tmp_path / "f").digest_verified
    assert len(sleeps) == 1


def test_download_reauthenticates_on_401(client, fake, tmp_path):
    fake.route("GET", PATH, [status_message("TOKEN_EXPIRED", "expired", 401), httpx.Response(200, content=CONTENT)])
    assert client.download_attachment("m1", attachment(), tmp_path / "f").size_bytes == len(CONTENT)
    assert len(fake.token_requests) == 2
