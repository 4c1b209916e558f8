"""The operator console in a real headless Chromium (WebDriver), black-box.

Run by .ci/console.sh against a running `carrot serve` ($CARROT_BASE), with an admin
(console_admin) already granted. It makes a trade through the API, then, in the browser:
a signed-out visitor and a non-admin are refused; the admin signs in through the form, sees
the overview go live, finds the trade by its request id and sees every step, reads the log,
the deadlines and the dead letters, sends a declined refund (a dead letter) again and sees
the trade settle, rebuilds a view and verifies one watching each reach
100 %, and signs out. An action posted without the session's
CSRF token is refused. Every page is saved as a screenshot at desktop (1280 px) and phone
(390 px) width under $CARROT_CONSOLE_OUT, and any error in a page's console fails the test.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["CARROT_BASE"]
SIM = os.environ["CARROT_SIM"]
OUT = os.environ["CARROT_CONSOLE_OUT"]
PASSWORD = "correct horse battery"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def api(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


def status_of(method, path, data=None, cookie=None):
    request = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/x-www-form-urlencoded")
    if cookie:
        request.add_header("cookie", cookie)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def transfers_declined(rate):
    """Sets the payment simulator's share of declined refunds and payouts."""
    faults = {"latency_ms": "0", "failure_rate": 0, "decline_rate": 0,
              "transfer_decline_rate": rate, "down": False}
    request = urllib.request.Request(SIM + "/faults", data=json.dumps(faults).encode(),
                                     method="PUT")
    request.add_header("content-type", "application/json")
    urllib.request.urlopen(request).close()


def a_declined_refund():
    """A paid request the seller rejects while the gateway declines refunds: the refund is
    a dead letter. Returns the payment id and the buyer's token."""
    seller = api("POST", "/auth/login", {"username": "console_seller", "password": PASSWORD})
    buyer = api("POST", "/auth/login", {"username": "console_buyer", "password": PASSWORD})
    listing = api("POST", "/listings", {"title": "Printer", "description": "",
                                        "price": 30000}, seller["token"])
    placed = api("POST", f"/listings/{listing['listing_id']}/requests", {}, buyer["token"])
    transfers_declined(1)
    api("POST", f"/requests/{placed['request_id']}/reject", {}, seller["token"])
    return placed["payment_id"], buyer["token"]


def a_trade():
    seller = api("POST", "/auth/signup", {"username": "console_seller", "password": PASSWORD})
    buyer = api("POST", "/auth/signup", {"username": "console_buyer", "password": PASSWORD})
    listing = api("POST", "/listings", {"title": "Desk lamp", "description": "warm light",
                                        "price": 15000}, seller["token"])
    placed = api("POST", f"/listings/{listing['listing_id']}/requests", {}, buyer["token"])
    request_id = placed["request_id"]
    api("POST", f"/requests/{request_id}/accept", None, seller["token"])
    api("POST", f"/requests/{request_id}/complete", None, buyer["token"])
    return request_id


def browser():
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


class Pages:
    def __init__(self, driver):
        self.driver = driver
        self.errors = []

    def check_console(self, name, refused=None):
        """Every error in the page's console fails the test, but the refusal a page that
        is meant to be refused reports about itself (its own 401 or 403)."""
        for entry in self.driver.get_log("browser"):
            own = refused is not None and f"status of {refused}" in entry["message"]
            if entry["level"] == "SEVERE" and not own:
                self.errors.append(f"{name}: {entry['message']}")

    def visit(self, name, path=None, refused=None):
        if path is not None:
            self.driver.get(BASE + path)
        for width, (w, h) in WIDTHS.items():
            self.driver.set_window_size(w, h)
            time.sleep(0.2)
            wide = self.driver.execute_script(
                "return document.documentElement.scrollWidth > window.innerWidth + 1")
            if wide:
                self.errors.append(f"{name}: wider than the {width} screen")
            self.driver.save_screenshot(os.path.join(OUT, f"{name}-{width}.png"))
        self.check_console(name, refused)
        return self.driver.page_source

    def sign_in(self, username):
        self.driver.get(BASE + "/console/login")
        self.driver.find_element(By.NAME, "username").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(self.driver, lambda d: "/console/login" not in d.current_url
                   or "Unknown username" in d.page_source or "Admins only" in d.page_source,
                   "the sign-in to answer")


