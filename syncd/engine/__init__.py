"""Scheduling and running syncs: which integration x resource runs when, and where."""

from __future__ import annotations
