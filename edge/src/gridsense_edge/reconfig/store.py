"""What the gateway keeps of remote configuration, in ``state_dir/remote_config/``: the last
good version (it survives a restart) and the versions it rolled back (never applied again)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_REFUSED = 100  # oldest forgotten first; a newer version always supersedes them anyway


@dataclass(frozen=True, slots=True)
class GoodConfig:
    version: int
    hash: str
    document: dict[str, Any]


class RemoteConfigStore:
    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / "remote_config"

    def good(self) -> GoodConfig | None:
        raw = self._read("good.json")
        if not isinstance(raw, dict):
            return None
        return GoodConfig(int(raw["version"]), str(raw["hash"]), dict(raw["document"]))

    def save_good(self, good: GoodConfig) -> None:
        self._write("good.json", {"version": good.version, "hash": good.hash,
                                  "document": good.document})

    def refused(self) -> list[int]:
        raw = self._read("refused.json")
        return [int(v) for v in raw] if isinstance(raw, list) else []

    def add_refused(self, version: int) -> None:
        versions = [v for v in self.refused() if v != version] + [version]
        self._write("refused.json", versions[-MAX_REFUSED:])

    def _read(self, name: str) -> Any:
        try:
            return json.loads((self.folder / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise OSError(f"{self.folder / name}: unreadable ({exc})") from exc

    def _write(self, name: str, value: Any) -> None:
        """Write, fsync, rename: a power cut leaves the old file or the new one, never half."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / name
        temporary = target.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(value, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        temporary.replace(target)
