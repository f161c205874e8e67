"""Runs the aiohttp application inside the daemon's TaskGroup (AppRunner, not run_app)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` until cancelled."""
    context: ssl.SSLContext | None = None
    if tls_cert is not None and tls_key is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(tls_cert, tls_key)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=context, reuse_address=True)
        await site.start()
        log.info(
            "http listening",
            url=f"{'https' if context else 'http'}://{host}:{port}/",
        )
        if started is not None:
            started.set()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
