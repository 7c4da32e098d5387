"""Acknowledging cdk-nag findings: always on a named construct, always with the reason written down.

cdk-nag 3 reads acknowledgments from CDK's own `Validations` metadata. An acknowledgment covers the
construct it is made on and everything below it, so make it on the narrowest construct that holds
the finding. With `findings`, only those findings of a rule are acknowledged (for IAM5, e.g.
`Resource::*`), never the whole rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, *, findings: Iterable[str] = ()) -> None:
    if len(reason) < 20:
        raise ValueError(f"acknowledging {rule} on {scope.node.path} needs a real reason")
    rule_ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    for rule_id in rule_ids:
        Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
