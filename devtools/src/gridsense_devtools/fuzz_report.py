"""What a fuzz run of the ingest path proves, as a list of broken invariants, and its counts as
a table (Chinese first)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gridsense_devtools.fuzz_ingest import FuzzRun

_INVALID = "ingest.invalid."
_REASON = "dead_letters.reason."
# What a store may refuse of a valid message, by design (a dead letter, not a bug): PostgreSQL
# text holds no NUL character.
EXPECTED_STORE_REFUSALS = frozenset({"DataError"})


def _prefixed(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in counters.items() if k.startswith(prefix) and v}


def broken_invariants(run: FuzzRun) -> list[str]:
    """Everything a run must show, beyond the problems it met on the way: each message sent
    settled exactly once (applied or dead-lettered), each refusal counted by reason, the same
    refusals the protocol alone predicts, no exception escaping decode, the server up."""
    c = run.counters
    out = list(run.problems)
    applied = c.get("ingest.outcome.applied", 0)
    dead = c.get("ingest.outcome.dead_lettered", 0)
    sent = run.sent + 2 * run.canaries + c.get("mqtt.dup_deliveries", 0)
    if applied + dead != sent:
        out.append(f"uncounted: {sent} messages sent, {applied} applied + {dead} dead-lettered")
    server_invalid = _prefixed(c, _INVALID)
    if server_invalid != {k: v for k, v in run.expected_invalid.items() if v}:
        out.append(f"decode refusals differ from the protocol's verdict: server "
                   f"{server_invalid}, protocol {dict(run.expected_invalid)}")
    if c.get("dead_letters.received", 0) != dead:
        out.append(f"dead letters received {c.get('dead_letters.received', 0)} != "
                   f"dead-lettered outcomes {dead}")
    if sum(_prefixed(c, _REASON).values()) != c.get("dead_letters.received", 0):
        out.append("dead letters by reason do not add up to dead letters received")
    failed = {k: v for k, v in _prefixed(c, _REASON).items()
              if "." in k and k.split(".", 1)[1] not in EXPECTED_STORE_REFUSALS}
    if failed:
        out.append(f"messages valid to the protocol failed in a store: {failed}")
    if run.escaped or c.get("ingest.errors", 0):
        out.append(f"exceptions escaped decode: {dict(run.escaped)}, server ingest.errors "
                   f"{c.get('ingest.errors', 0)}")
    if run.health.get("status") in (None, "down"):
        out.append(f"/healthz is {run.health.get('status')}: {run.health.get('reasons')}")
    if not run.server_alive:
        out.append("the server process is gone")
    return out


def _rows(title: str, values: dict[str, Any], limit: int = 20) -> list[str]:
    lines = [title]
    ordered = sorted(values.items(), key=lambda kv: (-kv[1] if isinstance(kv[1], int) else 0,
                                                    kv[0]))
    for key, value in ordered[:limit]:
        lines.append(f"  {key:<44} {value:>9}")
    rest = ordered[limit:]
    if rest:
        lines.append(f"  {'(' + str(len(rest)) + ' more)':<44} "
                     f"{sum(v for _, v in rest if isinstance(v, int)):>9}")
    return lines


def table(run: FuzzRun) -> str:
    c = run.counters
    families: Counter[str] = Counter()
    for label, n in run.labels.items():
        families[label.split(".")[0]] += n
    applied = c.get("ingest.outcome.applied", 0)
    dead = c.get("ingest.outcome.dead_lettered", 0)
    lines = [
        f"入口模糊测试 ingest fuzz — seed {run.seed}: {run.sent} payloads + {run.canaries} x 2 "
        f"canaries in {run.seconds:.0f} s",
        *_rows("发送（按来源） sent by family", dict(families)),
        *_rows("结果 outcome (every message, canaries included)",
               {"已应用 applied": applied, "死信 dead-lettered": dead,
                "合计 total": applied + dead,
                "发送 sent": run.sent + 2 * run.canaries}),
        *_rows("解码拒绝（按类） refused at decode, by class: server", _prefixed(c, _INVALID)),
        *_rows("协议校验（按字段） bad_field by field (protocol's verdict)", dict(run.bad_fields)),
        *_rows("时间界限与归属 time bounds and ownership", _prefixed(c, "ingest.refused.")),
        *_rows("死信（按原因） dead letters by reason", _prefixed(c, _REASON)),
        *_rows("已接收（按类型） accepted by kind", _prefixed(c, "ingest.received.")),
        *_rows("其他 other", {k: c.get(k, 0) for k in (
            "ingest.redelivered", "ingest.readings", "influx.written_lines",
            "influx.rejected_lines", "influx.unknown_point_readings",
            "dead_letters.dropped_by_cap", "mqtt.dup_deliveries", "ingest.errors")}),
        f"健康 /healthz: {run.health.get('status')}  进程 server alive: {run.server_alive}",
    ]
    return "\n".join(lines)


def as_json(run: FuzzRun) -> dict[str, Any]:
    return {"seed": run.seed, "sent": run.sent, "canaries": run.canaries,
            "seconds": round(run.seconds, 1), "labels": dict(run.labels),
            "expected_invalid": dict(run.expected_invalid), "bad_fields": dict(run.bad_fields),
            "decoded": dict(run.decoded), "counters": run.counters, "health": run.health,
            "problems": broken_invariants(run)}
