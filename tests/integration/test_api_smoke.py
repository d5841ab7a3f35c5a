# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The wgfleet authors
"""The coordinator serves, answers health checks and stops cleanly."""
from conftest import MIGRATIONS, log_messages


def test_health_ready_and_clean_stop(coordinator):
    assert coordinator.request("GET", "/healthz")[0] == 200
    status, headers, body = coordinator.request("GET", "/readyz")
    assert status == 200 and body == {"status": "ready", "schema_version": len(MIGRATIONS)}
    assert len(headers["x-request-id"]) == 24
    assert coordinator.stop() == 0
    msgs = log_messages(coordinator.read_log())
    assert msgs[-2:] == ["Stopping", "Stopped"]
    assert "The event loop still had handles at exit" not in msgs
