"""The demo's workload scenario: who calls what, how often, how big, and when the incident hits.

Pure data and arithmetic, no I/O: the service processes (``gensight.demo.service``) execute the
plans drawn here with the real ``openai`` SDK, and the tests check the plans without a network.

Demo time is compressed: the workload runs ``speed`` times faster than the wall clock (sleeps
and provider latencies are divided by ``speed``) and every span is re-stamped in *event time*
(``EventClock``), so an hour of traffic fits into a minute and a half while the processor's
windows, SLO burn-rate windows and baselines still see realistic durations and rates.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

NS_PER_S = 1_000_000_000

# Services, models and tools of the scenario. Names are what the live view shows.
CHECKOUT = "checkout-assistant"
SUPPORT = "support-bot"
SEARCH = "search-rag"
SERVICES = (CHECKOUT, SUPPORT, SEARCH)

GPT_4O = "gpt-4o"
GPT_4O_MINI = "gpt-4o-mini"
EMBEDDING = "text-embedding-3-small"

TOOL_LOOKUP_ORDER = "lookup_order"
TOOL_APPLY_COUPON = "apply_coupon"
TOOL_CREATE_TICKET = "create_ticket"
DATA_SOURCE = "product-docs"

# The incident: one model gets slow and verbose (a provider-side regression or a prompt change
# that blows up output tokens), which shows up as latency, token and cost drift on every
# service that uses it, while the other models stay healthy.
INCIDENT_MODEL = GPT_4O_MINI
INCIDENT_LATENCY_FACTOR = 2.0
INCIDENT_TOKEN_FACTOR = 8.0


class EventClock(NamedTuple):
    """Maps wall-clock time to compressed event time (and back).

    ``event = event_base + (wall - wall_base) * speed``. Both the service processes and the
    orchestrator build the same clock from the same three numbers, so they agree on when a
    window ends and when the incident starts.
    """

    wall_base_ns: int
    event_base_ns: int
    speed: float

    def event_ns(self, wall_ns: int) -> int:
        return self.event_base_ns + int((wall_ns - self.wall_base_ns) * self.speed)

    def wall_ns(self, event_ns: int) -> int:
        return self.wall_base_ns + int((event_ns - self.event_base_ns) / self.speed)

    def event_duration_s(self, wall_s: float) -> float:
        return wall_s * self.speed

    def wall_duration_s(self, event_s: float) -> float:
        return event_s / self.speed


def simulated_windows(duration_s: float, speed: float, window_s: float) -> int:
    """Whole windows of event time the run covers (at least one): the run ends on a boundary,
    so its last window is a full one."""
    return max(1, math.ceil(duration_s * speed / window_s - 1e-9))


def make_clock(now_wall_ns: int, duration_s: float, speed: float, window_s: float) -> EventClock:
    """A clock whose simulated period ends about now, starting on a window boundary.

    Ending near the present keeps exported timestamps plausible for any backend; starting on a
    window boundary makes the first window a full one.
    """
    window_ns = int(window_s * NS_PER_S)
    simulated_ns = simulated_windows(duration_s, speed, window_s) * window_ns
    event_base = now_wall_ns - simulated_ns
    event_base -= event_base % window_ns
    return EventClock(now_wall_ns, event_base, speed)


@dataclass(frozen=True)
class IncidentSchedule:
    """When (event time) the incident starts, and on which model."""

    start_event_ns: int
    model: str = INCIDENT_MODEL
    latency_factor: float = INCIDENT_LATENCY_FACTOR
    token_factor: float = INCIDENT_TOKEN_FACTOR

    def active(self, event_ns: int) -> bool:
        return event_ns >= self.start_event_ns


def incident_at_fraction(
    clock: EventClock, duration_s: float, fraction: float = 0.5, window_s: float | None = None
) -> IncidentSchedule:
    """The incident ``fraction`` of the way through the run, on a window boundary when given.

    On a boundary, "detected N windows after injection" counts whole incident windows.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"incident fraction must be in (0, 1), got {fraction}")
    offset_ns = int(duration_s * fraction * clock.speed * NS_PER_S)
    if window_s:
        window_ns = int(window_s * NS_PER_S)
        offset_ns = max(window_ns, round(offset_ns / window_ns) * window_ns)
    return IncidentSchedule(clock.event_base_ns + offset_ns)


