from __future__ import annotations

from tests.contract.harness import HYPOTHESIS, Target

TARGET = Target("zelf")
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


@schema.parametrize()
@HYPOTHESIS
def test_zelf_conforms_to_its_spec(case):
    case.call_and_validate()
