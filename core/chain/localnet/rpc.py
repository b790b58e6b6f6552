"""JSON-RPC 2.0 over one request body: single and batch calls, errors in the node's shape.

Handlers return the `result` as a JSON fragment, usually sliced out of a solders
response's `to_json()` (which always writes id 0), and the envelope puts the
request's own id back around it without parsing the fragment again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from core.chain.localnet.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    RpcError,
    method_not_found,
)
from core.chain.localnet.node import Node

Handler = Callable[[Node, Any], str]

log = logging.getLogger(__name__)

_RESULT_PREFIX = '{"jsonrpc":"2.0","result":'
_RESULT_SUFFIX = ',"id":0}'


def result_of(response: Any) -> str:
    """The `result` fragment of a solders response object."""
    text: str = response.to_json()
    if text.startswith(_RESULT_PREFIX) and text.endswith(_RESULT_SUFFIX):
        return text[len(_RESULT_PREFIX) : -len(_RESULT_SUFFIX)]
    return json.dumps(json.loads(text)["result"], separators=(",", ":"))


def success(request_id: Any, result: str) -> str:
    return f'{{"jsonrpc":"2.0","result":{result},"id":{json.dumps(request_id)}}}'


def failure(request_id: Any, error: RpcError) -> str:
    body = f'"code":{error.code},"message":{json.dumps(error.message)}'
    if error.data_json is not None:
        body += f',"data":{error.data_json}'
    return f'{{"jsonrpc":"2.0","error":{{{body}}},"id":{json.dumps(request_id)}}}'


class Dispatcher:
    """Routes calls to handlers; owns nothing but the method table."""

    def __init__(self, node: Node, methods: dict[str, Handler]) -> None:
        self._node = node
        self._methods = methods

    async def handle(self, body: bytes) -> str | None:
        """The response body for a request body; None when only notifications came.

        Answers wait until every ledger write queued before them is committed, so
        no client is ever told of state (a landed transaction, a balance, a slot)
        that a crash could take back.
        """
        answer = self._answer(body)
        barrier = self._node.ledger.barrier()
        if barrier is not None:
            await asyncio.wrap_future(barrier)
        return answer

    def _answer(self, body: bytes) -> str | None:
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return failure(None, RpcError(PARSE_ERROR, "Parse error"))
        if isinstance(request, list):
            if not request:
                return failure(None, RpcError(INVALID_REQUEST, "Invalid request"))
            answers = [answer for call in request if (answer := self._call(call)) is not None]
            return f"[{','.join(answers)}]" if answers else None
        return self._call(request)

    def _call(self, call: Any) -> str | None:
        if (
            not isinstance(call, dict)
            or call.get("jsonrpc") != "2.0"
            or not isinstance(call.get("method"), str)
        ):
            request_id = call.get("id") if isinstance(call, dict) else None
            return failure(request_id, RpcError(INVALID_REQUEST, "Invalid request"))
        notification = "id" not in call
        request_id = call.get("id")
        try:
            handler = self._methods.get(call["method"])
            if handler is None:
                raise method_not_found()
            # Every call sees the slot of this instant, even while the ticker waits.
            self._node.tick()
            result = handler(self._node, call.get("params"))
        except RpcError as error:
            return None if notification else failure(request_id, error)
        except Exception:
            log.exception("localnet: %s failed", call["method"])
            error = RpcError(INTERNAL_ERROR, "Internal error")
            return None if notification else failure(request_id, error)
        return None if notification else success(request_id, result)
