//! The developer dashboard in a real headless Chromium (Debian's `chromium`
//! and `chromium-driver`), driven through WebDriver against a server this
//! test starts: sign in, create a key and read it from the page, use it,
//! watch its usage, see a seeded spike flagged, rotate, revoke, and a
//! hostile key name shown as text. The browser's log must hold no error.
//! Screenshots of the keys table and the usage chart go to
//! `target/dashboard-screenshots/`.
//!
//! Without Chromium the test is skipped with a note, unless
//! `LUMYX_REQUIRE_BROWSER=1` (as `.ci/run` sets) makes that a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, eventually, free_port, key_of};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use lumyx_keys::KeyId;
use lumyx_ratelimit::{Counted, Counts, DayUsage, Timestamp, Usage};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The binaries, or `None` (after a note) when they are missing and not
/// required.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|name| {
            let path = Path::new("/usr/bin").join(name);
            path.exists().then_some(path)
        })
    };
    match (
        find(&["chromium", "chromium-browser", "google-chrome"]),
        find(&["chromedriver"]),
    ) {
        (Some(browser), Some(driver)) => Some((browser, driver)),
        _ if std::env::var("LUMYX_REQUIRE_BROWSER").is_ok_and(|value| value == "1") => {
            panic!("LUMYX_REQUIRE_BROWSER=1 but chromium or chromedriver is missing")
        }
        _ => {
            eprintln!(
                "note: dashboard test skipped: chromium and chromium-driver are not installed \
                 (set LUMYX_REQUIRE_BROWSER=1 to make this a failure)"
            );
            None
        }
    }
}

/// `chromedriver` on a free port, killed on drop.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Driver {
    async fn start(binary: &Path) -> Driver {
        let port = free_port();
        let child = std::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        assert!(
            eventually(Duration::from_secs(10), || {
                let status = status.clone();
                async move { reqwest::get(status).await.is_ok() }
            })
            .await,
            "chromedriver answers"
        );
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium's own `se/log` command: the browser's console and errors.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_owned()),
        )
    }
}

/// The browser's log entries of level SEVERE (script errors, CSP refusals).
async fn severe_log(browser: &Browser) -> Vec<Value> {
    let log = browser
        .issue_cmd(BrowserLog)
        .await
        .expect("the browser log");
    log.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect()
}

