"""A real S3-compatible server for the artifact store tests: moto's standalone server on a free
port (started once per test session, in this process's threads; no internet), a bucket per
test, and a TCP proxy in front of it that can cut an upload after N bytes (a network failing
mid-upload, the outer edge the store must survive)."""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factories import free_port

pytest.importorskip("s3fs", reason="the S3 artifact store needs s3fs (pip install s3fs)")
moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (the dev extra)")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3:
    endpoint: str  # the moto server itself
    bucket: str
    url: str  # WORKBENCH_ARTIFACT_URL
    client: object  # a boto3 client, to look at the bucket from outside the workbench

    def keys(self) -> list[str]:
        got = self.client.list_objects_v2(Bucket=self.bucket)  # type: ignore[attr-defined]
        return sorted(o["Key"] for o in got.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()  # type: ignore

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)  # type: ignore


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(home: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """WORKBENCH_ARTIFACT_URL on a fresh bucket of the moto server."""
    import boto3

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = f"wb-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/team/artifacts"
    monkeypatch.setenv("WORKBENCH_ARTIFACT_URL", url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    # fail fast when the network fails (the default retries for a while, correctly)
    monkeypatch.setenv("WORKBENCH_ARTIFACT_OPTIONS",
                       '{"config_kwargs": {"retries": {"max_attempts": 1}}}')
    return S3(moto_endpoint, bucket, url, client)


class CutProxy:
    """Forwards TCP to `upstream`; once armed with `cut_uploads_after(n)`, a PUT or POST
    whose bytes pass n has its connection reset (the server never sees the whole body)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.limit: int | None = None
        self.cuts = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_uploads_after(self, n: int | None) -> None:
        self.limit = n

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _reset(*socks: socket.socket) -> None:
        for s in socks:
            try:  # RST, not FIN: a connection that died, not a request that ended
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        armed, sent = False, 0
        try:
            while chunk := client.recv(65536):
                if chunk[:5] in (b"PUT /", b"POST "):
                    armed, sent = True, 0
                elif chunk[:4] in (b"GET ", b"HEAD", b"DELE"):
                    armed = False
                sent += len(chunk)
                if armed and self.limit is not None and sent > self.limit:
                    upstream.sendall(chunk[:max(0, len(chunk) - (sent - self.limit))])
                    self.cuts += 1
                    self._reset(client, upstream)
                    return
                upstream.sendall(chunk)
        except OSError:
            pass
        self._reset(client, upstream)

    @staticmethod
    def _down(upstream: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        CutProxy._reset(client, upstream)


@pytest.fixture
def cut_proxy(s3: S3, monkeypatch: pytest.MonkeyPatch) -> Iterator[CutProxy]:
    """The workbench talks to the S3 server through a proxy that can cut uploads."""
    proxy = CutProxy(s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    try:
        yield proxy
    finally:
        proxy.close()
