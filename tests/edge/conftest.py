"""Fixtures shared by the edge tests that run the agent as a real process."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from edge_support import AgentProcess, start_agent


@pytest.fixture
def agents() -> Iterator[Callable[[Path], AgentProcess]]:
    """Start agents from config files; each is killed at the end and its log tail printed."""
    started: list[AgentProcess] = []

    def launch(config: Path) -> AgentProcess:
        agent = start_agent(config, config.parent / f"agent-{len(started)}.log")
        started.append(agent)
        return agent

    yield launch
    for agent in started:
        agent.stop(signal.SIGKILL)
        print(f"---- {agent.log_path.name} ----\n{agent.log()[-6000:]}")
