"""The real tier's build leaves the developer's machine as it was: its parts go into the cache,
nothing is installed as a system package or service, and no process it did not start is stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.emulators.stack import ROOT


def test_building_prometheus_installs_nothing_and_stops_no_one_elses_prometheus(tmp_path: Path) -> None:
    bystander_binary = tmp_path / "prometheus"  # the developer's own Prometheus, by its name
    shutil.copy("/bin/sleep", bystander_binary)
    bystander = subprocess.Popen([str(bystander_binary), "300"])
    cache = tmp_path / "cache"
    try:
        built = subprocess.run(
            ["bash", str(ROOT / "cluster" / "build.sh"), "prometheus"],
            env={**os.environ, "RELEASEGATE_REAL_CACHE": str(cache)}, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout + built.stderr
        assert bystander.poll() is None, "the build stopped a Prometheus it did not start"
    finally:
        bystander.kill()
        bystander.wait()
    unpacked = cache / "bin" / "prometheus"
    version = subprocess.run([str(unpacked), "--version"], capture_output=True, text=True, check=True)
    assert "prometheus, version" in version.stdout + version.stderr
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "prometheus"], capture_output=True, text=True
    )
    assert "install ok installed" not in installed.stdout, "the build installed Debian's package"
