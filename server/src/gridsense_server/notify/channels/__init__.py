"""Channels a page can leave by, one module each, chosen by the contact URL's scheme.

A module registers its class with ``@register("scheme", …)``; ``load()`` imports every module
here, so adding a channel is adding a module. Its ``Settings`` (vendor base URLs, SMTP server)
come from ``lifecycle.vendors.<name>`` in the server config.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from .base import Channel, ChannelConfigError, Outcome

__all__ = ["Channel", "ChannelConfigError", "ChannelSet", "Outcome", "register"]

FALLBACK = "*"  # the channel for any scheme nobody registered (apprise)
_REGISTRY: dict[str, type[Channel]] = {}


def register(*schemes: str) -> Callable[[type[Channel]], type[Channel]]:
    def add(cls: type[Channel]) -> type[Channel]:
        for scheme in schemes:
            if scheme in _REGISTRY and _REGISTRY[scheme] is not cls:
                raise ValueError(f"channel scheme {scheme!r} registered twice")
            _REGISTRY[scheme] = cls
        return cls
    return add


def load() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


class ChannelSet:
    """One instance of each registered channel, built from the config at start-up (so a bad
    vendor setting stops the server with a message naming it, not the first page)."""

    def __init__(self, vendors: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        load()
        vendors = vendors or {}
        unknown = set(vendors) - {cls.name for cls in _REGISTRY.values()}
        if unknown:
            known = ", ".join(sorted({cls.name for cls in _REGISTRY.values()}))
            raise ChannelConfigError([(f"lifecycle.vendors.{name}",
                                       f"unknown vendor (known: {known})")
                                      for name in sorted(unknown)])
        self._by_class: dict[type[Channel], Channel] = {}
        for cls in set(_REGISTRY.values()):
            try:
                settings = cls.Settings.model_validate(vendors.get(cls.name, {}))
            except ValidationError as exc:
                raise ChannelConfigError([
                    (f"lifecycle.vendors.{cls.name}.{'.'.join(map(str, e['loc']))}", e["msg"])
                    for e in exc.errors()]) from None
            self._by_class[cls] = cls(settings)

    def for_target(self, target: str) -> Channel:
        scheme = target.partition("://")[0].lower()
        cls = _REGISTRY.get(scheme) or _REGISTRY[FALLBACK]
        return self._by_class[cls]

    def send(self, target: str, message: Any) -> Outcome:
        """Blocking (network): run in a worker thread."""
        return self.for_target(target).send(target, message)

    def close(self) -> None:
        for channel in self._by_class.values():
            channel.close()
