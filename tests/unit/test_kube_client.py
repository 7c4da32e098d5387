"""KubeReader's pause of cyclic garbage collection while it decodes a page."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from autopatch.clients.kube import _cyclic_gc_paused


@pytest.fixture(autouse=True)
def gc_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_collection_is_paused_inside_and_resumes_after() -> None:
    gc.enable()
    with _cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collection_resumes_after_the_last_of_overlapping_pauses() -> None:
    gc.enable()
    outer, inner = _cyclic_gc_paused(), _cyclic_gc_paused()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert not gc.isenabled()
    inner.__exit__(None, None, None)
    assert gc.isenabled()


def test_collection_that_was_off_stays_off() -> None:
    gc.disable()
    with _cyclic_gc_paused():
        pass
    assert not gc.isenabled()


def test_collection_resumes_when_decoding_fails() -> None:
    gc.enable()
    with pytest.raises(ValueError), _cyclic_gc_paused():
        raise ValueError("not JSON")
    assert gc.isenabled()
