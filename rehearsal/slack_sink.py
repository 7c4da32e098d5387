"""A local stand-in for a Slack incoming webhook: records every message the product posts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class SlackSink:
    def __init__(self, on_message: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self._on_message = on_message
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/services/rehearsal"

    def start(self) -> SlackSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method != "POST":
            return Response("method not allowed", status=405)(environ, start_response)
        try:
            payload = json.loads(request.get_data(as_text=True))
        except json.JSONDecodeError:
            return Response("invalid_payload", status=400)(environ, start_response)
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return Response("no_text", status=400)(environ, start_response)
        with self._lock:
            self.messages.append(payload)
        if self._on_message is not None:
            self._on_message(payload)
        return Response("ok", status=200)(environ, start_response)


def approval_id_of(payload: dict[str, Any]) -> str | None:
    """The approval id carried by an approval request's buttons, if this message is one."""
    for block in payload.get("blocks", []):
        if block.get("type") == "actions" and str(block.get("block_id", "")).startswith("approval:"):
            return str(block["block_id"]).split(":", 1)[1]
    return None
