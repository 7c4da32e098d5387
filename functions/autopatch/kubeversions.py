"""Kubernetes minor versions as EKS names them ("1.31"), and the skew rules between them."""

from __future__ import annotations

import re

_MINOR = re.compile(r"^v?(\d+)\.(\d+)")


def minor(text: str) -> tuple[int, int]:
    """(1, 31) from "1.31", "v1.31.2-eks-1234abc", "1.31.2-20241121" or an image tag "v1.31.0"."""
    match = _MINOR.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} does not start with a Kubernetes version like 1.31")
    return int(match.group(1)), int(match.group(2))


def is_minor(text: str) -> bool:
    return bool(_MINOR.match(text.strip()))


def name(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def next_minor(text: str) -> str:
    major, number = minor(text)
    return f"{major}.{number + 1}"


def distance(older: str, newer: str) -> int:
    """Minor versions from `older` to `newer` (negative when `newer` is older)."""
    (a_major, a_minor), (b_major, b_minor) = minor(older), minor(newer)
    if a_major != b_major:
        raise ValueError(f"{older} and {newer} differ in the major version")
    return b_minor - a_minor


def kubelet_skew_allowed(kubelet: str) -> int:
    """Minors a kubelet may lag the API server (FIDELITY 3.29): 3 from 1.25 on, 2 for 1.24 and older."""
    return 3 if minor(kubelet) >= (1, 25) else 2
