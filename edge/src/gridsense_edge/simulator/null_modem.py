"""A software null-modem cable: two pseudo-terminals joined by a relay that understands Modbus RTU.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import tty
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, get_args

log = logging.getLogger(__name__)

FaultMode = Literal["silent", "exception", "bad_crc"]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)

#: Modbus exception code 4, "slave device failure": what a sensor with a broken probe answers.
DEVICE_FAILURE = 0x04

#: Longest RTU frame the standard allows; also the bound on what the relay holds per direction.
MAX_FRAME = 256

#: A partial frame older than this is line noise, not a frame still arriving. Far longer than the
#: RTU 3.5-character gap because a loaded CI machine can stall a writer for tens of milliseconds.
STALE_PARTIAL_S = 0.1

NEED_MORE = 0  # the buffer holds the start of a frame whose length is not known yet
NOT_A_FRAME = -1  # the first byte cannot start a frame of this direction

_CRC_TABLE: list[int] = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0xA001 if _crc & 1 else _crc >> 1
    _CRC_TABLE.append(_crc)


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (init 0xFFFF, reflected poly 0xA001); sent low byte first on the wire."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def append_crc(body: bytes) -> bytes:
    """Address + PDU -> a complete RTU frame."""
    return body + crc16_modbus(body).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16_modbus(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def corrupt_crc(frame: bytes) -> bytes:
    """Invert both CRC bytes: guaranteed to mismatch, unlike flipping one random bit of data."""
    return frame[:-2] + bytes(b ^ 0xFF for b in frame[-2:])


def exception_frame(slave: int, function_code: int, code: int = DEVICE_FAILURE) -> bytes:
    return append_crc(bytes([slave, function_code | 0x80, code]))


def read_request(slave: int, function_code: int, address: int, count: int) -> bytes:
    """An 8-byte read request (functions 1-4): addr, fc, start hi/lo, count hi/lo, crc lo/hi."""
    fields = address.to_bytes(2, "big") + count.to_bytes(2, "big")
    return append_crc(bytes([slave, function_code]) + fields)


def _with_byte_count(buf: bytes, count_at: int, overhead: int) -> int:
    return NEED_MORE if len(buf) <= count_at else overhead + buf[count_at]


def request_length(buf: bytes) -> int:
    """Length of the request starting at ``buf[0]``, or NEED_MORE / NOT_A_FRAME."""
    if len(buf) < 2:
        return NEED_MORE
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6, 8):
        return 8
    if fc in (7, 11, 12, 17):
        return 4
    if fc in (15, 16):  # addr fc start(2) qty(2) n data(n) crc(2)
        return _with_byte_count(buf, 6, 9)
    if fc == 22:
        return 10
    if fc == 23:  # addr fc rstart(2) rqty(2) wstart(2) wqty(2) n data(n) crc(2)
        return _with_byte_count(buf, 10, 13)
    return NOT_A_FRAME


def response_length(buf: bytes) -> int:
    """Length of the response starting at ``buf[0]``, or NEED_MORE / NOT_A_FRAME."""
    if len(buf) < 2:
        return NEED_MORE
    fc = buf[1]
    if fc & 0x80:
        return 5  # addr, fc|0x80, exception code, crc
    if fc in (1, 2, 3, 4, 12, 17, 23):  # addr fc n data(n) crc(2)
        return _with_byte_count(buf, 2, 5)
    if fc in (5, 6, 8, 11, 15, 16):
        return 8
    if fc == 7:
        return 5
    if fc == 22:
        return 10
    return NOT_A_FRAME


class FrameSplitter:
    """Cuts one direction's byte stream into RTU frames, hunting byte by byte like a real receiver.

    ``feed`` returns ``(is_frame, data)`` chunks in stream order; runs of bytes that cannot start
    a CRC-valid frame come out as noise so the caller can forward them unchanged.
    """

    def __init__(self, length_of: Callable[[bytes], int]) -> None:
        self._length_of = length_of
        self._buf = bytearray()

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes, *, flush: bool = False) -> list[tuple[bool, bytes]]:
        """Add bytes; ``flush`` gives an incomplete head up as noise (the line went quiet)."""
        self._buf += data
        out: list[tuple[bool, bytes]] = []
        noise = bytearray()
        while self._buf:
            head = bytes(self._buf[:MAX_FRAME])
            length = self._length_of(head)
            if length == NEED_MORE or length > len(head):
                if not flush and len(self._buf) < MAX_FRAME:
                    break
                length = NOT_A_FRAME
            if length == NOT_A_FRAME or not crc_ok(head[:length]):
                noise.append(self._buf.pop(0))
                continue
            if noise:
                out.append((False, bytes(noise)))
                noise.clear()
            out.append((True, head[:length]))
            del self._buf[:length]
        if noise:
            out.append((False, bytes(noise)))
        return out


class _Pty:
    """One raw pseudo-terminal pair; the slave end is held open so the master never sees EIO."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        for fd in (self.master, self.slave):
            tty.setraw(fd)  # no CR/LF translation, no echo, no signals: bytes pass as they are
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class NullModem:
    """Relays bytes between the server pty and the client pty, injecting faults per slave id.

    Requests to slave ids not in ``slaves`` are dropped (no device on the bus, nobody answers),
    rather than reaching pymodbus, which would answer any id.
    """

    def __init__(self, link: Path, slaves: Iterable[int]) -> None:
        self.link = Path(link)
        self.slaves = frozenset(slaves)
        self.counters: Counter[str] = Counter()
        self._faults: dict[int, FaultMode] = {}
        self._server: _Pty | None = None
        self._client: _Pty | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests = FrameSplitter(request_length)
        self._responses = FrameSplitter(response_length)
        self._flush_timers: dict[int, asyncio.TimerHandle] = {}
        self._probe: asyncio.Future[bytes] | None = None
        self._link_published = False

    # -- set-up and tear-down -------------------------------------------------------------

    def open(self) -> None:
        self._server = _Pty()
        self._client = _Pty()
        log.debug("event=ptys_opened server=%s client=%s", self._server.path, self._client.path)

    @property
    def server_port(self) -> str:
        """The pty the pymodbus server opens."""
        return self._require(self._server).path

    @property
    def client_port(self) -> str:
        """The pty behind the published link."""
        return self._require(self._client).path

    @staticmethod
    def _require(pty: _Pty | None) -> _Pty:
        if pty is None:
            raise RuntimeError("the null modem is not open")
        return pty

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        server, client = self._require(self._server), self._require(self._client)
        self._loop = loop
        loop.add_reader(client.master, self._on_readable, client.master)
        loop.add_reader(server.master, self._on_readable, server.master)

    def publish_link(self) -> None:
        """Point ``link`` at the client pty, replacing a stale link a killed run left behind."""
        if self.link.exists() and not self.link.is_symlink():
            raise FileExistsError(f"{self.link} exists and is not a symlink; not replacing it")
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self.client_port, tmp)
        os.replace(tmp, self.link)  # atomic: a client polling for the link never sees half of it
        self._link_published = True
        log.info("event=link_published link=%s pty=%s", self.link, self.client_port)

    def close(self) -> None:
        """Idempotent: detach, close every fd, remove the link if it still points at our pty."""
        for handle in self._flush_timers.values():
            handle.cancel()
        self._flush_timers.clear()
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
        for pty in (self._server, self._client):
            if pty is None:
                continue
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(pty.master)
            pty.close()
        if self._link_published and self._client is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link) == self._client.path:
                    self.link.unlink()
            self._link_published = False
        self._server = self._client = None

    # -- fault injection -------------------------------------------------------------------

    def set_fault(self, slave: int, mode: FaultMode | None) -> None:
        """Safe from any thread: a single dict store, read by the loop per frame."""
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r} (known: {', '.join(FAULT_MODES)})")
        if slave not in self.slaves:
            raise KeyError(f"slave {slave} is not simulated on {self.link}")
        if mode is None:
            self._faults.pop(slave, None)
        else:
            self._faults[slave] = mode
        log.info("event=fault_set link=%s slave=%s mode=%s", self.link, slave, mode or "none")

    def fault(self, slave: int) -> FaultMode | None:
        return self._faults.get(slave)

    def send_noise(self, data: bytes) -> None:
        """Put line noise on the wire toward the client, between frames."""
        self.counters["noise_bytes_sent"] += len(data)
        self._write(self._require(self._client).master, data)

    async def probe(self, request: bytes, within_s: float) -> bytes | None:
        """Send ``request`` to the server directly and return its response frame (not relayed).

        Used at start-up to prove the server answers before the link is published.
        """
        loop = asyncio.get_running_loop()
        self._probe = loop.create_future()
        self._write(self._require(self._server).master, request)
        try:
            return await asyncio.wait_for(self._probe, within_s)
        except TimeoutError:
            return None
        finally:
            self._probe = None

    # -- the relay ------------------------------------------------------------------------

    def _on_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # cannot happen while we hold the slave open; never crash the loop
            self.counters["read_errors"] += 1
            log.warning("event=pty_read_error fd=%s error=%s", fd, exc)
            return
        self._split(fd, data, flush=False)

    def _split(self, fd: int, data: bytes, *, flush: bool) -> None:
        from_client = self._client is not None and fd == self._client.master
        splitter = self._requests if from_client else self._responses
        for is_frame, chunk in splitter.feed(data, flush=flush):
            if not is_frame:
                self.counters["noise_bytes_relayed"] += len(chunk)
                peer = self._server if from_client else self._client
                self._write(self._require(peer).master, chunk)
            elif from_client:
                self._on_request(chunk)
            else:
                self._on_response(chunk)
        timer = self._flush_timers.pop(fd, None)
        if timer is not None:
            timer.cancel()
        if splitter.pending and self._loop is not None:
            self._flush_timers[fd] = self._loop.call_later(
                STALE_PARTIAL_S, functools.partial(self._split, fd, b"", flush=True)
            )

    def _on_request(self, frame: bytes) -> None:
        slave = frame[0]
        if slave not in self.slaves:
            self.counters["requests_no_such_slave"] += 1
            return
        mode = self._faults.get(slave)
        if mode == "silent":
            self.counters["requests_dropped_silent"] += 1
            return
        if mode == "exception":
            self.counters["exceptions_sent"] += 1
            self._write(self._require(self._client).master, exception_frame(slave, frame[1]))
            return
        self.counters["requests_relayed"] += 1
        self._write(self._require(self._server).master, frame)

    def _on_response(self, frame: bytes) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.set_result(frame)
            return
        mode = self._faults.get(frame[0])
        if mode == "silent":  # the fault began while the server was answering
            self.counters["responses_dropped_silent"] += 1
            return
        if mode == "bad_crc":
            self.counters["responses_corrupted"] += 1
            frame = corrupt_crc(frame)
        else:
            self.counters["responses_relayed"] += 1
        self._write(self._require(self._client).master, frame)

    def _write(self, fd: int, data: bytes) -> None:
        """Non-blocking: bytes nobody reads are dropped (and counted), as on an unterminated bus."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except (BlockingIOError, InterruptedError):
                self.counters["bytes_dropped_full"] += len(view)
                return
            except OSError as exc:
                self.counters["write_errors"] += 1
                log.warning("event=pty_write_error fd=%s error=%s", fd, exc)
                return
            view = view[written:]
