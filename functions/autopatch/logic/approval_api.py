"""The approval API: Slack button clicks and emailed links in, decisions out through `decide()`.

Two halves, because Slack wants an answer within 3 seconds:
- `receive` (the receiver Lambda, behind API Gateway's HTTP API) verifies each request — Slack's
  signature and timestamp, or the link's HMAC and expiry — answers at once and puts what was asked
  on a queue. It decides nothing and writes nothing to the ledger.
- `decide_from_queue` (the decider Lambda, on that queue) maps the person to an approver of the
  cluster, calls `decide()` (the first decision wins), and updates the Slack message; a refusal is
  answered ephemerally in Slack.

Routes: `POST /slack/interactions` (Slack interactivity), `GET /approvals/confirm?token=…` (the
page an emailed link opens: it shows what would be decided, decides nothing), `POST
/approvals/decide` (that page's form: the only way a link decides; `GET` is refused, so mail
scanners that open links decide nothing).

Every refusal gets a clear message (Slack: a 401 text or an ephemeral reply; links: an HTML page),
a log line and the metric `ApprovalRequestsRefused` with a `reason` dimension — and no ledger write.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.signature import Clock as SlackClock

from autopatch import clock
from autopatch.clients.ledger import Ledger
from autopatch.errors import ApprovalError
from autopatch.links import LinkClaims, LinkError, verify_link
from autopatch.logic.approval import Decision, decide
from autopatch.observability import logger
from autopatch.policy import Approver, FleetPolicy

SLACK_PATH = "/slack/interactions"
CONFIRM_PATH = "/approvals/confirm"
DECIDE_PATH = "/approvals/decide"
# Slack's replay window: a request signed longer ago than this is refused.
SLACK_MAX_AGE_SECONDS = 300
REFUSED_METRIC = "ApprovalRequestsRefused"
ACTIONS = ("approve", "reject")
MAX_REASON = 500
# Slack sends response URLs on hooks.slack.com; 127.0.0.1 is the rehearsal's stand-in.
RESPONSE_URL_PREFIXES = ("https://hooks.slack.com/", "http://127.0.0.1:", "http://127.0.0.1/")


# ---- what goes on the queue -----------------------------------------------------------------------
class QueuedDecision(BaseModel):
    """A verified request, as the receiver queues it for the decider."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["slack", "link"]
    approvalId: str = Field(min_length=1, max_length=100)
    decision: Literal["approve", "reject"]
    slackUserId: str | None = None  # source slack: who clicked
    approver: str | None = None  # source link: the approver the token names
    reason: str | None = Field(default=None, max_length=MAX_REASON)
    responseUrl: str | None = None  # source slack: where to answer the person
    nonce: str | None = None  # source link: the link's single-use nonce
    linkExpiresAt: str | None = None  # source link: when the link expires
    receivedAt: str


class DecisionQueue(Protocol):
    def send(self, body: dict[str, Any]) -> None: ...


class ApprovalReader(Protocol):
    def summary(self, approval_id: str) -> dict[str, Any] | None: ...

    def link_used(self, nonce: str) -> bool: ...


