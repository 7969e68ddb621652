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


def test_a_portos_list_query_over_the_servers_url_limit_counts_as_rightly_refused():
    # Found by the command-line run: GET /sessions takes every filter any number of times, so Schemathesis built a
    # schema-valid query of 12 KiB, and the server rightly refused it with 414 (SESSIONGATE_MAX_URL_BYTES). The spec
    # lists that 414 and the check for valid data accepts it there; tests/contract/test_spec_examples.py proves the
    # answer on a real server. Nothing else is accepted in its place, and no other operation accepts it.
    spec = yaml.safe_load((ROOT / "openapi" / "portos.yaml").read_text())
    assert "414" in spec["paths"]["/sessions"]["get"]["responses"]
    project = CONFIG.projects.get(spec)
    listing = project.checks_config_for(operation=_operation(spec, "listSessions"), phase=None)
    expected = listing.positive_data_acceptance.expected_statuses
    assert set(expected) == {"2xx", "3xx", "401", "403", "404", "409", "414", "429", "5xx"}
    login = project.checks_config_for(operation=_operation(spec, "login"), phase=None)
    assert "414" not in login.positive_data_acceptance.expected_statuses


def _operation(spec, operation_id):
    return schemathesis.openapi.from_dict(spec).find_operation_by_id(operation_id)
