"""Schemathesis fuzzes memo, the dialect installed from tests/dialect_package, against the spec its package ships."""

from __future__ import annotations

from hypothesis import settings
from sessiongate_memo import MemoDialect

from tests.conftest import ROOT
from tests.contract.harness import HYPOTHESIS, Target

TARGET = Target("memo", spec=MemoDialect().spec_path(ROOT / "openapi"))
schema = TARGET.schema
cleanup = TARGET.cleanup_fixture()


@schema.parametrize()
@HYPOTHESIS
def test_memo_conforms_to_its_spec(case):
    case.call_and_validate()


MemoFlows = schema.as_state_machine()
MemoFlows.TestCase.settings = settings(HYPOTHESIS, max_examples=25, stateful_step_count=6)
TestMemoFlows = MemoFlows.TestCase
