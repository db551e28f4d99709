"""Loads Postmortem's web pages in headless Chromium (Debian's chromium + chromedriver, driven
by PyPI selenium) and reports what a user would see, as one JSON object on stdout:

  {"pages": [{"path", "status_ok", "title", "console_errors", "text_sample", "pwned", "screenshot"}],
   "tabs": {...}}

Usage: browser_pages.py BASE_URL SCREENSHOT_DIR PATH [PATH ...]
A path may be followed by "#tabs" to also exercise the report page's tabs (click and keyboard),
or "#reprocess" to press the report's Reprocess button (its result is the "reprocess" member),
or "#tokens" on /api/tokens/ to create a token with view_pii, call TOKEN_CHECK_PATH with it, revoke
it with the page's button and call again (the "tokens" member), or "#click=CSS" to press the
button CSS selects and record the next page's text (the "clicks" member; with CHECK_TOKEN set,
also what TOKEN_CHECK_PATH answers that token right after).
With LOGIN_EMAIL and LOGIN_PASSWORD set, the browser first signs in through /login/ (the result
gets "signed_in": the header's text after signing in) and signs out at the end ("signed_out").
With OIDC_SUB set instead, it signs in with the login page's single sign-on button on the
oidc-provider-mock issuer's form, as that subject.
"""
import json
import os
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def click_and_wait(d, element):
    """Clicks a submit button and waits for the next page: the old page's element is gone (any
    error touching it counts: Chromium reports a detached node in more than one way) and the new
    document has loaded."""
    element.click()

    def gone(_):
        try:
            element.is_enabled()
            return False
        except Exception:
            return True

    WebDriverWait(d, 30).until(gone)
    WebDriverWait(d, 30).until(lambda drv: drv.execute_script("return document.readyState") == "complete")


def driver():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)


