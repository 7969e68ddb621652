from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings

from sessiongate.runtime import Services, open_services
from tests.contract.harness import HYPOTHESIS, Target

# The seed's two sample users: the spec's examples open sessions for them.
USERS = {
    "1234eigh89b02749e3a41c34": ("user@example.com", ("user",)),
    "63ded2f901770f255dff8d04": ("sample@email.com", ("admin",)),
}
CREATE = "POST /api/session/createSession"
MAX_USER_ID = 128


async def _provision(services: Services) -> None:
    for user_id, (email, roles) in USERS.items():
        await services.identity.add_principal(login=email, principal_id=user_id, email=email, roles=roles)


TARGET = Target("issp")
TARGET.provision(_provision)
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


@pytest.fixture(scope="module")
def operator() -> Iterator[tuple[BlockingPortal, Services]]:
    """The services of the target's database, usable from the synchronous state machine (the operator's CLI)."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(open_services(TARGET.settings)) as services,
    ):
        yield portal, services


@schema.parametrize()
@HYPOTHESIS
def test_issp_conforms_to_its_spec(case):
    case.call_and_validate()


class IsspFlows(schema.as_state_machine()):
    operator: tuple[BlockingPortal, Services]

    def before_call(self, case):
        # The user ids the fuzzer invents exist: an operator provisioned them, as createSession presumes.
        # Requests are sent exactly as generated; the 404 of an unknown id is covered by the stateless test.
        if case.operation.label == CREATE and isinstance(case.body, dict):
            portal, services = self.operator
            for key in ("userId", "userID"):
                value = case.body.get(key)
                if isinstance(value, str) and 0 < len(value) <= MAX_USER_ID and "\x00" not in value:
                    portal.call(
                        functools.partial(services.identity.upsert_principal, tenant="default", principal_id=value)
                    )


IsspFlows.TestCase.settings = settings(HYPOTHESIS, max_examples=25, stateful_step_count=6)


@pytest.fixture(autouse=True)
def _hand_operator_to_flows(operator: tuple[BlockingPortal, Services]) -> None:
    IsspFlows.operator = operator


TestIsspFlows = IsspFlows.TestCase
