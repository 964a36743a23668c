"""Warnings for secret files that other users of the machine can read: password files and private keys named by
the site file (``mqtt.password_file``, ``mqtt.tls.key_file``; per OPC UA device ``auth.password_file``,
``auth.key_file`` and ``client_key``; the web page's ``web.password_file`` and ``web.tls.key_file``).

A secret file should be readable by the service only: mode 0600, or 0640 with the group the service runs in
(``chown root:energy-agent``). A file whose "others" bits allow reading is reported, positioned at the key that
names it. Files that do not exist (yet) are not reported here: systemd's ``LoadCredential`` or the install step
may put them in place. Paths are resolved as the runtime resolves them: MQTT's as given (relative to the working
directory), OPC UA's and the web page's relative to the site file's folder.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

from agent.config.opcua import CertificateAuthConfig, OpcuaDeviceConfig, UsernameAuthConfig
from agent.config.site import SiteConfig
from agent.config.yaml_source import PathKey

SERVICE_GROUP = "energy-agent"


def readable_secret_files(site: SiteConfig, site_dir: Path) -> list[tuple[PathKey, str]]:
    """(path in the site file, warning) for each named secret file that users other than its owner and group can
    read."""
    found: list[tuple[PathKey, str]] = []
    for where, file in _secret_files(site, site_dir):
        try:
            mode = file.stat().st_mode
        except OSError:
            continue  # not there (yet) or not ours to look at: the runtime says so when it reads it
        if stat.S_ISREG(mode) and mode & stat.S_IROTH:
            found.append(
                (
                    where,
                    f"{file} is readable by every user on this machine (mode {stat.S_IMODE(mode):04o}); run "
                    f"chmod 600 {file}, or chmod 640 {file} and chown root:{SERVICE_GROUP} {file}",
                )
            )
    return found


def _secret_files(site: SiteConfig, site_dir: Path) -> Iterator[tuple[PathKey, Path]]:
    mqtt = site.mqtt
    if mqtt is not None:
        if mqtt.password_file is not None:
            yield ("mqtt", "password_file"), Path(mqtt.password_file).expanduser()
        if mqtt.tls is not None and mqtt.tls.key_file is not None:
            yield ("mqtt", "tls", "key_file"), Path(mqtt.tls.key_file).expanduser()
    web = site.web
    if web is not None:
        if web.password_file is not None:
            yield ("web", "password_file"), _relative_to(site_dir, web.password_file)
        if web.tls is not None:
            yield ("web", "tls", "key_file"), _relative_to(site_dir, web.tls.key_file)
    for i, device in enumerate(site.devices):
        if not isinstance(device, OpcuaDeviceConfig):
            continue
        auth = device.auth
        if isinstance(auth, UsernameAuthConfig) and auth.password_file is not None:
            yield ("devices", i, "auth", "password_file"), _relative_to(site_dir, auth.password_file)
        if isinstance(auth, CertificateAuthConfig):
            yield ("devices", i, "auth", "key_file"), _relative_to(site_dir, auth.key_file)
        if device.client_key is not None:
            yield ("devices", i, "client_key"), _relative_to(site_dir, device.client_key)


def _relative_to(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
