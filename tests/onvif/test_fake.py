"""The fake camera itself: it answers the real client for every operation it claims, and it
checks WS-Security like a camera (digest, clock window, no replayed nonce)."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta

import aiohttp
from onvif import ONVIFCamera
from onvif_fixtures import fakes

from doorwatch.adapters.onvif.fake.soap import NS

__all__ = ["fakes"]

_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def signed(body: str, *, password: str = "admin", created: datetime, nonce: bytes) -> bytes:  # noqa: S107
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    # WS-Security UsernameToken digests are SHA-1 by definition.
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest())  # noqa: S324
    return (
        f'<s:Envelope xmlns:s="{NS["env"]}"><s:Header>'
        f'<wsse:Security xmlns:wsse="{_WSSE}" xmlns:wsu="{_WSU}"><wsse:UsernameToken>'
        "<wsse:Username>admin</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/'
        f'oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest.decode()}'
        "</wsse:Password>"
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken></wsse:Security>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


INFO = f'<GetDeviceInformation xmlns="{NS["tds"]}"/>'


async def call(port: int, payload: bytes) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/onvif/device_service",
            data=payload,
            headers={"Content-Type": "application/soap+xml"},
        ) as reply,
    ):
        return reply.status, await reply.text()


async def test_real_client_gets_answers_for_every_operation(fakes):
    """GetCapabilities, GetDeviceInformation and GetEventProperties answer the real client."""
    (fake,) = await fakes()
    camera = ONVIFCamera(fake.host, fake.port, "admin", "admin", adjust_time=True)
    try:
        await camera.update_xaddrs()
        capabilities = await camera.get_capabilities()
        assert capabilities["Events"]["WSPullPointSupport"] is True
        device = await camera.create_devicemgmt_service()
        info = await device.GetDeviceInformation()
        assert info.Manufacturer == "doorwatch"
        events = await camera.create_events_service()
        properties = await events.GetEventProperties()
        assert properties.FixedTopicSet is True
    finally:
        await camera.close()
    assert fake.auth_failures == 0


async def test_ws_security_digest_window_and_nonce_replay(fakes):
    """A correct digest is accepted; the same nonce again, a Created outside the skew window
    or a wrong password get a ter:NotAuthorized Fault; no token at all is refused too."""
    (fake,) = await fakes()
    now = datetime.now(UTC)
    nonce = os.urandom(16)
    ok_status, ok_body = await call(fake.port, signed(INFO, created=now, nonce=nonce))
    assert ok_status == 200
    assert "GetDeviceInformationResponse" in ok_body
    replay_status, replay_body = await call(fake.port, signed(INFO, created=now, nonce=nonce))
    assert replay_status == 400
    assert "replayed nonce" in replay_body
    late = await call(
        fake.port, signed(INFO, created=now - timedelta(seconds=30), nonce=os.urandom(16))
    )
    assert late[0] == 400
    assert "NotAuthorized" in late[1]
    assert "time window" in late[1]
    wrong = await call(fake.port, signed(INFO, password="guess", created=now, nonce=os.urandom(16)))
    assert "wrong password" in wrong[1]
    anonymous = await call(
        fake.port,
        f'<s:Envelope xmlns:s="{NS["env"]}"><s:Body>{INFO}</s:Body></s:Envelope>'.encode(),
    )
    assert anonymous[0] == 400
    assert fake.auth_failures == 4


async def test_skewed_camera_accepts_a_client_signing_with_its_clock(fakes):
    """With clock_skew the window is checked against the camera's clock: a token dated by
    our clock is refused, one dated by the camera's clock accepted."""
    (fake,) = await fakes()
    fake.set_faults(clock_skew=60.0)
    ours = await call(fake.port, signed(INFO, created=datetime.now(UTC), nonce=os.urandom(16)))
    assert ours[0] == 400
    theirs = await call(fake.port, signed(INFO, created=fake.now(), nonce=os.urandom(16)))
    assert theirs[0] == 200


async def test_malformed_requests_get_a_fault_not_a_crash(fakes):
    """Garbage, a DTD, or an unknown operation get a SOAP Fault with status 400."""
    (fake,) = await fakes()
    for payload in (b"garbage", b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'):
        status, body = await call(fake.port, payload)
        assert status == 400
        assert "Fault" in body
    status, body = await call(
        fake.port, signed("<Reboot xmlns='x'/>", created=datetime.now(UTC), nonce=os.urandom(16))
    )
    assert status == 400
    assert "ActionNotSupported" in body
