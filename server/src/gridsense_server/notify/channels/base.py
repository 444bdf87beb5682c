"""The channel interface: ``send(target, message) -> Outcome``, blocking, in a worker thread.

An ``Outcome`` says what the sender should do next, with the vendor's own code and words for
the delivery log: ``sent``; ``rate_limited`` (wait ``retry_after_s``, the digest follows);
``retry`` (a passing failure: backoff); ``bad_config`` (a wrong token, secret or signature:
give up now and let escalation page the next step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict

from gridsense_protocol.yamlconfig import ConfigError

from ..messages import Message

Status = Literal["sent", "rate_limited", "retry", "bad_config"]
TIMEOUT_S = 10.0


class ChannelConfigError(ConfigError):
    """A vendor's settings cannot be used; the message names the setting (the CLI exits 2
    with it, like any config error)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("server config", [(path, None, msg) for path, msg in problems])


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    vendor: str
    code: str = ""
    detail: str = ""
    retry_after_s: float | None = None

    @property
    def sent(self) -> bool:
        return self.status == "sent"

    def describe(self) -> str:
        """The delivery log's ``error``: vendor, code, the vendor's words, and our reading."""
        reading = {"rate_limited": "限流", "retry": "暂时失败", "bad_config": "配置错误",
                   "sent": "已发送"}[self.status]
        code = f" {self.code}" if self.code else ""
        return f"{self.vendor}{code}: {self.detail} [{reading}]"[:500]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VendorSettings(Settings):
    base_url: AnyHttpUrl  # the vendor's API; tests point it at the loopback stand-ins
    rate_limited_wait_s: float = 60.0


class Channel(Protocol):
    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]

    def __init__(self, settings: Any) -> None: ...

    def send(self, target: str, message: Message) -> Outcome: ...

    def close(self) -> None: ...


class HttpChannel:
    """What the JSON-over-HTTPS vendors share: one client (never a proxy from the
    environment: the base URLs are configured), and the HTTP failures that are not the
    vendor's answer."""

    name: ClassVar[str] = ""
    RATE_LIMITED: ClassVar[frozenset[int]] = frozenset()
    BAD_CONFIG: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, settings: VendorSettings) -> None:
        self.settings = settings
        self.base = str(settings.base_url).rstrip("/")
        self.http = httpx.Client(timeout=TIMEOUT_S, trust_env=False)

    def judge(self, code: int, detail: str) -> Outcome:
        """The vendor's answer code read by its class: sent, limited, mis-configured, or
        (anything else) worth a retry."""
        if code == 0:
            return Outcome("sent", self.name, "0", detail)
        if code in self.RATE_LIMITED:
            return Outcome("rate_limited", self.name, str(code), detail,
                           self.settings.rate_limited_wait_s)
        status: Status = "bad_config" if code in self.BAD_CONFIG else "retry"
        return Outcome(status, self.name, str(code), detail)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any] | Outcome:
        """The JSON answer, or the Outcome of a call that got none."""
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            return Outcome("retry", self.name, "", f"{type(exc).__name__}: {exc}")
        if response.status_code == 429:
            return Outcome("rate_limited", self.name, "http 429", response.text[:200])
        if response.status_code >= 500:
            return Outcome("retry", self.name, f"http {response.status_code}",
                           response.text[:200])
        try:
            answer = json.loads(response.content)
        except ValueError:
            return Outcome("retry", self.name, f"http {response.status_code}",
                           f"not JSON: {response.text[:200]!r}")
        if not isinstance(answer, dict):
            return Outcome("retry", self.name, f"http {response.status_code}",
                           f"unexpected answer {answer!r:.200}")
        return answer
