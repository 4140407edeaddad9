"""Partner drivers: one folder per partner; each reads like that partner's API docs."""

from __future__ import annotations
