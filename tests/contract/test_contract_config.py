from __future__ import annotations

import schemathesis

from tests.conftest import ROOT

CONFIG = schemathesis.Config.from_path(ROOT / "contracts" / "schemathesis.toml")


def test_a_body_over_the_limit_counts_as_rightly_rejected_negative_data():
    expected = CONFIG.projects.default.checks.negative_data_rejection.expected_statuses
    assert "413" in expected
    # Only 413 is added to Schemathesis's own list: nothing it expects is dropped.
    assert set(expected) - {"413"} >= {"400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429"}
