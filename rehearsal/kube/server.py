"""A local stand-in for one EKS cluster's kube-apiserver, serving a KubeStore over HTTP.

It is just enough of the real API for the official `kubernetes` client: discovery, GET and LIST
(label and field selectors, `limit`/`continue` pages), create/replace/patch/delete, and the
eviction subresource with PodDisruptionBudgets. Authentication works like EKS: the bearer token is
a presigned STS GetCallerIdentity URL whose signature covers the `x-k8s-aws-id` header; the server
recomputes that signature with the caller's secret and *this* cluster's name, so a token signed for
another cluster is refused. Callers are told apart by the access key id in the URL: the product's
Lambda role is read-only here (as its ClusterRole is in AWS), so any write it attempts gets 403.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from autopatch.fields import FieldPath, get_path
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from rehearsal.kube.store import (
    KINDS,
    KubeStore,
    ListKey,
    known_api_versions,
    removed_api,
    served_api_versions,
    version_rank,
)
from rehearsal.kube.store import _leaf_paths as leaf_paths  # same notion of "a field" as KubeStore.put

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

# ---- authentication: EKS bearer tokens ------------------------------------------------------
TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
MAX_TOKEN_BYTES = 4096
TOKEN_LIFETIME = timedelta(minutes=15)  # from X-Amz-Date, whatever X-Amz-Expires says
REQUIRED_TOKEN_PARAMS = (
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
ALLOWED_TOKEN_PARAMS = frozenset((*REQUIRED_TOKEN_PARAMS, "X-Amz-Security-Token"))
# botocore signs a presigned GET with the hash of its empty body; other SDKs sign "UNSIGNED-PAYLOAD".
SIGNED_PAYLOAD_HASHES = (hashlib.sha256(b"").hexdigest(), "UNSIGNED-PAYLOAD")


class TokenRejected(Exception):
    """The bearer token does not authenticate anyone for this cluster."""


def verify_token(
    authorization: str | None,
    *,
    cluster_name: str,
    credentials: Mapping[str, str],
    now: datetime | None = None,
) -> str:
    """The access key id that signed the token, if it was signed for `cluster_name` and is fresh."""
    if not authorization or not authorization.startswith("Bearer "):
        raise TokenRejected("no bearer token")
    token = authorization.removeprefix("Bearer ").strip()
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("token is too long")
    if not token.startswith(TOKEN_PREFIX):
        raise TokenRejected(f"token does not start with {TOKEN_PREFIX}")
    encoded = token.removeprefix(TOKEN_PREFIX)
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise TokenRejected("token is not base64url") from None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise TokenRejected("presigned URL is not https")
    if parts.path != "/":
        raise TokenRejected("presigned URL path is not /")
    params = _single_valued_params(parts.query)
    if params.get("Action") != "GetCallerIdentity":
        raise TokenRejected("presigned URL is not for GetCallerIdentity")
    if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        raise TokenRejected("unsupported signing algorithm")
    signed_at = _parse_amz_date(params["X-Amz-Date"])
    if not 0 <= _int_param(params, "X-Amz-Expires") <= 900:
        raise TokenRejected("X-Amz-Expires must be between 0 and 900")
    if (now or datetime.now(UTC)) > signed_at + TOKEN_LIFETIME:
        raise TokenRejected("X-Amz-Date parameter is expired (15 minute expiration)")
    signed_headers = params["X-Amz-SignedHeaders"].split(";")
    if CLUSTER_ID_HEADER not in signed_headers:
        raise TokenRejected(f"{CLUSTER_ID_HEADER} is not a signed header")
    if not set(signed_headers) <= {"host", CLUSTER_ID_HEADER}:
        raise TokenRejected("unexpected signed headers")
    key_id, _, scope = params["X-Amz-Credential"].partition("/")
    secret = credentials.get(key_id)
    if secret is None:
        raise TokenRejected(f"unknown access key id {key_id}")
    header_values = {"host": _host_of(url), CLUSTER_ID_HEADER: cluster_name}
    expected = [
        _sigv4_query_signature(
            query=parts.query,
            headers={name: header_values[name] for name in signed_headers},
            amz_date=params["X-Amz-Date"],
            scope=scope,
            secret=secret,
            payload_hash=payload_hash,
        )
        for payload_hash in SIGNED_PAYLOAD_HASHES
    ]
    if not any(hmac.compare_digest(signature, params["X-Amz-Signature"]) for signature in expected):
        raise TokenRejected(f"signature does not match: the token was not signed for cluster {cluster_name}")
    return key_id


def _single_valued_params(query: str) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    unexpected = set(parsed) - ALLOWED_TOKEN_PARAMS
    if unexpected:
        raise TokenRejected(f"unexpected query parameters {sorted(unexpected)}")
    missing = [name for name in REQUIRED_TOKEN_PARAMS if name not in parsed]
    if missing:
        raise TokenRejected(f"missing query parameters {missing}")
    if any(len(values) != 1 for values in parsed.values()):
        raise TokenRejected("query parameters must have a single value")
    return {name: values[0] for name, values in parsed.items()}


def _parse_amz_date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise TokenRejected("X-Amz-Date is malformed") from None


def _int_param(params: Mapping[str, str], name: str) -> int:
    try:
        return int(params[name])
    except ValueError:
        raise TokenRejected(f"{name} is not a number") from None


def _host_of(url: str) -> str:
    # botocore signs the host without a default port.
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port and parts.port != 443 else host


def _sigv4_query_signature(
    *, query: str, headers: Mapping[str, str], amz_date: str, scope: str, secret: str, payload_hash: str
) -> str:
    """SigV4 of a presigned GET, as botocore's SigV4QueryAuth computes it before adding the signature."""
    # botocore sorts the query as it appears in the URL (already URI-encoded), minus the signature.
    pairs = sorted(
        tuple(pair.partition("=")[::2])
        for pair in query.split("&")
        if not pair.startswith("X-Amz-Signature=")
    )
    canonical_query = "&".join(f"{key}={value}" for key, value in pairs)
    names = sorted(headers)
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, canonical_headers, ";".join(names), payload_hash]
    )
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for step in scope.split("/"):  # date, region, service, "aws4_request"
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


