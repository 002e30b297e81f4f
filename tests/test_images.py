"""docker/scratch.Dockerfile, built offline with buildah (no Docker engine or registry here) and
run the way a container runtime would: PID 1 of its own namespace, as uid 65534, in a root
that holds nothing but what the image holds (no libc, no shell, no /proc, no /tmp)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import NAMESPACE, ROOT, TIMEOUT
from podman import STORAGE_GROUP

pytestmark = [pytest.mark.timeout(300), STORAGE_GROUP]

TAG = "localhost/pyinit-scratch-test"


@pytest.fixture
def buildah(tmp_path: Path):
    """buildah with its own storage under tmp_path, so nothing is left in the host's store."""
    binary = shutil.which("buildah")
    tarballs = list((ROOT / "dist").glob("pyinit-*-linux-*.tar.gz"))
    why = ("buildah is not installed (scripts/setup installs it)" if not binary else
           None if tarballs else "no dist/pyinit-*.tar.gz (scripts/build makes it)")
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the image test must run in CI: {why}")
        pytest.skip(why)
    storage = ["--root", str(tmp_path / "storage"), "--runroot", str(tmp_path / "run"),
               "--storage-driver", "vfs"]

    def run(*args: str) -> str:
        done = subprocess.run([binary, *storage, *args], capture_output=True, text=True,
                              timeout=240, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    yield run
    subprocess.run([binary, *storage, "rm", "--all"], capture_output=True, timeout=60,
                   check=False)
    shutil.rmtree(tmp_path / "storage", ignore_errors=True)


def test_scratch_image_builds_offline_and_runs_as_nobody(buildah):
    version = subprocess.run(
        [*NAMESPACE, "/opt/pyinit/pyinit", "--version"], capture_output=True, text=True,
        timeout=TIMEOUT, check=True).stdout.split()[-1]
    buildah("bud", "--isolation", "chroot", "--build-arg", f"PYINIT_VERSION={version}",
            "-f", str(ROOT / "docker" / "scratch.Dockerfile"), "-t", TAG, str(ROOT))
    container = buildah("from", TAG)
    rootfs = buildah("mount", container)
    assert sorted(os.listdir(rootfs)) == ["opt"]  # nothing in the image but the bundle
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--kill-child", "chroot", "--userspec=65534:65534",
         rootfs, "/opt/pyinit/pyinit", "-v", "--", "/opt/pyinit/pyinit", "--version"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert (done.returncode, done.stdout) == (0, f"pyinit {version}\n"), done.stderr
    assert "started 2:" in done.stderr  # pyinit was PID 1, its command PID 2
