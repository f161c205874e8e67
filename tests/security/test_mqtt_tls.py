"""MQTT over TLS with client certificates against a mosquitto TLS listener started here."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import textwrap

import pytest
from certs import make_pki
from conftest import (
    MOSQUITTO,
    console_url,
    free_port,
    http_get,
    journal_rows,
    wait_for_port,
    wait_healthy,
    wait_until,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def tls_broker(tmp_path):
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    conf = tmp_path / "tls.conf"
    conf.write_text(
        textwrap.dedent(f"""
        per_listener_settings false
        allow_anonymous false
        user {pwd.getpwuid(os.getuid()).pw_name}
        listener {port} 127.0.0.1
        cafile {pki.ca}
        certfile {pki.server_cert}
        keyfile {pki.server_key}
        require_certificate true
        use_identity_as_username true
        tls_version tlsv1.2
        log_dest stderr
    """)
    )
    for path in (pki.server_key, pki.client_key):
        path.chmod(0o644)
    with (tmp_path / "tls-broker.log").open("ab") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    wait_for_port(port)
    yield port, pki
    process.terminate()
    process.wait(10)


def write(tmp_path, port, *, ca, cert=None, key=None):
    client = f", cert_file: {cert}, key_file: {key}" if cert else ""
    path = tmp_path / "dw.yaml"
    path.write_text(
        textwrap.dedent(f"""
        site: {{name: TLS High}}
        mqtt: {{url: "mqtts://localhost:{port}", client_id: dw-tls, ca_file: {ca}{client}}}
        storage: {{path: {tmp_path / "dw.db"}}}
        doors: [{{id: gym, name: Gym}}]
        controllers: [{{id: gen, codec: generic, topics: ["site/#"]}}]
        console: {{listen: "127.0.0.1:{free_port()}"}}
    """)
    )
    return path


def publish_tls(port, pki, payload):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="tls-pub")
    client.tls_set(ca_certs=str(pki.ca), certfile=str(pki.client_cert), keyfile=str(pki.client_key))
    client.connect("localhost", port)
    client.loop_start()
    client.publish("site/gym", payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def test_mutual_tls_connects_and_ingests(tls_broker, tmp_path, daemon_factory):
    """With the CA and a client certificate the daemon connects over TLS and journals events."""
    port, pki = tls_broker
    config = write(tmp_path, port, ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    daemon_factory(config)
    wait_healthy(config)
    publish_tls(port, pki, json.dumps({"kind": "door.opened", "door": "gym", "dedupe_key": "tls1"}))
    wait_until(lambda: journal_rows(tmp_path / "dw.db") == [("tls1",)], what="event over TLS")


def test_a_broker_certificate_from_another_ca_is_refused(tls_broker, tmp_path, daemon_factory):
    """Pinned to a different CA, the daemon refuses the broker and says why; health stays red."""
    port, pki = tls_broker
    other = make_pki(tmp_path / "other", name="other-ca")
    config = write(tmp_path, port, ca=other.ca, cert=pki.client_cert, key=pki.client_key)
    daemon = daemon_factory(config)
    wait_until(lambda: "certificate verify failed" in daemon.logs(), what="verify failure logged")
    status, body = http_get(console_url(config) + "/healthz")
    assert status == 503
    assert json.loads(body)["checks"]["mqtt"]["ok"] is False


def test_without_a_client_certificate_the_broker_refuses(tls_broker, tmp_path, daemon_factory):
    """A broker that requires client certificates turns the daemon away without one."""
    port, pki = tls_broker
    config = write(tmp_path, port, ca=pki.ca)
    daemon = daemon_factory(config)
    wait_until(
        lambda: "mqtt connect failed" in daemon.logs() or "mqtt disconnected" in daemon.logs(),
        what="refusal",
    )
    assert http_get(console_url(config) + "/healthz")[0] == 503