# ---- Kubernetes Status bodies ---------------------------------------------------------------
class ApiError(Exception):
    """Answered as a Kubernetes Status object with this code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: JsonObject | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details


def status_body(code: int, reason: str, message: str, details: JsonObject | None = None) -> JsonObject:
    body: JsonObject = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "code": code,
    }
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return body


def _not_found(plural: str, group: str, name: str) -> ApiError:
    resource = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": plural})


# ---- paths ----------------------------------------------------------------------------------
# Every group/version a kind has had (its stored one and the older ones of the removed-API table);
# which of them a cluster serves depends on its Kubernetes version (`served_api_versions`).
_KIND_BY_RESOURCE: dict[tuple[str, str], str] = {
    (api_version, plural): kind
    for kind, (_, plural, _) in KINDS.items()
    for api_version in known_api_versions(kind)
}


@dataclass(frozen=True)
class ResourcePath:
    """What an API path names: a collection (no name), an object, or a pod's eviction."""

    kind: str
    namespace: str | None
    name: str | None
    subresource: str | None = None
    requested_api_version: str | None = None  # the group/version in the path, if not the stored one

    @property
    def api_version(self) -> str:
        return self.requested_api_version or KINDS[self.kind][0]

    @property
    def plural(self) -> str:
        return KINDS[self.kind][1]

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def namespaced(self) -> bool:
        return KINDS[self.kind][2]


