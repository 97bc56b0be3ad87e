"""The studio page in a real headless Chromium (Debian's), driven by Selenium.

Type a prompt, click Generate, watch the progress bar move, see the video play, reload and
find the job in the gallery; then the same page on a phone-width screen. Screenshots go to
$VIDSYNTH_SCREENSHOT_DIR when set (CI keeps them), else to the test's tmp_path.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    why = "Chromium is not installed (apt-get install -y chromium chromium-driver; .ci/run does)"
    if os.environ.get("CI"):  # .ci/run installs it: a skip there would hide a broken install
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]'")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

# No network here: everything that phones home or updates itself is off.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--window-size=1280,900",
    "--autoplay-policy=no-user-gesture-required",
)
# A job long enough that the bar is seen between empty and full (~16 ms a step on one core).
JOB = {"steps": "150", "frames": "8", "fps": "8"}


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIDSYNTH_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")  # a fresh profile
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    monkeypatch.setenv("SE_OFFLINE", "true")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def until(what: Callable[[], Any], timeout: float = 30, message: str = "") -> Any:
    """Poll `what()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {message or what}")
        time.sleep(0.05)


def severe_console_messages(driver: Any) -> list[str]:
    """Errors the page logged: script errors, CSP violations, failed loads."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def full_page_screenshot(driver: Any, path: Path) -> None:
    """The whole page, below the fold too (Selenium's own shows the viewport only)."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


PLAYER_STATE = """
const v = document.getElementById('player');
return {ready: v.readyState, duration: v.duration, time: v.currentTime, paused: v.paused,
        src: v.getAttribute('src'), error: v.error && v.error.code};
"""


def test_generate_watch_play_reload(live_server, browser, screenshot_dir):
    d = browser
    d.get(live_server.url + "/")
    until(lambda: "· cpu" in d.find_element(By.ID, "server-info").text, message="server info")
    assert d.find_element(By.ID, "steps").get_attribute("placeholder") == "3"  # model default
    assert d.find_element(By.ID, "candidates").get_attribute("placeholder") == "1"
    assert d.find_element(By.ID, "guidance_interval").get_attribute("placeholder") == "0"
    # this model draws no first frames, so their interval is not offered
    assert not d.find_element(By.ID, "first_frame_guidance_interval").is_displayed()
    assert severe_console_messages(d) == []

    # Every control of the form is there, labelled, and reachable by keyboard.
    fields = (
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "guidance",
        "guidance_interval",
        "candidates",
        "frames",
    )
    for field in (*fields, "fps"):
        element = d.find_element(By.ID, field)
        assert element.is_displayed()
        assert d.find_elements(By.CSS_SELECTOR, f"label[for={field}]"), f"{field} has no label"
    for field in ("width", "height"):
        assert d.find_element(By.ID, field).get_attribute("aria-label")
    assert d.switch_to.active_element.get_attribute("id") == "prompt"  # autofocus

    # Tab walks the form in reading order, and the dice works from the keyboard.
    d.find_element(By.ID, "prompt").send_keys("a red circle moving right")
    order = []
    for _ in range(3):
        d.switch_to.active_element.send_keys(Keys.TAB)
        order.append(d.switch_to.active_element.get_attribute("id"))
    assert order == ["negative_prompt", "seed", "dice"]
    d.switch_to.active_element.send_keys(Keys.SPACE)
    rolled = d.find_element(By.ID, "seed").get_attribute("value")
    assert rolled.isdigit(), rolled
    d.find_element(By.ID, "seed").clear()
    d.find_element(By.ID, "seed").send_keys("42")
    d.find_element(By.ID, "negative_prompt").send_keys("blurry")
    for name, value in JOB.items():
        d.find_element(By.ID, name).clear()
        d.find_element(By.ID, name).send_keys(value)
    # a guidance interval the page cannot read is named, and nothing is sent
    d.find_element(By.ID, "guidance_interval").send_keys("0.5,x")
    d.find_element(By.ID, "generate").click()
    error = until(lambda: d.find_element(By.ID, "form-error").text, message="interval error")
    assert "guidance_interval must be LO or LO,HI" in error and '"0.5,x"' in error
    d.find_element(By.ID, "guidance_interval").clear()
    d.find_element(By.ID, "guidance_interval").send_keys("0.5")

    d.find_element(By.ID, "generate").click()

    # The bar moves from empty towards full while the status line counts steps.
    seen: list[float] = []
    statuses: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        value, text = d.execute_script(
            "const p = document.getElementById('progress');"
            "return [p.hasAttribute('value') ? p.value : null,"
            " document.getElementById('status').textContent];"
        )
        if value is not None:
            seen.append(float(value))
            if 0.2 < seen[-1] < 0.8 and not (screenshot_dir / "studio-progress.png").exists():
                d.save_screenshot(str(screenshot_dir / "studio-progress.png"))
        statuses.add(text)
        if text.startswith("Done"):
            break
        time.sleep(0.05)
    assert seen and seen[-1] == 1.0, (seen, statuses)
    partial = [v for v in seen if 0 < v < 1]
    assert len(set(partial)) >= 2, f"the bar never moved between empty and full: {seen}"
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert any(s.startswith("Denoising — step") for s in statuses), statuses

    # The video loads and plays.
    state = until(
        lambda: (s := d.execute_script(PLAYER_STATE))["ready"] >= 2 and s["duration"] > 0 and s,
        message="the video to load",
    )
    assert state["error"] is None and state["src"].startswith("/v1/jobs/")
    job_id = state["src"].split("/")[3]
    until(lambda: d.execute_script(PLAYER_STATE)["time"] > 0, message="the video to play")
    job = httpx.get(f"{live_server.url}/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["seed"] == 42
    assert job["params"]["prompt"] == "a red circle moving right"
    assert job["params"]["negative_prompt"] == "blurry" and job["params"]["steps"] == 150
    assert job["params"]["guidance_interval"] == [0.5, None]
    assert abs(state["duration"] - 8 / 8) < 0.2  # 8 frames at 8 fps

    download = d.find_element(By.ID, "download")
    assert download.is_displayed()
    href = download.get_attribute("href")
    got = httpx.get(href)
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    meta = d.find_element(By.ID, "meta").text
    assert "seed 42" in meta and "150 steps" in meta and "above σ 0.5" in meta

    gallery_card = f'#gallery li[data-id="{job_id}"][data-status="succeeded"]'
    until(lambda: d.find_elements(By.CSS_SELECTOR, gallery_card), message="gallery card")
    full_page_screenshot(d, screenshot_dir / "studio-desktop.png")

    # After a reload the history still shows the job, and the player picks it up again.
    d.refresh()
    card = until(lambda: d.find_elements(By.CSS_SELECTOR, gallery_card), message="after reload")
    assert "a red circle moving right" in card[0].text and "seed 42" in card[0].text
    until(lambda: d.execute_script(PLAYER_STATE)["ready"] >= 2, message="player after reload")
    assert d.execute_script(PLAYER_STATE)["src"] == f"/v1/jobs/{job_id}/video"
    assert severe_console_messages(d) == []

    # A phone-width screen: one column, nothing wider than the screen, the controls visible.
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
    )
    d.refresh()
    until(lambda: d.find_elements(By.CSS_SELECTOR, gallery_card), message="phone gallery")
    until(lambda: d.execute_script(PLAYER_STATE)["ready"] >= 2, message="phone player")
    widths = d.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways on a phone: {widths}"
    form = d.find_element(By.ID, "gen-form").rect
    result = d.find_element(By.CSS_SELECTOR, "section.result").rect
    assert result["y"] >= form["y"] + form["height"], "form and result should stack on a phone"
    for name in ("prompt", "generate", "dice", "width", "height"):
        rect = d.find_element(By.ID, name).rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= 390, (name, rect)
    font = d.execute_script(
        "return parseFloat(getComputedStyle(document.getElementById('prompt')).fontSize);"
    )
    assert font >= 16, "inputs under 16px make phones zoom in on focus"
    d.save_screenshot(str(screenshot_dir / "studio-phone.png"))
    full_page_screenshot(d, screenshot_dir / "studio-phone-full.png")

    # From the keyboard alone: Ctrl+Enter in the prompt submits; on a phone the page scrolls
    # to the progress bar, which is below the form.
    prompt = d.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("a blue square")
    d.find_element(By.ID, "steps").clear()
    d.find_element(By.ID, "steps").send_keys("20")
    prompt.send_keys(Keys.CONTROL, Keys.ENTER)
    cards = "#gallery li[data-status='succeeded']"
    until(lambda: len(d.find_elements(By.CSS_SELECTOR, cards)) == 2, message="second job")
    bar = d.execute_script(
        "const r = document.getElementById('progress').getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, height: innerHeight, scrolled: scrollY};"
    )
    assert bar["scrolled"] > 0 and 0 <= bar["top"] < bar["bottom"] <= bar["height"], bar
    newest = d.find_elements(By.CSS_SELECTOR, "#gallery li")[0]
    assert "a blue square" in newest.text  # history is newest first
    until(lambda: d.execute_script(PLAYER_STATE)["ready"] >= 2, message="second video")
    assert severe_console_messages(d) == []
