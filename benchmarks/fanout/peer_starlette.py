"""The usual Python SSE server, a peer in the fan-out benchmark (not part of Dateline).

    FANOUT_PEER_CHANNEL=fanout uvicorn peer_starlette:app --workers 2

The pattern most tutorials and projects use: Starlette with sse-starlette's
EventSourceResponse, an asyncio.Queue per reader, and a broadcast that puts each event into
every queue. With several uvicorn workers a post reaches one worker only, so every worker
subscribes to one Redis pub/sub channel and broadcasts what it hears (the usual fan-in).

    GET  /stories/{slug}/live                       the stream
    POST /publish/{slug}?id=N&event=entry.created   body: the event's data (JSON)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

CHANNEL = os.environ.get("FANOUT_PEER_CHANNEL", "fanout-bench")
REDIS_URL = os.environ.get("FANOUT_PEER_REDIS", "redis://127.0.0.1:6379/0")

readers: dict[str, set[asyncio.Queue[dict[str, str]]]] = {}


async def live(request: Request) -> Response:
    slug = request.path_params["slug"]
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    readers.setdefault(slug, set()).add(queue)

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            while True:
                yield await queue.get()
        finally:
            readers[slug].discard(queue)

    # "\n" as the line separator: the same bytes as Dateline and Nchan send (the default is "\r\n").
    return EventSourceResponse(stream(), ping=15, sep="\n")


async def publish(request: Request) -> Response:
    message = {"slug": request.path_params["slug"], "id": request.query_params["id"],
               "event": request.query_params.get("event", "message"), "data": (await request.body()).decode()}
    await request.app.state.redis.publish(CHANNEL, json.dumps(message))
    return Response(status_code=202)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def relay(redis: aioredis.Redis) -> None:
    """Every worker: what Redis brings, into the queue of each of this worker's readers."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        event = json.loads(message["data"])
        item = {"id": event["id"], "event": event["event"], "data": event["data"]}
        for queue in tuple(readers.get(event["slug"], ())):
            queue.put_nowait(item)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.redis = aioredis.Redis.from_url(REDIS_URL)
    task = asyncio.create_task(relay(aioredis.Redis.from_url(REDIS_URL)))
    yield
    task.cancel()
    await app.state.redis.aclose()


app = Starlette(
    routes=[
        Route("/stories/{slug}/live", live),
        Route("/publish/{slug}", publish, methods=["POST"]),
        Route("/health", health),
    ],
    lifespan=lifespan,
)
