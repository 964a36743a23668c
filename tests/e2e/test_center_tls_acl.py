"""The shipped broker setup (deploy/center/mosquitto: TLS, passwords, per-gateway ACL with %u = "<site>/<gateway>",
message size limit) with the ingestor over TLS: a gateway can publish only its own branch (not another gateway's,
not its own name under another site), the ingestor's subscriptions and its dead-letter topic are allowed, a payload
that lies about its gateway is quarantined to the dead-letter topic, and an oversized message never gets past the
broker."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.test_center_harness import REPO, T0, CenterProcess, Publisher, center_config, samples_message, wait_until
from tests.servers.influx import influxd
from tests.servers.mosquitto import mosquitto

pytestmark = pytest.mark.e2e
DEPLOY = REPO / "deploy" / "center" / "mosquitto"


def make_certs(d: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 (EC P-256, one day)."""
    now = datetime.datetime.now(datetime.UTC)

    def cert(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        return b.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    srv_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("test energy CA", ca_key, "test energy CA", ca_key, True)
    srv = cert("127.0.0.1", srv_key, "test energy CA", ca_key, False)
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "server.crt").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(
        srv_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )


def broker_conf(d: Path) -> str:
    """deploy/center/mosquitto/energy.conf with its paths pointed at ``d``; the listener line and persistence come
    from the test helper (loopback, free port, no disk state)."""
    paths = {
        "/etc/mosquitto/energy/passwd": d / "passwd",
        "/etc/mosquitto/energy/acl": d / "acl",
        "/etc/mosquitto/certs/ca.crt": d / "ca.crt",
        "/etc/mosquitto/certs/server.crt": d / "server.crt",
        "/etc/mosquitto/certs/server.key": d / "server.key",
    }
    out = []
    for line in (DEPLOY / "energy.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key in ("listener", "protocol", "per_listener_settings", "persistence", "persistence_location"):
            continue
        for old, new in paths.items():
            line = line.replace(old, str(new))
        out.append(line)
    if os.geteuid() == 0:  # started as root, mosquitto drops to user "mosquitto", which cannot read pytest's tmp
        out.append("user root")
    return "\n".join(out) + "\n"


def test_tls_and_per_gateway_acl_from_deploy(tmp_path: Path) -> None:
    passwd = shutil.which("mosquitto_passwd") or pytest.skip("mosquitto_passwd is not installed")
    d = tmp_path / "broker"
    d.mkdir()
    make_certs(d)
    shutil.copy(DEPLOY / "acl", d / "acl")
    users = {"energy-center": "c-pass", "plant1/gw1": "g1-pass", "energy-viewer": "v-pass"}
    for i, (user, pw) in enumerate(users.items()):
        subprocess.run([passwd, "-b", *(["-c"] if i == 0 else []), str(d / "passwd"), user, pw], check=True)
    (tmp_path / "mqtt.pass").write_text("c-pass\n")

    with mosquitto(d, broker_conf(d), anonymous=False) as broker, influxd(tmp_path / "db") as db:
        db.create_database("energy")
        cfg = center_config(
            broker.port,
            {"kind": "v1", "url": db.url, "database": "energy"},
            mqtt={
                "tls": {"ca_file": str(d / "ca.crt")},
                "username": "energy-center",
                "password_file": str(tmp_path / "mqtt.pass"),
            },
            dead_letter={"topic": "energy-center/dead-letter"},
        )
        letters: list[dict[str, str]] = []
        got = threading.Event()
        viewer = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="viewer", protocol=mqtt.MQTTv5)
        viewer.username_pw_set("energy-viewer", "v-pass")
        viewer.tls_set(ca_certs=str(d / "ca.crt"))

        def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            letters.append(json.loads(msg.payload))
            got.set()

        viewer.on_message = on_message
        viewer.connect("127.0.0.1", broker.port)
        viewer.subscribe("energy-center/dead-letter", qos=1)
        viewer.loop_start()
        try:
            with CenterProcess(tmp_path / "c", cfg) as center:
                # gw1 of plant1 tries to write gw2's branch, and its own gateway name under another site (QoS 0:
                # mosquitto drops a denied PUBLISH; for a QoS 1 one an MQTT 3.1.1 client is disconnected).
                login = {"username": "plant1/gw1", "password": "g1-pass", "ca_file": d / "ca.crt"}
                rogue = Publisher(broker.port, "gw1-rogue", **login)  # type: ignore[arg-type]
                other_gateway = [samples_message("gw2", seq, "m1", T0 + seq, 3) for seq in range(10)]
                other_site = [samples_message("gw1", seq, "m1", T0 + seq, 3, site="plant2") for seq in range(10)]
                assert other_site[0][0] == "plant/plant2/gw1/m1/samples"
                for topic, payload in other_gateway + other_site:
                    rogue.client.publish(topic, payload, qos=0)
                rogue.close()
                gw1 = Publisher(broker.port, "gw1", **login)  # type: ignore[arg-type]
                own = [samples_message("gw1", seq, "m1", T0 + seq, 3) for seq in range(10)]
                liar = ("plant/plant1/gw1/m1/samples", samples_message("gw2", 50, "m1", T0 + 50, 3)[1])
                gw1.publish_all([liar, *own])
                # Over the broker's message_size_limit: dropped at the door. Mosquitto 2.0 also disconnects the
                # client ("protocol error"), so an agent must never produce such a message (see the README).
                huge = samples_message("gw1", 60, "big", T0, 12_000)
                assert len(huge[1]) > 1_048_576
                big = Publisher(broker.port, "gw1-big", **login)  # type: ignore[arg-type]
                reasons: list[str] = []
                big.client.on_disconnect = lambda c, u, f, rc, p: reasons.append(str(rc))
                big.client.publish(*huge, qos=1)
                wait_until(lambda: bool(reasons), 30, "the broker to drop the oversized message's client")
                big.close()
                wait_until(lambda: db.scalar("SELECT count(value) FROM sample", "energy") == 30, 30, "gw1's points")
                assert got.wait(30), "no dead letter on the topic"
                tags = db.query("SHOW TAG VALUES FROM sample WITH KEY IN (site, gateway, device)", "energy")
                assert sorted(tuple(v) for v in tags[0]["values"]) == [
                    ("device", "m1"),
                    ("gateway", "gw1"),
                    ("site", "plant1"),
                ]
                assert len(letters) == 1 and "does not match the payload" in letters[0]["reason"]
                assert letters[0]["topic"] == "plant/plant1/gw1/m1/samples"
                gw1.close()
                assert center.stop() == 0
        finally:
            viewer.disconnect()
            viewer.loop_stop()
