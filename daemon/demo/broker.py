"""The demo's MQTT broker: mosquitto when installed, else amqtt running in this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    """The path of mosquitto, if installed (it lives in sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in _MOSQUITTO_PATHS if Path(p).exists()), None)


async def _wait_port(port: int, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the demo broker did not listen on port {port}")


class EmbeddedBroker:
    """A local broker on a free port, started and stopped with the demo."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.kind = ""
        # "5" with mosquitto; amqtt speaks MQTT 3.1.1 only.
        self.protocol = "5"
        self._process: subprocess.Popen[bytes] | None = None
        self._amqtt: Any = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start mosquitto if it is installed, otherwise amqtt.

        ``DOORWATCH_DEMO_BROKER=amqtt`` picks amqtt even where mosquitto is installed (how the
        tests show the demo works on a machine without it).
        """
        mosquitto = None if os.environ.get("DOORWATCH_DEMO_BROKER") == "amqtt" else find_mosquitto()
        if mosquitto is not None:
            await self._start_mosquitto(mosquitto)
            await _wait_port(self.port)
        else:
            # Listening once start() returns; a probe connection would only make it log.
            await self._start_amqtt()
        log.info("demo broker listening", broker=self.kind, url=self.url)

    async def _start_mosquitto(self, binary: str) -> None:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_on_changes true",
            "log_dest none",
        ]
        if os.getuid() == 0:
            # Started as root, mosquitto drops to a 'mosquitto' user that cannot write here.
            lines.append(f"user {pwd.getpwuid(os.getuid()).pw_name}")
        conf.write_text("\n".join(lines) + "\n")
        self._process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own config; returns at once.
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.kind = "mosquitto"

    async def _start_amqtt(self) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise RuntimeError(
                "the demo needs an MQTT broker: install mosquitto, or doorwatch[demo] (amqtt)"
            ) from None

        self._amqtt = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await self._amqtt.start()
        self.kind = "amqtt"
        self.protocol = "3.1.1"

    async def stop(self) -> None:
        """Stop the broker."""
        if self._process is not None:
            self._process.terminate()
            await asyncio.to_thread(self._process.wait, 10)
            self._process = None
        if self._amqtt is not None:
            with contextlib.suppress(Exception):
                await self._amqtt.shutdown()
            self._amqtt = None
