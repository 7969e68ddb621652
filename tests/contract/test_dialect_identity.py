from __future__ import annotations

import tomllib

import pytest
import yaml

from sessiongate.dialects import registry
from sessiongate.gate.plugin import NAME as GATEWAY
from sessiongate.gate.plugin import TITLE
from tests.conftest import ROOT

INSTALLED = registry.available()


def test_every_dialect_package_in_the_tree_is_declared_as_an_entry_point():
    packages = {p.name.removeprefix("sessiongate_") for p in (ROOT / "plugins").glob("sessiongate_*") if p.is_dir()}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["sessiongate.dialects"]
    assert packages == set(declared) == set(INSTALLED)


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_names_are_identity(name):
    cls = INSTALLED[name].load()
    assert cls.name == name
    assert INSTALLED[name].value == f"sessiongate_{name}:{name.title()}Dialect"
    spec = yaml.safe_load((ROOT / "openapi" / f"{name}.yaml").read_text())
    assert spec["info"]["title"] == cls.title
    assert (ROOT / "contracts" / name / "examples").is_dir()
    assert any((ROOT / "contracts" / name / "examples").glob("*.json"))
    assert (ROOT / "tests" / "dialects" / f"test_{name}.py").is_file()
    assert (ROOT / "tests" / "contract" / f"test_{name}_contract.py").is_file()


def test_every_spec_belongs_to_an_installed_dialect_or_to_the_gateway():
    # The gateway's own routes (sessiongate.gate) have a spec too, and are no dialect: no entry point, no contracts/.
    assert {p.stem for p in (ROOT / "openapi").glob("*.yaml")} == set(INSTALLED) | {GATEWAY}


def test_the_gateway_spec_is_named_as_its_plugin_and_no_dialect_takes_its_name():
    spec = yaml.safe_load((ROOT / "openapi" / f"{GATEWAY}.yaml").read_text())
    assert spec["info"]["title"] == TITLE
    assert GATEWAY not in INSTALLED
