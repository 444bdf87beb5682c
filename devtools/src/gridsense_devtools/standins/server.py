"""One uvicorn server on loopback, in a thread, serving the vendors' stand-in routes."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from ..ports import free_port
from .dingtalk import DingTalkStandin
from .feishu import FeishuStandin
from .wecom import WeComStandin


class VendorStandins:
    """DingTalk, WeCom and Feishu on one port; each vendor's base URL is ``base``."""

    def __init__(self) -> None:
        self.dingtalk = DingTalkStandin()
        self.wecom = WeComStandin()
        self.feishu = FeishuStandin()
        routes: list[Route] = [*self.dingtalk.routes(), *self.wecom.routes(),
                               *self.feishu.routes()]
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="vendor-standins",
                                        daemon=True)

    def start(self, timeout_s: float = 10.0) -> VendorStandins:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"vendor stand-ins did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> VendorStandins:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
