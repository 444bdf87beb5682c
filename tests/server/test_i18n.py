"""The message catalogues: every incident type the gateways and the server can raise (found in
their source, so a new rule without a translation fails here), every state, role, severity and
action, in both languages with the same keys; served public and cacheable; the display
settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from gridsense_protocol import Severity
from gridsense_protocol.yamlconfig import ConfigError
from gridsense_server.app import ServerApp
from gridsense_server.config import load_server_config
from gridsense_server.db.models import INCIDENT_STATES
from gridsense_server.i18n import LANGUAGES, catalogue
from gridsense_server.registry.registry_file import Role
from gridsense_server.workorders.states import LEVELS, USER_ACTIONS

REPO = Path(__file__).resolve().parents[2]
# How a type is named where an incident is raised: a rule's class attribute, an Incident built
# with a literal type, the door state machine's helper, the server's own constants.
_TYPE_PATTERNS = (
    re.compile(r'incident_type = "([a-z_]+)"'),
    re.compile(r'\btype="([a-z_]+)"'),
    re.compile(r'_incident\(\s*"([a-z_]+)"'),
    re.compile(r'^GATEWAY_OFFLINE = "([a-z_]+)"', re.M),
)
SYSTEM_ACTIONS = ("open", "escalate", "remind", "unaccept", "auto_resolve")
ISSUE_WORDS = {  # the words the control room asked for
    "over_temperature": "温度过高", "rapid_rise": "温度骤升", "door_forced": "门被强行打开",
    "door_held_open": "门长时间未关", "repeated_denied": "多次刷卡被拒",
    "reader_offline": "读卡器离线", "gateway_offline": "网关离线",
}
STATE_WORDS = {"new": "待受理", "accepted": "处置中", "resolved": "待核查", "closed": "结案",
               "returned": "退回", "deferred": "延期", "invalid": "误报"}


def raised_types() -> set[str]:
    found: set[str] = set()
    for folder in (REPO / "edge/src/gridsense_edge", REPO / "server/src/gridsense_server"):
        for path in folder.rglob("*.py"):
            if "simulator" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            for pattern in _TYPE_PATTERNS:
                found.update(pattern.findall(text))
    return found


def _shape(tree: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in tree.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _shape(value, f"{prefix}{key}.")
    return keys


def test_every_raised_type_and_code_has_an_entry_in_every_catalogue() -> None:
    types = raised_types()
    # The scan must see the known raisers, else it would pass by finding nothing.
    assert {"over_temperature", "door_forced", "intrusion", "gateway_offline"} <= types
    zh, en = (catalogue(lang).messages for lang in LANGUAGES)
    assert _shape(zh) == _shape(en)
    configured = {"point_offline", "sensor_offline", "stale"}  # noise_under_gateway_offline
    for messages in (zh, en):
        assert types | configured <= set(messages["incident_types"]), types - set(
            messages["incident_types"])
        assert set(messages["states"]) == set(INCIDENT_STATES)
        assert set(messages["severities"]) == {s.value for s in Severity}
        assert set(messages["roles"]) == set(get_args(Role))
        assert set(messages["levels"]) == set(LEVELS)
        assert set(USER_ACTIONS) | set(SYSTEM_ACTIONS) <= set(messages["actions"])
        assert all(isinstance(v, str) and v.strip() for v in _leaves(messages))
    for code, word in ISSUE_WORDS.items():
        assert zh["incident_types"][code] == word
    assert zh["states"] == STATE_WORDS
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert all(cjk.search(text) for text in zh["incident_types"].values())
    assert not any(cjk.search(text) for text in _leaves(en))


def _leaves(tree: dict[str, Any]) -> list[Any]:
    return [leaf for value in tree.values()
            for leaf in (_leaves(value) if isinstance(value, dict) else [value])]


def test_display_zone_is_checked_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("display:\n  timezone: Asia/Beijing\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_server_config(path)
    assert "display.timezone" in str(error.value) and "Asia/Beijing" in str(error.value)
    path.write_text("display:\n  timezone: Asia/Urumqi\n  language: en\n", encoding="utf-8")
    config = load_server_config(path)
    assert (config.display.timezone, config.display.language) == ("Asia/Urumqi", "en")


async def test_catalogues_and_display_settings_are_public_and_cacheable(
    running_server: ServerApp,
) -> None:
    assert running_server.http_url is not None
    async with httpx.AsyncClient(base_url=running_server.http_url, trust_env=False,
                                 timeout=30) as http:
        zh = await http.get("/api/v1/i18n/zh-CN")  # no sign-in: the login page needs it too
        assert zh.status_code == 200
        assert zh.json()["states"]["new"] == "待受理" and zh.json()["language"] == "zh-CN"
        assert "public" in zh.headers["cache-control"]
        assert zh.headers["content-language"] == "zh-CN"
        again = await http.get("/api/v1/i18n/zh-CN", headers={"If-None-Match": zh.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        en = await http.get("/api/v1/i18n/en")
        assert en.json()["states"]["invalid"] == "False alarm"
        assert en.headers["etag"] != zh.headers["etag"]
        missing = await http.get("/api/v1/i18n/fr")
        assert missing.status_code == 404 and "zh-CN, en" in missing.json()["detail"]

        display = await http.get("/api/v1/settings/display")
        assert display.json() == {"timezone": "Asia/Shanghai", "utc_offset": "+08:00",
                                  "language": "zh-CN", "languages": ["zh-CN", "en"],
                                  "title": ""}