def wait_until(driver, condition, what, seconds=30):
    """Waits for `condition(driver)`, on whatever page the last action led to."""
    try:
        WebDriverWait(driver, seconds, poll_frequency=0.1).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}") from None


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def main():
    os.makedirs(OUT, exist_ok=True)
    request_id = a_trade()
    driver = browser()
    try:
        pages = Pages(driver)
        landing = pages.visit("landing", "/")
        expect('href="/console"' in landing, "the landing page links to the console")
        refused = pages.visit("signed-out", "/console", refused=401)
        expect("Subscriptions" not in refused and "Sign in" in refused, "signed out: refused")
        expect(status_of("GET", "/console") == 401, "signed out: 401")

        pages.sign_in("console_buyer")
        refused = pages.visit("non-admin", refused=403)
        expect("Admins only" in refused and "Subscriptions" not in refused, "non-admin: refused")
        expect(not driver.get_cookies(), "a non-admin gets no cookie")

        pages.sign_in("console_admin")
        wait_until(driver, lambda d: d.find_elements(By.ID, "live")
                   and d.find_element(By.ID, "live").text == "live", "the overview to go live")
        overview = pages.visit("overview")
        expect("Subscriptions" in overview, "the overview shows the subscriptions")

        driver.get(BASE + "/console/find")
        driver.find_element(By.NAME, "q").send_keys(request_id)
        driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
        wait_until(driver, lambda d: "Saga commands" in d.page_source, "the trade's page")
        trade = pages.visit("trade")
        for step in ("PurchaseRequested", "PurchaseRequestAccepted", "PurchaseRequestCompleted",
                     "PaymentCaptured", "ListingReserved", "ListingSold"):
            expect(step in trade, f"the trade shows {step}")
        expect("Desk lamp" not in trade, "what people typed is masked")

        pages.visit("log", "/console/log")
        pages.visit("log-filtered", "/console/log?aggregate=payment&event=PaymentCaptured")
        pages.visit("deadlines", "/console/deadlines")
        pages.visit("dead-letters", "/console/dead-letters")

        payment_id, buyer_token = a_declined_refund()
        letter = f"refund:{payment_id}"
        wait_until(driver, lambda d: d.get(BASE + "/console/dead-letters") or letter in d.page_source,
                   "the declined refund to be a dead letter")
        transfers_declined(0)
        pages.visit("dead-letters-one")
        driver.find_element(By.LINK_TEXT, letter).click()
        wait_until(driver, lambda d: "Send it again" in d.page_source, "the dead letter's page")
        pages.visit("dead-letter")
        driver.find_element(By.NAME, "reason").send_keys("card reissued (ticket 88)")
        driver.find_element(By.NAME, "confirm").click()
        driver.find_element(By.XPATH, "//button[text()='Send again']").click()
        wait_until(driver, lambda d: api("GET", f"/payments/{payment_id}", token=buyer_token)
                   ["status"] == "refunded", "the refund to be sent again and settle")
        driver.get(BASE + f"/console/find?q={payment_id}")
        settled = pages.visit("trade-settled")
        for step in ("PaymentTransferDeclined", "PaymentTransferRetried", "PaymentRefunded"):
            expect(step in settled, f"the trade shows {step}")

        for verify, expected in ((False, "rebuilt and swapped in"),
                                 (True, "equals the live view")):
            driver.get(BASE + "/console/rebuilds")
            Select(driver.find_element(By.NAME, "view")).select_by_visible_text("catalog")
            if verify:
                driver.find_element(By.NAME, "verify").click()
            driver.find_element(By.NAME, "confirm").click()
            driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
            wait_until(driver, lambda d: d.find_elements(By.ID, "r-state")
                       and d.find_element(By.ID, "r-state").text not in ("", "running"),
                       "the rebuild to end")
            expect(driver.find_element(By.ID, "r-percent").text == "100", "the rebuild reaches 100 %")
            expect(expected in driver.find_element(By.ID, "r-result").text, f"the result: {expected}")
            pages.visit("verify" if verify else "rebuild")

        cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
        form = urllib.parse.urlencode({"request_id": request_id}).encode()
        expect(status_of("POST", "/console/reveal", form, cookie) == 403,
               "an action without the CSRF token is refused")

        driver.find_element(By.CSS_SELECTOR, "header button").click()
        wait_until(driver, lambda d: "/console/login" in d.current_url, "the sign-out")
        expect(status_of("GET", "/console", cookie=cookie) == 401, "the old cookie opens nothing")
        pages.check_console("end")
        if pages.errors:
            raise AssertionError("\n".join(pages.errors))
    finally:
        driver.quit()
    print(f"console: every page as expected; screenshots in {OUT}")


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, WebDriverException) as e:
        print(f"console: {e}", file=sys.stderr)
        sys.exit(1)
