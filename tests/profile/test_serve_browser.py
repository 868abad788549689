"""The caller-ID page in a real headless browser (Debian's chromium), as the phone software opens it.

The token is given in the URL, so the browser itself follows the 303 redirect,
keeps the cookie and sends it back; the dumped DOM must then hold the card's
first line, and a hostile name must be text, not an element.

Without chromium the test is skipped, except under CI (``$CI`` set), where
``.ci/run`` installs it and a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from tests.profile.test_serve import MINJI_PHONE, SCRIPT_NAME, TOKEN, Running, write_index

CHROMIUM = "/usr/bin/chromium"


def chromium() -> str:
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"chromium is missing ({CHROMIUM}): .ci/run installs Debian's chromium before the tests")
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    return found


class Elements(HTMLParser):
    """Tag names and text of a document."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.xdist_group("serve_browser")  # one worker with the latency test, so they do not overlap
def test_the_card_in_a_headless_browser(tmp_path):
    browser = chromium()
    index = write_index(tmp_path / "cards.sqlite")
    run = Running(index, tmp_path / "access.log", TOKEN)
    try:
        url = f"http://127.0.0.1:{run.server.port}/card?phone={MINJI_PHONE.replace('-', '')}&token={TOKEN}"
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
            capture_output=True, text=True, timeout=90)
    finally:
        run.stop()
    dom = done.stdout
    assert done.returncode == 0 and dom.strip(), done.stderr[-2000:]
    page = Elements()
    page.feed(dom)
    text = "".join(page.text)
    assert "김민지 · 1988-03-14 · ☎ …5678" in text  # the first line: the 303 was followed with the cookie
    assert "카드 색인 2026-10-31 기준" in text
    assert SCRIPT_NAME in text  # the hostile name is shown as text...
    assert "script" not in page.tags  # ...and is no element
    assert TOKEN not in dom
    assert [line for line in run.log_lines() if line["query"] == "phone"][0]["patient_ids"] == ["P001", "P002"]
