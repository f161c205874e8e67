"""Test certificates made with the openssl command: a CA, a broker and a client certificate."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(folder: Path, name: str = "ca") -> Pki:
    """A throwaway CA with a server certificate for localhost/127.0.0.1 and a client one."""
    folder.mkdir(parents=True, exist_ok=True)
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=doorwatch test {name}",
         "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=folder)  # fmt: skip
    (folder / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for who, subject, ext in (
        ("server", "/CN=localhost", ["-extfile", "server.ext"]),
        ("client", "/CN=doorwatch", []),
    ):
        _run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            f"{who}.key",
            "-out",
            f"{who}.csr",
            cwd=folder,
        )
        _run("x509", "-req", "-in", f"{who}.csr", "-CA", f"{name}.crt", "-CAkey", f"{name}.key", "-CAcreateserial",
             "-days", "2", "-out", f"{who}.crt", *ext, cwd=folder)  # fmt: skip
    return Pki(
        ca=folder / f"{name}.crt",
        server_cert=folder / "server.crt",
        server_key=folder / "server.key",
        client_cert=folder / "client.crt",
        client_key=folder / "client.key",
    )
