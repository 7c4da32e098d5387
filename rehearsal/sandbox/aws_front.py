"""The sandbox's AWS endpoint: one WSGI app for every service a tool signs a request for.

The service is read from the SigV4 credential scope of the `Authorization` header. EKS goes to the
EKS simulator (the same `EksSimulator.call` the in-process rehearsal uses), routed by botocore's
model of the EKS REST API; SSM `GetParameter(s)` for the public `/aws/service/eks/` parameters goes
to the simulator's AMI catalogue; everything else goes to moto's backends in this process (STS,
EC2, Auto Scaling, SSM, DynamoDB, ...), through the same request matching `mock_aws` uses.
Signatures are not checked.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

from werkzeug.wrappers import Request, Response

from rehearsal.eks.simulator import EksApiError, EksSimulator

log = logging.getLogger(__name__)

PUBLIC_EKS_PARAMETERS = "/aws/service/eks/"
_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


def credential_scope(request: Request) -> tuple[str, str, str] | None:
    """(access key id, region, service) of a SigV4-signed request, or None."""
    match = _SCOPE.search(request.headers.get("Authorization", ""))
    if match is None:
        match = _SCOPE.search("Credential=" + request.args.get("X-Amz-Credential", ""))
    if match is None:
        return None
    return match[1], match[3], match[4]


# ---- EKS: botocore's rest-json model, served by the simulator --------------------------------
@cache
def _eks_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("eks")


@cache
def _eks_routes() -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path regex, operation name) for every EKS operation, literal paths first."""
    model = _eks_model()
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].split("?", 1)[0]
        pattern = re.sub(
            r"\{([^}+]+)(\+?)\}",
            lambda m: f"(?P<{m[1]}>.+)" if m[2] else f"(?P<{m[1]}>[^/]+)",
            path,
        )
        routes.append((http["method"], re.compile(f"^{pattern}/?$"), name))
    # `/clusters/{name}` must not swallow a literal such as `/clusters/{name}/addons`.
    routes.sort(key=lambda r: r[1].pattern.count("(?P"))
    return routes


def _from_text(shape: Any, values: list[str]) -> Any:
    if shape.type_name == "list":
        return [_from_text(shape.member, [v]) for v in values]
    value = values[0]
    if shape.type_name in ("integer", "long"):
        return int(value)
    if shape.type_name == "boolean":
        return value.lower() == "true"
    return value


def eks_params(operation: Any, match: re.Match[str], request: Request) -> dict[str, Any]:
    """The operation's input members, each taken from where the REST protocol puts it."""
    params: dict[str, Any] = {}
    shape = operation.input_shape
    if shape is None:
        return params
    body: dict[str, Any] = {}
    if request.get_data():
        body = json.loads(request.get_data())
    query = parse_qs(request.query_string.decode(), keep_blank_values=True)
    for member_name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", member_name)
        if location == "uri":
            value = match.groupdict().get(wire)
            if value is not None:
                params[member_name] = unquote(value)
        elif location == "querystring":
            if wire in query:
                params[member_name] = _from_text(member, query[wire])
        elif location == "header":
            if wire in request.headers:
                params[member_name] = _from_text(member, [request.headers[wire]])
        elif wire in body:
            params[member_name] = body[wire]
    return params


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _error(status: int, code: str, message: str) -> Response:
    response = Response(json.dumps({"message": message}), status=status, mimetype="application/json")
    response.headers["x-amzn-ErrorType"] = code
    return response


# ---- moto: everything else --------------------------------------------------------------------
# SigV4 signing names whose endpoint prefix differs (botocore's models: metadata.signingName and
# endpointPrefix); every other service signs with its endpoint prefix.
_ENDPOINT_PREFIXES = {
    "ses": "email",
    "mobiletargeting": "pinpoint",
}


_GLOBAL_SERVICES = {"iam", "sts-global", "route53", "cloudfront", "organizations"}


def moto_url(service: str, region: str, path_and_query: str) -> str:
    prefix = _ENDPOINT_PREFIXES.get(service, service)
    host = f"{prefix}.amazonaws.com" if prefix in _GLOBAL_SERVICES else f"{prefix}.{region}.amazonaws.com"
    return f"https://{host}{path_and_query}"


