from __future__ import annotations

import importlib.util

from hypothesis import settings
from schemathesis.python.asgi import get_client

from sessiongate.identity.tenants import TenantService
from sessiongate.runtime import Services
from tests.conftest import ROOT
from tests.contract.harness import HYPOTHESIS, Target

# Two networks, their keys imported so the auth below knows them: "contract" (not secure) registers sessions and has
# an admin token, "vault" (secure) mints auth tokens. Test keys, not secrets.
API_KEY = "contract-api-key-0123456789abcdef0123"
ADMIN_TOKEN = "contract-admin-token-0123456789abcdef"
VAULT_API_KEY = "vault-api-key-0123456789abcdef012345"
SERVER_KEY = "vault-server-key-0123456789abcdef0123"

TARGET = Target("amity")
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


async def _provision(services: Services) -> None:
    tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
    await tenants.add_keys("contract", api_key=API_KEY)
    await tenants.add_admin_token("contract", token=ADMIN_TOKEN)
    await tenants.add_keys("vault", secure=True, api_key=VAULT_API_KEY, server_key=SERVER_KEY)


TARGET.provision(_provision)


def _load_auth():
    # The same provider the CLI run loads (contracts/amity/hooks.py), so both runs test with the same credentials.
    spec = importlib.util.spec_from_file_location("amity_contract_auth", ROOT / "contracts" / "amity" / "auth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_auth = _load_auth()


@schema.auth(refresh_interval=None)
class AmityAuth(_auth.AmityAuth):
    credentials = _auth.Credentials(api_key=API_KEY, admin_token=ADMIN_TOKEN, server_key=SERVER_KEY)

    def register(self, case, context, body):
        with get_client(context.app) as client:
            response = client.request("POST", "/api/v5/sessions", json=body, headers={"x-api-key": API_KEY})
        return response.json()["accessToken"]


@schema.parametrize()
@HYPOTHESIS
def test_amity_conforms_to_its_spec(case):
    case.call_and_validate()


AmityFlows = schema.as_state_machine()
AmityFlows.TestCase.settings = settings(HYPOTHESIS, max_examples=25, stateful_step_count=6)
TestAmityFlows = AmityFlows.TestCase
