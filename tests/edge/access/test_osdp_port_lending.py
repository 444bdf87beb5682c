"""The OSDP driver lends its line to discovery: the control panel stops, discovery reads the
readers' identities on a quiet line, and the readers come back online with their secure channel
after."""

from __future__ import annotations

import asyncio
from pathlib import Path

from osdp_support import osdp_rig, run_bus, stop_bus

from gridsense_edge.discover.osdp_scan import scan_osdp
from gridsense_edge.portlease import LENT, PortControlServer, PortLeases, borrow_port


async def test_the_osdp_driver_lends_its_line_and_takes_it_back(tmp_path: Path) -> None:
    with osdp_rig(tmp_path) as h:
        leases = PortLeases()
        leases.register(h.bus.port, h.bus)
        state = tmp_path / "control"
        state.mkdir()
        control = PortControlServer(state, leases)
        await control.start()
        task = await run_bus(h)
        try:
            def discover() -> tuple[list[str], object, bool]:
                with borrow_port(state, h.bus.port) as holders:
                    scan = scan_osdp(h.bus.port, (0, 1, 2, 3), overall_s=20)
                    online = any(r.online for r in h.bus.readers)
                    assert LENT in str(h.bus.health().detail)
                    return holders, scan, online

            holders, scan, online_while_lent = await asyncio.to_thread(discover)
            assert holders == [h.bus.name]
            assert not online_while_lent
            assert [r.address for r in scan.found] == [1, 2]  # a quiet line: both answered
            await h.online()  # taken back: online again, secure channel included
            # Lending is no fault: nobody is paged for a reader the installer is scanning.
            assert h.incidents == []
            assert "reader_offline" not in h.results("gw.door1")
        finally:
            await stop_bus(task)
            await control.stop()
