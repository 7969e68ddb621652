from __future__ import annotations

from hypothesis import settings
from sqlalchemy import delete

from sessiongate.gate.tokens import ApiTokens
from sessiongate.runtime import Services
from sessiongate.storage.api_token_tables import ApiTokenRecord
from sessiongate.storage.identity_tables import AuthTokenRecord, principals
from sessiongate.storage.tenant_tables import AUTH_TOKENS, KEYS, TENANTS
from sessiongate_portos.device_store import DEVICES
from tests.contract.harness import HYPOTHESIS, Target

# The API token contracts/schemathesis.toml calls introspection and revocation with, imported as an operator would.
API_TOKEN = "sgt_contract-token-0123456789abcdef0123456789abcdef"
# The admin-scope token it calls the admin API with (the spec's adminToken scheme), imported the same way.
ADMIN_TOKEN = "sgt_contract-admin-0123456789abcdef0123456789abcdef"

# The gateway is no dialect: its routes are served beside whichever dialects are enabled. zelf gives forward auth a
# session (contracts/schemathesis.toml opens one through zelf's create); the create budget would refuse the fuzzer's
# thousand creates from one address, which is tested elsewhere. portos serves the admin API's devices (its
# admin_controllers): they exist only with it enabled.
TARGET = Target("gateway", dialects=("zelf", "portos"), create_rate_limit=0)
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


async def _provision(services: Services) -> None:
    tokens = ApiTokens(services.runner, services.digester, services.clock)
    await tokens.add("contract", "introspect", value=API_TOKEN)
    await tokens.add("contract-admin", "admin", value=ADMIN_TOKEN)


TARGET.provision(_provision)


@schema.parametrize()
@HYPOTHESIS
def test_gateway_conforms_to_its_spec(case):
    case.call_and_validate()


async def _forget_admin_changes(services: Services) -> None:
    # Tenants, their keys, principals, devices and API tokens are what the admin API makes. Hypothesis replays
    # scenarios and compares the rules each step could take, which follow from the answers: a network's admin token is
    # 201 once another scenario made that network (400 before), a principal, a device or an API token 409 once made.
    # Each scenario starts from the provisioned state: the API tokens are deleted and the two contract tokens made
    # again, live even when a scenario revoked one (the admin API may revoke the token it is called with, decision 24).
    async with services.engine.begin() as conn:
        tables = (AUTH_TOKENS, KEYS, TENANTS, AuthTokenRecord.__table__, principals, ApiTokenRecord.__table__)
        for table in (*tables, DEVICES):
            await conn.execute(delete(table))
    await _provision(services)


class GatewayFlows(schema.as_state_machine()):
    def setup(self) -> None:
        TARGET.provision(_forget_admin_changes)


GatewayFlows.TestCase.settings = settings(HYPOTHESIS, max_examples=25, stateful_step_count=6)
TestGatewayFlows = GatewayFlows.TestCase
