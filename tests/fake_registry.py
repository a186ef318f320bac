"""An in-memory registry (the part of the OCI distribution API a push uses), for unit tests.

It checks what a real registry checks (digests of uploads, chunk offsets, that an index's
manifests exist before the index) and keeps every request, so tests can assert the order.
The integration tests run the same pushes against Debian's docker-registry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field

from tests.fake_http import Reply, Request

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """repository -> digest -> bytes"""
    manifests: dict[str, dict[str, tuple[str, bytes]]] = field(default_factory=dict)
    """repository -> tag or digest -> (media type, bytes)"""
    uploads: dict[str, tuple[str, bytearray]] = field(default_factory=dict)
    refuse_chunk_once: bool = False
    """Answer the second PATCH with 416 after keeping its bytes (a lost reply)."""
    _patches: int = 0

    def __call__(self, request: Request) -> Reply:
        path = request.path
        if path == "/v2/":
            return Reply(status=200, body=b"{}")
        name, kind, rest = self._split(path)
        if kind == "blobs" and rest.startswith("uploads"):
            return self._upload(request, name, rest.removeprefix("uploads").strip("/"))
        if kind == "blobs":
            data = self.blobs.get(name, {}).get(rest)
            if data is None:
                return Reply(status=404, body=b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            return Reply(status=200, headers={"Docker-Content-Digest": rest}, body=data)
        if kind == "manifests":
            return self._manifest(request, name, rest)
        return Reply(status=404)

    @staticmethod
    def _split(path: str) -> tuple[str, str, str]:
        for kind in ("/blobs/", "/manifests/"):
            if kind in path:
                name, _, rest = path.removeprefix("/v2/").partition(kind)
                return name, kind.strip("/"), rest
        return "", "", ""

    def _upload(self, request: Request, name: str, upload: str) -> Reply:
        if request.method == "POST":
            mount, source = request.param("mount"), request.param("from")
            if mount and source and mount in self.blobs.get(source, {}):
                self.blobs.setdefault(name, {})[mount] = self.blobs[source][mount]
                return Reply(status=201, headers={"Location": f"/v2/{name}/blobs/{mount}"})
            new = uuid.uuid4().hex
            self.uploads[new] = (name, bytearray())
            return Reply(status=202, headers={"Location": f"/v2/{name}/blobs/uploads/{new}"})
        repo, received = self.uploads[upload]
        location = {"Location": f"/v2/{name}/blobs/uploads/{upload}"}
        if request.method == "GET":
            return Reply(status=204, headers={**location, "Range": f"0-{len(received) - 1}"})
        if request.method == "PATCH":
            start = int(request.headers["content-range"].split("-")[0])
            if start != len(received):
                return Reply(status=416)
            received.extend(request.body)
            self._patches += 1
            if self.refuse_chunk_once and self._patches == 2:
                self.refuse_chunk_once = False
                return Reply(status=416)
            return Reply(status=202, headers=location)
        if request.method == "PUT":
            received.extend(request.body)
            digest = request.param("digest") or ""
            if _digest(bytes(received)) != digest:
                return Reply(status=400, body=b'{"errors":[{"code":"DIGEST_INVALID"}]}')
            self.blobs.setdefault(repo, {})[digest] = bytes(received)
            del self.uploads[upload]
            return Reply(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}"})
        return Reply(status=405)

    def _manifest(self, request: Request, name: str, target: str) -> Reply:
        store = self.manifests.setdefault(name, {})
        if request.method in ("GET", "HEAD"):
            found = store.get(target)
            if found is None:
                return Reply(status=404, body=b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            media_type, data = found
            headers = {"Content-Type": media_type, "Docker-Content-Digest": _digest(data)}
            return Reply(status=200, headers=headers, body=data)
        if request.method == "PUT":
            media_type = request.headers.get("content-type", "")
            document = json.loads(request.body)
            wanted = (
                [m["digest"] for m in document["manifests"]]
                if media_type in INDEX_TYPES
                else [document["config"]["digest"], *(x["digest"] for x in document["layers"])]
            )
            have = set(store) if media_type in INDEX_TYPES else set(self.blobs.get(name, {}))
            if any(d not in have for d in wanted):
                return Reply(status=400, body=b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN"}]}')
            digest = _digest(request.body)
            store[target] = store[digest] = (media_type, request.body)
            return Reply(status=201, headers={"Docker-Content-Digest": digest})
        return Reply(status=405)