class AwsFront:
    """The WSGI app. `before_request` runs first on every request (the sandbox drives its clock there)."""

    def __init__(
        self,
        simulator: EksSimulator,
        *,
        region: str,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        self.simulator = simulator
        self.region = region
        self.before_request = before_request or (lambda: None)
        self.requests: list[tuple[str, str, str]] = []  # (access key id, service, operation or path)
        self._moto = BotocoreStubber()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            self.before_request()
            response = self.handle(request)
        except Exception as error:  # answered, never a hang or a dropped connection
            log.exception("sandbox AWS endpoint failed on %s %s", request.method, request.path)
            response = _error(500, "InternalFailure", f"sandbox error: {error}")
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        scope = credential_scope(request)
        if scope is None:
            return _error(403, "MissingAuthenticationTokenException", "the request is not SigV4-signed")
        key_id, region, service = scope
        if service == "eks":
            return self._eks(request, key_id)
        if service == "ssm":
            answered = self._public_parameters(request, key_id)
            if answered is not None:
                return answered
        return self._to_moto(request, key_id, region, service)

    # ---- EKS --------------------------------------------------------------------------------
    def _eks(self, request: Request, key_id: str) -> Response:
        from botocore.exceptions import ParamValidationError
        from botocore.validate import validate_parameters

        path = request.path
        found = next(
            (
                (name, match)
                for method, pattern, name in _eks_routes()
                if method == request.method and (match := pattern.match(path)) is not None
            ),
            None,
        )
        if found is None:
            return _error(404, "UnknownOperationException", f"no EKS operation at {request.method} {path}")
        name, match = found
        self.requests.append((key_id, "eks", name))
        operation = _eks_model().operation_model(name)
        try:
            params = eks_params(operation, match, request)
            if operation.input_shape is not None:
                validate_parameters(params, operation.input_shape)
        except (ParamValidationError, ValueError) as exc:
            return _error(400, "InvalidParameterException", str(exc))
        try:
            result = self.simulator.call(name, params)
        except EksApiError as exc:
            return _error(exc.status, exc.code, exc.message)
        return Response(json.dumps(result, default=_json_default), status=200, mimetype="application/json")

    # ---- SSM public parameters --------------------------------------------------------------
    def _public_parameters(self, request: Request, key_id: str) -> Response | None:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.rpartition(".")[2]
        if operation not in ("GetParameter", "GetParameters"):
            return None
        body = json.loads(request.get_data() or b"{}")
        names = [body.get("Name", "")] if operation == "GetParameter" else list(body.get("Names", []))
        if not names or not all(str(n).startswith(PUBLIC_EKS_PARAMETERS) for n in names):
            return None  # other parameters (and mixed requests) are moto's
        self.requests.append((key_id, "ssm", operation))
        found, invalid = [], []
        for name in names:
            value = self.simulator.ssm_parameter(name)
            if value is None:
                invalid.append(name)
                continue
            found.append(
                {
                    "Name": name,
                    "Type": "String",
                    "Value": value,
                    "Version": 1,
                    "DataType": "text",
                    "ARN": f"arn:aws:ssm:{self.region}::parameter{name}",
                }
            )
        if operation == "GetParameter":
            if not found:
                response = Response(
                    json.dumps({"__type": "ParameterNotFound", "message": ""}),
                    status=400,
                    mimetype="application/x-amz-json-1.1",
                )
                return response
            payload: dict[str, Any] = {"Parameter": found[0]}
        else:
            payload = {"Parameters": found, "InvalidParameters": invalid}
        return Response(json.dumps(payload), status=200, mimetype="application/x-amz-json-1.1")

    # ---- moto -------------------------------------------------------------------------------
    def _to_moto(self, request: Request, key_id: str, region: str, service: str) -> Response:
        from botocore.awsrequest import AWSPreparedRequest
        from botocore.compat import HTTPHeaders

        query = request.query_string.decode()
        path = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        path = path.split("?", 1)[0]
        url = moto_url(service, region, path + (f"?{query}" if query else ""))
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() != "host":
                headers[name] = value
        headers["Host"] = url.split("/", 3)[2]
        prepared = AWSPreparedRequest(
            method=request.method,
            url=url,
            headers=headers,
            body=request.get_data(),
            stream_output=False,
        )
        self.requests.append((key_id, service, request.headers.get("X-Amz-Target") or request.path))
        with self._lock:  # moto's backends are shared with the seeding code and other requests
            answer = self._moto.process_request(prepared)
        if answer is None:
            return _error(404, "UnknownServiceException", f"the sandbox does not offer {service}")
        status, response_headers, body = answer
        response = Response(body if body is not None else b"", status=int(status))
        for name, value in (response_headers or {}).items():
            if name.lower() in ("status", "content-length", "transfer-encoding", "connection", "server"):
                continue
            response.headers[name] = str(value)
        return response
