"""The demo scenario: reproducible plans per seed, an event-time clock, an incident halfway."""

import pytest

from gensight.demo.scenario import (
    CHECKOUT,
    GPT_4O_MINI,
    NS_PER_S,
    PROFILES,
    SEARCH,
    SERVICES,
    SUPPORT,
    Chat,
    Embed,
    EventClock,
    Retrieve,
    Tool,
    incident_at_fraction,
    make_clock,
    plan_request,
    service_rng,
)


def plans(service: str, seed: int, n: int = 50):
    rng = service_rng(seed, service)
    return [plan_request(service, rng) for _ in range(n)]


def test_same_seed_gives_the_same_requests():
    for service in SERVICES:
        assert plans(service, 7) == plans(service, 7)


def test_different_seeds_give_different_requests():
    assert plans(SUPPORT, 7) != plans(SUPPORT, 8)


def test_services_draw_from_independent_streams():
    assert plans(SUPPORT, 7, 5) != plans(CHECKOUT, 7, 5)


def test_checkout_requests_call_gpt_4o_and_tools():
    steps = [s for plan in plans(CHECKOUT, 1) for s in plan]
    assert {s.model for s in steps if isinstance(s, Chat)} == {"gpt-4o"}
    assert {s.name for s in steps if isinstance(s, Tool)} == {"lookup_order", "apply_coupon"}


def test_search_requests_embed_retrieve_then_answer_with_the_incident_model():
    for plan in plans(SEARCH, 3, 10):
        assert [type(s) for s in plan] == [Embed, Retrieve, Chat]
        retrieve = plan[1]
        assert isinstance(retrieve, Retrieve) and len(retrieve.scores) == retrieve.top_k
        assert all(0 < x <= 1 for x in retrieve.scores)
        assert isinstance(plan[2], Chat) and plan[2].model == GPT_4O_MINI


def test_some_tool_calls_fail_at_a_realistic_rate():
    tools = [s for plan in plans(CHECKOUT, 5, 2000) for s in plan if isinstance(s, Tool)]
    failed = sum(t.fails for t in tools) / len(tools)
    assert 0.0 < failed < 0.05


def test_unknown_service_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown demo service 'billing'"):
        plan_request("billing", service_rng(1, "billing"))


def test_clock_maps_wall_to_event_time_and_back():
    clock = EventClock(wall_base_ns=1_000 * NS_PER_S, event_base_ns=500 * NS_PER_S, speed=40.0)
    assert clock.event_ns(1_001 * NS_PER_S) == 540 * NS_PER_S
    assert clock.wall_ns(540 * NS_PER_S) == 1_001 * NS_PER_S
    assert clock.wall_duration_s(40.0) == 1.0 and clock.event_duration_s(0.5) == 20.0


def test_clock_starts_on_a_window_boundary_and_ends_near_now():
    now = 1_700_000_123 * NS_PER_S
    clock = make_clock(now, duration_s=90, speed=40, window_s=60)
    assert clock.event_base_ns % (60 * NS_PER_S) == 0
    end = clock.event_ns(now + 90 * NS_PER_S)
    assert 0 <= now - end < 60 * NS_PER_S


def test_incident_starts_halfway_through_the_event_time():
    clock = EventClock(0, 0, 40.0)
    incident = incident_at_fraction(clock, duration_s=90)
    assert incident.start_event_ns == 45 * 40 * NS_PER_S
    assert incident.model == GPT_4O_MINI
    assert not incident.active(incident.start_event_ns - 1) and incident.active(incident.start_event_ns)


def test_incident_fraction_outside_the_run_is_rejected():
    with pytest.raises(ValueError, match="fraction"):
        incident_at_fraction(EventClock(0, 0, 1.0), 10, fraction=1.0)


def test_every_service_has_a_profile():
    assert set(PROFILES) == set(SERVICES)




def test_the_run_covers_whole_windows_rounding_up():
    from gensight.demo.scenario import simulated_windows

    assert simulated_windows(90, 20, 60) == 30
    assert simulated_windows(20, 20, 60) == 7  # 400 s of traffic -> 7 full windows
    assert simulated_windows(0.1, 1, 60) == 1
