"""The JSON API under /api/v1, one module a resource. Handlers parse, call the domain
(`stories.posting`, `accounts`, `push`) and answer; `routes.py` at the top assembles them."""
