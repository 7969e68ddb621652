from __future__ import annotations

from hypothesis import settings

from tests.contract.harness import HYPOTHESIS, Target

# The seed's sample credentials, provisioned as the gateway's first user; contracts/schemathesis.toml logs in with
# them through createSession. Fuzzing sends thousands of failed logins from one client address, some of them with the
# seed's login, which the limits would answer by refusing that login (423) and address (429) too, where Schemathesis'
# checks expect a credential's own answer: throttling is tested in tests/dialects and end to end instead.
TARGET = Target(
    "saymon",
    admin_login="user.name@example.com",
    admin_password="P665bPVi",
    login_max_address_failures=1_000_000,
    login_max_failures=1_000_000,
)
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


@schema.parametrize()
@HYPOTHESIS
def test_saymon_conforms_to_its_spec(case):
    case.call_and_validate()


SaymonFlows = schema.as_state_machine()
SaymonFlows.TestCase.settings = settings(HYPOTHESIS, max_examples=25, stateful_step_count=6)
TestSaymonFlows = SaymonFlows.TestCase