def call_api(base, token):
    """GET TOKEN_CHECK_PATH with the token: its status and body."""
    request = urllib.request.Request(base + os.environ.get("TOKEN_CHECK_PATH", "/api/"), headers={"Auth-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return {"status": r.status, "body": r.read().decode()}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode()}


def create_use_and_revoke_token(d, base, shots):
    for box in d.find_elements(By.CSS_SELECTOR, "#token-form input[name=permissions]"):
        if box.get_attribute("value") == "view_pii":
            box.click()
    d.find_element(By.ID, "token-notes").send_keys("made by the browser test")
    click_and_wait(d, d.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]"))
    key = d.find_element(By.ID, "new-token-key").text
    d.save_screenshot(os.path.join(shots, "api_tokens_created.png"))
    listed = d.find_element(By.ID, "token-list").text

    def call():
        return call_api(base, key)

    before = call()
    click_and_wait(d, d.find_element(By.CSS_SELECTOR, "#token-list button[type=submit]"))
    return {"key": key, "listed": listed, "before": before, "after_revoke": call(),
            "page_after_revoke": d.find_element(By.TAG_NAME, "main").text,
            "console_errors": [l["message"] for l in d.get_log("browser") if l.get("level") == "SEVERE"]}


def main():
    base, shots, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(shots, exist_ok=True)
    d = driver()
    out = {"pages": [], "tabs": None}
    try:
        email = os.environ.get("LOGIN_EMAIL")
        sub = os.environ.get("OIDC_SUB")
        if sub:
            d.get(base + "/login/?next=/profile/")
            d.save_screenshot(os.path.join(shots, "login_sso.png"))
            click_and_wait(d, d.find_element(By.ID, "sso"))
            out["issuer_page"] = d.find_element(By.TAG_NAME, "body").text[:2000]
            d.find_element(By.NAME, "sub").send_keys(sub)
            click_and_wait(d, d.find_element(By.XPATH, "//button[text()='Authorize']"))
            out["signed_in"] = d.find_element(By.CSS_SELECTOR, "header.top").text
            out["after_login_url"] = d.current_url
            d.get_log("browser")  # the issuer's pages are not ours: their console is not checked
            email = sub
        elif email:
            d.get(base + "/login/?next=/profile/")
            d.find_element(By.ID, "email").send_keys(email)
            d.find_element(By.ID, "password").send_keys(os.environ.get("LOGIN_PASSWORD", ""))
            click_and_wait(d, d.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]"))
            out["signed_in"] = d.find_element(By.CSS_SELECTOR, "header.top").text
            out["after_login_url"] = d.current_url
        for spec in paths:
            path, _, extra = spec.partition("#")
            d.get(base + path)
            # Anything that executed injected script would have set this or opened an alert.
            pwned = d.execute_script("return window.__pwned || null")
            try:
                alert = d.switch_to.alert
                pwned = "alert: " + alert.text
                alert.dismiss()
            except Exception:
                pass
            logs = d.get_log("browser")
            errors = [l["message"] for l in logs if l.get("level") == "SEVERE"]
            name = "".join(c if c.isalnum() else "_" for c in path).strip("_") or "home"
            shot = os.path.join(shots, name[:80] + ".png")
            d.save_screenshot(shot)
            body = d.find_element(By.TAG_NAME, "body").text
            out["pages"].append({"path": path, "title": d.title, "console_errors": errors, "text": body[:500000],
                                 "pwned": pwned, "screenshot": shot})
            if extra == "tabs":
                tabs = d.find_elements(By.CSS_SELECTOR, "[role=tab]")
                visible = lambda: [p.get_attribute("id") for p in d.find_elements(By.CSS_SELECTOR, "[role=tabpanel]") if p.is_displayed()]
                result = {"count": len(tabs), "initial": visible()}
                modules = [t for t in tabs if t.get_attribute("aria-controls") == "modules"][0]
                modules.click()
                result["after_click"] = visible()
                result["selected"] = modules.get_attribute("aria-selected")
                modules.send_keys(Keys.ARROW_RIGHT)
                result["after_arrow"] = visible()
                result["focused"] = d.switch_to.active_element.get_attribute("aria-controls")
                d.save_screenshot(os.path.join(shots, name[:70] + "_rawdata.png"))
                out["tabs"] = result
            if extra == "searchform":
                # Fill the first filter row, one result per page, submit, then go to page 2.
                from selenium.webdriver.support.ui import Select
                row = d.find_elements(By.CSS_SELECTOR, ".filter-row")[0]
                Select(row.find_element(By.NAME, "f")).select_by_value("product")
                Select(row.find_element(By.NAME, "op")).select_by_value("=")
                row.find_element(By.NAME, "v").send_keys("Firefox")
                size = d.find_element(By.NAME, "_results_number")
                size.clear()
                size.send_keys("1")
                click_and_wait(d, d.find_element(By.CSS_SELECTOR, "form.search button[type=submit]"))
                result = {"url": d.current_url, "first": d.find_element(By.CSS_SELECTOR, "nav.pages").text}
                nxt = d.find_elements(By.CSS_SELECTOR, "nav.pages a[rel=next]")
                if nxt:
                    click_and_wait(d, nxt[0])
                    result["second"] = d.find_element(By.CSS_SELECTOR, "nav.pages").text
                result["rows"] = len(d.find_elements(By.CSS_SELECTOR, "table.results tbody tr"))
                result["console_errors"] = [l["message"] for l in d.get_log("browser") if l.get("level") == "SEVERE"]
                d.save_screenshot(os.path.join(shots, "search_results.png"))
                out["searchform"] = result
            if extra == "reprocess":
                buttons = d.find_elements(By.XPATH, "//button[text()='Reprocess']")
                out["reprocess"] = None
                if buttons:
                    click_and_wait(d, buttons[0])
                    notes = d.find_elements(By.CSS_SELECTOR, "p.notice")
                    out["reprocess"] = notes[0].text if notes else d.find_element(By.TAG_NAME, "body").text[:500]
            if extra == "tokens":
                out["tokens"] = create_use_and_revoke_token(d, base, shots)
            if extra.startswith("click="):
                selector = extra[len("click="):]
                click_and_wait(d, d.find_element(By.CSS_SELECTOR, selector))
                record = {"selector": selector, "url": d.current_url, "text": d.find_element(By.TAG_NAME, "main").text,
                          "console_errors": [l["message"] for l in d.get_log("browser") if l.get("level") == "SEVERE"]}
                if os.environ.get("CHECK_TOKEN"):
                    record["check"] = call_api(base, os.environ["CHECK_TOKEN"])
                out.setdefault("clicks", []).append(record)
        if email:
            click_and_wait(d, d.find_element(By.XPATH, "//button[text()='Sign out']"))
            out["signed_out"] = d.find_element(By.CSS_SELECTOR, "header.top").text
    finally:
        d.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