# --- request plans -------------------------------------------------------------------------

@dataclass(frozen=True)
class Chat:
    model: str
    prompt_words: int  # prompt size; the fake provider counts tokens from it
    max_tokens: int  # an upper bound the provider honours; the output size is drawn below it
    stream: bool = False
    with_tools: bool = False


@dataclass(frozen=True)
class Embed:
    model: str
    inputs: int
    words_per_input: int


@dataclass(frozen=True)
class Retrieve:
    data_source: str
    top_k: int
    duration_s: float  # event time
    scores: tuple[float, ...]  # relevance of the returned documents, best first


@dataclass(frozen=True)
class Tool:
    name: str
    duration_s: float  # event time
    fails: bool = False


Step = Chat | Embed | Retrieve | Tool


@dataclass(frozen=True)
class ServiceProfile:
    """A service's traffic: mean requests per event-time minute, and how a request looks."""

    name: str
    requests_per_min: float
    models: tuple[str, ...] = field(default=())


PROFILES: dict[str, ServiceProfile] = {
    CHECKOUT: ServiceProfile(CHECKOUT, 28.0, (GPT_4O,)),
    SUPPORT: ServiceProfile(SUPPORT, 36.0, (GPT_4O_MINI,)),
    SEARCH: ServiceProfile(SEARCH, 32.0, (EMBEDDING, GPT_4O_MINI)),
}


def service_rng(seed: int, service: str) -> random.Random:
    """One independent, reproducible random stream per service (stable across Python runs)."""
    return random.Random(seed * 1_000_003 + zlib.crc32(service.encode()))


def _lognormal(rng: random.Random, median: float, sigma: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, rng.lognormvariate(math.log(median), sigma)))


def plan_request(service: str, rng: random.Random) -> list[Step]:
    """The calls one user request makes in ``service``: deterministic given ``rng``'s state."""
    if service == CHECKOUT:
        steps: list[Step] = [Chat(GPT_4O, int(_lognormal(rng, 700, 0.35, 150, 3000)), 1000, with_tools=True)]
        steps.append(Tool(TOOL_LOOKUP_ORDER, _lognormal(rng, 0.12, 0.5, 0.02, 2.0), fails=rng.random() < 0.01))
        if rng.random() < 0.25:
            steps.append(Tool(TOOL_APPLY_COUPON, _lognormal(rng, 0.05, 0.4, 0.01, 1.0), fails=rng.random() < 0.05))
        steps.append(Chat(GPT_4O, int(_lognormal(rng, 900, 0.3, 200, 3500)), 1000))
        return steps
    if service == SUPPORT:
        steps = [Chat(GPT_4O_MINI, int(_lognormal(rng, 250, 0.45, 40, 2000)), 1000, stream=rng.random() < 0.5)]
        if rng.random() < 0.15:
            steps.append(Tool(TOOL_CREATE_TICKET, _lognormal(rng, 0.25, 0.4, 0.05, 3.0), fails=rng.random() < 0.02))
        return steps
    if service == SEARCH:
        top_k = 5
        best = min(0.99, max(0.3, rng.gauss(0.82, 0.06)))
        scores = tuple(round(best * (1.0 - 0.07 * i), 3) for i in range(top_k))
        return [
            Embed(EMBEDDING, 1, int(_lognormal(rng, 25, 0.4, 3, 200))),
            Retrieve(DATA_SOURCE, top_k, _lognormal(rng, 0.04, 0.4, 0.005, 0.5), scores),
            Chat(GPT_4O_MINI, int(_lognormal(rng, 900, 0.25, 200, 3000)), 1000),
        ]
    raise ValueError(f"unknown demo service {service!r}; expected one of {', '.join(SERVICES)}")


def next_arrival_gap_s(profile: ServiceProfile, rng: random.Random) -> float:
    """Event-time gap to the next request: Poisson arrivals at the profile's rate."""
    return rng.expovariate(profile.requests_per_min / 60.0)


def services_using(model: str) -> tuple[str, ...]:
    """The services whose requests call ``model`` (the ones an incident on it affects)."""
    return tuple(name for name, profile in PROFILES.items() if model in profile.models)