def parse_resource_path(path: str, kubernetes_version: str | None = None) -> ResourcePath | None:
    """`/api/v1/namespaces/ns/pods/name`, `/apis/apps/v1/deployments` and so on; None if not one, or,
    given the cluster's `kubernetes_version`, if that version does not serve the path's group/version."""
    parts = [part for part in path.split("/") if part]
    if parts[:2] == ["api", "v1"]:
        api_version, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not 1 <= len(rest) <= 3:
        return None
    plural, name, subresource = [*rest, None, None][:3]
    kind = _KIND_BY_RESOURCE.get((api_version, plural or ""))
    if kind is None or (namespace is not None and not KINDS[kind][2]):
        return None
    if subresource is not None and (kind, subresource) != ("Pod", "eviction"):
        return None
    if kubernetes_version is not None and api_version not in served_api_versions(kind, kubernetes_version):
        return None
    requested = None if api_version == KINDS[kind][0] else api_version
    return ResourcePath(kind, namespace, name, subresource, requested)


# ---- selectors ------------------------------------------------------------------------------
Matcher = Callable[[JsonObject], bool]
_SET_TERM = re.compile(r"^(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)$")
_EQUALITY_TERM = re.compile(r"^(?P<key>[^\s!=,()]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^\s!=,()]*)$")
_EXISTS_TERM = re.compile(r"^(?P<negated>!?)\s*(?P<key>[^\s!=,()]+)$")
SELECTABLE_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")


def label_selector_matcher(selector: str) -> Matcher:
    """`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`, comma-separated (all must hold)."""
    terms: list[Matcher] = []
    for term in (t.strip() for t in re.split(r",(?![^()]*\))", selector) if t.strip()):
        terms.append(_label_term(term))
    return lambda obj: all(term((obj.get("metadata") or {}).get("labels") or {}) for term in terms)


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_TERM.match(term):
        key, values = match["key"], {v.strip() for v in match["values"].split(",")}
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY_TERM.match(term):
        key, value = match["key"], match["value"]
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_TERM.match(term):
        key, negated = match["key"], bool(match["negated"])
        return lambda labels: (key in labels) != negated
    raise ApiError(400, "BadRequest", f'unable to parse requirement: "{term}"')


def field_selector_matcher(selector: str) -> Matcher:
    """`spec.nodeName=ip-10-0-1-1`, `status.phase!=Running`, ... over SELECTABLE_FIELDS."""
    terms: list[Matcher] = []
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        match = _EQUALITY_TERM.match(term)
        if match is None:
            raise ApiError(400, "BadRequest", f'invalid field selector: "{term}"')
        if match["key"] not in SELECTABLE_FIELDS:
            raise ApiError(400, "BadRequest", f"field label not supported: {match['key']}")
        terms.append(_field_term(tuple(match["key"].split(".")), match["value"], negated=match["op"] == "!="))
    return lambda obj: all(term(obj) for term in terms)


def _field_term(path: FieldPath, value: str, *, negated: bool) -> Matcher:
    # An unset field compares as "": `spec.nodeName=` selects pods not yet scheduled.
    return lambda obj: (str(get_path(obj, path, "") or "") == value) != negated


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); an empty one selects everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In":
            holds = labels.get(key) in values
        elif operator == "NotIn":
            holds = labels.get(key) not in values
        elif operator in ("Exists", "DoesNotExist"):
            holds = (key in labels) == (operator == "Exists")
        else:
            raise ApiError(422, "Invalid", f"{operator!r} is not a valid label selector operator")
        if not holds:
            return False
    return True


# ---- writes ---------------------------------------------------------------------------------
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
_ABSENT = object()


