"""Baseline management: the authenticated admin endpoint and the `gensight baseline` command."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from gensight.cli import main
from gensight.processor.analyse.admin import AdminServer
from gensight.processor.analyse.analytics import Analytics, AnalyticsConfig, run_windows
from gensight.processor.analyse.drift import DriftAnalyser, DriftConfig
from gensight.processor.records import CallRecord

MIN = 60 * 10**9
T0 = 1_700_000_000 * 10**9
TOKEN = "s3cret-token"


def records(n_min=3, service="checkout"):
    rng = np.random.default_rng(0)
    return [CallRecord("chat", service, "openai", "gpt-4o", T0 + m * MIN + i * 10**9, T0 + m * MIN + i * 10**9 + 1,
                       float(rng.lognormal()), input_tokens=100, output_tokens=int(rng.integers(10, 90)),
                       finish_reason="stop")
            for m in range(n_min) for i in range(50)]


@pytest.fixture
def admin():
    drift = DriftAnalyser(DriftConfig(reference_calls=100))
    run_windows([drift], records(), 60)
    srv = AdminServer(drift, TOKEN).start()
    yield srv, drift
    srv.stop()


def call(url, method="GET", body=None, token=TOKEN):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_admin_binds_to_loopback_by_default(admin):
    srv, _ = admin
    assert srv.address[0] == "127.0.0.1"


@pytest.mark.parametrize("token", [None, "wrong"])
def test_admin_refuses_missing_or_wrong_token(admin, token):
    srv, _ = admin
    assert call(f"{srv.url}/v1/baseline", token=token)[0] == 401
    assert call(f"{srv.url}/v1/baseline/reset", "POST", token=token)[0] == 401


def test_admin_needs_a_token_to_start():
    with pytest.raises(ValueError, match="token"):
        AdminServer(DriftAnalyser(), "")


def test_admin_show_pin_reset(admin):
    srv, drift = admin
    code, body = call(f"{srv.url}/v1/baseline?series=checkout%7C*")
    assert code == 200 and {r["status"] for r in body["baselines"]} == {"frozen"}
    assert call(f"{srv.url}/v1/baseline/pin", "POST", {"series": ["checkout|*"]}) == (200, {"pinned": len(body["baselines"])})
    assert call(f"{srv.url}/v1/baseline/reset", "POST", {"series": ["checkout|*"]}) == (200, {"reset": 0})
    code, out = call(f"{srv.url}/v1/baseline/reset", "POST", {"series": ["checkout|*"], "force": True})
    assert code == 200 and out["reset"] > 0
    assert {r["status"] for r in drift.show()} <= {"learning"}


@pytest.mark.parametrize("body", [[1, 2], {"series": "checkout"}, {"series": [1]}])
def test_admin_rejects_bad_bodies(admin, body):
    srv, _ = admin
    assert call(f"{srv.url}/v1/baseline/pin", "POST", body)[0] == 400


def test_admin_unknown_route_is_404(admin):
    srv, _ = admin
    assert call(f"{srv.url}/v1/other")[0] == 404


def test_cli_show_via_admin_url(admin, capsys):
    srv, _ = admin
    assert main(["baseline", "show", "--admin-url", srv.url, "--token", TOKEN, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["baselines"]
    assert rows and rows[0]["series"].startswith("checkout|")


def test_cli_via_admin_url_with_wrong_token_fails_clearly(admin, capsys):
    srv, _ = admin
    assert main(["baseline", "pin", "--admin-url", srv.url, "--token", "nope"]) == 1
    assert "401" in capsys.readouterr().err


def _state_dir_with_baselines(tmp_path):
    a = Analytics(AnalyticsConfig.from_dict({"drift": {"reference_calls": 100}}), state_dir=str(tmp_path))
    run_windows(a.analysers, records(), 60)
    a.shutdown()
    return str(tmp_path)


def test_cli_state_dir_pin_then_reset_then_show(tmp_path, capsys):
    d = _state_dir_with_baselines(tmp_path)
    assert main(["baseline", "pin", "--state-dir", d, "--series", "checkout|chat|*"]) == 0
    assert json.loads(capsys.readouterr().out)["pinned"] > 0
    assert main(["baseline", "reset", "--state-dir", d]) == 0
    assert json.loads(capsys.readouterr().out)["reset"] > 0  # the service-level model mix was not pinned
    assert main(["baseline", "show", "--state-dir", d]) == 0
    out = capsys.readouterr().out
    assert "frozen" in out and "checkout|chat|openai|gpt-4o" in out


def test_cli_state_dir_refuses_while_serve_holds_the_lock(tmp_path, capsys):
    d = _state_dir_with_baselines(tmp_path)
    holder = Analytics(state_dir=d)
    try:
        assert main(["baseline", "show", "--state-dir", d]) == 1
        assert "--admin-url" in capsys.readouterr().err
    finally:
        holder.shutdown()


def test_cli_state_dir_without_state_file_fails_clearly(tmp_path, capsys):
    assert main(["baseline", "show", "--state-dir", str(tmp_path)]) == 1
    assert "no state file" in capsys.readouterr().err


def test_serve_starts_the_admin_endpoint_when_a_token_is_configured():
    from gensight.processor.config import config_from_mapping
    from gensight.processor.server import ProcessorServer

    srv = ProcessorServer(config_from_mapping({
        "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None},
        "analytics": {"admin": {"endpoint": "127.0.0.1:0", "token": TOKEN}},
    }), sinks=[])
    srv.start()
    try:
        analytics = next(a for a in srv.pipeline.analysers if isinstance(a, Analytics))
        assert analytics.admin is not None and analytics.admin.address[0] == "127.0.0.1"
        assert call(f"{analytics.admin.url}/v1/baseline") == (200, {"baselines": []})
        assert call(f"{analytics.admin.url}/v1/baseline", token="wrong")[0] == 401
    finally:
        srv.stop()
    assert analytics.admin is None  # stopped with the server


def test_serve_without_a_token_offers_no_admin_endpoint():
    from gensight.processor.analyse.analytics import build
    from gensight.processor.config import config_from_mapping

    cfg = config_from_mapping({"analytics": {"admin": {"endpoint": "127.0.0.1:0"}}})

    class Ctx:
        live = True
        state_dir = None

        @staticmethod
        def emit_logs(request):
            return None

    analysers = build(cfg, Ctx())
    try:
        assert analysers[-1].admin is None
    finally:
        analysers[-1].shutdown()
