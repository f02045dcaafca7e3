"""The pipeline's HTTP client: retries, Retry-After, timeouts, size limits, redirects, cache, rate limits."""

from __future__ import annotations

import time

import pytest
from pipeline_server import FakeWikimedia, Fault

from m3el_dataset.pipeline.config import HttpSettings
from m3el_dataset.pipeline.http_client import HttpError, PipelineHttpClient, parse_retry_after


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def fake():
    with FakeWikimedia() as server:
        server.add_image("A.png")
        yield server


def _client(tmp_path, **overrides) -> tuple[PipelineHttpClient, RecordingSleep]:
    # A generous socket timeout: on a loaded machine a 0.3 s one fired and added a retry to tests about other things.
    settings = dict(timeout_s=5.0, max_retries=3, backoff_base_s=0.01, backoff_max_s=0.04, max_retry_after_s=5.0,
                    min_interval_s=0.0, cache_dir=tmp_path / "cache")
    sleep = RecordingSleep()
    return PipelineHttpClient(HttpSettings(**{**settings, **overrides}), sleep=sleep), sleep


def test_sends_descriptive_user_agent(fake, tmp_path):
    client, _ = _client(tmp_path, user_agent="m3el-test/1.0 (tests@example.org)")
    client.get(fake.api, params={"action": "wbsearchentities", "search": "x"})
    assert fake.user_agents == ["m3el-test/1.0 (tests@example.org)"]


def test_retries_5xx_with_exponential_backoff(fake, tmp_path):
    fake.add_fault("search=x", Fault(500), Fault(502), Fault(503))
    client, sleep = _client(tmp_path)
    assert client.get(fake.api, params={"action": "wbsearchentities", "search": "x"}).json()["success"] == 1
    assert sleep.delays == [0.01, 0.02, 0.04]


def test_honours_retry_after_and_caps_it(fake, tmp_path):
    fake.add_fault("search=x", Fault(429, {"Retry-After": "2"}), Fault(429, {"Retry-After": "3600"}))
    client, sleep = _client(tmp_path)
    client.get(fake.api, params={"action": "wbsearchentities", "search": "x"})
    assert sleep.delays == [pytest.approx(2.0, abs=0.1), pytest.approx(5.0, abs=0.1)]


def test_gives_up_after_max_retries_naming_the_url(fake, tmp_path):
    fake.add_fault("search=x", *[Fault(500)] * 5)
    client, sleep = _client(tmp_path, max_retries=2)
    with pytest.raises(HttpError, match="HTTP 500.*search=x") as info:
        client.get(fake.api, params={"action": "wbsearchentities", "search": "x"})
    assert info.value.status == 500 and len(sleep.delays) == 2


def test_client_errors_are_not_retried(fake, tmp_path):
    client, sleep = _client(tmp_path)
    with pytest.raises(HttpError, match="HTTP 404") as info:
        client.get(fake.base + "/upload/x/xx/Nothing.png")
    assert not info.value.retryable and sleep.delays == []


def test_timeout_is_retried(fake, tmp_path):
    fake.add_fault("search=slow", Fault(delay_s=0.8))
    client, sleep = _client(tmp_path, timeout_s=0.2)
    client.get(fake.api, params={"action": "wbsearchentities", "search": "slow"})
    assert len(sleep.delays) == 1 and fake.count("search=slow") == 2


def test_follows_commons_redirect_and_limits_size(fake, tmp_path):
    client, _ = _client(tmp_path)
    response = client.get(fake.file_path + "A.png", max_bytes=10_000)
    assert response.url.startswith(fake.base + "/upload/") and response.body.startswith(b"\x89PNG")
    with pytest.raises(HttpError, match="exceeds the limit of 10") as info:
        client.get(fake.file_path + "A.png", max_bytes=10)
    assert not info.value.retryable


def test_refuses_non_http_schemes(tmp_path):
    client, _ = _client(tmp_path)
    with pytest.raises(HttpError, match="scheme 'file'"):
        client.get("file:///etc/passwd")


def test_cache_answers_repeated_api_calls(fake, tmp_path):
    client, _ = _client(tmp_path)
    params = {"action": "wbsearchentities", "search": "x"}
    first = client.get(fake.api, params=params, cache=True)
    second = client.get(fake.api, params=params, cache=True)
    assert first.body == second.body and fake.count("search=x") == 1
    fresh, _ = _client(tmp_path, cache_ttl_s=0.0)  # expired entries are fetched again
    fresh.get(fake.api, params=params, cache=True)
    assert fake.count("search=x") == 2


def test_per_host_minimum_interval(fake, tmp_path):
    client, sleep = _client(tmp_path, min_interval_s=0.5)
    for _ in range(3):
        client.get(fake.api, params={"action": "wbsearchentities", "search": "x"})
    # The sleep is recorded, not slept, so each request reserves the next slot: 0.5 s, then 1 s from now.
    assert sleep.delays == [pytest.approx(0.5, abs=0.1), pytest.approx(1.0, abs=0.1)]


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("body_only", [False, True])
def test_a_server_trickling_bytes_is_cut_off_by_the_deadline(fake, tmp_path, body_only):
    # One byte every 0.2 s never trips the 1 s socket timeout; the whole answer would take 8 s (body only) or 20 s.
    body = b'{"success": 1}' + b" " * 26
    fake.add_fault("search=slow", Fault(200, body=body, content_type="application/json", trickle_s=0.2,
                                        trickle_body_only=body_only))  # fmt: skip
    client, _ = _client(tmp_path, timeout_s=1.0, deadline_s=1.0, max_retries=0)
    start = time.monotonic()
    with pytest.raises(HttpError, match=r"no complete answer within 1 s \(deadline_s\).*search=slow") as info:
        client.get(fake.api, params={"action": "wbsearchentities", "search": "slow"})
    assert time.monotonic() - start < 3 and info.value.retryable
    assert client.get(fake.api, params={"action": "wbsearchentities", "search": "fast"}).json()["success"] == 1


def test_deadline_must_be_positive():
    with pytest.raises(ValueError, match="deadline_s must be > 0"):
        HttpSettings(deadline_s=0)
