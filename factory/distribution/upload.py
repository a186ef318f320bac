"""One blob upload session (OCI distribution spec), once a POST has opened it at a location.

Up to ``chunk_size`` the blob goes in one PUT with its bytes; above it, in PATCHes of
``chunk_size``, each to the location the previous answer gave, resuming from the registry's
offset when a chunk is refused as out of range (HTTP 416), then a closing PUT with the digest.
When the registry says the session is gone or its bytes do not add up, `UploadLost` is raised:
the caller looks whether the blob arrived anyway, else opens a new session.
"""

from __future__ import annotations

from typing import BinaryIO, Final
from urllib.parse import urljoin

import requests

from factory.distribution.refusals import refused
from factory.distribution.transport import Transport
from factory.errors import RegistryError
from factory.util import console

_LOST_UPLOAD_CODES: Final = frozenset(
    {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "DIGEST_INVALID", "SIZE_INVALID"}
)


class UploadLost(Exception):
    """The registry no longer has this upload as sent (cut short, or already committed)."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(error.message)
        self.error = error


def location(response: requests.Response, host: str) -> str:
    """The absolute upload location an answer gives (its Location header)."""
    given = response.headers.get("Location")
    if not given:
        raise RegistryError(
            f"{host} started an upload without a Location header.",
            hint="The registry does not follow the OCI distribution spec.",
        )
    return urljoin(response.url, given)


def _check(response: requests.Response, what: str, host: str, expected: int) -> None:
    """Raise unless ``response`` has the ``expected`` status: `UploadLost` when the registry
    says the upload session is gone or its bytes do not add up, else a `RegistryError`."""
    if response.status_code == expected:
        return
    error = refused(response, what, host)
    if response.status_code in (400, 404, 416) and any(
        code in error.message for code in _LOST_UPLOAD_CODES
    ):
        raise UploadLost(error)
    raise error


class Session:
    """The upload of blob ``digest`` at ``location`` (which each answer may move)."""

    def __init__(
        self, transport: Transport, location: str, digest: str, *, log: console.Progress
    ) -> None:
        self.t = transport
        self.location = location
        self.digest = digest
        self.log = log

    def send(self, size: int, source: BinaryIO, *, chunk_size: int) -> None:
        """Upload the ``size`` bytes of the seekable ``source`` (from its start)."""
        if size <= chunk_size:
            source.seek(0)
            self._put(source.read())
        else:
            self._chunked(size, source, chunk_size)

    def _put(self, data: bytes) -> None:
        separator = "&" if "?" in self.location else "?"
        what = f"the upload of blob {self.digest}"
        response = self.t.request(
            "PUT",
            f"{self.location}{separator}digest={self.digest}",
            headers={"Content-Type": "application/octet-stream"},
            data=data,
            what=what,
        )
        response.close()
        _check(response, what, self.t.host, 201)

    def _chunked(self, size: int, source: BinaryIO, chunk_size: int) -> None:
        offset = 0
        while offset < size:
            source.seek(offset)
            chunk = source.read(chunk_size)
            end = offset + len(chunk) - 1
            response = self.t.request(
                "PATCH",
                self.location,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{end}",
                },
                data=chunk,
                what=f"a chunk ({offset}-{end}) of blob {self.digest}",
            )
            response.close()
            if response.status_code == 416:
                offset = self._resume_offset()
                self.log(f"blob {self.digest[:19]}: resuming the upload at byte {offset}")
                continue
            _check(response, f"a chunk of blob {self.digest}", self.t.host, 202)
            self.location = location(response, self.t.host)
            offset = end + 1
            self.log(f"blob {self.digest[:19]}: {offset} of {size} bytes")
        self._put(b"")

    def _resume_offset(self) -> int:
        """Where the registry's copy of the upload ends (its Range), moving to the location
        it gives."""
        what = f"the upload status of blob {self.digest}"
        response = self.t.request("GET", self.location, what=f"the upload status of {self.digest}")
        response.close()
        received = response.headers.get("Range", "")
        _check(response, what, self.t.host, 204)
        if "-" not in received:
            raise refused(response, what, self.t.host)
        self.location = location(response, self.t.host)
        return int(received.rsplit("-", 1)[1]) + 1
