"""The fake OpenAI-compatible provider: deterministic, controllable, extensible, and stoppable."""

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import openai
import pytest

from gensight.fakes import FakeProvider, Incident, Reply

MSGS = [{"role": "user", "content": "hello fake"}]


@pytest.fixture(scope="module")
def server():
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(server):
    yield server
    server.configure({"incident": None, "force_status": None, "force_status_count": None, "error_rate": 0,
                      "break_stream_after": None, "usage_details": True})


@pytest.fixture
def client(fake):
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as c:
        yield c


def _post(fake, path, body):
    req = urllib.request.Request(fake.url + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_binds_loopback_on_an_ephemeral_port(fake):
    assert fake.host == "127.0.0.1" and fake.port > 0
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"


def test_same_request_gives_same_usage_and_text(client):
    a = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    b = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert a.usage.prompt_tokens == b.usage.prompt_tokens and a.usage.completion_tokens == b.usage.completion_tokens
    assert a.choices[0].message.content == b.choices[0].message.content


def test_input_tokens_grow_with_input_size(client):
    short = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    long = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 4000}])
    assert long.usage.prompt_tokens > short.usage.prompt_tokens + 900


def test_max_tokens_truncates_with_length_finish_reason(client):
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=3)
    assert r.usage.completion_tokens == 3 and r.choices[0].finish_reason == "length"


def test_stream_has_usage_chunk_only_when_asked(client):
    plain = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    with_usage = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True,
                                                     stream_options={"include_usage": True}))
    assert all(c.usage is None for c in plain)
    assert with_usage[-1].usage is not None and with_usage[-1].choices == []


def test_tool_call_when_tools_given_and_answer_after_tool_result(client):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"properties": {"q": {}}}}}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup" and json.loads(call.function.arguments).keys() == {"q"}
    follow = MSGS + [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "42"}]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=follow, tools=tools)
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_repeated_long_prompt_reports_cached_tokens(client):
    msgs = [{"role": "user", "content": "long context " * 500}]
    first = client.chat.completions.create(model="gpt-4o", messages=msgs)
    second = client.chat.completions.create(model="gpt-4o", messages=msgs)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens % 128 == 0
    assert second.usage.prompt_tokens_details.cached_tokens >= 1024


def test_usage_details_can_be_switched_off(client, fake):
    fake.configure({"usage_details": False})
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r.usage.prompt_tokens_details is None


def test_embeddings_are_deterministic_unit_vectors_in_both_encodings(client):
    a = client.embeddings.create(model="text-embedding-3-small", input="abc", encoding_format="float")
    b = client.embeddings.create(model="text-embedding-3-small", input="abc")  # SDK asks for base64
    assert a.data[0].embedding == pytest.approx(b.data[0].embedding, abs=1e-6)
    assert sum(v * v for v in a.data[0].embedding) == pytest.approx(1.0)


def test_responses_api_answers_with_usage(client):
    r = client.responses.create(model="gpt-4o-mini", input="hi")
    assert r.status == "completed" and r.usage.input_tokens > 0 and r.output_text


def test_incident_multiplies_output_tokens_for_its_model_only(client, fake):
    before = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS).usage.completion_tokens
    other_before = client.chat.completions.create(model="gpt-4o", messages=MSGS).usage.completion_tokens
    status, _ = _post(fake, "/_control", {"incident": {"model": "gpt-4o-mini", "output_factor": 3}})
    assert status == 200
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MSGS).usage.completion_tokens == before * 3
    assert client.chat.completions.create(model="gpt-4o", messages=MSGS).usage.completion_tokens == other_before


def test_forced_status_applies_to_the_next_n_requests(client, fake):
    fake.configure({"force_status": 429, "force_status_count": 2})
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MSGS).choices


def test_error_rate_one_fails_every_request(client, fake):
    fake.configure({"error_rate": 1.0})
    for _ in range(3):
        with pytest.raises((openai.RateLimitError, openai.InternalServerError)):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)


def test_break_stream_after_drops_the_connection_midway(client, fake):
    fake.configure({"break_stream_after": 2})
    received = []
    with pytest.raises(Exception):  # noqa: B017 - APIConnectionError in openai 3.x, httpx's own error in 1.x
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True):
            received.append(chunk)
    assert len(received) == 2


@pytest.mark.parametrize("body, message", [
    ({"nonsense": 1}, "unknown setting"),
    ({"error_rate": 2}, "error_rate"),
    ({"incident": {"model": "m", "speed": 2}}, "unknown key"),
    ({"force_status": 200}, "force_status"),
])
def test_bad_control_request_is_rejected_and_changes_nothing(fake, body, message):
    before = fake.settings()
    status, reply = _post(fake, "/_control", body)
    assert status == 400 and message in reply["error"]["message"]
    assert fake.settings() == {**before, "requests_served": fake.requests_served}


def test_invalid_json_and_missing_fields_get_400(fake):
    req = urllib.request.Request(fake.url + "/v1/chat/completions", data=b"{nope", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 400
    status, reply = _post(fake, "/v1/chat/completions", {"model": "m"})
    assert status == 400 and "messages" in reply["error"]["message"]


def test_unknown_route_is_404(fake):
    status, _ = _post(fake, "/v1/nope", {})
    assert status == 404


def test_routes_can_be_added_per_instance():
    def echo(fake, request):
        return Reply(body={"echo": request.json})

    with FakeProvider() as fake:
        fake.add_route("POST", "/v1/echo", echo)
        assert _post(fake, "/v1/echo", {"a": 1}) == (200, {"echo": {"a": 1}})


def test_incident_from_constructor_and_validation():
    assert FakeProvider(incident=Incident(model="m", latency_factor=2)).incident.latency_factor == 2
    with pytest.raises(ValueError, match="error_rate"):
        FakeProvider(error_rate=1.5)


def test_stop_ends_server_threads_even_with_open_keepalive_connections():
    before = set(threading.enumerate())
    fake = FakeProvider().start()
    with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=MSGS)  # leaves a keep-alive connection
        fake.stop()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []


def test_command_line_rejects_bad_settings():
    proc = subprocess.run([sys.executable, "-m", "gensight.fakes", "--error-rate", "2"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "error_rate" in proc.stderr