def merge_patch(target: Any, patch: Any, *, merge_named_lists: bool = False) -> Any:
    """RFC 7386 JSON merge patch. With `merge_named_lists`, lists of objects with a `name` are
    merged item by item, which is what a strategic merge patch does for containers and the like."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif merge_named_lists and _is_named_list(value) and _is_named_list(result.get(key)):
            merged = {item["name"]: item for item in result[key]}
            for item in value:
                merged[item["name"]] = merge_patch(merged.get(item["name"]), item, merge_named_lists=True)
            result[key] = list(merged.values())
        else:
            result[key] = merge_patch(result.get(key), value, merge_named_lists=merge_named_lists)
    return result


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, dict) and "name" in i for i in value)


def _owned_paths(obj: JsonObject) -> list[FieldPath]:
    """Fields a writer can own: spec/data/..., labels and annotations; not status or server metadata."""
    paths = []
    for path in leaf_paths(obj, ()):
        if path[0] in ("apiVersion", "kind", "status") or path[-1].startswith("["):
            continue
        if path[0] == "metadata" and path[1:2] not in (("labels",), ("annotations",)):
            continue
        paths.append(path)
    return paths


def update_object(store: KubeStore, old: JsonObject, new: JsonObject, manager: str) -> JsonObject:
    """Replace `old` by `new` as an Update by `manager`, who becomes the owner of the fields it changed
    (the API server's rule for non-apply writes); other managers keep the fields they set."""
    kind, namespace, name = store.key_of(old)
    old_rv, new_rv = old["metadata"].get("resourceVersion"), new.get("metadata", {}).get("resourceVersion")
    if new_rv and new_rv != old_rv:
        plural = KINDS[kind][1]
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
        )
    changed = [path for path in _owned_paths(new) if get_path(old, path, _ABSENT) != get_path(new, path)]

    def replace_contents(obj: JsonObject) -> None:
        server_meta = {
            key: obj["metadata"][key]
            for key in ("name", "namespace", "uid", "creationTimestamp", "managedFields")
            if key in obj["metadata"]
        }
        status = obj.get("status")  # status is a subresource: writes to the object leave it alone
        obj.clear()
        obj.update(copy.deepcopy(new))
        obj["kind"], obj["apiVersion"] = kind, KINDS[kind][0]
        obj.setdefault("metadata", {}).update(server_meta)
        obj.pop("status", None)
        if status is not None:
            obj["status"] = status

    store.mutate(kind, namespace, name, replace_contents)
    for path in changed:
        store.set_field(kind, namespace, name, path, get_path(new, path), manager)
    return store.get(kind, namespace, name) or {}


def evict_pod(store: KubeStore, namespace: str, pod_name: str) -> None:
    """The eviction subresource: delete the pod unless its PodDisruptionBudget forbids it.

    Raises ApiError 404 (no such pod), 429 (the budget allows no disruption now) or 500 (more than
    one budget selects the pod), with the API server's messages.
    """
    pod = store.get("Pod", namespace, pod_name)
    if pod is None:
        raise _not_found("pods", "", pod_name)
    labels = pod["metadata"].get("labels") or {}
    budgets = [
        pdb
        for pdb in store.list("PodDisruptionBudget", namespace)
        if selector_matches((pdb.get("spec") or {}).get("selector"), labels)
    ]
    # A pod that is done, failed or not started takes nothing away from a budget: no check.
    if budgets and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed", "Pending"):
        if len(budgets) > 1:
            raise ApiError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, "
                "which the eviction subresource does not support.",
            )
        # Check and spend under the store's lock, so concurrent evictions cannot overspend the budget.
        store.mutate("PodDisruptionBudget", namespace, budgets[0]["metadata"]["name"], _spend_one_disruption)
    store.delete("Pod", namespace, pod_name)


def _spend_one_disruption(budget: JsonObject) -> None:
    status = budget.setdefault("status", {})
    allowed = int(status.get("disruptionsAllowed", 0))
    if allowed <= 0:
        cause = (
            f"The disruption budget {budget['metadata']['name']} needs {status.get('desiredHealthy', 0)} "
            f"healthy pods and has {status.get('currentHealthy', 0)} currently"
        )
        raise ApiError(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            {"causes": [{"reason": "DisruptionBudget", "message": cause}]},
        )
    status["disruptionsAllowed"] = allowed - 1


# ---- the server -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodedJson:
    """A response body already encoded as JSON (a List whose items the store encoded)."""

    text: str


