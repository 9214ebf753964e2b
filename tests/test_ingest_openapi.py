"""The gateway's OpenAPI document is current, served, and the gateway survives fuzzing from it:
schemathesis generates valid and invalid requests for every operation; none may get a 5xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from farm.ingest.openapi import document, render
from tests.support.gateways import ACME_KEY, GatewayProcess, write_gateway_config
from tests.support.ports import free_port

DOC = Path(__file__).resolve().parent.parent / "docs" / "ingest-openapi.json"

schema = schemathesis.openapi.from_dict(document())


def test_docs_copy_of_the_openapi_document_is_current():
    assert DOC.read_bytes() == render(), (
        "docs/ingest-openapi.json is stale: run python -m farm.ingest.openapi "
        "docs/ingest-openapi.json")


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory, redis_url):
    folder = tmp_path_factory.mktemp("fuzz")
    config = write_gateway_config(folder / "farm.toml", free_port(), ingest="""
max_body = "256KB"
flush_ms = 0
""")
    with GatewayProcess(config, redis_url) as gateway:
        yield gateway


def test_the_gateway_serves_its_openapi_document(fuzz_gateway):
    response = httpx.get(f"{fuzz_gateway.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == document()


@schema.parametrize()
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_fuzzed_requests_never_get_a_server_error(case, fuzz_gateway):
    headers = dict(case.headers or {})
    headers.setdefault("X-API-KEY", ACME_KEY)
    response = case.call(base_url=fuzz_gateway.url, headers=headers, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        assert response.json()["detail"], response.text
    assert fuzz_gateway.proc.poll() is None, fuzz_gateway.tail()
