"""A separate process for the cross-process single-flight test.

    python -m tests.integration.auth.token_race DSN TOKEN_URL KEY START_AT COROUTINES

Waits until START_AT (unix time) so that several processes start together, then lets
COROUTINES coroutines ask for auth headers at once; prints the distinct tokens they got.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
import httpx
import orjson

from syncd.crypto import Cipher
from syncd.http.auth import ClientCredentials
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store


async def race(dsn: str, token_url: str, key: str, start_at: float, coroutines: int) -> set[str]:
    async with Store.open(dsn, min_size=1, max_size=4) as store, httpx.AsyncClient() as http:
        credentials = CredentialStore(store, Cipher([key]))

        async def fetch(form: dict[str, str]) -> dict[str, Any]:
            response = await http.post(token_url, data=form)
            response.raise_for_status()
            body: dict[str, Any] = orjson.loads(response.content)
            return body

        auth = ClientCredentials(
            integration_id="acme", client_id="guesty-acct-1", client_secret="sim-secret-1",
            scope="open-api", fetch=fetch, store=credentials,
        )  # fmt: skip
        seen: set[str] = set()
        await anyio.sleep(max(0.0, start_at - time.time()))

        async def one() -> None:
            seen.add((await auth.headers())["Authorization"])

        async with anyio.create_task_group() as tg:
            for _ in range(coroutines):
                tg.start_soon(one)
        return seen


def main() -> None:
    dsn, token_url, key, start_at, coroutines = sys.argv[1:6]
    tokens = anyio.run(race, dsn, token_url, key, float(start_at), int(coroutines))
    sys.stdout.write(orjson.dumps(sorted(tokens)).decode() + "\n")


if __name__ == "__main__":
    main()