_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class _QuietHandler(WSGIRequestHandler):
    # One request per connection: no idle keep-alive thread outlives stop().
    protocol_version = "HTTP/1.0"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are recorded in FakeKubeApiServer.requests; the console stays quiet."""


class FakeKubeApiServer:
    """The Kubernetes API of one simulated cluster, on http://127.0.0.1:<port>."""

    def __init__(
        self,
        store: KubeStore,
        *,
        cluster_name: str,
        credentials: Mapping[str, str],
        readonly_key_ids: Collection[str],
    ) -> None:
        self.store = store
        self.cluster_name = cluster_name
        self.credentials = credentials
        self.readonly_key_ids = frozenset(readonly_key_ids)
        self.requests: list[tuple[str, str, str]] = []  # (caller key id or "", method, path)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, port: int = 0) -> FakeKubeApiServer:
        if self._server is not None:
            raise RuntimeError("the fake Kubernetes API server is already running")
        self._server = make_server(
            "127.0.0.1", port, self._wsgi_app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # stop() waits up to one poll interval; the default half second adds up over a test run
            kwargs={"poll_interval": 0.05},
            name=f"fake-kube-api-{self.cluster_name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        self._server, self._thread = None, None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Kubernetes API server is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeKubeApiServer:
        return self if self._server is not None else self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- requests ---------------------------------------------------------------------------
    def _wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        caller = ""
        try:
            try:
                caller = verify_token(
                    request.headers.get("Authorization"),
                    cluster_name=self.cluster_name,
                    credentials=self.credentials,
                )
            except TokenRejected as rejected:
                raise ApiError(401, "Unauthorized", f"Unauthorized: {rejected}") from None
            code, body = self._handle(request, caller)
        except ApiError as error:
            code, body = error.code, status_body(error.code, error.reason, error.message, error.details)
        except Exception as error:  # a bug here must reach the client as a Status, not a hang
            log.exception("fake Kubernetes API failed on %s %s", request.method, request.path)
            code, body = 500, status_body(500, "InternalError", f"fake API server error: {error}")
        self.requests.append((caller, request.method, request.path))
        text = body.text if isinstance(body, EncodedJson) else json.dumps(body)
        response = Response(text, status=code, mimetype="application/json")
        return response(environ, start_response)

    def _handle(self, request: Request, caller: str) -> tuple[int, JsonObject | EncodedJson]:
        if request.method == "GET":
            discovery = self._discovery(request.path.rstrip("/"))
            if discovery is not None:
                return 200, discovery
        route = parse_resource_path(request.path, self.store.kubernetes_version)
        if route is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if route.requested_api_version is not None and removed_api(route.api_version, route.kind):
            # The audit log EKS reads for the deprecated-API upgrade insight.
            self.store.record_api_usage(
                request.headers.get("User-Agent") or "unknown", f"/apis/{route.api_version}/{route.plural}"
            )
        code, body = self._route(request, caller, route)
        if (
            route.requested_api_version is not None
            and isinstance(body, dict)
            and body.get("kind") == route.kind
        ):
            body["apiVersion"] = route.api_version  # served through the version the client asked for
        return code, body

    def _route(
        self, request: Request, caller: str, route: ResourcePath
    ) -> tuple[int, JsonObject | EncodedJson]:
        if request.method in _WRITE_VERBS and caller in self.readonly_key_ids:
            raise self._forbidden(request.method, route, caller)
        if route.subresource and request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported on {request.path}")
        manager = request.args.get("fieldManager") or "kubectl"
        if request.method == "GET" and route.name:
            return 200, self._get(route)
        if request.method == "GET":
            return 200, self._list(route, request)
        if request.method == "POST" and route.subresource == "eviction" and route.namespace and route.name:
            evict_pod(self.store, route.namespace, route.name)
            return 201, status_body(201, "", "")
        if request.method == "POST" and not route.name:
            return 201, self._create(route, _json_body(request), manager)
        if request.method == "PUT" and route.name:
            return 200, update_object(
                self.store, self._get(route), self._body_for(route, _json_body(request)), manager
            )
        if request.method == "PATCH" and route.name:
            return 200, self._patch(route, request, manager)
        if request.method == "DELETE" and route.name:
            return 200, self._delete(route)
        raise ApiError(405, "MethodNotAllowed", f"{request.method} is not supported on {request.path}")

    def _forbidden(self, method: str, route: ResourcePath, caller: str) -> ApiError:
        resource = f"{route.plural}/{route.subresource}" if route.subresource else route.plural
        where = f' in the namespace "{route.namespace}"' if route.namespace else " at the cluster scope"
        subject = f'{route.plural} "{route.name}"' if route.name else route.plural
        message = (
            f'{subject} is forbidden: User "{caller}" cannot {_WRITE_VERBS[method]} resource "{resource}" '
            f'in API group "{route.group}"{where}'
        )
        return ApiError(403, "Forbidden", message, {"name": route.name or "", "kind": route.plural})

    # ---- reads ------------------------------------------------------------------------------
    def _get(self, route: ResourcePath) -> JsonObject:
        if route.namespaced and not route.namespace:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        obj = self.store.get(route.kind, route.namespace or "", route.name or "")
        if obj is None:
            raise _not_found(route.plural, route.group, route.name or "")
        return obj

    def _list(self, route: ResourcePath, request: Request) -> EncodedJson:
        if request.args.get("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by the fake Kubernetes API")
        label_selector, field_selector = request.args.get("labelSelector"), request.args.get("fieldSelector")
        terms = [label_selector_matcher(label_selector)] if label_selector else []
        terms += [field_selector_matcher(field_selector)] if field_selector else []
        page = self.store.list_page(
            route.kind,
            route.namespace,
            match=(lambda obj: all(term(obj) for term in terms)) if terms else None,
            after=_decode_continue(request.args.get("continue")),
            limit=_int_arg(request, "limit"),
            # Stored objects are trees: no need to look for cycles. (`json` is looked up now, so that
            # whoever times this module's json sees the encoding.)
            encode=lambda items: json.dumps(items, check_circular=False),
        )
        metadata: JsonObject = {"resourceVersion": page.resource_version}
        if page.continue_after is not None:
            metadata["continue"] = _encode_continue(page.continue_after)
        head = json.dumps(
            {"kind": f"{route.kind}List", "apiVersion": route.api_version, "metadata": metadata}
        )
        # The items were encoded by the store: spliced in, the body is what json.dumps of the whole
        # List would give, without encoding (or copying) the items twice.
        return EncodedJson(f'{head[:-1]}, "items": {page.items_json}}}')

    def _discovery(self, path: str) -> JsonObject | None:
        served = _served_resources(self.store.kubernetes_version)
        if path == "/version":
            return self._version()
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
            }
        if path == "/apis":
            by_group: dict[str, list[str]] = {}
            for served_version in served:
                if "/" in served_version:
                    by_group.setdefault(served_version.split("/")[0], []).append(served_version)
            groups = []
            for group, versions in sorted(by_group.items()):
                entries = [
                    {"groupVersion": gv, "version": gv.split("/")[1]}
                    for gv in sorted(versions, key=version_rank)
                ]
                groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        group_version = path.removeprefix("/apis/") if path.startswith("/apis/") else None
        if path == "/api/v1":
            group_version = "v1"
        if group_version is None or group_version not in served:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": _api_resources(group_version, served[group_version]),
        }

    def _version(self) -> JsonObject:
        version = self.store.kubernetes_version.removeprefix("v")
        major, minor = version.split(".")[:2]
        if self.store.kubernetes_version.startswith("v"):
            git_version = self.store.kubernetes_version
        else:  # "1.31" as EKS names versions: add a patch level and an EKS build suffix
            build = hashlib.sha1(version.encode()).hexdigest()[:7]
            git_version = f"v{version}{'.0' if version.count('.') == 1 else ''}-eks-{build}"
        return {
            "major": major,
            "minor": minor,
            "gitVersion": git_version,
            "gitCommit": hashlib.sha1(git_version.encode()).hexdigest(),
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.23.4",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    # ---- writes -----------------------------------------------------------------------------
    def _body_for(self, route: ResourcePath, body: Any) -> JsonObject:
        """The object sent to a create or a replace, checked against the URL."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON object")
        if body.get("kind", route.kind) != route.kind:
            raise ApiError(400, "BadRequest", f"the body is a {body.get('kind')}, not a {route.kind}")
        meta = body.setdefault("metadata", {})
        if route.name and meta.setdefault("name", route.name) != route.name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name in the URL")
        if route.namespaced and meta.setdefault("namespace", route.namespace) != route.namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the URL")
        body["kind"] = route.kind
        return body

    def _create(self, route: ResourcePath, body: Any, manager: str) -> JsonObject:
        if route.namespaced and not route.namespace:
            raise ApiError(405, "MethodNotAllowed", f"create {route.plural} in a namespace")
        obj = self._body_for(route, body)
        name = obj["metadata"].get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value: name is required")
        if self.store.get(route.kind, route.namespace or "", name) is not None:
            raise ApiError(409, "AlreadyExists", f'{route.plural} "{name}" already exists')
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
            obj["metadata"].pop(server_field, None)
        return self.store.put(obj, manager)

    def _patch(self, route: ResourcePath, request: Request, manager: str) -> JsonObject:
        content_type = (request.mimetype or "").lower()
        if content_type not in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"supported patch types are {MERGE_PATCH} and {STRATEGIC_MERGE_PATCH}, not {content_type}",
            )
        patch = _json_body(request)
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        old = self._get(route)
        new = merge_patch(old, patch, merge_named_lists=content_type == STRATEGIC_MERGE_PATCH)
        if "resourceVersion" not in (patch.get("metadata") or {}):
            new["metadata"].pop("resourceVersion", None)  # only a patch that names one is a precondition
        return update_object(self.store, old, new, manager)

    def _delete(self, route: ResourcePath) -> JsonObject:
        obj = self._get(route)
        self.store.delete(route.kind, route.namespace or "", route.name or "")
        if route.kind == "Pod":  # pods are deleted gracefully: the API answers with the pod
            return obj
        details = {"name": route.name, "kind": route.plural, "uid": obj["metadata"].get("uid", "")}
        return status_body(200, "", "", details)


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError:
        raise ApiError(400, "BadRequest", "the body is not valid JSON") from None


def _int_arg(request: Request, name: str) -> int:
    try:
        return int(request.args.get(name) or 0)
    except ValueError:
        raise ApiError(400, "BadRequest", f"{name} must be a number") from None


def _encode_continue(after: ListKey) -> str:
    """An opaque continue token: the (namespace, name) of the last object of the page."""
    return base64.urlsafe_b64encode(json.dumps({"after": list(after)}).encode()).decode()


def _decode_continue(token: str | None) -> ListKey | None:
    if not token:
        return None
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(400, "BadRequest", "continue key is not valid") from None
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(part, str) for part in after)):
        raise ApiError(400, "BadRequest", "continue key is not valid")
    return after[0], after[1]


@functools.cache
def _served_resources(kubernetes_version: str) -> dict[str, tuple[str, ...]]:
    """group/version -> the kinds a cluster on `kubernetes_version` serves through it (`v1` always)."""
    served: dict[str, list[str]] = {"v1": []}
    for kind in sorted(KINDS):
        for group_version in served_api_versions(kind, kubernetes_version):
            served.setdefault(group_version, []).append(kind)
    return {group_version: tuple(kinds) for group_version, kinds in served.items()}


def _api_resources(group_version: str, kinds: Collection[str]) -> list[JsonObject]:
    verbs = ["create", "delete", "get", "list", "patch", "update"]
    resources = [
        {
            "name": KINDS[kind][1],
            "singularName": kind.lower(),
            "namespaced": KINDS[kind][2],
            "kind": kind,
            "verbs": verbs,
        }
        for kind in kinds
    ]
    if group_version == "v1":
        resources.append(
            {
                "name": "pods/eviction",
                "singularName": "",
                "namespaced": True,
                "group": "policy",
                "version": "v1",
                "kind": "Eviction",
                "verbs": ["create"],
            }
        )
    return resources