async fn open_browser(browser_binary: &Path, driver: &Driver) -> Browser {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": browser_binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,800"],
        }),
    );
    capabilities.insert("goog:loggingPrefs".to_owned(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// The element `css`, once it is there.
async fn find(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css} on the page: {err}"))
}

/// Waits until the text of `css` satisfies `check`; answers it.
async fn text_until(browser: &Browser, css: &str, check: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            last = element.text().await.unwrap_or_default();
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed what was expected; last: {last:?}");
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let field = find(browser, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Seeds `id`'s usage: 7 quiet days, then 100 admitted today.
fn seed_spike(server: &TestServer, id: &str) {
    let entry = server
        .running
        .keys()
        .table()
        .find_by_id(&id.parse::<KeyId>().unwrap())
        .expect("the key's entry");
    let today = u32::try_from(chrono::Utc::now().timestamp() / 86_400).unwrap();
    let counts = |admitted: u64| {
        let mut counts = Counts::default();
        counts.add(Counted::Admitted, admitted);
        counts
    };
    let days = (1..=7)
        .map(|back| DayUsage {
            day: today - back,
            counts: counts(5),
        })
        .chain([DayUsage {
            day: today,
            counts: counts(100),
        }]);
    let usage = Usage::new(
        today,
        days,
        counts(135),
        Some(Timestamp::from_unix_micros(
            u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap(),
        )),
    );
    entry.usage().restore(&usage);
}

async fn screenshot(browser: &Browser, element: &fantoccini::elements::Element, name: &str) {
    browser
        .execute(
            "arguments[0].scrollIntoView({block: 'start'});",
            vec![serde_json::to_value(element).unwrap()],
        )
        .await
        .unwrap();
    let png = element.screenshot().await.expect("a screenshot");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_manages_keys_in_the_dashboard() {
    let Some((browser_binary, driver_binary)) = browser_binaries() else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.client();
    let driver = Driver::start(&driver_binary).await;
    let browser = open_browser(&browser_binary, &driver).await;
    let page = format!("{}/dashboard", server.base);

    // The page's own headers.
    let response = reqwest::get(&page).await.unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(
        policy.contains("form-action 'none'"),
        "no form submits natively: {policy}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // A wrong token is told, then the right one signs in.
    browser.goto(&page).await.unwrap();
    type_into(&browser, "#admin-token", "lumyx_admin_not_the_token").await;
    find(&browser, "#signin-submit")
        .await
        .click()
        .await
        .unwrap();
    text_until(&browser, "#signin-error", |text| text.contains("refused")).await;
    // The refused sign-in's 401 is in the browser's log as a failed load:
    // read it away; from here on the log must stay clean.
    let refused = severe_log(&browser).await;
    assert!(
        refused
            .iter()
            .all(|entry| entry["message"].as_str().unwrap_or("").contains("401")),
        "{refused:#?}"
    );
    type_into(&browser, "#admin-token", &server.admin).await;
    find(&browser, "#signin-submit")
        .await
        .click()
        .await
        .unwrap();
    find(&browser, "#keys-table").await;
    let url = browser.current_url().await.unwrap();
    assert!(
        !url.as_str().contains(&server.admin),
        "the token is in no URL: {url}"
    );

    // A key of 2 a minute, read from the page, used three times.
    type_into(&browser, "#create-name", "two a minute").await;
    type_into(&browser, "#create-owner", "acct_ui").await;
    type_into(&browser, "#create-rpm", "2").await;
    find(&browser, "#create-submit")
        .await
        .click()
        .await
        .unwrap();
    let key = text_until(&browser, "#new-key-value", |text| text.starts_with("nova_")).await;
    let export = find(&browser, "#new-key-export")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(export, format!("export NOVA_AI_API_KEY={key}"));
    let statuses = [
        api.get("/v1/models", &key).await.status(),
        api.get("/v1/models", &key).await.status(),
        api.get("/v1/models", &key).await.status(),
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    find(&browser, "#new-key-dismiss")
        .await
        .click()
        .await
        .unwrap();
    let listed: Value = api.get_json("/v1/keys?owner=acct_ui", &server.admin).await;
    let id = listed["data"][0]["id"].as_str().unwrap().to_owned();
    browser.refresh().await.unwrap();
    let row = format!("tr[data-key-id='{id}']");
    find(&browser, &format!("{row} button.usage"))
        .await
        .click()
        .await
        .unwrap();
    find(&browser, "#usage-reload").await.click().await.unwrap();
    let table = text_until(&browser, "#usage-table", |text| text.contains('2')).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let today_row = table
        .lines()
        .find(|line| line.contains(&today))
        .expect("today's row");
    let numbers: Vec<&str> = today_row.split_whitespace().skip(1).collect();
    assert_eq!(numbers.first(), Some(&"2"), "2 admitted today: {today_row}");
    assert!(
        numbers.contains(&"1"),
        "1 refused by the minute limit: {today_row}"
    );
    let totals = find(&browser, "#usage-totals").await.text().await.unwrap();
    assert!(totals.contains('2') && totals.contains('1'), "{totals}");

    // A key whose history holds a spike is flagged.
    let spiky = api
        .create_key(&server.admin, json!({"name": "spiky", "owner": "acct_ui"}))
        .await;
    let spiky_id = spiky["id"].as_str().unwrap().to_owned();
    seed_spike(&server, &spiky_id);
    browser.refresh().await.unwrap();
    let flag = format!("tr[data-key-id='{spiky_id}'] td.spike-flag");
    text_until(&browser, &flag, |text| text.contains("spike")).await;
    find(
        &browser,
        &format!("tr[data-key-id='{spiky_id}'] button.usage"),
    )
    .await
    .click()
    .await
    .unwrap();
    find(&browser, "svg#usage-chart g.day.spike").await;
    find(&browser, "table#usage-table tr.spike").await;
    screenshot(&browser, &find(&browser, "#usage").await, "usage.png").await;

    // Rotate the spiky key (no grace), use the new one; revoke it.
    let spiky_key = key_of(&spiky);
    find(
        &browser,
        &format!("tr[data-key-id='{spiky_id}'] button.rotate"),
    )
    .await
    .click()
    .await
    .unwrap();
    if browser.get_alert_text().await.is_ok() {
        browser.send_alert_text("0").await.unwrap();
        browser.accept_alert().await.unwrap();
    } else {
        type_into(&browser, "#rotate-grace", "0").await;
        find(&browser, "#rotate-submit")
            .await
            .click()
            .await
            .unwrap();
    }
    let new_key = text_until(&browser, "#new-key-value", |text| {
        text.starts_with("nova_") && text != key && text != spiky_key
    })
    .await;
    assert_eq!(
        api.get("/v1/models", &new_key).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        api.get("/v1/models", &spiky_key).await.status(),
        StatusCode::FORBIDDEN
    );
    find(&browser, "#new-key-dismiss")
        .await
        .click()
        .await
        .unwrap();
    let new_id = lumyx_keys::ApiKey::parse(&new_key)
        .unwrap()
        .id()
        .to_string();
    let new_row = format!("tr[data-key-id='{new_id}']");
    find(&browser, &format!("{new_row} button.revoke"))
        .await
        .click()
        .await
        .unwrap();
    browser.accept_alert().await.unwrap();
    text_until(&browser, &format!("{new_row} td.status"), |text| {
        text.contains("revoked")
    })
    .await;
    assert_eq!(
        api.get("/v1/models", &new_key).await.status(),
        StatusCode::FORBIDDEN
    );

    // A hostile name is text.
    let hostile = "<img src=x onerror=alert(1)>";
    let created = api
        .create_key(&server.admin, json!({"name": hostile, "owner": "acct_ui"}))
        .await;
    browser.refresh().await.unwrap();
    let name_cell = format!(
        "tr[data-key-id='{}'] td.name",
        created["id"].as_str().unwrap()
    );
    assert_eq!(
        text_until(&browser, &name_cell, |text| !text.is_empty()).await,
        hostile
    );
    assert!(browser.get_alert_text().await.is_err(), "no script ran");
    assert!(browser.find(Locator::Css("td.name img")).await.is_err());
    let _ = key_of(&created);

    screenshot(&browser, &find(&browser, "#keys-table").await, "keys.png").await;
    let errors = severe_log(&browser).await;
    assert!(errors.is_empty(), "the browser logged errors: {errors:#?}");
    browser.close().await.unwrap();
}
