//! `fleetpin serve`'s OpenID Connect sign-in against a real provider: npm's `oidc-provider`
//! (tests/oidc/provider.mjs) on this machine's node, on loopback. Fleet-free. The test plays the
//! browser with plain HTTP (a cookie jar, redirects followed by hand) and checks what a person
//! would meet: the code flow with PKCE signs in; a tampered state, an ID token issued to another
//! client, for another sign-in or expired, and a person without a role are refused with no
//! session; sign-out needs the CSRF token and revokes the session.
//!
//! node and npm: under CI a missing one fails the test; elsewhere the test skips with a loud
//! note. `npm ci` runs in tests/oidc when its node_modules is missing.

mod support;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

const SECRET: &str = "test-client-secret-4f1c9e";

use support::oidc::{Running, free_port, provider_ready};

/// The provider and a `fleetpin serve` signing in through it.
struct Setup {
    issuer: String,
    serve: String,
    redirect: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _serve: Running,
    _provider: Running,
}

impl Setup {
    /// `None`: node is missing outside CI (skipped).
    fn start(client_id: &str) -> Option<Setup> {
        if !provider_ready() {
            return None;
        }
        let port = free_port();
        let serve = format!("http://127.0.0.1:{port}");
        let redirect = format!("{serve}/auth/callback");
        let (issuer, provider) = support::oidc::start_provider(&redirect, SECRET);

        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        // serve.yaml as an operator writes it: the client secret only named, in the environment.
        std::fs::write(
            dir.path().join("serve.yaml"),
            format!(
                "oidc:\n  issuer: {issuer}\n  client_id: {client_id}\n  client_secret_env: TEST_OIDC_SECRET\n  redirect_url: {redirect}\n  scopes: [openid, email, profile, groups]\n  roles:\n    - {{group: ops, role: deploy, envs: [prod]}}\n    - {{group: ops, role: view}}\n"
            ),
        )
        .unwrap();
        let child = support::run::fleetpin_in(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("FLEETPIN_LOG", "debug")
            .env("TEST_OIDC_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("fleetpin serve starts");
        let serve_child = Running(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http("GET", &format!("{serve}/healthz"), &[], "").status == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fleetpin serve did not answer: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Setup {
            issuer,
            serve,
            redirect,
            log,
            _dir: dir,
            _serve: serve_child,
            _provider: provider,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.serve)
    }

    /// A test-only control of the provider (see provider.mjs).
    fn control(&self, what: &str, form: &[(&str, &str)]) {
        let r = Browser::default().post_form(&format!("{}/__test/{what}", self.issuer), form, &[]);
        assert_eq!(r.status, 200, "{}", r.body);
    }

    fn serve_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/auth/login` in `b`: the provider's authorization URL it redirects to.
    fn login(&self, b: &mut Browser, next: &str) -> String {
        let r = b.get(&self.url(&format!("/auth/login?next={next}")));
        assert_eq!(r.status, 302, "{}", r.body);
        let to = r.header("location").unwrap().to_string();
        assert!(to.starts_with(&self.issuer), "{to}");
        to
    }

    /// From the authorization URL through the provider's sign-in as `user`, up to the answer
    /// it sends the browser back with (not followed).
    fn at_provider(&self, b: &mut Browser, authorize: &str, user: &str) -> String {
        let mut url = authorize.to_string();
        for _ in 0..12 {
            if url.starts_with(&self.redirect) {
                return url;
            }
            let r = b.get(&url);
            let r = if r.status == 200 && r.body.contains("<form") {
                let action = r
                    .body
                    .split("action=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                b.post_form(&resolve(&url, action), &[("login", user)], &[])
            } else {
                r
            };
            assert!(
                matches!(r.status, 302 | 303),
                "{url}: {} {}",
                r.status,
                r.body
            );
            url = resolve(&url, r.header("location").unwrap());
        }
        panic!("the provider never sent the browser back: {url}")
    }

    /// A whole sign-in of `user` in `b`: the callback's answer.
    fn sign_in(&self, b: &mut Browser, user: &str, next: &str) -> Resp {
        let authorize = self.login(b, next);
        let back = self.at_provider(b, &authorize, user);
        b.get(&back)
    }

    /// An ID token the provider really issues to `client` in a sign-in of `user` carrying
    /// `nonce` (the test plays that client, PKCE and all).
    fn id_token_for(&self, b: &mut Browser, client: &str, user: &str, nonce: &str) -> String {
        let verifier = "a-test-verifier-".repeat(4);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let authorize = format!(
            "{}/auth?client_id={client}&response_type=code&scope=openid%20email%20groups&redirect_uri={}&state=s&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
            self.issuer,
            encode(&self.redirect)
        );
        let back = self.at_provider(b, &authorize, user);
        let code = query(&back, "code").unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{SECRET}"));
        let r = Browser::default().post_form(
            &format!("{}/token", self.issuer),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &self.redirect),
                ("code_verifier", &verifier),
            ],
            &[("authorization", format!("Basic {basic}"))],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["id_token"].as_str().unwrap().to_string()
    }
}

// ---- a small HTTP/1.1 client and a browser's cookie jar ----

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `Set-Cookie` of `name`, if any.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http URLs only");
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") {
        location.to_string()
    } else {
        format!("http://{}{location}", split_url(base).0)
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?
        .1
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn http(method: &str, url: &str, headers: &[(&str, String)], body: &str) -> Resp {
    let (authority, path) = split_url(url);
    let mut s = TcpStream::connect(&authority).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = vec![];
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// Cookies per host:port (a browser shares them across ports; kept apart here for clarity).
#[derive(Default, Clone)]
struct Browser {
    jar: BTreeMap<(String, String), String>,
}

impl Browser {
    fn send(&mut self, method: &str, url: &str, headers: &[(&str, String)], body: &str) -> Resp {
        let authority = split_url(url).0;
        let cookies: Vec<String> = self
            .jar
            .iter()
            .filter(|((a, _), _)| *a == authority)
            .map(|((_, n), v)| format!("{n}={v}"))
            .collect();
        let mut headers = headers.to_vec();
        if !cookies.is_empty() {
            headers.push(("cookie", cookies.join("; ")));
        }
        let r = http(method, url, &headers, body);
        for c in r.all("set-cookie") {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let attrs = attrs.to_ascii_lowercase();
            let key = (authority.clone(), name.trim().to_string());
            if attrs.contains("max-age=0") || attrs.contains("expires=thu, 01 jan 1970") {
                self.jar.remove(&key);
            } else {
                self.jar.insert(key, value.to_string());
            }
        }
        r
    }

    fn get(&mut self, url: &str) -> Resp {
        self.send("GET", url, &[], "")
    }

    fn post_form(&mut self, url: &str, form: &[(&str, &str)], headers: &[(&str, String)]) -> Resp {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let mut headers = headers.to_vec();
        headers.push((
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ));
        self.send("POST", url, &headers, &body.join("&"))
    }

    fn cookie(&self, name: &str) -> Option<&String> {
        self.jar
            .iter()
            .find(|((_, n), _)| n == name)
            .map(|(_, v)| v)
    }
}

fn signed_in(s: &Setup, b: &mut Browser) -> Resp {
    b.get(&s.url("/api/v1/whoami"))
}

/// A refusal: the status, its words, and no session.
fn refused(s: &Setup, b: &mut Browser, r: &Resp, status: u16, words: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains(words),
        "{}",
        r.body
    );
    assert!(
        r.set_cookie("fleetpin_session").is_none(),
        "{:?}",
        r.headers
    );
    assert_eq!(signed_in(s, b).status, 401);
}

// ---- the tests ----

#[test]
fn the_code_flow_with_pkce_signs_in_and_sign_out_revokes() {
    let Some(s) = Setup::start("fleetpin") else {
        return;
    };
    let mut b = Browser::default();
    let authorize = s.login(&mut b, "/api/v1/whoami");
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", "fleetpin"),
        ("code_challenge_method", "S256"),
    ] {
        assert_eq!(query(&authorize, k).as_deref(), Some(v), "{authorize}");
    }
    for k in ["code_challenge", "state", "nonce", "redirect_uri"] {
        assert!(query(&authorize, k).is_some(), "{k} in {authorize}");
    }
    assert!(query(&authorize, "scope").unwrap().contains("groups"));
    let back = s.at_provider(&mut b, &authorize, "alice");
    let r = b.get(&back);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.header("location"), Some("/api/v1/whoami"));
    let set = r.set_cookie("fleetpin_session").unwrap();
    assert!(
        set.ends_with("; HttpOnly; SameSite=Lax; Path=/"),
        "no Secure over plain http: {set}"
    );

    let me = signed_in(&s, &mut b);
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["id"], "alice@acme.example");
    assert_eq!(
        me["grants"],
        serde_json::json!([{"role": "deploy", "envs": ["prod"]}, {"role": "view", "envs": null}])
    );
    let csrf = me["csrf"].as_str().unwrap().to_string();

    // The same answer again: its state was used.
    let mut replay = Browser::default();
    let r = replay.get(&back);
    refused(&s, &mut replay, &r, 400, "unknown, used or expired sign-in");

    // State-changing requests without the CSRF token: refused, the session lives on.
    let r = b.send("POST", &s.url("/auth/logout"), &[], "");
    assert_eq!(r.status, 403, "{}", r.body);
    let r = b.post_form(&s.url("/auth/logout"), &[("csrf", "wrong")], &[]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = b.send("POST", &s.url("/api/v1/environments/prod/unlock"), &[], "");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("CSRF"), "{}", r.body);
    assert_eq!(signed_in(&s, &mut b).status, 200);

    // Sign-out with it: the session is revoked, the cookie cleared.
    let cookie = b.cookie("fleetpin_session").unwrap().clone();
    let r = b.send(
        "POST",
        &s.url("/auth/logout"),
        &[("x-csrf-token", csrf)],
        "",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(
        r.set_cookie("fleetpin_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(signed_in(&s, &mut b).status, 401);
    let r = http(
        "GET",
        &s.url("/api/v1/whoami"),
        &[("cookie", format!("fleetpin_session={cookie}"))],
        "",
    );
    assert_eq!(r.status, 401, "the old cookie opens nothing: {}", r.body);

    // A form sign-out (the console's button) goes back to /. Signing in again ends the
    // browser's previous session.
    let r = s.sign_in(&mut b, "alice", "/");
    assert_eq!(r.status, 302);
    let before = b.cookie("fleetpin_session").unwrap().clone();
    let r = s.sign_in(&mut b, "alice", "/");
    assert_eq!(r.status, 302);
    assert_ne!(b.cookie("fleetpin_session").unwrap(), &before);
    let r = http(
        "GET",
        &s.url("/api/v1/whoami"),
        &[("cookie", format!("fleetpin_session={before}"))],
        "",
    );
    assert_eq!(r.status, 401, "the previous session ended: {}", r.body);
    let csrf = signed_in(&s, &mut b).json()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let r = b.post_form(&s.url("/auth/logout"), &[("csrf", &csrf)], &[]);
    assert_eq!((r.status, r.header("location")), (302, Some("/")));
    assert_eq!(signed_in(&s, &mut b).status, 401);

    let log = s.serve_log();
    assert!(log.contains("signed in: alice@acme.example"), "{log}");
    assert!(!log.contains(SECRET));
}

#[test]
fn es256_id_tokens_sign_in_too() {
    let Some(s) = Setup::start("fleetpin-es") else {
        return;
    };
    let mut b = Browser::default();
    let r = s.sign_in(&mut b, "alice", "/");
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(signed_in(&s, &mut b).json()["id"], "alice@acme.example");
}

#[test]
fn someone_without_a_role_is_not_signed_in() {
    let Some(s) = Setup::start("fleetpin") else {
        return;
    };
    let mut b = Browser::default();
    let r = s.sign_in(&mut b, "bob", "/");
    refused(&s, &mut b, &r, 403, "no role for you here");
}

#[test]
fn a_tampered_state_or_another_browser_is_refused() {
    let Some(s) = Setup::start("fleetpin") else {
        return;
    };
    let mut b = Browser::default();
    let authorize = s.login(&mut b, "/");
    let back = s.at_provider(&mut b, &authorize, "alice");
    let state = query(&back, "state").unwrap();
    let mut tampered_state = state.clone();
    let last = tampered_state.pop().unwrap();
    tampered_state.push(if last == 'A' { 'B' } else { 'A' });
    let tampered = back.replace(
        &format!("state={state}"),
        &format!("state={tampered_state}"),
    );
    let r = b.get(&tampered);
    refused(&s, &mut b, &r, 400, "unknown, used or expired sign-in");
    let r = b.get(&back.replace(&format!("state={state}"), "x=y"));
    refused(&s, &mut b, &r, 400, "unknown, used or expired sign-in");

    // The genuine answer, but in a browser that did not start this sign-in (login CSRF).
    let mut other = Browser::default();
    let r = other.get(&back);
    refused(&s, &mut other, &r, 400, "started in another browser");
}

#[test]
fn an_id_token_for_another_client_or_sign_in_is_refused() {
    let Some(s) = Setup::start("fleetpin") else {
        return;
    };
    let mut b = Browser::default();
    for (client, words) in [
        ("other", "issued to another client (aud)"),
        ("fleetpin", "belongs to another sign-in (nonce)"),
    ] {
        let authorize = s.login(&mut b, "/");
        let nonce = query(&authorize, "nonce").unwrap();
        // A genuine ID token the provider issued to `client`; for "fleetpin", in another
        // sign-in with another nonce.
        let nonce = if client == "other" {
            nonce
        } else {
            "another-nonce".into()
        };
        let id_token = s.id_token_for(&mut b, client, "alice", &nonce);
        s.control("substitute", &[("id_token", &id_token)]);
        let back = s.at_provider(&mut b, &authorize, "alice");
        let r = b.get(&back);
        refused(&s, &mut b, &r, 401, words);
        assert!(!r.body.contains(&id_token));
        let log = s.serve_log();
        assert!(log.contains(words), "{log}");
        assert!(!log.contains(&id_token) && !log.contains(SECRET), "{log}");
    }
}

#[test]
fn an_expired_id_token_is_refused() {
    let Some(s) = Setup::start("fleetpin") else {
        return;
    };
    // The provider's clock two hours behind: its ID tokens (5 minutes) expired long ago.
    s.control("clock", &[("offset", "-7200")]);
    let mut b = Browser::default();
    let r = s.sign_in(&mut b, "alice", "/");
    refused(&s, &mut b, &r, 401, "expired (exp)");
    // The same provider on time signs in.
    s.control("clock", &[("offset", "0")]);
    let r = s.sign_in(&mut b, "alice", "/");
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(signed_in(&s, &mut b).status, 200);
}
