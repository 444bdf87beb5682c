"""A registry keyed by the config's ``type``: a new driver or rule is one module or folder."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, Discriminator, Tag
from pydantic_core import PydanticCustomError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Plugin(Generic[F]):
    type: str
    config_model: type[BaseModel]
    factory: F


class PluginRegistry(Generic[F]):
    """``index`` (type -> module under the package) lets a config import only the plugins it
    names: a temperature gateway does not build the camera's or the door reader's models. A
    type missing from the index still works, by importing every module as without one."""

    def __init__(self, kind: str, package: str, index: Mapping[str, str] | None = None) -> None:
        self.kind = kind  # "driver", "rule": used in messages
        self.package = package
        self.index = dict(index or {})
        self._plugins: dict[str, Plugin[F]] = {}
        self._loaded = False

    def register(self, config_model: type[BaseModel]) -> Callable[[F], F]:
        """Decorator for the factory: ``@DRIVERS.register(MyConfig) def create(...)``."""
        type_name = _literal_type(config_model)

        def decorate(factory: F) -> F:
            existing = self._plugins.get(type_name)
            if existing is not None and existing.config_model is not config_model:
                raise RuntimeError(f"two {self.kind}s register type {type_name!r}")
            self._plugins[type_name] = Plugin(type_name, config_model, factory)
            return factory

        return decorate

    def load(self) -> None:
        """Import every module of the package once; their decorators fill the registry."""
        if self._loaded:
            return
        module = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{self.package}.{info.name}")
        self._loaded = True

    def require(self, type_names: Iterable[str]) -> None:
        """Import the modules of these types (every module for a type the index lacks)."""
        for type_name in type_names:
            if type_name in self._plugins:
                continue
            module = self.index.get(type_name)
            if module is None:
                self.load()
                return
            importlib.import_module(f"{self.package}.{module}")

    def get(self, type_name: str) -> Plugin[F]:
        self.require([type_name])
        return self._plugins[type_name]

    def types(self) -> list[str]:
        self.load()
        return sorted(self._plugins)

    def config_union(self, only: Iterable[str] | None = None) -> Any:
        """The tagged union of the registered config models, for a pydantic field: of every
        one, or ``only`` of these types (an entry of another type is refused as unknown).

        Tagged on ``type``: an unknown type is one clear error, not one per member. The tags
        are the model class names (not the ``type`` values) because an error path then reads
        ``rules[1].threshold`` rather than ``rules[1].over_temperature.threshold``: the YAML
        error reporter drops capitalised path parts as not being keys of the file.
        """
        if only is None:
            self.load()
            wanted = set(self._plugins)
        else:
            wanted = set(only) & (self.index.keys() | self._plugins.keys())
            self.require(sorted(wanted))
        plugins = [self._plugins[name] for name in sorted(wanted)]
        if not plugins and only is None:
            raise RuntimeError(f"no {self.kind} registered in {self.package}")
        tags = {p.type: p.config_model.__name__ for p in plugins}
        known = sorted(self.index.keys() | self._plugins.keys())
        error_type = f"unknown_{self.kind}_type"
        message = f"`type` is missing or not a known {self.kind} type (known: {', '.join(known)})"
        if not plugins:  # no entry names a known type: each one is refused the same way

            def refuse(value: Any) -> Any:
                raise PydanticCustomError(error_type, message)

            return Annotated[Any, BeforeValidator(refuse)]

        def tag_of(value: Any) -> str | None:
            if isinstance(value, dict):
                type_name = value.get("type")
            else:
                type_name = getattr(value, "type", None)
            return tags.get(type_name) if isinstance(type_name, str) else None

        members = tuple(Annotated[p.config_model, Tag(p.config_model.__name__)] for p in plugins)
        return Annotated[
            Union[members],  # noqa: UP007 - a union built at runtime needs the subscript form
            Discriminator(tag_of, custom_error_type=error_type, custom_error_message=message),
        ]


def _literal_type(model: type[BaseModel]) -> str:
    field = model.model_fields.get("type")
    annotation = field.annotation if field is not None else None
    if get_origin(annotation) is not Literal or len(get_args(annotation)) != 1:
        raise TypeError(f"{model.__name__} needs a field `type: Literal['name']`")
    return str(get_args(annotation)[0])
