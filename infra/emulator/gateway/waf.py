"""The declared WAF web ACL, evaluated on each request before API Gateway sees it.

Rules run in priority order; the first terminating action (block, allow) ends the
evaluation, ``count`` only adds the rule's label; the default action is the web ACL's
(``allow`` as declared). Blocked requests get WAF's default block response through API
Gateway: ``403 {"message": "Forbidden"}``.

What is evaluated, exactly as declared:

- ``rateBasedStatement`` (``aggregateKeyType: IP``): requests per source IP over the
  evaluation window (300 s unless declared), counted as they arrive; over ``limit``, the
  rule matches;
- ``and``/``or``/``not`` statements, ``sizeConstraintStatement``,
  ``regexMatchStatement``, ``byteMatchStatement`` and ``labelMatchStatement`` on the URI
  path, query string, method, a single header or the body (with its oversize handling
  beyond the 16 KB API Gateway body inspection limit), text transformations NONE and
  LOWERCASE;
- ``managedRuleGroupStatement`` with its ``ruleActionOverrides`` and scope-down: of the
  AWS common rule set (``AWSManagedRulesCommonRuleSet``), the deterministic rules
  ``NoUserAgent_HEADER``, ``SizeRestrictions_QUERYSTRING`` (2 KB),
  ``SizeRestrictions_Cookie_HEADER`` (10 KB), ``SizeRestrictions_BODY`` (8 KB) and
  ``SizeRestrictions_URIPATH`` (1 KB), with AWS's labels.

What is not: the signature and reputation rules of the managed groups (cross-site
scripting, SQL injection, LFI/RFI, bad bots, known bad inputs, IP reputation). They are
listed in :attr:`WebAclEvaluator.not_emulated` and are a gap in ``infra/emulator/gaps.py``.
Any other statement type is refused when the evaluator is built
(:class:`UnsupportedWafStatement`), never silently passed.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# API Gateway REST APIs: WAF inspects the first 16 KB of a body (AWS WAF, "Body inspection
# size limits").
BODY_INSPECTION_LIMIT = 16 * 1024
DEFAULT_RATE_WINDOW_S = 300
CORE_RULE_SET = "AWSManagedRulesCommonRuleSet"
CORE_LABEL = "awswaf:managed:aws:core-rule-set"


class UnsupportedWafStatement(ValueError):
    """The web ACL declares a statement this evaluator cannot evaluate."""


@dataclass(frozen=True)
class WafRequest:
    method: str
    uri_path: str  # as WAF sees it for a REST API stage: with the stage (/v1/...)
    query_string: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


@dataclass
class Verdict:
    action: str  # "ALLOW" or "BLOCK"
    rule: str | None = None  # the terminating rule (or managed rule inside a group)
    labels: list[str] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _ManagedRule:
    name: str
    label: str
    matches: Callable[[WafRequest], bool]


def _size(text: str | None) -> int:
    return len((text or "").encode("utf-8"))


# The deterministic rules of AWSManagedRulesCommonRuleSet (AWS WAF developer guide,
# "Core rule set (CRS) managed rule group"), in the group's order.
CORE_RULES: tuple[_ManagedRule, ...] = (
    _ManagedRule(
        "NoUserAgent_HEADER",
        f"{CORE_LABEL}:NoUserAgent_Header",
        lambda r: not r.header("user-agent"),
    ),
    _ManagedRule(
        "SizeRestrictions_QUERYSTRING",
        f"{CORE_LABEL}:SizeRestrictions_QueryString",
        lambda r: _size(r.query_string) > 2048,
    ),
    _ManagedRule(
        "SizeRestrictions_Cookie_HEADER",
        f"{CORE_LABEL}:SizeRestrictions_Cookie_Header",
        lambda r: _size(r.header("cookie")) > 10240,
    ),
    _ManagedRule(
        "SizeRestrictions_BODY",
        f"{CORE_LABEL}:SizeRestrictions_Body",
        lambda r: len(r.body) > 8192,
    ),
    _ManagedRule(
        "SizeRestrictions_URIPATH",
        f"{CORE_LABEL}:SizeRestrictions_URIPath",
        lambda r: _size(r.uri_path) > 1024,
    ),
)
CORE_SIGNATURE_RULES = (
    "UserAgent_BadBots_HEADER",
    "EC2MetaDataSSRF_*",
    "GenericLFI_*",
    "RestrictedExtensions_*",
    "GenericRFI_*",
    "CrossSiteScripting_*",
)
EMULATED_GROUPS: Mapping[str, tuple[_ManagedRule, ...]] = {CORE_RULE_SET: CORE_RULES}


class _RateCounter:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def over_limit(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            seen.append(now)
            while seen and seen[0] <= now - self.window_s:
                seen.popleft()
            return len(seen) > self.limit


class WebAclEvaluator:
    """Evaluates the declared rules (camelCase, as the deployment record keeps them)."""

    def __init__(
        self,
        rules: Sequence[Mapping[str, Any]],
        *,
        default_action: str = "ALLOW",
        clock: Callable[[], float] = time.monotonic,
    ):
        self._rules = sorted(rules, key=lambda r: int(r.get("priority", 0)))
        self._default = default_action
        self._clock = clock
        self._counters: dict[int, _RateCounter] = {}
        self.not_emulated: list[str] = []
        for rule in self._rules:
            self._validate(rule["statement"], str(rule["name"]))

    # -- validation (at build time: an unknown statement is refused, never passed) --------

    def _validate(self, statement: Mapping[str, Any], rule: str) -> None:
        if len(statement) != 1:
            raise UnsupportedWafStatement(f"{rule}: a statement must have exactly one kind")
        kind, body = next(iter(statement.items()))
        if kind in ("andStatement", "orStatement"):
            for inner in body.get("statements") or ():
                self._validate(inner, rule)
        elif kind == "notStatement":
            self._validate(body["statement"], rule)
        elif kind == "managedRuleGroupStatement":
            group = f"{body.get('vendorName')}/{body.get('name')}"
            if body.get("vendorName") != "AWS" or body.get("name") not in EMULATED_GROUPS:
                self.not_emulated.append(f"{rule}: managed rule group {group} (every rule)")
            else:
                self.not_emulated.append(
                    f"{rule}: {group} signature rules " + ", ".join(CORE_SIGNATURE_RULES)
                )
            if body.get("scopeDownStatement"):
                self._validate(body["scopeDownStatement"], rule)
        elif kind == "rateBasedStatement":
            if body.get("aggregateKeyType", "IP") != "IP" or body.get("scopeDownStatement"):
                raise UnsupportedWafStatement(f"{rule}: only IP rate-based rules are emulated")
        elif kind in ("sizeConstraintStatement", "regexMatchStatement", "byteMatchStatement"):
            self._field(body.get("fieldToMatch") or {}, rule)
            for t in body.get("textTransformations") or ():
                if t.get("type") not in ("NONE", "LOWERCASE"):
                    raise UnsupportedWafStatement(
                        f"{rule}: text transformation {t.get('type')} is not emulated"
                    )
        elif kind != "labelMatchStatement":
            raise UnsupportedWafStatement(f"{rule}: {kind} is not emulated")

    def _field(self, field_to_match: Mapping[str, Any], rule: str) -> str:
        kinds = set(field_to_match) & {"uriPath", "queryString", "method", "singleHeader", "body"}
        if len(field_to_match) != 1 or not kinds:
            raise UnsupportedWafStatement(f"{rule}: field to match {field_to_match} not emulated")
        return next(iter(kinds))

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, request: WafRequest) -> Verdict:
        verdict = Verdict(self._default)
        for index, rule in enumerate(self._rules):
            name = str(rule["name"])
            statement = rule["statement"]
            if "managedRuleGroupStatement" in statement:
                outcome = self._managed(statement["managedRuleGroupStatement"], request, verdict)
                if outcome is None:
                    continue
                matched_rule, action = outcome
                if "count" in (rule.get("overrideAction") or {}):
                    verdict.counted.append(f"{name}:{matched_rule}")
                    continue
                verdict.action, verdict.rule = action, f"{name}:{matched_rule}"
                return verdict
            if not self._matches(statement, request, verdict, index):
                continue
            declared = rule.get("action") or {}
            if "count" in declared:
                verdict.counted.append(name)
                verdict.labels.append(f"awswaf:rule:{name}")
                continue
            verdict.action = "BLOCK" if "block" in declared else "ALLOW"
            verdict.rule = name
            return verdict
        return verdict

    def _managed(
        self, group: Mapping[str, Any], request: WafRequest, verdict: Verdict
    ) -> tuple[str, str] | None:
        if group.get("vendorName") != "AWS":
            return None
        rules = EMULATED_GROUPS.get(str(group.get("name")))
        if not rules:
            return None
        scope = group.get("scopeDownStatement")
        if scope and not self._matches(scope, request, verdict, -1):
            return None
        overrides = {
            str(o["name"]): next(iter(o.get("actionToUse") or {"block": {}}))
            for o in group.get("ruleActionOverrides") or ()
        }
        for managed in rules:
            if not managed.matches(request):
                continue
            verdict.labels.append(managed.label)
            action = overrides.get(managed.name, "block")
            if action == "count":
                verdict.counted.append(f"{group.get('name')}:{managed.name}")
                continue
            return managed.name, "BLOCK" if action == "block" else "ALLOW"
        return None

    def _matches(
        self, statement: Mapping[str, Any], request: WafRequest, verdict: Verdict, index: int
    ) -> bool:
        kind, body = next(iter(statement.items()))
        if kind == "andStatement":
            return all(self._matches(s, request, verdict, index) for s in body["statements"])
        if kind == "orStatement":
            return any(self._matches(s, request, verdict, index) for s in body["statements"])
        if kind == "notStatement":
            return not self._matches(body["statement"], request, verdict, index)
        if kind == "rateBasedStatement":
            counter = self._counters.get(index)
            if counter is None:
                window = float(body.get("evaluationWindowSec") or DEFAULT_RATE_WINDOW_S)
                counter = self._counters[index] = _RateCounter(
                    int(body["limit"]), window, self._clock
                )
            return counter.over_limit(request.source_ip)
        if kind == "labelMatchStatement":
            key = str(body["key"])
            if body.get("scope") == "NAMESPACE":
                return any(label.startswith(key) for label in verdict.labels)
            return key in verdict.labels
        value, oversize = self._value(body.get("fieldToMatch") or {}, request)
        if oversize is not None:
            return oversize
        if _lowercase(body):
            value = value.lower()
        if kind == "sizeConstraintStatement":
            return _compare(len(value), str(body["comparisonOperator"]), int(body["size"]))
        if kind == "regexMatchStatement":
            text = value.decode("utf-8", errors="replace")
            return re.search(str(body["regexString"]), text) is not None
        if kind == "byteMatchStatement":
            return _byte_match(value, str(body["searchString"]).encode(), body)
        raise UnsupportedWafStatement(kind)  # pragma: no cover - refused at build time

    def _value(
        self, field_to_match: Mapping[str, Any], request: WafRequest
    ) -> tuple[bytes, bool | None]:
        """The inspected bytes, and for an oversize body the handling's verdict (or None)."""
        if "uriPath" in field_to_match:
            return request.uri_path.encode(), None
        if "queryString" in field_to_match:
            return request.query_string.encode(), None
        if "method" in field_to_match:
            return request.method.encode(), None
        if "singleHeader" in field_to_match:
            name = str(field_to_match["singleHeader"]["name"])
            return (request.header(name) or "").encode(), None
        handling = str((field_to_match.get("body") or {}).get("oversizeHandling") or "CONTINUE")
        if len(request.body) > BODY_INSPECTION_LIMIT:
            if handling == "MATCH":
                return b"", True
            if handling == "NO_MATCH":
                return b"", False
            return request.body[:BODY_INSPECTION_LIMIT], None
        return request.body, None


def _lowercase(body: Mapping[str, Any]) -> bool:
    return any(t.get("type") == "LOWERCASE" for t in body.get("textTransformations") or ())


def _compare(size: int, operator: str, limit: int) -> bool:
    return {
        "EQ": size == limit,
        "NE": size != limit,
        "LE": size <= limit,
        "LT": size < limit,
        "GE": size >= limit,
        "GT": size > limit,
    }[operator]


def _byte_match(value: bytes, search: bytes, body: Mapping[str, Any]) -> bool:
    constraint = str(body.get("positionalConstraint") or "CONTAINS")
    if constraint == "EXACTLY":
        return value == search
    if constraint == "STARTS_WITH":
        return value.startswith(search)
    if constraint == "ENDS_WITH":
        return value.endswith(search)
    if constraint == "CONTAINS_WORD":
        word = rb"(?<![A-Za-z0-9_])" + re.escape(search) + rb"(?![A-Za-z0-9_])"
        return re.search(word, value) is not None
    return search in value
