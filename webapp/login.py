"""Logins against the store: Gradio's auth callable, throttled by the service per user name and per
client address. Gradio calls the callable with the name and password only, so a small ASGI
middleware puts the client's address in a context variable for the login request (the proxy's
address when the app runs behind one). A throttled or locked attempt answers HTTP 429 with the
reason ("too many failed logins for 'ann': try again in 15 minutes") instead of Gradio's
"Incorrect credentials"."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from fastapi import HTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from core.service import Service

CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("clipmark_client_address", default=None)


class ClientAddress:
    """ASGI middleware: the address of the client of each HTTP request, for the login check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client") if scope["type"] == "http" else None
        token = CLIENT_ADDRESS.set(client[0] if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            CLIENT_ADDRESS.reset(token)


def login_check(service: Service) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio's auth callable: the store's users and argon2 hashes, verified off the event loop."""
    async def check(name: str, password: str) -> bool:
        answer = await asyncio.to_thread(service.team.login, name, password, address=CLIENT_ADDRESS.get())
        if answer.retry_after is not None:
            raise HTTPException(status_code=429, detail=answer.message,
                                headers={"Retry-After": str(math.ceil(answer.retry_after))})
        return answer.accepted

    return check


def launch_options(service: Service) -> dict[str, Any]:
    """What `Blocks.launch` needs for logins: the auth callable and the address middleware."""
    return {"auth": login_check(service), "app_kwargs": {"middleware": [Middleware(ClientAddress)]}}
