"""The web app in a real browser (Debian's chromium through chromedriver): sign in, the
devices, a device's nights, a night's hypnogram drawn epoch by epoch, on a desktop and
a phone screen; another tenant's night is a 404. Screenshots of each page go to
build/screenshots/ (the README's picture of the night page is one of them)."""

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from model_export.simulator import simulate_night
from tests.conftest import PASSWORD
from tests.factories import NIGHT_START

SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"
STAGE_COLOURS = ("#e6550d", "#756bb1", "#6baed6", "#08519c")  # noctis_contract.sleep_metrics.hypnogram_svg


def _upload_night(client, device, hours=8.0):
    """A simulated sleeper's night, its edge stages the true ones."""
    night = simulate_night(21, hours=hours)
    epochs = [
        {
            "seq": i,
            "start": (NIGHT_START + timedelta(seconds=30 * i)).isoformat().replace("+00:00", "Z"),
            "features": [None if np.isnan(v) else round(float(v), 3) for v in row],
            "edge_stage": int(stage),
        }
        for i, (row, stage) in enumerate(zip(night.features, night.stages))
    ]
    for first in range(0, len(epochs), 2000):
        batch = {"schema_version": 1, "epochs": epochs[first : first + 2000]}
        assert client.post("/v1/epochs:ingest", json=batch, headers=device.headers).status_code == 200
    return len(epochs)


def _night(client, tenant, device, hours=8.0):
    window = {
        "device_id": device.id,
        "started_at": NIGHT_START.isoformat(),
        "ended_at": (NIGHT_START + timedelta(hours=hours)).isoformat(),
        "label": "Friday night",
    }
    return client.post("/v1/recordings", headers=tenant.headers, json=window).json()


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver must be installed (make system-deps)")
        pytest.skip("chromium and chromedriver are not installed (make system-deps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(5)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _arrive(browser, title: str) -> None:
    """Wait until the page the last click asked for has loaded (its <title>): reading the
    old page's elements after a click races the navigation."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 15).until(lambda b: b.title.startswith(title))


def test_sign_in_open_a_device_and_a_night_on_desktop_and_phone(
    browser, live_server, client, backend, make_tenant, make_device
):
    if backend != "sqlite":
        pytest.skip("the pages read through the same services as the API; one database leg for the browser")
    from selenium.webdriver.common.by import By

    tenant, stranger = make_tenant(), make_tenant()
    device = make_device(tenant, "bedroom")
    epochs = _upload_night(client, device)
    night = _night(client, tenant, device)
    foreign_device = make_device(stranger, "theirs")
    _upload_night(client, foreign_device, hours=1.0)
    foreign = _night(client, stranger, foreign_device, hours=1.0)

    browser.get(f"{live_server.url}/app/")
    _arrive(browser, "Sign in")
    assert browser.current_url.endswith("/app/login")
    browser.save_screenshot(str(SHOTS / "sign-in.png"))
    browser.find_element(By.NAME, "email").send_keys(tenant.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _arrive(browser, "Devices")

    assert browser.find_element(By.TAG_NAME, "h1").text == "Devices"
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#devices td a")] == ["bedroom"]
    browser.save_screenshot(str(SHOTS / "devices.png"))
    browser.find_element(By.LINK_TEXT, "bedroom").click()
    _arrive(browser, "bedroom")
    assert browser.find_element(By.TAG_NAME, "h1").text == "bedroom"
    browser.save_screenshot(str(SHOTS / "device.png"))
    browser.find_element(By.LINK_TEXT, "Friday night").click()
    _arrive(browser, "Friday night")

    assert night["id"] in browser.current_url
    rects = browser.find_elements(By.CSS_SELECTOR, "#server-hypnogram svg rect")
    drawn = [r for r in rects if r.get_attribute("fill") in STAGE_COLOURS]
    assert len(drawn) == epochs == 960, "one bar per epoch of the night"
    edge = browser.find_elements(By.CSS_SELECTOR, "#edge-hypnogram svg rect")
    assert len([r for r in edge if r.get_attribute("fill") in STAGE_COLOURS]) == epochs
    report = browser.find_element(By.ID, "report").text
    assert "total sleep min" in report and "edge vs server kappa" in report
    assert re.search(r"Edge agrees\s+\d+ %", browser.find_element(By.CLASS_NAME, "facts").text)
    browser.save_screenshot(str(SHOTS / "night.png"))

    browser.set_window_size(390, 844)  # a phone
    browser.refresh()
    _arrive(browser, "Friday night")
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, "the night page fits a phone's width"
    browser.save_screenshot(str(SHOTS / "night-phone.png"))

    browser.get(f"{live_server.url}/app/nights/{foreign['id']}")
    _arrive(browser, "404")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    browser.save_screenshot(str(SHOTS / "foreign-night.png"))
    assert all((SHOTS / name).stat().st_size > 5000 for name in ("devices.png", "device.png", "night.png"))


def test_forms_need_their_csrf_token_and_pages_a_session(live_server, make_tenant):
    tenant = make_tenant()
    with httpx.Client(base_url=live_server.url) as http:
        assert http.get("/app/").headers["location"] == "/app/login"
        forged = http.post("/app/login", data={"email": tenant.email, "password": PASSWORD, "csrf": "guess"})
        assert forged.status_code == 400 and "noctis_session" not in forged.cookies
        form = http.get("/app/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        wrong = http.post("/app/login", data={"email": tenant.email, "password": "nope", "csrf": token})
        assert wrong.status_code == 401 and "wrong email or password" in wrong.text
        token = re.search(r'name="csrf" value="([^"]+)"', wrong.text).group(1)  # each form its own token
        signed_in = http.post("/app/login", data={"email": tenant.email, "password": PASSWORD, "csrf": token})
        assert signed_in.status_code == 303 and "noctis_session" in signed_in.cookies
        assert http.get("/app/").status_code == 200
        assert "script-src 'self'" in http.get("/app/").headers["content-security-policy"]


def _signed_in(http, email):
    token = re.search(r'name="csrf" value="([^"]+)"', http.get("/app/login").text).group(1)
    assert http.post("/app/login", data={"email": email, "password": PASSWORD, "csrf": token}).status_code == 303


def test_the_live_view_streams_each_epoch_the_device_stores(live_server, client, make_tenant, make_device):
    from tests.factories import batch_json

    tenant, stranger = make_tenant(), make_tenant()
    device = make_device(tenant)
    client.post("/v1/epochs:ingest", json=batch_json(range(5)), headers=device.headers)
    with httpx.Client(base_url=live_server.url, timeout=20) as http:
        _signed_in(http, tenant.email)
        with http.stream("GET", f"/app/devices/{device.id}/live") as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            client.post("/v1/epochs:ingest", json=batch_json(range(5, 8)), headers=device.headers)
            seen = []
            for line in live.iter_lines():
                if line.startswith("data:"):
                    seen.append(int(re.search(r'"seq": (\d+)', line).group(1)))
                if len(seen) == 3:
                    break
        assert seen == [5, 6, 7], "only what was stored after the page opened, in order"
    with httpx.Client(base_url=live_server.url, timeout=20) as http:
        _signed_in(http, stranger.email)
        assert http.get(f"/app/devices/{device.id}/live").status_code == 404
