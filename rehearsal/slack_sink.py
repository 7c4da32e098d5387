"""A local stand-in for Slack: an incoming webhook, the Web API methods `chat.postMessage` and
`chat.update`, and interaction `response_url`s. It records every message the product sends, in
order, with how it came (`method`), where it went (`channel`) and which message it is (`ts`; an
update keeps the `ts` of the message it changes), so a report can show each message's history.

The Web API answers as Slack does: HTTP 200 with `{"ok": true, "channel", "ts", "message"}`, or
`{"ok": false, "error": "not_authed" | "invalid_auth" | "channel_not_found" | "message_not_found" |
"no_text"}`. It takes JSON or form bodies and wants `Authorization: Bearer xoxb-…`, so slack-sdk's
`WebClient(token, base_url=sink.api_url)` works against it. The token is never recorded.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

WEBHOOK_PATH = "/services/rehearsal"
API_PREFIX = "/api/"
RESPOND_PREFIX = "/respond/"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class SlackSink:
    def __init__(
        self,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        *,
        token: str | None = None,
        channels: Iterable[str] = (),
        now: Callable[[], float] | None = None,
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self._on_message = on_message
        self._token = token
        self._channels = set(channels)
        self._now = now or time.time
        self._counter = itertools.count(1)
        self._posted: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def url(self) -> str:
        """The incoming webhook."""
        return self.base + WEBHOOK_PATH

    @property
    def api_url(self) -> str:
        """The Web API's base URL (`WebClient(base_url=…)`)."""
        return self.base + API_PREFIX

    def response_url(self, ts: str | None = None) -> str:
        """A `response_url` as an interaction on message `ts` would carry."""
        return f"{self.base}{RESPOND_PREFIX}{ts or 'ephemeral'}"

    def history(self, ts: str) -> list[dict[str, Any]]:
        """Every version of the message `ts`, in order: its post, then each update."""
        return [m for m in self.messages if m.get("ts") == ts]

    def start(self) -> SlackSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ---- HTTP ------------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method != "POST":
            response = Response("method not allowed", status=405)
        elif request.path.startswith(API_PREFIX):
            response = self._api(request, request.path.removeprefix(API_PREFIX))
        elif request.path.startswith(RESPOND_PREFIX):
            response = self._webhook(request, "response_url", request.path.removeprefix(RESPOND_PREFIX))
        else:
            response = self._webhook(request, "webhook", None)
        return response(environ, start_response)

    def _webhook(self, request: Request, method: str, ts: str | None) -> Response:
        try:
            payload = json.loads(request.get_data(as_text=True))
        except json.JSONDecodeError:
            return Response("invalid_payload", status=400)
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return Response("no_text", status=400)
        if method == "webhook":
            ts = self._next_ts()
        elif ts == "ephemeral" or not payload.get("replace_original"):
            ts = None
        self._record({**payload, "method": method, "channel": None, "ts": ts})
        return Response("ok", status=200)

    def _api(self, request: Request, method: str) -> Response:
        args = _arguments(request)
        if method not in ("chat.postMessage", "chat.update"):
            return _answer({"ok": False, "error": "unknown_method"}, status=404)
        error = self._refusal(request, args)
        if error:
            return _answer({"ok": False, "error": error})
        channel = str(args.get("channel") or "")
        if self._channels and channel not in self._channels:
            return _answer({"ok": False, "error": "channel_not_found"})
        if not (args.get("text") or args.get("blocks")):
            return _answer({"ok": False, "error": "no_text"})
        message: dict[str, Any] = {k: args[k] for k in ("text", "blocks") if k in args}
        with self._lock:
            if method == "chat.update":
                ts = str(args.get("ts") or "")
                if (channel, ts) not in self._posted:
                    return _answer({"ok": False, "error": "message_not_found"})
            else:
                ts = self._next_ts()
            self._posted[(channel, ts)] = message
        self._record({"method": method, "channel": channel, "ts": ts, **message})
        return _answer({"ok": True, "channel": channel, "ts": ts, "message": {**message, "ts": ts}})

    def _refusal(self, request: Request, args: dict[str, Any]) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        token = token or str(args.get("token") or "")
        if not token:
            return "not_authed"
        if self._token is None or token != self._token:
            return "invalid_auth"
        return None

    # ---- records ---------------------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{int(self._now())}.{next(self._counter):06d}"

    def _record(self, record: dict[str, Any]) -> None:
        record.pop("token", None)
        # How it came and which message it is, first: that is how a report reads them.
        record = {k: record.pop(k) for k in ("method", "channel", "ts")} | record
        with self._lock:
            self.messages.append(record)
        if self._on_message is not None:
            self._on_message(record)


def _arguments(request: Request) -> dict[str, Any]:
    """A Web API call's arguments, from a JSON body or a form (where `blocks` is a JSON string)."""
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}
    args: dict[str, Any] = dict(request.form.items())
    if isinstance(args.get("blocks"), str):
        try:
            args["blocks"] = json.loads(args["blocks"])
        except json.JSONDecodeError:
            args["blocks"] = []
    return args


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def approval_id_of(payload: dict[str, Any]) -> str | None:
    """The approval id carried by an approval request's buttons, if this message is one."""
    for block in payload.get("blocks") or []:
        if block.get("type") == "actions" and str(block.get("block_id", "")).startswith("approval:"):
            return str(block["block_id"]).split(":", 1)[1]
    return None
