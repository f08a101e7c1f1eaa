"""Stream attachment content to a file, verifying length, SHA-256 and size before it appears.

Bytes go to a hidden ``.part`` file beside the destination, hashed on the way; only a verified file is
fsynced and renamed into place. Whatever goes wrong (dropped connection, short body, digest or size
mismatch, disk error), the partial file is deleted and an exception raised.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx
import structlog

from ._errors import AttachmentNotFound, DigestMismatch, SizeMismatch, TruncatedDownload
from ._http import ApiSession
from ._models import Attachment

__all__ = ["DownloadResult", "download_attachment_to"]

log = structlog.get_logger(__name__)

CHUNK_SIZE = 64 * 1024
# Attachment sizes are kB (1024 B) doubles, possibly rounded by the provider.
SIZE_TOLERANCE_BYTES = 1024


@dataclass(frozen=True, slots=True)
class DownloadResult:
    path: Path
    size_bytes: int
    sha256_hex: str
    digest_verified: bool
    media_type: str | None
    content_type: str | None

    @property
    def sha256_base64url(self) -> str:
        return base64.urlsafe_b64encode(bytes.fromhex(self.sha256_hex)).rstrip(b"=").decode()


def _size_matches(actual: int, size_kb: float) -> bool:
    return abs(actual - size_kb * 1024) <= max(SIZE_TOLERANCE_BYTES, size_kb * 1024 * 0.005)


def _stream_into(response: httpx.Response, handle: BinaryIO, hasher: hashlib._Hash, max_bytes: int | None) -> int:
    written = 0
    try:
        for chunk in response.iter_bytes(CHUNK_SIZE):
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                raise SizeMismatch(f"download refused after {written} bytes: more than the expected maximum of "
                                   f"{max_bytes} bytes (from the declared size, or [documents] max_size_mb)")
            hasher.update(chunk)
            handle.write(chunk)
    except httpx.TransportError as exc:
        raise TruncatedDownload(f"connection failed after {written} bytes: {type(exc).__name__}: {exc}") from exc
    return written


def _verify(
    response: httpx.Response, attachment: Attachment | None, written: int, sha256: bytes, *, strict_size: bool
) -> bool:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit():
        # Content-Length counts the bytes on the wire: compare decoded bytes only without an encoding.
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        received = response.num_bytes_downloaded if encoded else written
        if received != int(declared):
            raise TruncatedDownload(f"received {received} of {declared} announced bytes")
    attachment_id = attachment.attachment_id if attachment else None
    verified = False
    if attachment is not None and attachment.digest is not None:
        if attachment.digest.method.lower().replace("-", "_") != "sha_256":
            log.warning("ebox.download.unknown_digest_method", method=attachment.digest.method)
        else:
            expected = attachment.digest.digest_bytes()
            if not hmac.compare_digest(expected, sha256):
                actual = base64.urlsafe_b64encode(sha256).rstrip(b"=").decode()
                raise DigestMismatch(
                    expected=attachment.digest.value.rstrip("="), actual=actual, attachment_id=attachment_id
                )
            verified = True
    if attachment is not None and not _size_matches(written, attachment.size_kb):
        problem = f"attachment {attachment_id}: {written} bytes received, metadata says {attachment.size_kb} kB"
        if strict_size or not verified:
            raise SizeMismatch(problem)
        log.warning(
            "ebox.download.size_metadata_mismatch",
            attachment_id=attachment_id,
            bytes=written,
            size_kb=attachment.size_kb,
        )
    return verified


def download_attachment_to(
    session: ApiSession,
    url: str,
    destination: Path,
    *,
    attachment: Attachment | None,
    strict_size: bool = False,
    max_bytes: int | None = None,
) -> DownloadResult:
    """GET ``url`` as a stream into ``destination`` and verify it against ``attachment``.

    The digest (when the metadata has one) is authoritative. The kB size is checked within a
    rounding tolerance; if the digest matched, a size disagreement is only logged unless
    ``strict_size``.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if attachment is not None:
        # A guard against a runaway body, not a size check (that comes after the digest); a caller's
        # own limit (the configured maximum size) applies too, whatever the metadata declares.
        guard = int(attachment.size_kb * 1024 * 2) + 1024 * 1024
        max_bytes = guard if max_bytes is None else min(max_bytes, guard)
    fd, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        hasher = hashlib.sha256()
        with os.fdopen(fd, "wb") as handle:
            response = session.request(
                "GET", url, accept="application/octet-stream, */*", stream=True, not_found=AttachmentNotFound
            )
            try:
                written = _stream_into(response, handle, hasher, max_bytes)
                verified = _verify(response, attachment, written, hasher.digest(), strict_size=strict_size)
            finally:
                response.close()
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(destination)
    except BaseException:
        # On a store turned read-only this fails too; the original error is the one to report.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    result = DownloadResult(
        path=destination,
        size_bytes=written,
        sha256_hex=hasher.hexdigest(),
        digest_verified=verified,
        media_type=attachment.media_type if attachment else None,
        content_type=response.headers.get("Content-Type"),
    )
    # debug: the caller logs one line per message (fetch.done); at thousands of documents an hour a
    # line per attachment is noise, and its cost shows in the worker's throughput.
    log.debug(
        "ebox.download.stored",
        attachment_id=attachment.attachment_id if attachment else None,
        bytes=written,
        digest_verified=verified,
        main_content=attachment.main_content if attachment else None,
    )
    return result
