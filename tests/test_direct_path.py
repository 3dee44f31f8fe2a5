"""The live stream's direct path reads uvicorn internals: start-up says when it cannot."""

from __future__ import annotations

import logging

import pytest
from uvicorn.protocols.http import httptools_impl

from dateline.live.stream import check_direct_path


def test_the_installed_uvicorn_has_the_direct_path(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dateline.live"):
        assert check_direct_path() is True
    assert caplog.records == []


def test_a_uvicorn_without_it_is_named_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Cycle:  # a request cycle that keeps its transport under another name
        def __init__(self) -> None:
            self.conn = None
            self.message_event = None
            self.disconnected = False

    monkeypatch.setattr(httptools_impl, "RequestResponseCycle", Cycle)
    with caplog.at_level(logging.WARNING, logger="dateline.live"):
        assert check_direct_path() is False
    assert "chunked_encoding, transport" in caplog.text and "ASGI send" in caplog.text
