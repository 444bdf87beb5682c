"""The audit log: who did what, when, from where.

Low in the server's layers so every wing can record: ``record`` adds a row to the caller's own
transaction (the action and its audit row commit or roll back together); ``RefusalSink`` takes
security refusals from hot paths (ingest) without touching the database there.
"""

from .log import CLI_ADDRESS, SYSTEM, cli_actor, record, record_now
from .sink import RefusalSink

__all__ = ["CLI_ADDRESS", "SYSTEM", "RefusalSink", "cli_actor", "record", "record_now"]
