"""HTTP serving limits shared by the API and the dashboard (both run on uvicorn).

- `protocol`: uvicorn's HTTP protocol with a deadline for request headers, a cap on
  their size and on open connections (idle ones are shed first);
- `body_limit`: an ASGI middleware that refuses a body over its byte limit while it
  is being read (413), before any route parses or authenticates it;
- `in_flight`: an ASGI middleware capping requests and WebSockets in progress (503);
- `client_address`: the client's address, from X-Forwarded-For only behind trusted
  proxies (FORWARDED_ALLOW_IPS).

No knowledge of the domain: the callers pass limits and error bodies.
"""
