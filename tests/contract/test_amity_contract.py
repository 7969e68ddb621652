from __future__ import annotations

import uuid

from hypothesis import settings
from schemathesis.python.asgi import get_client

from sessiongate.identity.tenants import TenantService
from sessiongate.runtime import Services
from tests.contract.harness import HYPOTHESIS, Target

# Two networks, their keys imported so the auth below knows them: "contract" (not secure) registers sessions,
# "vault" (secure) mints auth tokens. Test keys, not secrets.
API_KEY = "contract-api-key-0123456789abcdef0123"
VAULT_API_KEY = "vault-api-key-0123456789abcdef012345"
SERVER_KEY = "vault-server-key-0123456789abcdef0123"
ADMIN_TOKEN = "contract-admin-token-0123456789abcdef"
USER = "contract-user"

TARGET = Target("amity")
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


async def _provision(services: Services) -> None:
    tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
    await tenants.add_keys("contract", api_key=API_KEY)
    await tenants.add_keys("vault", secure=True, api_key=VAULT_API_KEY, server_key=SERVER_KEY)
    await tenants.add_admin_token("contract", token=ADMIN_TOKEN)


TARGET.provision(_provision)


@schema.auth(refresh_interval=None)
class AmityAuth:
    """The credential each operation's security asks for; a bearer token is a fresh registration every time.

    Schemathesis generates random values for the security schemes' headers; they are replaced, but a token a link
    carried over from a registration (register → verify/revoke/renew) is kept, so the stateful phase walks the
    session it created.
    """

    def get(self, case, context):
        requirements = case.operation.definition.raw["security"]
        if not requirements:
            return None
        first = requirements[0]  # the simplest requirement: one scheme
        if "serverKey" in first:
            return {"x-server-key": SERVER_KEY}
        if "apiKey" in first:
            return {"x-api-key": API_KEY}
        if "adminToken" in first or _names_a_user(case):
            return {"x-admin-token": ADMIN_TOKEN}
        with get_client(context.app) as client:
            body = {"userId": USER, "deviceId": f"contract-{uuid.uuid4()}"}
            response = client.request("POST", "/api/v5/sessions", json=body, headers={"x-api-key": API_KEY})
        return {"Authorization": f"Bearer {response.json()['accessToken']}"}

    def set(self, case, data, context):
        for name, value in data.items():
            if name == "Authorization" and _issued_token(case.headers.get(name, "")):
                continue  # a token a link carried over from a registration
            case.headers[name] = value


def _names_a_user(case) -> bool:
    # Revoking a user's tokens is the admin token's (spec decision 17); a user's own token would only get 403.
    return "userId" in (case.query or {}) or (isinstance(case.body, dict) and "userId" in case.body)


def _issued_token(value: str) -> bool:
    # Generated credentials are random text; only a registration's answer holds a three-part JWT.
    return value.startswith("Bearer eyJ") and value.count(".") == 2


@schema.parametrize()
@HYPOTHESIS
def test_amity_conforms_to_its_spec(case):
    case.call_and_validate()


AmityFlows = schema.as_state_machine()
AmityFlows.TestCase.settings = settings(HYPOTHESIS, max_examples=25, stateful_step_count=6)
TestAmityFlows = AmityFlows.TestCase
