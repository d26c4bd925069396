//! A small W3C WebDriver client over the project's JSON client: enough to drive Debian's
//! Chromium through chromedriver (open a page, fill and click, read text, run a script, take a
//! screenshot).

use std::{
    net::TcpListener,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use bftws_framework::http_client::JsonClient;
use serde_json::{json, Value};

/// The key W3C WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process on a free loopback port, killed when dropped.
pub(crate) struct Driver {
    child: Child,
    pub(crate) url: String,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let binary =
            std::env::var_os("BFTWS_CHROMEDRIVER").map(PathBuf::from).unwrap_or("/usr/bin/chromedriver".into());
        assert!(
            binary.exists(),
            "chromedriver not found at {}: install Debian's chromium and chromium-driver (./scripts/install-console-test-deps.sh)",
            binary.display()
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its own process group, so dropping the driver ends every browser it started, even
        // when a test fails before closing them.
        let child = Command::new(&binary)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let client = JsonClient::new(Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(reply) = client.get(&format!("{}/status", driver.url), None).await {
                if reply.body["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window.
pub(crate) struct Browser {
    client: JsonClient,
    session: String,
}

pub(crate) type Element = String;

impl Browser {
    /// A headless Chromium whose viewport is `width` × `height` CSS pixels.
    pub(crate) async fn open(driver: &Driver, width: u32, height: u32) -> Browser {
        let chromium = std::env::var_os("BFTWS_CHROMIUM").map(PathBuf::from).unwrap_or("/usr/bin/chromium".into());
        let chromium = chromium.to_string_lossy();
        let client = JsonClient::new(Duration::from_secs(60));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // Root in a container has no user namespace for Chromium's sandbox.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US",
                    "--disable-breakpad", "--disable-crash-reporter"],
                "mobileEmulation": {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 1.0}},
            },
        }}});
        let reply = client.post(&format!("{}/session", driver.url), None, &capabilities).await.expect("new session");
        let session = reply.body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {}", reply.body))
            .to_owned();
        Browser { client, session: format!("{}/session/{session}", driver.url) }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let reply = match method {
            "GET" => self.client.get(&url, None).await,
            "DELETE" => self.client.delete(&url, None).await,
            _ => self.client.post(&url, None, &body).await,
        }
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        assert_eq!(reply.status, 200, "WebDriver {method} {path}: {}", reply.body);
        reply.body["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    async fn try_find(&self, css: &str) -> Option<Element> {
        let url = format!("{}/element", self.session);
        let reply = self.client.post(&url, None, &json!({"using": "css selector", "value": css})).await.ok()?;
        (reply.status == 200).then(|| reply.body["value"][ELEMENT].as_str().map(str::to_owned)).flatten()
    }

    /// The first element matching `css`, waiting up to `timeout` for it to appear.
    pub(crate) async fn wait(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.try_find(css).await {
                return element;
            }
            if Instant::now() > deadline {
                let body = self.script("return document.body.innerText", json!([])).await;
                panic!("no element {css} after {timeout:?}; the page says:\n{}", body.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn find(&self, css: &str) -> Element {
        self.wait(css, Duration::from_secs(10)).await
    }

    pub(crate) async fn count(&self, css: &str) -> usize {
        let found = self.call("POST", "/elements", json!({"using": "css selector", "value": css})).await;
        found.as_array().map_or(0, Vec::len)
    }

    pub(crate) async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call("POST", &format!("/element/{element}/click"), json!({})).await;
    }

    /// Replaces the value of the field matching `css` with `text`.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call("POST", &format!("/element/{element}/clear"), json!({})).await;
        self.call("POST", &format!("/element/{element}/value"), json!({"text": text})).await;
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.call("GET", &format!("/element/{element}/text"), Value::Null).await.as_str().unwrap_or("").to_owned()
    }

    pub(crate) async fn value(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.call("GET", &format!("/element/{element}/property/value"), Value::Null)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Waits until the text of the element matching `css` contains `expected`.
    pub(crate) async fn wait_text(&self, css: &str, expected: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.try_find(css).await {
                let url = format!("{}/element/{element}/text", self.session);
                if let Ok(reply) = self.client.get(&url, None).await {
                    let text = reply.body["value"].as_str().unwrap_or("").to_owned();
                    if text.contains(expected) {
                        return text;
                    }
                    if Instant::now() > deadline {
                        panic!("{css} says {text:?}, not {expected:?}, after {timeout:?}");
                    }
                }
            } else if Instant::now() > deadline {
                self.wait(css, Duration::ZERO).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn script(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": args})).await
    }

    pub(crate) async fn script_async(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/async", json!({"script": script, "args": args})).await
    }

    /// The viewport as a PNG.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
        let png = self.call("GET", "/screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or("")).expect("screenshot is base64")
    }

    pub(crate) async fn close(self) {
        self.call("DELETE", "", Value::Null).await;
    }
}
