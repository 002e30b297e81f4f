"""pyinit under real podman (tests/podman.py has the session set-up)."""

from __future__ import annotations

import os

import pytest
from podman import Podman, missing

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory):
    why = missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the podman tests must run in CI: {why}")
        pytest.skip(why)
    session = Podman.start(tmp_path_factory.mktemp("podman"))
    try:
        yield session
    finally:
        session.close()


@pytest.mark.parametrize("script, status", [("exit 7", 7), ("kill -9 $$", 137)])
def test_exit_status(podman: Podman, script: str, status: int) -> None:
    name = podman.name("exit")
    done = podman("run", "--name", name, podman.image, "sh", "-c", script, check=False)
    assert done.returncode == status, done.stderr
