from __future__ import annotations

from hypothesis import settings
from schemathesis.auths import reauth_and_replay

from sessiongate.identity.devices import Devices
from sessiongate.runtime import Services
from tests.contract.harness import HYPOTHESIS, Target

# The spec's example login: contracts/schemathesis.toml logs in with it to get a bearer token.
USER, PASSWORD = "999", "portos-999-secret"

# Fuzzing sends thousands of failed logins, some for "999" from one address; the limits would then refuse the
# harness's own login. Throttling itself is tested in tests/dialects/test_portos.py.
TARGET = Target("portos", login_max_address_failures=1_000_000, login_max_failures=1_000_000)


async def _provision(services: Services) -> None:
    await services.identity.add_principal(
        tenant="default", login=USER, roles=("admin",), permissions=("admin",), password=PASSWORD
    )
    devices = Devices(services.runner)
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
