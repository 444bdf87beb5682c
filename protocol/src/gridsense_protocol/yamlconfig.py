"""Validate YAML text against a pydantic model; errors name the source, the key path and the line.

Both the gateway config and the server's files are YAML (and the server pushes gateway config
over the ``config`` topic), so the one way to say "this key on this line is wrong" lives here.
Parsing and validation work on text; ``load_yaml_file`` is the one helper that reads a file
(and turns a missing or unreadable file into the same kind of error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """``source:line: key.path: problem`` — one line per problem, the first ones first."""

    def __init__(self, source: str, problems: list[tuple[str, int | None, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [
            f"{source}:{line if line is not None else '?'}: {path or '(top level)'}: {msg}"
            for path, line, msg in problems
        ]
        super().__init__("\n".join(lines))


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every mapping key and sequence item."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    loader.lines[id(mapping)] = (node.start_mark.line + 1, lines)
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> list[Any]:
    seq = loader.construct_sequence(node, deep=True)
    loader.lines[id(seq)] = (
        node.start_mark.line + 1,
        {i: item.start_mark.line + 1 for i, item in enumerate(node.value)},
    )
    return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _line_of(
    root: Any, lines: dict[int, tuple[int, dict[Any, int]]], loc: tuple[Any, ...]
) -> int | None:
    node, best = root, lines.get(id(root), (None, {}))[0]
    for part in loc:
        own = lines.get(id(node))
        if own is None:
            break
        line = own[1].get(part)
        if line is None:
            break
        best = line
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return best


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_yaml(text: str, source: str) -> Any:
    loader = _LineLoader(text)
    loader.lines = {}  # type: ignore[attr-defined]
    try:
        return loader.get_single_data(), loader.lines  # type: ignore[attr-defined]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            source, [("", line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from None
    finally:
        loader.dispose()


def validate_yaml(
    text: str, source: str, model: type[M], context: dict[str, Any] | None = None
) -> M:
    """Parse ``text`` and validate it as ``model``; raise ConfigError naming key paths and lines."""
    data, lines = parse_yaml(text, source)
    if data is None:
        raise ConfigError(source, [("", 1, "the file is empty")])
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            clean = _key_path(data, tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (is it misspelt?)"
            problems.append((_path(clean), _line_of(data, lines, clean), msg))
        raise ConfigError(source, problems) from None


def _key_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The parts of pydantic's error location that are keys in the file.

    Unions add a member's name (or a tag) to the location; those are not in the file and are
    dropped. A last part that is not in the file is kept: it names a missing key.
    """
    path: list[Any] = []
    node = data
    for index, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
        elif index == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
            path.append(part)
    return tuple(path)


def read_config_text(path: Path) -> str:
    """The file's text as UTF-8 (a leading BOM, which Windows editors add, is dropped); a file
    that is not UTF-8 — GBK from a Chinese Windows editor, most often — is a ConfigError naming
    the file and the line of the first bad byte, not a traceback."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [("", None, f"cannot read: {exc.strerror}")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(str(path), [("", line, "不是 UTF-8 文本（是否存成了 GBK？请另存为 "
                                                 "UTF-8） / not UTF-8 text (saved as GBK?); "
                                                 "save it as UTF-8")]) from None


def load_yaml_file(path: Path, model: type[M], context: dict[str, Any] | None = None) -> M:
    return validate_yaml(read_config_text(path), str(path), model, context)
