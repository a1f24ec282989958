//! The dashboard at `/` in a real browser: headless Chromium driven through chromedriver opens
//! the page of a running `premia serve --http` (real nats-server, real binary), signs in with a
//! manager's token, and reads the current period in Russian. A payment is then posted to the
//! API, and the booked total, the projected bonus, the progress and the entries change on the
//! page without a reload. Screenshots go to target/dashboard/.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages (`.ci/run` installs them).
//!
//! The figures are worked out by hand from the seed month (tests/data/seed-month.jsonl and its
//! expected statements): M-4's December holds one commission, 0.8 % of D-402's margin
//! 20 000.00 = 160.00 (an adjustment of the closed November), and a plan of 500 000.00 with
//! 200 000.00 received, 40 % (no bonus below 50 %).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

mod support;
use support::nats_server::NatsServer;
use support::Reaped;

const SEED: &str = include_str!("data/seed-month.jsonl");
const ADMIN: &str = "admin-dash-4f1e-token";
const MANAGER_4: &str = "manager-four-dash-9c2a-token";
const PUBLISHER: &str = "publisher-dash-77d0-token";
const NBSP: char = '\u{a0}';

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post_events(base: &str, events: &[String]) {
    let body = format!("[{}]", events.join(","));
    let response = ureq::post(&format!("{base}/v1/events"))
        .set("Authorization", &format!("Bearer {PUBLISHER}"))
        .set("Content-Type", "application/cloudevents-batch+json")
        .send_string(&body);
    match response {
        Ok(r) => assert_eq!(r.status(), 202),
        Err(e) => panic!("POST /v1/events: {e}"),
    }
}

fn applied(base: &str) -> u64 {
    let text = ureq::get(&format!("{base}/metrics"))
        .set("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("premia_events_applied_total ")?.parse().ok()).unwrap_or(0)
}

fn event(id: &str, kind: &str, data: Value) -> String {
    json!({"specversion": "1.0", "id": id, "source": "crm/dashboard-test", "type": kind, "data": data}).to_string()
}

/// chromedriver on a free port, and the process, killed with its browser when dropped.
fn start_chromedriver() -> (Reaped, u16) {
    for needed in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(needed).exists(),
            "{needed} is missing: install Debian's chromium and chromium-driver packages (.ci/run does)"
        );
    }
    let port = free_port();
    let child = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Reaped { child };
    wait_for("chromedriver to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (driver, port)
}

async fn browser(driver_port: u16, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--lang=en-US", format!("--user-data-dir={}", profile.display()),
                     "--window-size=412,915"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a chromedriver session")
}

/// An element's exact text (WebDriver's own text call turns no-break spaces into spaces).
async fn text_of(client: &Client, selector: &str) -> String {
    let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;";
    match client.execute(script, vec![json!(selector)]).await.expect("run a script") {
        Value::String(text) => text,
        _ => String::new(),
    }
}

