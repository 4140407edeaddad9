"""The partner client: auth, rate limits, breaker, classified retries; httpx types over our HTTP/1.1 wire.

Only this package talks to partners (others name httpx's types, never send). The package
``__init__`` stays empty so that pure modules (``tiers``) can be imported without pulling
in the network stack.
"""

from __future__ import annotations