# ---- refusals -------------------------------------------------------------------------------------
class Refused(Exception):
    """A request that decides nothing: `reason` is counted, `message` is what the person reads."""

    def __init__(self, reason: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


def count_refusal(reason: str) -> None:
    """One `ApprovalRequestsRefused` data point with the refusal's reason, flushed at once (EMF)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=REFUSED_METRIC,
        unit=MetricUnit.Count,
        value=1,
        namespace="Autopatch",
        default_dimensions={"service": "autopatch"},
    ) as metric:
        metric.add_dimension(name="reason", value=reason)


def _refused(refusal: Refused, *, where: str, count: Callable[[str], None]) -> None:
    # The reason and the route only: never a token, a signature or a request body.
    logger.warning(
        "approval request refused",
        extra={"reason": refusal.reason, "route": where, "detail": refusal.message},
    )
    count(refusal.reason)


# ---- the receiver ---------------------------------------------------------------------------------
class _FixedClock(SlackClock):
    """slack_sdk's verifier reads "now" through a clock object: ours."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> float:
        return self.moment.timestamp()


def receive(
    event: dict[str, Any],
    *,
    signing_secret: str,
    link_key: str,
    queue: DecisionQueue,
    now: datetime,
    approvals: ApprovalReader | None = None,
    count: Callable[[str], None] = count_refusal,
) -> dict[str, Any]:
    """Answer one API Gateway HTTP API (payload v2) request."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or event.get("httpMethod") or "").upper()
    path = str(event.get("rawPath") or http.get("path") or "").rstrip("/") or "/"
    route = f"{method} {path}"
    try:
        if path == SLACK_PATH and method == "POST":
            return _slack(event, signing_secret=signing_secret, queue=queue, now=now)
        if path == CONFIRM_PATH and method == "GET":
            return _confirm_page(event, link_key=link_key, now=now, approvals=approvals)
        if path == DECIDE_PATH and method == "POST":
            return _link_decision(event, link_key=link_key, queue=queue, now=now, approvals=approvals)
        if path == DECIDE_PATH:
            raise Refused(
                "decide_not_post",
                "Opening this address decides nothing: decisions are made with the Approve or "
                "Reject button of the confirmation page your email links to.",
                405,
            )
        raise Refused("unknown_route", f"Nothing is served at {method} {path}.", 404)
    except Refused as refusal:
        _refused(refusal, where=route, count=count)
        if path == SLACK_PATH:
            return _text(refusal.status, refusal.message)
        response = _html(refusal.status, "Not decided", f"<p>{_e(refusal.message)}</p>")
        if refusal.status == 405:
            response["headers"]["Allow"] = "POST"
        return response


def _headers(event: dict[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Refused("malformed", "The request body could not be read.", 400) from exc
    return str(body).encode("utf-8")


def _form(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused("malformed", "The request body is not UTF-8.", 400) from exc
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


# ---- Slack ----------------------------------------------------------------------------------------
def _slack(
    event: dict[str, Any], *, signing_secret: str, queue: DecisionQueue, now: datetime
) -> dict[str, Any]:
    from slack_sdk.signature import SignatureVerifier

    headers = _headers(event)
    raw = _raw_body(event)
    timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
    if not timestamp or not signature:
        raise Refused("slack_unsigned", "Refused: the request carries no Slack signature.", 401)
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise Refused("slack_bad_signature", "Refused: the Slack timestamp is not a number.", 401) from exc
    age = int(now.timestamp()) - sent
    if abs(age) >= SLACK_MAX_AGE_SECONDS:
        raise Refused(
            "slack_stale",
            f"Refused: the request was signed {age} s ago; Slack requests older than "
            f"{SLACK_MAX_AGE_SECONDS} s are not accepted (a replay, or a clock that is off).",
            401,
        )
    if not signing_secret.strip():
        raise Refused("slack_not_configured", "Refused: the Slack signing secret is not configured.", 401)
    try:
        valid = SignatureVerifier(signing_secret, clock=_FixedClock(now)).is_valid(raw, timestamp, signature)
    except UnicodeDecodeError:
        valid = False
    if not valid:
        raise Refused("slack_bad_signature", "Refused: the Slack signature is not valid.", 401)

    payload_text = _form(raw).get("payload")
    try:
        payload = json.loads(payload_text or "")
    except json.JSONDecodeError as exc:
        raise Refused("malformed", "Refused: the Slack request holds no interaction payload.", 400) from exc
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return _text(200, "")  # another kind of interaction: nothing of ours
    click = _approval_click(payload)
    if click is None:
        return _text(200, "")  # typing a reason, another button: nothing to decide
    approval_id, action = click
    user = str((payload.get("user") or {}).get("id") or "")
    response_url = str(payload.get("response_url") or "")
    if not user:
        raise Refused("malformed", "Refused: the Slack request names no user.", 400)
    queue.send(
        QueuedDecision(
            source="slack",
            approvalId=approval_id,
            decision=action,
            slackUserId=user,
            reason=_reason_of(payload, approval_id),
            responseUrl=response_url if response_url.startswith(RESPONSE_URL_PREFIXES) else None,
            receivedAt=clock.iso(now),
        ).model_dump(mode="json", exclude_none=True)
    )
    # Acknowledged: the decider answers (the message updated, or an ephemeral refusal).
    return _text(200, "")


def _approval_click(payload: dict[str, Any]) -> tuple[str, Literal["approve", "reject"]] | None:
    for action in payload.get("actions") or []:
        if not isinstance(action, dict):
            continue
        block_id = str(action.get("block_id") or "")
        action_id = action.get("action_id")
        if not block_id.startswith("approval:") or action_id not in ACTIONS:
            continue
        approval_id = block_id.split(":", 1)[1]
        if str(action.get("value") or "") != approval_id or not approval_id:
            raise Refused("malformed", "Refused: the button does not name its approval.", 400)
        return approval_id, "approve" if action_id == "approve" else "reject"
    return None


def _reason_of(payload: dict[str, Any], approval_id: str) -> str | None:
    values = ((payload.get("state") or {}).get("values") or {}).get(f"reason:{approval_id}") or {}
    text = str((values.get("reason") or {}).get("value") or "").strip()
    return text[:MAX_REASON] or None


# ---- emailed links --------------------------------------------------------------------------------
def _claims(token: str | None, *, link_key: str, now: datetime, named: str | None) -> LinkClaims:
    if not token:
        raise Refused("link_malformed", "This link is incomplete: it carries no token.", 400)
    if not link_key:
        raise Refused("link_not_configured", "Approval links are not configured.", 503)
    try:
        claims = verify_link(link_key, token, now)
    except LinkError as exc:
        status = {"link_expired": 410, "link_bad_signature": 403}.get(exc.reason, 400)
        raise Refused(exc.reason, f"This link cannot be used: {exc}.", status) from exc
    if named and named != claims.approval_id:
        raise Refused(
            "link_other_approval",
            f"This link is for approval {claims.approval_id}, not {named}: nothing was decided.",
            403,
        )
    return claims


def _still_open(claims: LinkClaims, approvals: ApprovalReader | None) -> dict[str, Any]:
    """The approval as the page shows it, refused if it is decided or the link was used."""
    if approvals is None:
        return {}
    item = approvals.summary(claims.approval_id)
    if item is None:
        raise Refused("no_approval", f"There is no approval {claims.approval_id}.", 404)
    if item.get("status") != "pending":
        raise Refused("already_decided", _decided_text(item), 409)
    if approvals.link_used(claims.nonce):
        raise Refused("link_replayed", "This link was already used; a link decides once.", 409)
    return item


def _decided_text(item: dict[str, Any]) -> str:
    if item.get("status") == "decided":
        return f"Already {item.get('decision')} by {item.get('decidedBy')} at {item.get('decidedAt')}."
    return f"This approval is {item.get('status', 'closed')}: it no longer waits for a decision."


def _confirm_page(
    event: dict[str, Any], *, link_key: str, now: datetime, approvals: ApprovalReader | None
) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    claims = _claims(query.get("token"), link_key=link_key, now=now, named=query.get("approval"))
    item = _still_open(claims, approvals)
    what = (
        f"<dl><dt>Cluster</dt><dd>{_e(item.get('cluster', '?'))}</dd>"
        f"<dt>Component</dt><dd>{_e(item.get('component', '?'))}</dd>"
        f"<dt>Change</dt><dd>{_e(item.get('fromVersion', '?'))} → {_e(item.get('toVersion', '?'))}</dd>"
        f"<dt>Approver</dt><dd>{_e(claims.approver)}</dd>"
        f"<dt>Approval</dt><dd>{_e(claims.approval_id)}</dd>"
        f"<dt>Link valid until</dt><dd>{_e(clock.iso(claims.expires_at))}</dd></dl>"
    )
    form = (
        f'<form method="post" action="decide">'
        f'<input type="hidden" name="token" value="{_e(event["queryStringParameters"]["token"])}">'
        f'<input type="hidden" name="approval" value="{_e(claims.approval_id)}">'
        f'<p><label>Reason (optional)<br><textarea name="reason" maxlength="{MAX_REASON}"></textarea>'
        f"</label></p>"
        f'<button type="submit" name="decision" value="approve">Approve</button> '
        f'<button type="submit" name="decision" value="reject">Reject</button></form>'
        f"<p>Nothing is decided until you press a button. The link works once.</p>"
    )
    return _html(200, "Approve this change?", what + form)


def _link_decision(
    event: dict[str, Any],
    *,
    link_key: str,
    queue: DecisionQueue,
    now: datetime,
    approvals: ApprovalReader | None,
) -> dict[str, Any]:
    form = _form(_raw_body(event))
    claims = _claims(form.get("token"), link_key=link_key, now=now, named=form.get("approval") or None)
    decision = form.get("decision")
    if decision not in ACTIONS:
        raise Refused("bad_decision", "Choose Approve or Reject on the confirmation page.", 400)
    item = _still_open(claims, approvals)
    queue.send(
        QueuedDecision(
            source="link",
            approvalId=claims.approval_id,
            decision="approve" if decision == "approve" else "reject",
            approver=claims.approver,
            reason=(form.get("reason") or "").strip()[:MAX_REASON] or None,
            nonce=claims.nonce,
            linkExpiresAt=clock.iso(claims.expires_at),
            receivedAt=clock.iso(now),
        ).model_dump(mode="json", exclude_none=True)
    )
    what = " ".join(str(item[k]) for k in ("cluster", "component") if item.get(k)) or claims.approval_id
    verb = "approve" if decision == "approve" else "reject"
    return _html(
        202,
        "Decision received",
        f"<p>{_e(claims.approver)}, your decision to <strong>{verb}</strong> {_e(what)} was received. "
        "It is recorded within a few seconds, and the Slack message will show it. If someone decided "
        "first, theirs stands.</p>",
    )


# ---- the decider ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeciderOutcome:
    approval_id: str
    decided: bool
    reason: str  # "decided", or the refusal's reason code
    message: str
    decision: Decision | None = None


Tell = Callable[[dict[str, Any], Decision, str | None], None]
Respond = Callable[[str, dict[str, Any]], None]


def decide_from_queue(
    message: dict[str, Any] | str,
    *,
    ledger: Ledger,
    policy: FleetPolicy,
    sfn: Any,
    tell: Tell,
    respond: Respond,
    links: Any = None,
    count: Callable[[str], None] = count_refusal,
) -> DeciderOutcome:
    """Decide what one queued request asks, through `decide()`. A refusal is an outcome, not an
    error: the person is told (Slack: ephemerally), it is logged and counted, nothing is retried."""
    try:
        request = QueuedDecision.model_validate_json(
            message if isinstance(message, str) else json.dumps(message)
        )
    except ValidationError as exc:
        refusal = Refused("malformed", f"unreadable queued request: {exc.error_count()} problems")
        _refused(refusal, where="decider", count=count)
        return DeciderOutcome("", False, refusal.reason, refusal.message)
    try:
        item = ledger.get_approval(request.approvalId)
        if item is None:
            raise Refused("no_approval", f"There is no approval {request.approvalId}.")
        cluster = str(item.get("cluster") or str(item["clusterKey"]).split("#")[-1])
        approver = _approver(item, request, policy, cluster)
        if request.source == "link":
            _use_link(item, request, approver, links if links is not None else _link_uses(ledger))
        try:
            decision = decide(
                request.approvalId,
                request.decision,
                approver.name,
                request.reason,
                ledger=ledger,
                policy=policy,
                sfn=sfn,
            )
        except ApprovalError as exc:
            raise Refused(_reason_code(str(exc)), _sentence(str(exc))) from exc
    except Refused as refusal:
        _refused(refusal, where=f"decider ({request.source})", count=count)
        if request.responseUrl:
            respond(
                request.responseUrl,
                {"response_type": "ephemeral", "replace_original": False, "text": refusal.message},
            )
        return DeciderOutcome(request.approvalId, False, refusal.reason, refusal.message)
    logger.info(
        "approval decided",
        extra={"approval": decision.approval_id, "decision": decision.decision, "by": decision.by},
    )
    try:
        tell(item, decision, request.responseUrl)
    except Exception as exc:  # the decision stands; a retry would only be refused as already decided
        logger.warning("Slack not told of the decision", extra={"error": str(exc)[:300]})
    return DeciderOutcome(
        request.approvalId, True, "decided", f"{decision.decision} by {decision.by}", decision
    )


def _approver(item: dict[str, Any], request: QueuedDecision, policy: FleetPolicy, cluster: str) -> Approver:
    account, region, name = str(item["clusterKey"]).split("#", 2)
    cluster_policy = policy.cluster(account, region, name)
    approvers = cluster_policy.approvers if cluster_policy else []
    if request.source == "slack":
        found = next((a for a in approvers if a.slackUserId and a.slackUserId == request.slackUserId), None)
        if found is None:
            raise Refused("not_approver", f"You are not an approver for {cluster}: nothing was decided.")
        return found
    # A link names its approver; they must still be one when the link is used.
    found = next((a for a in approvers if a.name == request.approver), None)
    if found is None:
        raise Refused(
            "not_approver", f"{request.approver} is not an approver for {cluster}: nothing was decided."
        )
    return found


def _use_link(item: dict[str, Any], request: QueuedDecision, approver: Approver, links: Any) -> None:
    """Spend the link's nonce — only for a decision that can still stand, so a refused request
    writes nothing; a used link is refused even while its approval is pending."""
    if item.get("status") != "pending":
        raise Refused("already_decided", _decided_text(item))
    expires = (
        datetime.fromisoformat(str(request.linkExpiresAt).replace("Z", "+00:00"))
        if (request.linkExpiresAt)
        else clock.now()
    )
    if not request.nonce or not links.use(
        request.nonce, approval_id=request.approvalId, approver=approver.name, link_expires_at=expires
    ):
        raise Refused("link_replayed", "This link was already used; a link decides once.")


def _link_uses(ledger: Ledger) -> Any:
    from autopatch.clients.approvals import LinkUses

    return LinkUses(ledger.table)


def _reason_code(error: str) -> str:
    if error.startswith("already"):
        return "already_decided"
    if "not an approver" in error:
        return "not_approver"
    if error.startswith("no approval"):
        return "no_approval"
    if "no longer waits" in error:
        return "no_longer_waiting"
    return "decision_refused"


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# ---- responses ------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _text(status: int, body: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
        "body": body,
    }


def _html(status: int, title: str, body: str) -> dict[str, Any]:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Autopatch: {_e(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
        "dt{font-weight:600}dd{margin:0 0 .5rem}button{font-size:1rem;padding:.4rem 1.2rem}"
        "textarea{width:100%;min-height:4rem}</style></head>"
        f"<body><h1>{_e(title)}</h1>{body}</body></html>"
    )
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            # The token is in the page's address: never sent on to another site.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'",
        },
        "body": page,
    }
