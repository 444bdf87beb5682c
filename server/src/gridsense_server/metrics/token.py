"""The metrics bearer token, read from the operator's file once at start."""

from __future__ import annotations

from pathlib import Path

from ..secure_files import FileProblem, check_private

MIN_TOKEN_CHARS = 16


def load_metrics_token(path: Path) -> str:
    """The token in ``path`` (surrounding whitespace dropped); refused, naming the file, when
    others can read it, it cannot be read, or it is too short to resist guessing."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem(f"http.metrics_token_file {path}: cannot be read ({exc})") from None
    check_private(path)
    if len(text) < MIN_TOKEN_CHARS or any(c.isspace() for c in text):
        raise FileProblem(f"http.metrics_token_file {path}: the token must be one word of at "
                          f"least {MIN_TOKEN_CHARS} characters (e.g. openssl rand -hex 32)")
    return text
