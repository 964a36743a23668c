"""load_site / load_profile: profile lookup, positions for other checkers, hash, section hooks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

import agent
import agent.config.mqtt
from agent.config.load import ENV_PROFILES, load_profile, load_profile_checked, load_site, shipped_profile_dir
from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.errors import ConfigError

PROFILE = """\
profile: {name}
address_base: 0
points:
  - name: {point}
    kind: holding_register
    address: 0
    type: float32
"""

SITE = """\
site: plant
gateway: gw-1
profile_dirs: [profiles]
devices:
  - name: m1
    profile: acme
    host: 127.0.0.1
"""


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "shipped"
    folder.mkdir()
    monkeypatch.setenv(ENV_PROFILES, str(folder))
    return folder


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _messages(e: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(i) for i in e.value.issues]


def test_shipped_dir_is_the_repo_folder_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PROFILES, raising=False)
    assert shipped_profile_dir() == Path(agent.__file__).resolve().parent.parent / "device_profiles"
    monkeypatch.setenv(ENV_PROFILES, "/opt/profiles")
    assert shipped_profile_dir() == Path("/opt/profiles")


def test_loads_site_with_its_profiles(tmp_path: Path, shipped: Path) -> None:
    profile = _write(tmp_path / "profiles" / "acme.yaml", PROFILE.format(name="acme", point="e"))
    _write(tmp_path / "profiles" / "unused.yaml", "this: [is, not, used\n")
    site_file = _write(tmp_path / "site.yaml", SITE)
    loaded = load_site(site_file)
    assert isinstance(loaded.site, SiteConfig)
    assert list(loaded.profiles) == ["acme"]
    assert loaded.profiles["acme"].points[0].name == "e"
    assert loaded.profile_paths == {"acme": profile}
    assert loaded.warnings == ()
    assert loaded.path == site_file


def test_profile_dirs_override_the_shipped_library(tmp_path: Path, shipped: Path) -> None:
    _write(shipped / "acme.yaml", PROFILE.format(name="acme", point="shipped"))
    _write(tmp_path / "profiles" / "local-copy.yaml", PROFILE.format(name="acme", point="local"))
    loaded = load_site(_write(tmp_path / "site.yaml", SITE))
    assert loaded.profiles["acme"].points[0].name == "local"


def test_shipped_library_is_searched(tmp_path: Path, shipped: Path) -> None:
    _write(shipped / "acme.yaml", PROFILE.format(name="acme", point="shipped"))
    (tmp_path / "profiles").mkdir()
    loaded = load_site(_write(tmp_path / "site.yaml", SITE))
    assert loaded.profiles["acme"].points[0].name == "shipped"
    assert loaded.profile_paths["acme"] == shipped / "acme.yaml"


def test_the_profile_key_names_a_profile_not_the_file_name(tmp_path: Path, shipped: Path) -> None:
    _write(tmp_path / "profiles" / "acme.yaml", PROFILE.format(name="other", point="e"))
    with pytest.raises(ConfigError) as caught:
        load_site(_write(tmp_path / "site.yaml", SITE))
    (message,) = _messages(caught)
    assert message.endswith("site.yaml:6:14: devices[0].profile: no profile named 'acme' in the profile folders")


def test_missing_profile_folder_is_reported_at_its_entry(tmp_path: Path, shipped: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(_write(tmp_path / "site.yaml", SITE))
    assert _messages(caught)[0] == (
        f"{tmp_path}/site.yaml:3:16: profile_dirs[0]: profile folder 'profiles' not found next to the site file"
    )


def test_errors_of_site_and_profiles_come_together_sorted(
    tmp_path: Path, shipped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "profiles" / "acme.yaml", PROFILE.format(name="acme", point="e").replace("float32", "flaot"))
    _write(tmp_path / "site.yaml", SITE + "    colour: red\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_site(Path("site.yaml"))
    assert [m.split(" ")[0] for m in _messages(caught)] == ["profiles/acme.yaml:7:11:", "site.yaml:8:5:"]


def test_one_profile_used_by_many_devices_is_reported_once(tmp_path: Path, shipped: Path) -> None:
    _write(tmp_path / "profiles" / "acme.yaml", PROFILE.format(name="acme", point="e").replace("float32", "x"))
    site = SITE + "  - name: m2\n    profile: acme\n    host: 127.0.0.2\n"
    with pytest.raises(ConfigError) as caught:
        load_site(_write(tmp_path / "site.yaml", site))
    assert len(caught.value.issues) == 1


def test_config_hash_is_stable_and_covers_used_profiles(tmp_path: Path, shipped: Path) -> None:
    profile = _write(tmp_path / "profiles" / "acme.yaml", PROFILE.format(name="acme", point="e"))
    unused = _write(tmp_path / "profiles" / "b.yaml", PROFILE.format(name="b", point="e"))
    site_file = _write(tmp_path / "site.yaml", SITE)
    first = load_site(site_file).config_hash
    assert len(first) == 64 and int(first, 16) >= 0
    assert load_site(site_file).config_hash == first
    unused.write_text(PROFILE.format(name="b", point="f"))
    assert load_site(site_file).config_hash == first
    profile.write_text(PROFILE.format(name="acme", point="f"))
    changed = load_site(site_file).config_hash
    assert changed != first
    site_file.write_text(SITE + "# a comment\n")
    assert load_site(site_file).config_hash not in (first, changed)


def test_positions_for_other_checkers(tmp_path: Path, shipped: Path) -> None:
    _write(tmp_path / "profiles" / "acme.yaml", PROFILE.format(name="acme", point="e"))
    site_file = _write(tmp_path / "site.yaml", SITE)
    loaded = load_site(site_file)
    assert loaded.position(("devices", 0, "host")) == (str(site_file), 7, 11)
    assert loaded.position(("devices", 0, "unit_id")) == (str(site_file), 5, 5)
    path = str(tmp_path / "profiles" / "acme.yaml")
    assert loaded.profile_position("acme", ("points", 0, "address")) == (path, 6, 14)
    assert str(loaded.issue(("devices", 0), "bad")) == f"{site_file}:5:5: devices[0]: bad"
    assert str(loaded.profile_issue("acme", ("points", 0), "bad", "warning")) == f"{path}:4:5: points[0]: warning: bad"


def test_duplicate_profile_names_in_one_folder(tmp_path: Path, shipped: Path) -> None:
    _write(tmp_path / "profiles" / "a.yaml", PROFILE.format(name="acme", point="e"))
    _write(
        tmp_path / "profiles" / "b.yaml", "# copy\nprofile: 'acme'  # same\n" + PROFILE.format(name="x", point="e")[12:]
    )
    with pytest.raises(ConfigError) as caught:
        load_site(_write(tmp_path / "site.yaml", SITE))
    (message,) = _messages(caught)
    assert message == (
        f"{tmp_path}/profiles/b.yaml:2:11: profile: profile 'acme' is also defined in {tmp_path}/profiles/a.yaml; "
        "rename one of them"
    )


def test_section_hooks_are_called_and_positioned(
    tmp_path: Path, shipped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "profiles" / "acme.yaml", PROFILE.format(name="acme", point="e"))
    site_file = _write(tmp_path / "site.yaml", SITE)
    seen: list[tuple[str, list[str]]] = []

    def check(site: SiteConfig, profiles: Mapping[str, ProfileConfig]) -> list[tuple[tuple[str | int, ...], str]]:
        seen.append((site.site, sorted(profiles)))
        return [(("devices", 0, "host"), "host is not allowed by the mqtt section")]

    monkeypatch.setattr(agent.config.mqtt, "check", check, raising=False)
    with pytest.raises(ConfigError) as caught:
        load_site(site_file)
    assert seen == [("plant", ["acme"])]
    assert _messages(caught) == [f"{site_file}:7:11: devices[0].host: host is not allowed by the mqtt section"]


def test_hooks_do_not_run_on_a_config_with_errors(
    tmp_path: Path, shipped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[bool] = []

    def check(site: SiteConfig, profiles: Mapping[str, ProfileConfig]) -> list[tuple[tuple[str | int, ...], str]]:
        called.append(True)
        return []

    monkeypatch.setattr(agent.config.mqtt, "check", check, raising=False)
    with pytest.raises(ConfigError):
        load_site(_write(tmp_path / "site.yaml", SITE))
    assert called == []


def test_site_syntax_error_is_one_issue(tmp_path: Path, shipped: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(_write(tmp_path / "site.yaml", "site: [\n"))
    assert len(caught.value.issues) == 1


def test_load_profile(tmp_path: Path) -> None:
    good = _write(tmp_path / "a.yaml", PROFILE.format(name="acme", point="e"))
    assert load_profile(good).profile == "acme"
    warned = _write(
        tmp_path / "w.yaml",
        PROFILE.format(name="acme", point="e")
        .replace("address_base: 0", "address_base: 1")
        .replace("address: 0", "address: 40001"),
    )
    profile, warnings = load_profile_checked(warned)
    assert profile.points[0].address == 40001
    assert [w.severity for w in warnings] == ["warning"]
    bad = _write(tmp_path / "b.yaml", PROFILE.format(name="acme", point="e").replace("address: 0", "address: -1"))
    with pytest.raises(ConfigError, match=r"b\.yaml:6:14: points\[0\]\.address: -1 is too small"):
        load_profile(bad)


def test_shipped_library_profiles_load_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PROFILES, raising=False)
    every = sorted(p.stem for p in shipped_profile_dir().glob("*.yaml"))
    names = [n for n in every if not n.startswith("dlt645-")]
    meters = [n for n in every if n.startswith("dlt645-")]
    if not names:
        pytest.skip("no shipped profiles in this checkout")
    devices = "".join(f"  - {{name: d{i}, profile: {n}, host: 127.0.0.{i + 1}}}\n" for i, n in enumerate(names))
    devices += "".join(
        f"  - {{name: m{i}, protocol: dlt645, profile: {n}, bus: b, address: '{i:012d}'}}\n"
        for i, n in enumerate(meters)
    )
    text = "site: s\ngateway: g\nbuses:\n  - {name: b, port: /dev/null}\ndevices:\n" + devices
    loaded = load_site(_write(tmp_path / "site.yaml", text))
    assert sorted(loaded.profiles) == sorted(loaded.profiles[n].profile for n in names)
    assert sorted(loaded.dlt645_profiles) == meters
    assert all(loaded.profile_paths[n].parent == shipped_profile_dir() for n in every)


def test_empty_site_file(tmp_path: Path, shipped: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(_write(tmp_path / "site.yaml", "# nothing yet\n"))
    assert _messages(caught) == [f"{tmp_path}/site.yaml:1:1: expected a mapping (key: value lines), got an empty value"]
