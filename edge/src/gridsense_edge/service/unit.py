"""The systemd unit's text. Hardening: its own user, serial ports through the dialout group,
the whole file system read-only but the state folder, a memory cap, and a watchdog the agent
feeds from its event loop (a hung loop gets the agent restarted)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The agent's interpreter settings, measured by `scripts/bench edge-rss` (which runs the agent
# with them): PYTHONOPTIMIZE=2 drops docstrings (about 1.6 MB resident, most of it pydantic's
# and the standard library's; the agent asserts nothing it relies on), MALLOC_ARENA_MAX=2 caps
# glibc's per-thread arenas when worker threads run (no difference in the steady state here).
# Optimised bytecode is cached under the state folder: the rest of the file system is
# read-only to the service, so without a writable cache every start would compile again.
ENVIRONMENT = {"PYTHONOPTIMIZE": "2", "MALLOC_ARENA_MAX": "2"}


def environment(state_dir: Path) -> dict[str, str]:
    return {**ENVIRONMENT, "PYTHONPYCACHEPREFIX": str(state_dir / "pycache")}


@dataclass(frozen=True, slots=True)
class UnitSpec:
    gateway: str
    executable: Path
    config: Path
    state_dir: Path
    user: str = "gridsense"
    memory_max: str = "256M"
    watchdog_s: int = 60


def render(spec: UnitSpec) -> str:
    # Paths with spaces are quoted per systemd's rules for ExecStart and ReadWritePaths.
    config_dir = spec.config.parent
    env = "\n".join(f'Environment="{k}={v}"' for k, v in environment(spec.state_dir).items())
    return f"""# Written by gridsense-edge install-service; edit with `systemctl edit`, not here.
[Unit]
Description=gridsense edge agent ({spec.gateway})
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart="{spec.executable}" run --config "{spec.config}"
{env}
Restart=always
RestartSec=5
WatchdogSec={spec.watchdog_s}
User={spec.user}
Group={spec.user}
SupplementaryGroups=dialout
MemoryMax={spec.memory_max}
ProtectSystem=strict
ReadWritePaths="{spec.state_dir}"
ReadOnlyPaths="{config_dir}"
ProtectHome=true
PrivateTmp=true
NoNewPrivileges=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
# No ProtectClock=: its seccomp filter also refuses the read-only adjtimex() that tells the
# agent whether the clock was synchronised since boot (electronic passes wait for it). The
# clock stays out of reach anyway: the agent is no root and holds no capability at all.
CapabilityBoundingSet=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=true
RestrictRealtime=true
LockPersonality=true
SystemCallArchitectures=native
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
"""
