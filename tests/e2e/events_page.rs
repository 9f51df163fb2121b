//! The door page in a real browser: headless Chromium, driven over the W3C WebDriver
//! protocol by chromedriver, loads `GET /checkin` from the daemon, takes a staff key
//! and a ticket code typed in, and shows a green "ADMITTED" with the attendee's name;
//! the same code again shows a red "ALREADY USED".

use std::process::Stdio;
use std::time::Duration;

use chrono::Duration as Span;
use guildops_harness::Command;
use serde_json::{Value, json};

use crate::support::{WAIT, World, text};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver on a free port, killed when dropped.
struct Driver {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    /// `/shutdown` makes chromedriver quit its browsers too (a kill would orphan them
    /// when a test fails before ending its session).
    fn drop(&mut self) {
        use std::io::Write as _;
        let addr = self.base.trim_start_matches("http://");
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = write!(
                s,
                "GET /shutdown HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new());
        }
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver and chromium are needed for the door page test (Debian: apt-get install chromium chromium-driver; scripts/test installs them): {e}")
            });
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        assert!(
            response["value"]["error"].is_null(),
            "webdriver {path}: {response}"
        );
        response["value"].clone()
    }

    async fn session(&self) -> String {
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        }}}});
        let v = self
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        v["sessionId"].as_str().expect("session id").to_owned()
    }

    async fn element(&self, session: &str, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/session/{session}/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("element {css}: {v}"))
            .to_owned()
    }

    async fn type_into(&self, session: &str, css: &str, text: &str) {
        let el = self.element(session, css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/session/{session}/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, session: &str, css: &str) {
        let el = self.element(session, css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/session/{session}/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, session: &str, css: &str) -> String {
        let el = self.element(session, css).await;
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/session/{session}/element/{el}/text"),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    async fn wait_for_text(&self, session: &str, css: &str, wanted: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.text(session, css).await;
            if now.contains(wanted) {
                return now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never showed {wanted:?}; it shows {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn run(world: &World, user: u64, command: Command) -> String {
    let reply = world
        .discord
        .run_command(world.guild.id, world.guild.general_channel, user, command)
        .reply(WAIT)
        .await;
    text(&reply)
}

#[tokio::test]
async fn the_door_page_admits_a_typed_code_once_in_headless_chromium() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let start = chrono::Utc::now() + Span::minutes(30);
    let fmt = "%Y-%m-%d %H:%M";
    let said = run(
        &world,
        world.guild.owner_id,
        Command::new("event")
            .sub("create")
            .string("title", "Browser night")
            .string("start", &start.format(fmt).to_string())
            .string("end", &(start + Span::hours(2)).format(fmt).to_string())
            .integer("capacity", 3),
    )
    .await;
    let code = said.split('`').nth(1).expect("code").to_owned();
    let ann = world.discord.add_user("ann");
    world.discord.add_member(world.guild.id, ann, &[]);
    run(
        &world,
        ann,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    let said = run(
        &world,
        world.guild.owner_id,
        Command::new("event")
            .sub("staff-key")
            .string("event", &code),
    )
    .await;
    let key = said.split('`').nth(1).expect("key").to_owned();
    // The token as the member has it: from the DM's text (the QR test decodes the image).
    world
        .wait_for(|| async {
            world
                .discord
                .requests_matching("POST", "/messages")
                .iter()
                .any(|r| !r.files.is_empty())
        })
        .await;
    let dm = world
        .discord
        .requests_matching("POST", "/messages")
        .into_iter()
        .find(|r| !r.files.is_empty())
        .expect("ticket DM");
    let content = dm
        .body
        .as_ref()
        .and_then(|b| b["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let token = content
        .split('`')
        .find(|p| p.starts_with("gt_"))
        .expect("the code in the DM")
        .to_owned();

    let driver = Driver::start().await;
    let session = driver.session().await;
    let url = format!("http://{}/checkin", daemon.http_addr);
    driver
        .call(
            reqwest::Method::POST,
            &format!("/session/{session}/url"),
            Some(json!({"url": url})),
        )
        .await;
    driver.type_into(&session, "#staffkey", &key).await;
    driver.type_into(&session, "#code", &token).await;
    driver.click(&session, "#check").await;
    let shown = driver.wait_for_text(&session, "#result", "ADMITTED").await;
    assert!(shown.contains("ann"), "{shown}");
    driver.type_into(&session, "#code", &token).await;
    driver.click(&session, "#check").await;
    driver
        .wait_for_text(&session, "#result", "ALREADY USED")
        .await;
    let class = driver
        .call(
            reqwest::Method::GET,
            &format!(
                "/session/{session}/element/{}/attribute/class",
                driver.element(&session, "#result").await
            ),
            None,
        )
        .await;
    assert_eq!(class, "bad", "a duplicate is shown in red");
    driver
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{session}"),
            None,
        )
        .await;
    daemon.stop().await.expect("stop");
}
