"""Logs (structlog) and metrics (prometheus-client): one module each."""

from __future__ import annotations
