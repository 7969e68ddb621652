"""The seed's own Node.js (Axios) example, as published, gets a token from the real gateway process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import jwt
import pytest

from tests.conftest import ROOT
from tests.support.server import running_server

pytestmark = pytest.mark.clients

NODE = shutil.which("node")
AXIOS = ROOT / "clients" / "node_modules" / "axios"


def test_the_seeds_axios_example_gets_a_token(database_url, tmp_path):
    assert NODE is not None, "Node.js is needed to run the seed's axios example: install Node.js 20 or newer"
    assert AXIOS.is_dir(), "run `npm ci --prefix clients` first"
    with running_server(database_url, tmp_path) as server:
        done = subprocess.run(
            [NODE, str(ROOT / "clients" / "zelf-axios.cjs")],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "ZELF_URL": server.base_url},
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)["data"]
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert claims["identifier"] == "device_unique_id_here"
    assert (claims["iat"], claims["exp"]) == (data["activatedAt"], data["expiresAt"])
