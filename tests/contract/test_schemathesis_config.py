from __future__ import annotations

import pytest
import schemathesis
import yaml
from schemathesis.core.warnings import SchemathesisWarning

from tests.conftest import ROOT

CONFIG = schemathesis.Config.from_path(ROOT / "contracts" / "schemathesis.toml")


@pytest.mark.parametrize("spec", sorted((ROOT / "openapi").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_run_fails_where_an_operation_answered_only_401_or_403_for_every_spec(spec):
    project = CONFIG.projects.get(yaml.safe_load(spec.read_text()))
    assert project.warnings_for().should_fail(SchemathesisWarning.MISSING_AUTH)
