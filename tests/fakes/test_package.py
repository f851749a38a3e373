"""The fakes package: both vendors' routes on every FakeProvider, and the deprecated alias module."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

from gensight.fakes import FakeProvider
from gensight.fakes.server import FakeProvider as ServerFakeProvider

BOTH_VENDORS_ROUTES = {("POST", "/v1/chat/completions"), ("POST", "/v1/responses"), ("POST", "/v1/embeddings"),
                       ("POST", "/v1/completions"), ("POST", "/v1/messages")}


def test_every_provider_serves_both_vendors_whichever_module_it_came_from():
    assert ServerFakeProvider is FakeProvider
    fake = ServerFakeProvider()
    assert all(fake.route(method, path) is not None for method, path in BOTH_VENDORS_ROUTES)


def test_the_deprecated_alias_module_is_the_same_provider():
    from gensight.fake_provider import FakeProvider as AliasFakeProvider

    assert AliasFakeProvider is FakeProvider


def test_python_m_the_alias_module_still_serves():
    proc = subprocess.Popen([sys.executable, "-m", "gensight.fake_provider", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("fake provider listening on http://127.0.0.1:"), line
        url = line.split()[-1].removesuffix("/v1")
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            assert json.load(response) == {"status": "ok"}
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
