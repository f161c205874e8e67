"""The console over HTTPS: the session cookie is ``__Host-`` prefixed, Secure, HttpOnly and
SameSite=Strict; plain HTTP is not answered on the TLS port."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from certs import make_pki
from conftest import free_port

from doorwatch.accounts import Role

PASSWORD = "correct horse battery"


async def test_session_cookie_flags_over_tls(running_daemon, tmp_path):
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    daemon = await running_daemon(f"""
        site: {{name: Test High, timezone: America/Chicago}}
        storage: {{path: {tmp_path / "dw.db"}}}
        console:
          listen: "127.0.0.1:{port}"
          tls_cert_file: {pki.server_cert}
          tls_key_file: {pki.server_key}
    """)
    await daemon.accounts.add_user("sam", Role.SRO, PASSWORD)
    context = ssl.create_default_context(cafile=str(pki.ca))
    base = f"https://localhost:{port}"
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.post(
            f"{base}/api/v1/login", json={"name": "sam", "password": PASSWORD}
        ) as response:
            assert response.status == 200, await response.text()
            (header,) = response.headers.getall("Set-Cookie")
        attributes = [part.strip().lower() for part in header.split(";")]
        assert header.startswith("__Host-doorwatch=")
        assert "secure" in attributes
        assert "httponly" in attributes
        assert "samesite=strict" in attributes
        assert "path=/" in attributes
        assert not any(a.startswith("domain=") for a in attributes), "__Host- forbids Domain"
        async with http.get(f"{base}/api/v1/session") as response:
            assert response.status == 200
    # Plain HTTP on the TLS port gets no console.
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientError):
            async with plain.get(f"http://127.0.0.1:{port}/api/v1/session") as response:
                await response.read()
