"""Where test servers write their logs: TEST_LOG_DIR (scripts/test sets it, and the last
reliability test reads every file there for card data), else the test's own temp folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

_handlers: dict[str, logging.Handler] = {}


def log_dir() -> Path | None:
    value = os.environ.get("TEST_LOG_DIR")
    if not value:
        return None
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file(name: str, fallback_dir: Path) -> Path:
    """`<TEST_LOG_DIR>/<name>-<pid>.log` (one per pytest process), else `fallback_dir`."""
    shared = log_dir()
    if shared is None:
        return fallback_dir / f"{name}.log"
    return shared / f"{name}-{os.getpid()}.log"


def mirror_app_log(name: str = "app") -> None:
    """Copies what the app logs in this process to TEST_LOG_DIR, through the app's own
    handler's filters (the scrubbing) and format. Call after each create_app(): it replaces
    the root logger's handlers."""
    shared = log_dir()
    root = logging.getLogger()
    if shared is None or not root.handlers:
        return
    app_handler = root.handlers[0]
    handler = _handlers.get(name)
    if handler is None:
        handler = logging.FileHandler(shared / f"{name}-{os.getpid()}.log", encoding="utf-8")
        _handlers[name] = handler
    if handler in root.handlers:
        return
    handler.filters = list(app_handler.filters)
    handler.setFormatter(app_handler.formatter)
    root.addHandler(handler)
