"""The HTTP surface: Starlette app served by uvicorn inside the daemon's event loop."""

from __future__ import annotations
