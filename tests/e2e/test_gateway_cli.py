"""The gateway's command-line edges that need no running mesh: a missing extra, options that cannot go together,
``asya send --wait`` without a gateway or against one that is down — each one ``asya: error:`` line, at once."""

from __future__ import annotations

import subprocess
import sys
import time

from asya_pulumi.local.broker import free_port
from e2e.conftest import REPO, run_asya
from e2e.test_gateway_dev import PIPELINE

_WITHOUT_MOTO = (
    "import sys; sys.modules['moto'] = None; from asya_pulumi.cli.main import main; "
    f"sys.exit(main(['dev', {str(PIPELINE)!r}, '--gateway', '--keep-running']))"
)


def test_asya_dev_gateway_without_moto_names_the_extra_to_install_at_once() -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _WITHOUT_MOTO], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "asya: error: asya dev --gateway needs moto, not installed; install the gateway extra: "
        "pip install 'asya-pulumi[gateway]'"
    ]
    assert "starting" not in done.stdout  # nothing was started
    assert time.monotonic() - started < 20


def test_asya_dev_gateway_with_containers_is_a_usage_error() -> None:
    done = run_asya("dev", str(PIPELINE), "--gateway", "--containers", "--keep-running", timeout=60)
    assert done.returncode == 2 and "--gateway with --containers" in done.stderr


def test_asya_send_wait_without_a_gateway_says_how_to_get_one() -> None:
    done = run_asya("send", "flow", "{}", "--wait", timeout=60)
    assert done.returncode == 2
    assert "--gateway URL" in done.stderr and "asya dev DIR --gateway" in done.stderr


def test_asya_send_to_a_gateway_that_is_down_fails_fast_with_exit_4() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = run_asya("send", "flow", "{}", "--gateway", url, "--wait", timeout=60)
    assert done.returncode == 4
    assert f"cannot reach the gateway at {url}" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 10  # the command's own start-up included


def test_asya_send_through_the_gateway_refuses_an_ad_hoc_list_of_actors() -> None:
    done = run_asya("send", "first,last", "{}", "--gateway", "http://127.0.0.1:9", timeout=60)
    assert done.returncode == 2 and "named route of the mesh or one actor" in done.stderr