async fn wait_for_text(client: &Client, selector: &str, expected: &str, shots: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = text_of(client, selector).await;
        if text == expected {
            return;
        }
        if Instant::now() > deadline {
            let _ = std::fs::write(shots.join("failure.png"), client.screenshot().await.unwrap_or_default());
            panic!("{selector} shows {text:?}, not {expected:?}, after 30 s (screenshot: failure.png)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(client: &Client, selector: &str) -> u64 {
    let script = "return document.querySelectorAll(arguments[0]).length;";
    client.execute(script, vec![json!(selector)]).await.expect("run a script").as_u64().unwrap_or(0)
}

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is target/tmp: the screenshots go beside it, in target/dashboard.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// "1 234,50 ₽" with the no-break spaces the page uses.
fn rub(text: &str) -> String {
    text.replace(' ', &NBSP.to_string())
}

#[test]
fn the_dashboard_follows_a_payment_live_in_russian_without_reloading() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let tokens = [(ADMIN, "admin"), (MANAGER_4, "manager:M-4"), (PUBLISHER, "publisher")];
    let (_serve, base) = support::serve_http(work.path(), &server.url(), &tokens);
    let shots = screenshots_dir();

    // The seed month (without its USD payment, which is refused), and a deal of M-4 due on
    // 2026-12-03 that nobody pays: overdue at the end of December with 50 000.00 outstanding.
    let mut events: Vec<String> =
        SEED.lines().filter(|l| !l.trim().is_empty() && !l.contains("\"USD\"")).map(str::to_string).collect();
    events.push(event(
        "dash-1",
        "deal.created",
        json!({"deal_id": "D-404", "manager_id": "M-4", "client_id": "C-44", "amount": "50000.00",
               "margin": "5000.00", "currency": "RUB", "payment_terms": "postpayment",
               "due_date": "2026-12-03", "created_on": "2026-12-01"}),
    ));
    post_events(&base, &events);
    wait_for("the month to be applied", Duration::from_secs(60), || applied(&base) == 28);

    let (_driver, driver_port) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = browser(driver_port, profile.path()).await;
        client.goto(&format!("{base}/")).await.unwrap();

        // Russian, then M-4's token.
        client.find(Locator::Css("#lang")).await.unwrap().select_by_value("ru").await.unwrap();
        assert_eq!(text_of(&client, "#sign-in h2").await, "Вход");
        client.find(Locator::Css("#token")).await.unwrap().send_keys(MANAGER_4).await.unwrap();
        client.find(Locator::Css("#sign-in-form button")).await.unwrap().click().await.unwrap();

        // The current period is the latest open one, December, with M-4's figures.
        wait_for_text(&client, "#total", &rub("160,00 ₽"), &shots).await;
        let period = client.execute("return document.getElementById('period').value;", vec![]).await.unwrap();
        assert_eq!(period, json!("2026-12"));
        assert_eq!(text_of(&client, "#booked-title").await, "Начислено за период");
        assert_eq!(text_of(&client, "#commission").await, rub("160,00 ₽"));
        assert_eq!(text_of(&client, "#bonus").await, rub("0,00 ₽"));
        assert_eq!(text_of(&client, "#bonus-status").await, "прогноз");
        assert_eq!(text_of(&client, "#achievement").await, "40\u{a0}% плана");
        assert_eq!(text_of(&client, "#overdue-rows tr .deal").await, "D-404");
        assert_eq!(text_of(&client, "#overdue-rows tr .client").await, "C-44");
        assert_eq!(text_of(&client, "#overdue-rows tr td:nth-child(3)").await, rub("50 000,00 ₽"));
        // Nothing sideways to scroll on a phone.
        let widths = "const t = document.getElementById('overdue-table'); return [t.scrollWidth, t.parentElement.clientWidth, window.innerWidth];";
        let widths = client.execute(widths, vec![]).await.unwrap();
        assert!(widths[0].as_u64() <= widths[1].as_u64(), "the overdue table is wider than the phone: {widths}");
        assert_eq!(count(&client, "#entries li").await, 1);
        // The feed is connected before anything is posted (the page reads the board once the
        // feed's consumer exists).
        wait_for_text(&client, "#live", "В реальном времени", &shots).await;
        std::fs::write(shots.join("manager-ru-before.png"), client.screenshot().await.unwrap()).unwrap();

        // A marker in the page: a reload would lose it.
        client.execute("window.premiaTestMarker = 'same page';", vec![]).await.unwrap();

        // A new prepaid deal of M-4, paid in full five days before it is due: 1 % of its margin
        // 10 000.00 = 100.00, so the total goes from 160.00 to 260.00. Received this period:
        // 200 000.00 + 100 000.00 = 300 000.00 of 500 000.00 = 60 %, the 0.85 tier of the
        // bonus base 20 000.00: a projected 17 000.00.
        let base_for_post = base.clone();
        tokio::task::spawn_blocking(move || {
            post_events(
                &base_for_post,
                &[
                    event(
                        "dash-2",
                        "deal.created",
                        json!({"deal_id": "D-403", "manager_id": "M-4", "client_id": "C-43",
                               "amount": "100000.00", "margin": "10000.00", "currency": "RUB",
                               "payment_terms": "prepayment", "due_date": "2026-12-10",
                               "created_on": "2026-12-01"}),
                    ),
                    event(
                        "dash-3",
                        "payment.received",
                        json!({"payment_id": "P-403", "deal_id": "D-403", "amount": "100000.00",
                               "currency": "RUB", "paid_on": "2026-12-05"}),
                    ),
                ],
            )
        })
        .await
        .unwrap();

        wait_for_text(&client, "#total", &rub("260,00 ₽"), &shots).await;
        let marker = client.execute("return window.premiaTestMarker || null;", vec![]).await.unwrap();
        assert_eq!(marker, json!("same page"), "the page was reloaded");
        assert_eq!(text_of(&client, "#commission").await, rub("260,00 ₽"));
        wait_for_text(&client, "#bonus", &rub("17 000,00 ₽"), &shots).await;
        assert_eq!(text_of(&client, "#achievement").await, "60\u{a0}% плана");
        assert_eq!(count(&client, "#entries li").await, 2);
        let newest = text_of(&client, "#entries li:first-child .amount").await;
        assert_eq!(newest, rub("100,00 ₽"));
        // Opening "how it was worked out" shows the arithmetic from /v1/explain/payments/P-403.
        client.find(Locator::Css("#entries li:first-child summary")).await.unwrap().click().await.unwrap();
        let formula = "#entries li:first-child .formula";
        let deadline = Instant::now() + Duration::from_secs(30);
        while text_of(&client, formula).await.is_empty() {
            assert!(Instant::now() < deadline, "no workings under the newest entry");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let workings = text_of(&client, formula).await;
        assert!(
            workings.starts_with("margin 10 000.00 x paid 100 000.00 / amount 100 000.00 x rate 0.01")
                && workings.ends_with("= 100.00"),
            "{workings}"
        );
        let width =
            client.execute("return document.getElementById('progress-fill').style.width;", vec![]).await.unwrap();
        assert_eq!(width, json!("40%"), "60 % of plan on a bar that ends at 150 %");
        std::fs::write(shots.join("manager-ru-after.png"), client.screenshot().await.unwrap()).unwrap();

        // The same page in English on a desktop width.
        client.set_window_size(1280, 900).await.unwrap();
        client.find(Locator::Css("#lang")).await.unwrap().select_by_value("en").await.unwrap();
        assert_eq!(text_of(&client, "#total").await, "260.00\u{a0}₽");
        assert_eq!(text_of(&client, "#bonus").await, "17,000.00\u{a0}₽");
        assert_eq!(text_of(&client, "#achievement").await, "60\u{a0}% of plan");
        std::fs::write(shots.join("manager-en-desktop.png"), client.screenshot().await.unwrap()).unwrap();

        // An admin chooses the manager.
        client.find(Locator::Css("#sign-out")).await.unwrap().click().await.unwrap();
        client.find(Locator::Css("#token")).await.unwrap().send_keys(ADMIN).await.unwrap();
        client.find(Locator::Css("#sign-in-form button")).await.unwrap().click().await.unwrap();
        let mut options = 0;
        for _ in 0..300 {
            options = count(&client, "#manager option").await;
            if options == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(options, 5, "M-1 to M-5");
        client.find(Locator::Css("#manager")).await.unwrap().select_by_value("M-4").await.unwrap();
        wait_for_text(&client, "#total", "260.00\u{a0}₽", &shots).await;

        client.close().await.unwrap();
    });
}
