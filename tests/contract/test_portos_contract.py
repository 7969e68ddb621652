from __future__ import annotations

import schemathesis
from hypothesis import settings
from schemathesis.auths import reauth_and_replay

from sessiongate.dialect import DialectStorage
from sessiongate.runtime import Services
from sessiongate_portos.devices import Devices
from tests.conftest import ROOT
from tests.contract.harness import CONFIG, HYPOTHESIS, Target

# The spec's example login: contracts/schemathesis.toml logs in with it to get a bearer token.
USER, PASSWORD = "999", "portos-999-secret"

# Fuzzing sends thousands of failed logins, some for "999" from one address; the limits would then refuse the
# harness's own login. Throttling itself is tested in tests/dialects/test_portos.py.
TARGET = Target("portos", login_max_address_failures=1_000_000, login_max_failures=1_000_000)


async def _provision(services: Services) -> None:
    await services.identity.add_principal(
        tenant="default", login=USER, roles=("admin",), permissions=("admin",), password=PASSWORD
    )
    devices = Devices(DialectStorage(services.runner))
    now = services.sessions.now()
    await devices.add(tenant="default", name="BackOffice", env="BackOffice", now=now)
    await devices.add(tenant="default", name="P01", env="CashRegister", now=now, settings={"MaxQuantity": "200"})


TARGET.provision(_provision)
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


@schema.parametrize()
@HYPOTHESIS
def test_portos_conforms_to_its_spec(case):
    case.call_and_validate()


class PortosFlows(schema.as_state_machine()):
    def call(self, case, **kwargs):
        # An admin's list starts with the harness's own login, which a flow may delete; then log in again and
        # replay, as the stateless phase does (call_and_validate), instead of walking on with a dead token.
        response = case.call(**kwargs)
        return reauth_and_replay(case, response, schema.reauth_state, lambda: case.call(**kwargs))


PortosFlows.TestCase.settings = settings(HYPOTHESIS, max_examples=25, stateful_step_count=6)
TestPortosFlows = PortosFlows.TestCase


def test_stateful_runs_follow_a_sessions_id_to_the_session_id_filter():
    # Schemathesis's dependency analysis links a response's sessionId to GET /sessions?sessionId=<id>, a bare value,
    # which the gateway answers as eq (S1 types the filter as a plain string); it was turned off while that got 400.
    fresh = schemathesis.openapi.from_path(ROOT / "openapi" / "portos.yaml", config=CONFIG)
    assert fresh.analysis.should_inject_links()
    fresh.analysis.inject_links()
    links = [
        link
        for item in fresh.raw_schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        for link in response.get("links", {}).values()
    ]
    assert any(
        link.get("operationRef") == "#/paths/~1sessions/get" and set(link.get("parameters", {})) == {"query.sessionId"}
        for link in links
    )
