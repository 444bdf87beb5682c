"""HTTP API: FastAPI app, bearer tokens, live WebSocket stream."""

from .app import create_app
from .context import ApiContext
from .tokens import TokenSigner, load_or_create_secret

__all__ = ["ApiContext", "TokenSigner", "create_app", "load_or_create_secret"]
