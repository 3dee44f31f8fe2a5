"""The HTTP toolbox every route shares: who is asking (`auth`), request dependencies
(`deps`), errors (`problems`), validators (`http_cache`), `Idempotency-Key`, templates and
the plain-ASGI middleware."""
