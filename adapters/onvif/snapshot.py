"""Camera snapshots for alerts: profile and URI discovered once, JPEG fetched on demand.

The snapshot URI is discovered through ONVIF (GetProfiles, then GetSnapshotUri on the
configured or first profile) and cached; it is forgotten after a failed fetch so the next
request discovers it again (cameras hand out new URIs after a reboot). The JPEG itself is a
plain HTTP GET with Digest authentication (aiohttp's ``DigestAuthMiddleware``), a short total
timeout and a size cap. Credentials embedded in a URI are stripped before use and URIs are
logged without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import structlog
from yarl import URL

from doorwatch.adapters.onvif.client import CameraError, OnvifSession
from doorwatch.adapters.onvif.metrics import CameraMetrics

log = structlog.get_logger(__name__)

# Every JPEG starts with the SOI marker; anything else (an HTML login page) is not a snapshot.
_JPEG_MAGIC = b"\xff\xd8"
# Read the body in pieces this big, so an oversized image is refused without buffering it.
_CHUNK = 64 * 1024
_CREDENTIAL_KEYS = ("user", "username", "pass", "password", "pwd", "auth")


def redact_url(uri: str) -> str:
    """The URI without userinfo or credential-looking query parameters, for logs."""
    try:
        url = URL(uri)
    except ValueError:
        return "(unparseable uri)"
    if url.user or url.password:
        url = url.with_user(None)
    if any(key in url.query for key in _CREDENTIAL_KEYS):
        url = url.with_query(
            {k: ("***" if k in _CREDENTIAL_KEYS else v) for k, v in url.query.items()}
        )
    return str(url)


class SnapshotFetcher:
    """Fetches one camera's snapshot; safe to call from any task."""

    def __init__(
        self,
        camera_id: str,
        *,
        username: str | None,
        password: str | None,
        profile: str | None,
        timeout: float,
        max_bytes: int,
        http: Callable[[], aiohttp.ClientSession],
        metrics: CameraMetrics,
    ) -> None:
        """Configure the fetcher.

        Args:
            camera_id: for logs and metrics.
            username: the camera account (Digest auth); None for an open snapshot URL.
            password: its password; never logged.
            profile: a media profile token, or None for the camera's first profile.
            timeout: total time for discovery plus download.
            max_bytes: larger images are refused.
            http: returns the shared HTTP session (created lazily by the manager).
            metrics: where outcomes are counted.
        """
        self.camera_id = camera_id
        self._profile = profile
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._http = http
        self._metrics = metrics
        self._uri: str | None = None
        self._lock = asyncio.Lock()
        # Kept between fetches: after the first challenge it answers the camera's next
        # request pre-emptively, saving a round trip per alert snapshot.
        self._digest = (
            aiohttp.DigestAuthMiddleware(username, password)
            if username and password is not None
            else None
        )

    @property
    def uri(self) -> str | None:
        """The cached snapshot URI (with any embedded credentials), once discovered."""
        return self._uri

    async def fetch(self, session: OnvifSession | None) -> bytes | None:
        """Return a JPEG, or None if the camera cannot give one now (never raises).

        Args:
            session: the camera's live ONVIF session, used to discover the URI the first
                time; None while the camera is disconnected (a cached URI still works).
        """
        try:
            async with asyncio.timeout(self._timeout):
                uri = await self._discover(session)
                if uri is None:
                    self._metrics.snapshots.labels(self.camera_id, "unavailable").inc()
                    return None
                image = await self._download(uri)
        except TimeoutError:
            log.warning("snapshot timed out", camera=self.camera_id, timeout_s=self._timeout)
            image = None
        except (CameraError, aiohttp.ClientError, OSError) as exc:
            log.warning("snapshot failed", camera=self.camera_id, error=str(exc))
            image = None
        if image is None:
            self._uri = None  # Discover again next time: the camera may have rebooted.
            self._metrics.snapshots.labels(self.camera_id, "failed").inc()
        else:
            self._metrics.snapshots.labels(self.camera_id, "ok").inc()
        return image

    async def _discover(self, session: OnvifSession | None) -> str | None:
        async with self._lock:
            if self._uri is not None or session is None:
                return self._uri
            profiles = await session.profiles(self._timeout)
            tokens = [p.token for p in profiles]
            token = self._profile if self._profile in tokens else (tokens[0] if tokens else None)
            if token is None:
                log.warning("camera has no media profile for snapshots", camera=self.camera_id)
                return None
            if self._profile is not None and token != self._profile:
                log.warning(
                    "configured snapshot profile not found; using the first profile",
                    camera=self.camera_id,
                    profile=self._profile,
                    using=token,
                )
            self._uri = await session.snapshot_uri(token, self._timeout)
            if self._uri is None:
                log.warning("camera gives no snapshot uri", camera=self.camera_id, profile=token)
            else:
                log.info(
                    "snapshot uri discovered",
                    camera=self.camera_id,
                    profile=token,
                    uri=redact_url(self._uri),
                )
            return self._uri

    async def _download(self, uri: str) -> bytes | None:
        url = URL(uri)
        if url.user or url.password:
            url = url.with_user(None)  # Our credentials go in Digest, never in the URL.
        middlewares = (self._digest,) if self._digest is not None else ()
        async with self._http().get(url, middlewares=middlewares, allow_redirects=False) as reply:
            if reply.status != 200:  # noqa: PLR2004 - HTTP OK.
                log.warning(
                    "snapshot refused",
                    camera=self.camera_id,
                    status=reply.status,
                    uri=redact_url(uri),
                )
                return None
            declared = reply.content_length
            if declared is not None and declared > self._max_bytes:
                self._too_large(declared)
                return None
            body = bytearray()
            async for chunk in reply.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > self._max_bytes:
                    self._too_large(len(body))
                    return None
        if not body.startswith(_JPEG_MAGIC):
            log.warning("snapshot is not a JPEG", camera=self.camera_id, uri=redact_url(uri))
            return None
        return bytes(body)

    def _too_large(self, size: int) -> None:
        self._metrics.snapshots.labels(self.camera_id, "too_large").inc()
        log.warning(
            "snapshot larger than allowed", camera=self.camera_id, bytes=size, limit=self._max_bytes
        )
