from __future__ import annotations

import pytest

from tests.contract.harness import HYPOTHESIS, close_all, dialect_app, dialect_schema

APP = dialect_app("zelf")
schema = dialect_schema("zelf", APP)
cleanup = pytest.fixture(scope="module", autouse=True)(close_all)


@schema.parametrize()
@HYPOTHESIS
def test_zelf_conforms_to_its_spec(case):
    case.call_and_validate()
