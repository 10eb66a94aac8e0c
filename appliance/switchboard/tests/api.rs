//! The admin API as a client meets it: the router served on 127.0.0.1 over a real SQLite store
//! (and, for knowledge, the installed MiniLM embedder), spoken to with a real HTTP client; the
//! `switchboard` binary where a command belongs to the story (tokens, disabling, memory).
#![allow(clippy::unwrap_used)] // reason: test helpers, where a panic is the failure report

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use models_api::testing::{model_file, models_dir};
use serde_json::{json, Value};
use switchboard::http::access::ROUTES;
use switchboard::http::AppState;
use switchboard::knowledge::Knowledge;
use switchboard::runtime::recording::{Recorder, Vault};
use switchboard_store::*;

const PASSWORD: &str = "correct horse battery";

/// One user per role, plus a disabled operator.
const USERS: [(&str, Role); 3] = [
    ("root", Role::Admin),
    ("olga", Role::Operator),
    ("andy", Role::Agent),
];

struct Server {
    rt: tokio::runtime::Runtime,
    store: Store,
    base: String,
    dir: tempfile::TempDir,
}

#[derive(Clone)]
enum Auth {
    Nobody,
    Cookie(String),
    Bearer(String),
}

struct Reply {
    status: u16,
    body: Value,
    set_cookie: Option<String>,
    retry_after: Option<String>,
}

impl Server {
    /// The API on a fresh database with the users, agents `front` and `sales`, and knowledge
    /// backed by the installed embedder when `with_knowledge`.
    fn start(with_knowledge: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = rt
            .block_on(Store::open_sqlite(
                &data.join("switchboard.db"),
                switchboard::keys::data_key(&data).unwrap(),
            ))
            .unwrap();
        let hash = switchboard::auth::hash_password(PASSWORD).unwrap();
        rt.block_on(async {
            for (name, role) in USERS {
                store.create_user(name, &hash, role).await.unwrap();
            }
            store
                .create_user("dora", &hash, Role::Operator)
                .await
                .unwrap();
            store.set_user_disabled("dora", true, "test").await.unwrap();
            for (name, number) in [("front", "1000"), ("sales", "2000")] {
                store.upsert_agent(&agent(name, number)).await.unwrap();
            }
            // The agent role sees the agents it works for: andy works the front desk.
            store
                .set_user_agents("andy", &["front".into()], "test")
                .await
                .unwrap();
        });
        // Uploads go through the built binary's document parser, with a memory limit the
        // tests' small files fit in and a large one does not.
        let limits = switchboard::documents::ParseLimits {
            memory_mb: 64,
            ..Default::default()
        };
        let knowledge = if with_knowledge {
            Knowledge::load(&data, &models_dir())
                .map(|k| k.with_isolated_parsing(env!("CARGO_BIN_EXE_switchboard").into(), limits))
                .map(Arc::new)
                .map_err(std::sync::Arc::new)
        } else {
            Err(std::sync::Arc::new(
                switchboard::engines::EngineError::Absent("no embedder in this test"),
            ))
        };
        let state = AppState::new(store.clone(), Ok(()), knowledge)
            .with_node("box-a".into())
            .with_recordings(Vault::open(&data).ok());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        rt.spawn(switchboard::http::serve(
            listener,
            None,
            state,
            std::future::pending(),
        ));
        Server {
            rt,
            store,
            base,
            dir,
        }
    }

    fn send(&self, method: &str, path: &str, auth: &Auth, body: Option<&[u8]>) -> Reply {
        let mut request = ureq::request(method, &format!("{}{path}", self.base));
        match auth {
            Auth::Nobody => {}
            Auth::Cookie(c) => request = request.set("Cookie", c),
            Auth::Bearer(t) => request = request.set("Authorization", &format!("Bearer {t}")),
        }
        let result = match body {
            // JSON for the routes that take it; the upload routes read the bytes whatever
            // the type.
            Some(b) => request
                .set("Content-Type", "application/json")
                .send_bytes(b),
            None => request.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let set_cookie = response.header("set-cookie").map(str::to_owned);
        let retry_after = response.header("retry-after").map(str::to_owned);
        let text = response.into_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            set_cookie,
            retry_after,
        }
    }

    fn get(&self, path: &str, auth: &Auth) -> Reply {
        self.send("GET", path, auth, None)
    }

    fn login_reply(&self, username: &str, password: &str, https: bool) -> Reply {
        let mut request =
            ureq::post(&format!("{}/api/login", self.base)).set("Content-Type", "application/json");
        if https {
            request = request.set("X-Forwarded-Proto", "https");
        }
        let body = json!({ "username": username, "password": password }).to_string();
        let response = match request.send_string(&body) {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("login: {e}"),
        };
        Reply {
            status: response.status(),
            set_cookie: response.header("set-cookie").map(str::to_owned),
            retry_after: response.header("retry-after").map(str::to_owned),
            body: serde_json::from_str(&response.into_string().unwrap()).unwrap(),
        }
    }

    /// Logs in and returns the session cookie to send back.
    fn login(&self, username: &str) -> Auth {
        let reply = self.login_reply(username, PASSWORD, false);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let cookie = reply.set_cookie.unwrap();
        Auth::Cookie(cookie.split(';').next().unwrap().to_owned())
    }

    /// The `switchboard` binary on this server's database.
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let config = self.dir.path().join("switchboard.toml");
        let agents: String = ["front", "sales"]
            .iter()
            .map(|a| format!("[[agents]]\nname = \"{a}\"\nnumbers = []\ngreeting = \"Hello.\"\nprompt = \"Be brief.\"\n"))
            .collect();
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\nnode = \"box-a\"\n{agents}\n[[trunks]]\nname = \"carrier\"\nproxy = \"sip:127.0.0.1:5999\"\n",
                self.dir.path().join("data")
            ),
        )
        .unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
            c.env_remove(k);
        }
        let out = c
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("USER", "tester")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn audit(&self) -> Vec<AuditEntry> {
        self.rt.block_on(self.store.audit_entries(100)).unwrap()
    }
}

fn agent(name: &str, number: &str) -> Agent {
    Agent {
        id: AgentId::new(),
        name: name.into(),
        numbers: vec![number.into()],
        greeting: "Hello, Acme Dental.".into(),
        prompt: "You are the receptionist of Acme Dental.".into(),
        consent: Consent::Off,
        transfer_to: None,
        language: "en".into(),
        voice: "en_US-joe-medium".into(),
    }
}

fn error(reply: &Reply) -> &str {
    reply.body["error"].as_str().unwrap_or_default()
}

#[test]
fn login_sessions_and_logout() {
    let s = Server::start(false);

    let ok = s.login_reply("olga", PASSWORD, false);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["role"], "operator");
    let cookie = ok.set_cookie.unwrap();
    for attribute in [
        "switchboard_session=sbs_",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let behind_tls = s.login_reply("olga", PASSWORD, true).set_cookie.unwrap();
    assert!(behind_tls.contains("; Secure"), "{behind_tls}");

    let session = Auth::Cookie(cookie.split(';').next().unwrap().to_owned());
    let me = s.get("/api/me", &session);
    assert_eq!(me.status, 200);
    assert_eq!(
        (&me.body["username"], &me.body["role"], &me.body["via"]),
        (&json!("olga"), &json!("operator"), &json!("session"))
    );

    // The same answer whatever was wrong, so it tells a guesser nothing.
    let wrong = s.login_reply("olga", "not the password", false);
    let unknown = s.login_reply("nobody", PASSWORD, false);
    let disabled = s.login_reply("dora", PASSWORD, false);
    for reply in [&wrong, &unknown, &disabled] {
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(error(reply), "unknown username or wrong password");
        assert!(reply.set_cookie.is_none());
    }

    let anonymous = s.get("/api/me", &Auth::Nobody);
    assert_eq!(anonymous.status, 401);
    assert!(error(&anonymous).contains("log in"), "{}", anonymous.body);
    let forged = s.get(
        "/api/me",
        &Auth::Cookie("switchboard_session=sbs_0000".into()),
    );
    assert_eq!(forged.status, 401);

    // The audit log has each login and each failure with its reason (never the password).
    let audit = s.audit();
    let failures: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e.action == "user.login_failed")
        .map(|e| (e.target.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(failures.len(), 3);
    assert!(failures
        .iter()
        .any(|(who, d)| *who == "dora" && d.contains("disabled user")));
    assert!(failures
        .iter()
        .any(|(who, d)| *who == "nobody" && d.contains("unknown user")));
    assert!(audit.iter().all(|e| !e.detail.contains("not the password")));
    assert_eq!(audit.iter().filter(|e| e.action == "user.login").count(), 2);

    let out = s.send("POST", "/api/logout", &session, Some(b""));
    assert_eq!(out.status, 204);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(
        s.get("/api/me", &session).status,
        401,
        "the session is gone"
    );
}

#[test]
fn bearer_tokens_from_the_cli_and_disabled_users() {
    let s = Server::start(false);
    let (ok, token, stderr) = s.cli(&["user", "token", "andy", "--name", "wallboard"]);
    assert!(ok, "{stderr}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("sbt_"), "{token}");
    assert!(stderr.contains("shown only now"), "{stderr}");

    let bearer = Auth::Bearer(token.clone());
    let me = s.get("/api/me", &bearer);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        (&me.body["username"], &me.body["via"]),
        (&json!("andy"), &json!("token"))
    );
    assert_eq!(
        s.get("/api/me", &Auth::Bearer(format!("{token}x"))).status,
        401
    );
    let (ok, _, stderr) = s.cli(&["user", "token", "nobody"]);
    assert!(
        !ok && stderr.contains("no user named \"nobody\""),
        "{stderr}"
    );

    // Disabling a user ends their sessions and tokens at once; enabling restores them.
    let session = s.login("andy");
    assert!(s.cli(&["user", "disable", "andy"]).0);
    assert_eq!(s.get("/api/me", &bearer).status, 401);
    assert_eq!(s.get("/api/me", &session).status, 401);
    assert_eq!(s.login_reply("andy", PASSWORD, false).status, 401);
    assert!(s.cli(&["user", "enable", "andy"]).0);
    assert_eq!(s.get("/api/me", &bearer).status, 200);

    let audit = s.audit();
    for action in ["api_token.create", "user.disable", "user.enable"] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.actor == "cli:tester" && e.target == "andy"),
            "{action} audited"
        );
    }
}

#[test]
fn repeated_failed_logins_back_off() {
    let s = Server::start(false);
    for _ in 0..=switchboard::auth::FREE_FAILURES {
        assert_eq!(s.login_reply("olga", "guess", false).status, 401);
    }
    let throttled = s.login_reply("olga", PASSWORD, false);
    assert_eq!(throttled.status, 429, "even the right password waits");
    assert_eq!(throttled.retry_after.as_deref(), Some("1"));
    assert!(error(&throttled).contains("too many failed logins"));
    // Another user from the same address is not held up.
    assert_eq!(s.login_reply("root", PASSWORD, false).status, 200);
    // That the wait ends, and how it grows, is tested on the throttle's own clock
    // (`auth::tests::guessing_backs_off_per_address_and_user`), not by sleeping here.
}

/// Password spraying: one address trying many usernames is slowed down too, and a username of
/// a megabyte costs no lookup and leaves no trace in the audit log.
#[test]
fn spraying_and_oversized_usernames_are_held_off() {
    let s = Server::start(false);
    let huge = "x".repeat(1 << 20);
    assert_eq!(s.login_reply(&huge, "guess", false).status, 401);
    for i in 0..=switchboard::auth::FREE_ADDRESS_FAILURES {
        assert_eq!(
            s.login_reply(&format!("guess{i}"), "guess", false).status,
            401
        );
    }
    let sprayed = s.login_reply("root", PASSWORD, false);
    assert_eq!(
        sprayed.status, 429,
        "the spraying address waits, even for a real user"
    );
    let audit = s.audit();
    assert!(audit
        .iter()
        .all(|e| e.target.len() <= switchboard::auth::MAX_USERNAME));
    let failed = audit
        .iter()
        .filter(|e| e.action == "user.login_failed")
        .count();
    assert_eq!(
        failed,
        switchboard::auth::FREE_ADDRESS_FAILURES as usize + 1
    );
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{name}", "front")
        .replace("{*document}", "nothing.md")
        .replace("{number}", "+15550100")
        .replace("{id}", "no-such-call")
        + if pattern.ends_with("/search") {
            "?q=hours"
        } else {
            ""
        }
}

#[test]
fn every_route_enforces_its_role() {
    let s = Server::start(false);
    let sessions: Vec<(Role, Auth)> = USERS.iter().map(|(n, r)| (*r, s.login(n))).collect();
    assert!(ROUTES.len() >= 13);
    for route in ROUTES {
        let (method, path) = (route.method.as_str(), concrete(route.path));
        let body: Option<&[u8]> = (method == "POST").then_some(b"");
        let anonymous = s.send(method, &path, &Auth::Nobody, body);
        let Some(min) = route.min else {
            assert!(
                ![401, 403].contains(&anonymous.status),
                "{method} {path} is open: {}",
                anonymous.status
            );
            continue;
        };
        assert_eq!(anonymous.status, 401, "{method} {path} without login");
        assert!(error(&anonymous).contains("log in"));
        for (role, auth) in &sessions {
            let reply = s.send(method, &path, auth, body);
            if role.at_least(min) {
                assert!(
                    ![401, 403].contains(&reply.status),
                    "{method} {path} as {}: {} {}",
                    role.as_str(),
                    reply.status,
                    reply.body
                );
                // Routed to a handler: a miss is our JSON 404, not the router's empty one.
                if reply.status == 404 {
                    assert!(!error(&reply).is_empty(), "{method} {path} is not routed");
                }
            } else {
                assert_eq!(reply.status, 403, "{method} {path} as {}", role.as_str());
                assert!(error(&reply).contains(min.as_str()), "{}", reply.body);
            }
        }
    }
}

#[test]
fn the_documented_route_table_is_the_enforced_one() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md"))
            .unwrap();
    // Rows of the table in docs/api.md: | `METHOD /path` | role | what |
    let documented: Vec<(String, String)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let route = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let (method, path) = route.split_once(' ')?;
            let role = cells.get(2)?;
            path.starts_with("/api/")
                .then(|| (format!("{method} {path}"), role.to_string()))
        })
        .collect();
    let enforced: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| {
            (
                format!("{} {}", r.method, r.path),
                r.min.map_or("anyone".into(), |m| m.as_str().to_string()),
            )
        })
        .collect();
    assert_eq!(documented, enforced);
}

#[test]
fn knowledge_upload_search_and_remove() {
    if model_file("all-MiniLM-L6-v2").is_none() {
        return;
    }
    let s = Server::start(true);
    let (olga, andy) = (s.login("olga"), s.login("andy"));
    let hours =
        b"# Opening hours\n\nThe Zanzibar branch opens at 7:15 on Sundays and closes at noon.\n\n\
# Parking\n\nThere are four parking spaces behind the building, free for patients.\n";
    let path = "/api/agents/front/knowledge";

    let up = s.send(
        "POST",
        &format!("{path}?filename=hours.md"),
        &olga,
        Some(hours),
    );
    assert_eq!(up.status, 201, "{}", up.body);
    assert_eq!(
        up.body,
        json!({ "document": "hours.md", "status": "added", "calls": null }),
        "no runtime here, so no calls to reload"
    );
    let again = s.send(
        "POST",
        &format!("{path}?filename=hours.md"),
        &olga,
        Some(hours),
    );
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("unchanged"))
    );
    let refused = s.send("POST", &format!("{path}?filename=x.md"), &andy, Some(hours));
    assert_eq!(refused.status, 403, "agents do not change knowledge");

    // Each bad file gets its own status and a reason naming it (not where it was staged).
    let huge = "word ".repeat(4_000_000);
    for (name, content, status, reason) in [
        (
            "notes.docx",
            &b"PK\x03\x04"[..],
            415,
            "notes.docx: unsupported format \"docx\"",
        ),
        (
            "scan.pdf",
            b"not a pdf at all",
            422,
            "scan.pdf: cannot read as pdf",
        ),
        ("empty.md", b"   \n", 422, "empty.md: no text found"),
        (
            "..%2Fescape.md",
            b"# Hi\n\nthere",
            400,
            "invalid name \"../escape.md\"",
        ),
        (".hidden.md", b"# Hi\n\nthere", 400, "invalid name"),
        // More than the parser's memory limit allows: refused, the daemon untouched.
        (
            "huge.txt",
            huge.as_bytes(),
            422,
            "huge.txt: cannot read as text: the parser failed",
        ),
    ] {
        let r = s.send(
            "POST",
            &format!("{path}?filename={name}"),
            &olga,
            Some(content),
        );
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert!(error(&r).starts_with(reason), "{name}: {}", r.body);
        assert!(!error(&r).contains(".upload-"), "{}", r.body);
    }
    let missing = s.send("POST", path, &olga, Some(hours));
    assert_eq!(missing.status, 400, "no filename");
    assert!(error(&missing).contains("filename"), "{}", missing.body);

    let list = s.get(path, &andy);
    assert_eq!(list.status, 200);
    let docs = list.body.as_array().unwrap();
    assert_eq!(
        docs.len(),
        1,
        "refused files left nothing behind: {}",
        list.body
    );
    assert_eq!(
        (&docs[0]["name"], &docs[0]["format"]),
        (&json!("hours.md"), &json!("markdown"))
    );
    assert!(docs[0]["chunks"].as_u64().unwrap() >= 1);

    let question = "/search?q=When%20does%20the%20Zanzibar%20branch%20open%20on%20Sunday%3F&k=3";
    let found = s.get(&format!("{path}{question}"), &andy);
    assert_eq!(found.status, 200, "{}", found.body);
    let best = &found.body[0];
    assert_eq!(best["source"], "hours.md");
    assert_eq!(best["heading"], "Opening hours");
    assert!(best["text"].as_str().unwrap().contains("7:15"), "{best}");
    assert!(best["score"].is_number() && best["similarity"].is_number());
    assert_eq!(s.get(&format!("{path}/search?q=%20"), &andy).status, 400);
    assert_eq!(
        s.get("/api/agents/ghost/knowledge/search?q=hours", &andy)
            .status,
        404
    );

    let removed = s.send("DELETE", &format!("{path}/hours.md"), &olga, None);
    assert_eq!(removed.status, 200, "{}", removed.body);
    let found = s.get(&format!("{path}{question}"), &andy);
    assert_eq!(found.body, json!([]), "the fact is gone");
    assert_eq!(s.get(path, &andy).body, json!([]));
    let again = s.send("DELETE", &format!("{path}/hours.md"), &olga, None);
    assert_eq!(again.status, 404);
    assert!(error(&again).contains("hours.md"));
    // Each change is audited (the refused uploads changed nothing and are not).
    let changes: Vec<(String, String, String)> = s
        .audit()
        .into_iter()
        .rev()
        .filter(|e| e.action.starts_with("knowledge."))
        .map(|e| (e.actor, e.action, e.detail))
        .collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes[0].2.contains("\"added\"") && changes[1].2.contains("\"unchanged\""));
    assert_eq!(
        (changes[2].0.as_str(), changes[2].1.as_str()),
        ("olga", "knowledge.remove")
    );
}

#[test]
fn knowledge_without_an_embedder_says_why() {
    let s = Server::start(false);
    let andy = s.login("andy");
    let r = s.get("/api/agents/front/knowledge", &andy);
    assert_eq!(r.status, 503);
    assert_eq!(
        error(&r),
        "knowledge cannot be managed now: no embedder in this test"
    );
    assert_eq!(s.get("/api/agents/ghost/knowledge", &andy).status, 404);
}

/// Operators see who is blocked and until when, and lift a block; each removal is audited,
/// from the API under the user's name and from the CLI under the system user's.
#[test]
fn the_blacklist_is_listed_and_lifted_with_an_audit_trail() {
    let s = Server::start(false);
    let (olga, andy) = (s.login("olga"), s.login("andy"));
    let first = std::time::Duration::from_secs(3600);
    s.rt.block_on(async {
        for number in ["+15551230050", "+15551230051"] {
            let call = CallRecord {
                id: CallRecordId::new(),
                sip_call_id: format!("bl-{number}"),
                direction: Direction::Inbound,
                agent_id: None,
                from_number: number.into(),
                to_number: "1000".into(),
                started_at: UnixMillis::now(),
                answered_at: None,
                ended_at: None,
                end_reason: None,
                consent: None,
                node: None,
            };
            s.store.insert_call(&call).await.unwrap();
            s.store
                .block_for_abuse(
                    number,
                    "abusive language",
                    &call.id,
                    "agent:front",
                    UnixMillis::now(),
                    first,
                )
                .await
                .unwrap();
        }
    });
    let listed = s.get("/api/blacklist", &olga);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let entries = listed.body.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .all(|e| e["active"] == true && e["offences"] == 1));
    assert!(entries
        .iter()
        .all(|e| e["expires_at"].as_i64() > e["added_at"].as_i64()));
    assert_eq!(
        s.get("/api/blacklist", &andy).status,
        403,
        "the blacklist is for operators"
    );

    let removed = s.send("DELETE", "/api/blacklist/+15551230050", &olga, None);
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(
        s.send("DELETE", "/api/blacklist/+15551230050", &olga, None)
            .status,
        404
    );
    let (ok, out, err) = s.cli(&["blacklist", "list"]);
    assert!(
        ok && out.contains("+15551230051") && !out.contains("+15551230050"),
        "{out}{err}"
    );
    let (ok, _, err) = s.cli(&["blacklist", "remove", "+15551230051"]);
    assert!(ok, "{err}");
    assert_eq!(s.get("/api/blacklist", &olga).body, json!([]));
    let removals: Vec<(String, String)> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "blacklist.remove")
        .map(|e| (e.actor, e.target))
        .collect();
    assert_eq!(removals.len(), 2);
    // The audit log names a number by its last two digits: it is never erased.
    assert!(removals.contains(&("olga".into(), "…50".into())));
    assert!(removals
        .iter()
        .any(|(actor, n)| actor.starts_with("cli:") && n == "…51"));

    // The trail verifies; a removal edited out of it afterwards does not.
    let (ok, out, err) = s.cli(&["audit", "verify"]);
    assert!(ok && out.starts_with("audit log intact: "), "{out}{err}");
    let (ok, out, _) = s.cli(&["audit", "list", "--limit", "1"]);
    assert!(
        ok && out.contains("\"action\":\"blacklist.remove\""),
        "{out}"
    );
    s.rt.block_on(async {
        sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE action = 'blacklist.remove'")
            .execute(s.store.pool())
            .await
            .unwrap();
    });
    let (ok, _, err) = s.cli(&["audit", "verify"]);
    assert!(!ok && err.contains("does not match its hash"), "{err}");
}

#[test]
fn caller_memory_is_shown_and_forgotten_with_an_audit_trail() {
    let s = Server::start(false);
    let (olga, andy) = (s.login("olga"), s.login("andy"));
    let number = "+15551230042";
    s.rt.block_on(async {
        for (agent, summary) in [
            ("front", "Asked what a crown costs."),
            ("sales", "Wants a quote."),
        ] {
            let id = s.store.agent_by_name(agent).await.unwrap().unwrap().id;
            s.store
                .remember_caller(&CallerMemory {
                    agent_id: id,
                    caller_number: number.into(),
                    summary: summary.into(),
                    updated_at: UnixMillis::now(),
                    last_call_id: None,
                })
                .await
                .unwrap();
        }
    });
    let path = format!("/api/callers/{number}/memory");

    let shown = s.get(&path, &olga);
    assert_eq!(shown.status, 200);
    let mut agents: Vec<&str> = shown
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["agent"].as_str().unwrap())
        .collect();
    agents.sort();
    assert_eq!(agents, ["front", "sales"]);
    assert!(shown.body.to_string().contains("Asked what a crown costs."));
    assert_eq!(s.get(&path, &andy).status, 403, "memory is for operators");
    let by_agent = s.get("/api/agents/sales/memory", &olga);
    assert_eq!(by_agent.body[0]["summary"], "Wants a quote.");

    // The CLI sees the same.
    let (ok, out, _) = s.cli(&["memory", "show", number]);
    assert!(ok && out.contains("Wants a quote."), "{out}");

    let one = s.send("DELETE", &format!("{path}?agent=sales"), &olga, None);
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["agents_forgotten"], 1);
    assert_eq!(s.get(&path, &olga).body.as_array().unwrap().len(), 1);
    let rest = s.send("DELETE", &path, &olga, None);
    assert_eq!(rest.body["agents_forgotten"], 1);
    assert_eq!(s.get(&path, &olga).body, json!([]));
    assert_eq!(s.send("DELETE", &path, &olga, None).status, 404);

    let forgets: Vec<AuditEntry> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "caller_memory.forget")
        .collect();
    assert_eq!(forgets.len(), 2);
    assert!(forgets
        .iter()
        .all(|e| e.actor == "olga" && e.target == "…42"));
    assert!(
        forgets.iter().all(|e| !e.detail.contains("quote")),
        "summaries stay forgotten"
    );

    // And from the command line, audited as its operating-system user.
    s.rt.block_on(
        s.store.remember_caller(&CallerMemory {
            agent_id: s
                .rt
                .block_on(s.store.agent_by_name("front"))
                .unwrap()
                .unwrap()
                .id,
            caller_number: number.into(),
            summary: "Called back.".into(),
            updated_at: UnixMillis::now(),
            last_call_id: None,
        }),
    )
    .unwrap();
    let (ok, out, _) = s.cli(&["memory", "list", "--agent", "front"]);
    assert!(ok && out.contains("Called back."), "{out}");
    let (ok, out, _) = s.cli(&["memory", "forget", number]);
    assert!(ok && out.contains("forgotten by 1 agent"), "{out}");
    assert_eq!(s.audit()[0].actor, "cli:tester");
}

#[test]
fn calls_are_listed_and_shown_with_transcript_and_timings() {
    let s = Server::start(false);
    let andy = s.login("andy");
    let front =
        s.rt.block_on(s.store.agent_by_name("front"))
            .unwrap()
            .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let call = CallRecord {
            id: CallRecordId::new(),
            sip_call_id: format!("c{i}@test"),
            direction: Direction::Inbound,
            agent_id: Some(front.id.clone()),
            from_number: "+15551230001".into(),
            to_number: "1000".into(),
            started_at: UnixMillis(1_700_000_000_000 + i * 60_000),
            answered_at: None,
            ended_at: None,
            end_reason: None,
            consent: None,
            node: None,
        };
        s.rt.block_on(s.store.insert_call(&call)).unwrap();
        ids.push(call.id);
    }
    let last = &ids[2];
    s.rt.block_on(async {
        s.store
            .record_turn(
                last,
                &Turn {
                    seq: 1,
                    started_at: UnixMillis(1_700_000_121_000),
                    caller_text: "When are you open?".into(),
                    agent_text: "Monday to Friday, eight to six.".into(),
                    interrupted: false,
                    timings: TurnTimings {
                        stt_ms: Some(140),
                        voice_to_voice_ms: Some(900),
                        ..Default::default()
                    },
                },
            )
            .await
            .unwrap();
        s.store
            .append_transcript(
                last,
                &TranscriptLine {
                    seq: 1,
                    at_ms: 1000,
                    speaker: Speaker::Caller,
                    text: "When are you open?".into(),
                },
            )
            .await
            .unwrap();
        s.store
            .finish_call(
                last,
                UnixMillis(1_700_000_130_000),
                &EndOfCall {
                    summary: Some("Asked for the opening hours.".into()),
                    outcome: Some(r#"{"intent":"hours"}"#.into()),
                    ..EndOfCall::new(EndReason::CallerHungUp)
                },
            )
            .await
            .unwrap();
    });

    let page = s.get("/api/calls?limit=2", &andy);
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.body.as_array().unwrap().clone();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], last.to_string(), "newest first");
    assert_eq!(page[0]["agent"], "front");
    let before = page[1]["started_at"].as_i64().unwrap();
    let next = s.get(&format!("/api/calls?limit=2&before={before}"), &andy);
    assert_eq!(next.body[0]["id"], ids[0].to_string());
    assert_eq!(next.body.as_array().unwrap().len(), 1);
    assert_eq!(s.get("/api/calls?limit=0", &andy).status, 400);

    let call = s.get(&format!("/api/calls/{last}"), &andy);
    assert_eq!(call.status, 200);
    let c = &call.body;
    assert_eq!(c["end_reason"], "caller_hung_up");
    assert_eq!(c["summary"], "Asked for the opening hours.");
    assert_eq!(c["outcome"]["intent"], "hours");
    assert_eq!(c["transcript"][0]["speaker"], "caller");
    assert_eq!(
        c["turns"][0]["agent_text"],
        "Monday to Friday, eight to six."
    );
    assert_eq!(c["turns"][0]["voice_to_voice_ms"], 900);
    assert_eq!(c["turns"][0]["endpoint_ms"], Value::Null);
    assert_eq!(s.get("/api/calls/nope", &andy).status, 404);
    // Reading a transcript leaves a trace: who read which call.
    let reads: Vec<(String, String)> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "call.read")
        .map(|e| (e.actor, e.target))
        .collect();
    assert_eq!(reads, [("andy".to_owned(), last.to_string())]);
}

/// A user of the agent role sees the agents it works for, their knowledge and their calls, and
/// nothing of the others: not in a list, not by id, not by name.
#[test]
fn the_agent_role_sees_only_the_agents_it_works_for() {
    let s = Server::start(false);
    let calls = [
        finished_call(&s, "front", "+15551230001", 2, "box-a", None),
        finished_call(&s, "sales", "+15551230001", 1, "box-a", None),
    ];
    let (front, sales) = (calls[0].to_string(), calls[1].to_string());
    let listed = |auth: &Auth, path: &str, field: &str| -> Vec<String> {
        let reply = s.get(path, auth);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v[field].as_str().unwrap().to_owned())
            .collect()
    };

    let andy = s.login("andy");
    assert_eq!(listed(&andy, "/api/calls", "id"), [front.as_str()]);
    assert_eq!(listed(&andy, "/api/agents", "name"), ["front"]);
    assert_eq!(s.get(&format!("/api/calls/{front}"), &andy).status, 200);
    assert_eq!(s.get(&format!("/api/calls/{sales}"), &andy).status, 404);
    assert_eq!(s.get("/api/agents/sales/knowledge", &andy).status, 404);
    assert_eq!(
        s.get("/api/agents/sales/knowledge/search?q=hours", &andy)
            .status,
        404
    );
    assert_eq!(s.get("/api/me", &andy).body["agents"], json!(["front"]));
    // Higher roles see every agent.
    let olga = s.login("olga");
    assert_eq!(
        listed(&olga, "/api/calls", "id"),
        [sales.clone(), front.clone()]
    );
    assert_eq!(listed(&olga, "/api/agents", "name"), ["front", "sales"]);
    assert_eq!(s.get(&format!("/api/calls/{sales}"), &olga).status, 200);
    assert_eq!(s.get("/api/me", &olga).body.get("agents"), None);

    // The operator moves andy to sales: the change holds at once, and is audited.
    let (ok, out, err) = s.cli(&["user", "agents", "andy", "sales"]);
    assert!(ok, "{out}{err}");
    assert_eq!(listed(&andy, "/api/calls", "id"), [sales.as_str()]);
    assert_eq!(s.get(&format!("/api/calls/{front}"), &andy).status, 404);
    let (ok, out, _) = s.cli(&["user", "agents", "andy"]);
    assert!(ok && out.contains("andy works for: sales"), "{out}");
    let change = s
        .audit()
        .into_iter()
        .find(|e| e.action == "user.agents" && e.actor == "cli:tester");
    assert_eq!(
        change.map(|e| e.detail),
        Some(r#"{"agents":["sales"]}"#.to_owned())
    );
    // Names are checked against the configuration, and only the agent role has a list.
    let (ok, _, err) = s.cli(&["user", "agents", "andy", "billing"]);
    assert!(!ok && err.contains("no agent named \"billing\""), "{err}");
    let (ok, _, err) = s.cli(&["user", "agents", "olga", "front"]);
    assert!(!ok && err.contains("sees every agent"), "{err}");
    let (ok, _, _) = s.cli(&["user", "agents", "andy", "--none"]);
    assert!(ok);
    assert!(listed(&andy, "/api/calls", "id").is_empty());
}

const DAY: i64 = 86_400_000;

/// A finished call of `agent` from `from`, `days_ago` days ago, taken by `node`, with a turn, a
/// transcript line, a summary and, when `recording` names a file, that file as its recording.
fn finished_call(
    s: &Server,
    agent: &str,
    from: &str,
    days_ago: i64,
    node: &str,
    recording: Option<&Path>,
) -> CallRecordId {
    let agent =
        s.rt.block_on(s.store.agent_by_name(agent))
            .unwrap()
            .unwrap();
    let ended = UnixMillis::now().0 - days_ago * DAY;
    let call = CallRecord {
        id: CallRecordId::new(),
        sip_call_id: format!("{}@test", CallRecordId::new()),
        direction: Direction::Inbound,
        agent_id: Some(agent.id),
        from_number: from.into(),
        to_number: agent.numbers[0].clone(),
        started_at: UnixMillis(ended - 60_000),
        answered_at: None,
        ended_at: None,
        end_reason: None,
        consent: None,
        node: Some(node.into()),
    };
    if let Some(file) = recording {
        std::fs::write(file, b"sealed audio").unwrap();
    }
    s.rt.block_on(async {
        s.store.insert_call(&call).await.unwrap();
        s.store
            .append_transcript(
                &call.id,
                &TranscriptLine {
                    seq: 1,
                    at_ms: 0,
                    speaker: Speaker::Caller,
                    text: "My date of birth is the fourth of May.".into(),
                },
            )
            .await
            .unwrap();
        let end = EndOfCall {
            recording_path: recording.map(|p| p.display().to_string()),
            summary: Some("The caller gave a date of birth.".into()),
            ..EndOfCall::new(EndReason::CallerHungUp)
        };
        s.store
            .finish_call(&call.id, UnixMillis(ended), &end)
            .await
            .unwrap();
    });
    call.id
}

/// The daemon's hourly purge, as configured: an agent's periods over the box's, recordings
/// only of this box, nothing kept longer than its record.
#[test]
fn retention_removes_what_each_agents_policy_no_longer_keeps() {
    let s = Server::start(false);
    let file = |name: &str| s.dir.path().join(name);
    let config: switchboard::config::Config = toml::from_str(
        r#"
        node = "box-a"
        [retention]
        calls_days = 365
        [[agents]]
        name = "front"
        numbers = ["1000"]
        greeting = "Hello."
        prompt = "Be brief."
        [agents.retention]
        recordings_days = 7
        transcripts_days = 30
        "#,
    )
    .unwrap();
    let recent = finished_call(
        &s,
        "front",
        "+15550000001",
        1,
        "box-a",
        Some(&file("recent.sbrec")),
    );
    let week_old = finished_call(
        &s,
        "front",
        "+15550000002",
        10,
        "box-a",
        Some(&file("week.sbrec")),
    );
    let on_b = finished_call(
        &s,
        "front",
        "+15550000003",
        10,
        "box-b",
        Some(&file("on-b.sbrec")),
    );
    let month_old = finished_call(&s, "front", "+15550000004", 40, "box-a", None);
    let sales_month_old = finished_call(&s, "sales", "+15550000005", 40, "box-a", None);
    let sales_year_old = finished_call(&s, "sales", "+15550000006", 400, "box-a", None);

    let purged =
        s.rt.block_on(switchboard::retention::purge(
            &config,
            &s.store,
            UnixMillis::now(),
        ))
        .unwrap();
    assert_eq!(
        purged,
        switchboard::retention::Purged {
            recordings: 1,
            transcripts: 1,
            memories: 0,
            calls: 1,
        }
    );
    assert!(
        file("recent.sbrec").exists(),
        "a recording inside its period stays"
    );
    assert!(
        !file("week.sbrec").exists(),
        "an expired recording is removed from disk"
    );
    assert!(
        file("on-b.sbrec").exists(),
        "another box's recording is that box's to remove"
    );
    let end = |id: &CallRecordId| s.rt.block_on(s.store.end_of_call(id)).unwrap();
    let words = |id: &CallRecordId| s.rt.block_on(s.store.transcript(id)).unwrap().len();
    assert_eq!(end(&week_old).unwrap().recording_path, None);
    assert!(end(&on_b).unwrap().recording_path.is_some());
    assert_eq!((words(&recent), words(&week_old)), (1, 1));
    assert_eq!(
        words(&month_old),
        0,
        "the agent's 30 days of transcripts are over"
    );
    assert_eq!(end(&month_old).unwrap().summary, None);
    assert_eq!(
        words(&sales_month_old),
        1,
        "sales keeps words as long as its records"
    );
    let call = |id: &CallRecordId| s.rt.block_on(s.store.call(id)).unwrap();
    assert!(
        call(&sales_year_old).is_none(),
        "the box's 365 days of records are over"
    );
    assert!(call(&month_old).is_some());
    // Purged once: the next round finds nothing.
    let again =
        s.rt.block_on(switchboard::retention::purge(
            &config,
            &s.store,
            UnixMillis::now(),
        ))
        .unwrap();
    assert_eq!(again, switchboard::retention::Purged::default());
    assert_eq!(
        s.audit()
            .iter()
            .filter(|e| e.action == "retention.purge")
            .count(),
        3,
        "recordings, transcripts and records each audited once"
    );
}

/// The right to erasure, over the API (admins only) and from the command line: every trace of
/// the caller goes, other callers stay, and a recording held by another box stops it first.
#[test]
fn a_caller_is_erased_by_an_admin_over_the_api_and_the_cli() {
    let s = Server::start(false);
    let file = |name: &str| s.dir.path().join(name);
    let number = "+15550007777";
    let first = finished_call(&s, "front", number, 3, "box-a", Some(&file("a.sbrec")));
    let second = finished_call(&s, "sales", "15550007777", 2, "box-a", None);
    let other = finished_call(&s, "front", "+15550008888", 2, "box-a", None);
    s.rt.block_on(s.store.add_to_dnd(number, "caller asked", "olga"))
        .unwrap();

    let path = "/api/callers/%2B15550007777";
    let olga = s.login("olga");
    assert_eq!(s.send("DELETE", path, &olga, None).status, 403);
    let root = s.login("root");
    let reply = s.send("DELETE", path, &root, None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["calls"], 2);
    assert_eq!(reply.body["recordings"], 1);
    assert_eq!(reply.body["transcript_lines"], 2);
    assert_eq!(reply.body["kept_on_dnd"], true);
    assert!(!file("a.sbrec").exists());
    let call = |id: &CallRecordId| s.rt.block_on(s.store.call(id)).unwrap();
    assert!(call(&first).is_none() && call(&second).is_none());
    assert!(call(&other).is_some());
    let erase = s
        .audit()
        .into_iter()
        .find(|e| e.action == "caller.erase")
        .unwrap();
    assert_eq!(
        (erase.actor.as_str(), erase.target.as_str()),
        ("root", "…77")
    );
    assert_eq!(
        s.send("DELETE", "/api/callers/%20", &root, None).status,
        400
    );

    // A recording on another box sharing the database: erased there first.
    let held = finished_call(
        &s,
        "front",
        "+15550009999",
        2,
        "box-b",
        Some(&file("b.sbrec")),
    );
    let reply = s.send("DELETE", "/api/callers/%2B15550009999", &root, None);
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(error(&reply).contains("box-b"), "{}", reply.body);
    assert!(call(&held).is_some() && file("b.sbrec").exists());

    let (ok, out, err) = s.cli(&["erase", "--number", "15550008888"]);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["calls"], 1);
    assert!(call(&other).is_none());
}

/// A call's recording is served decrypted, as WAV, to whoever may see the call, and each read
/// is audited; a call without one, or another agent's, is a 404.
#[test]
fn a_recording_is_served_to_whoever_may_see_its_call() {
    let s = Server::start(false);
    let data = s.dir.path().join("data");
    let vault = Vault::open(&data).unwrap();
    let record = |agent: &str| {
        let id = finished_call(&s, agent, "+15550001212", 1, "box-a", None);
        let mut recorder = Recorder::start(&vault, id.as_str()).unwrap();
        for _ in 0..100 {
            recorder.caller(&[1000; 160]);
            recorder.agent(&[-1000; 160]);
        }
        let path = recorder.finish().unwrap();
        let end = EndOfCall {
            recording_path: Some(path.display().to_string()),
            ..EndOfCall::new(EndReason::CallerHungUp)
        };
        s.rt.block_on(s.store.finish_call(&id, UnixMillis::now(), &end))
            .unwrap();
        id
    };
    let front = record("front");
    let sales = record("sales");
    let unrecorded = finished_call(&s, "front", "+15550001212", 1, "box-a", None);

    let andy = s.login("andy");
    let response = ureq::get(&format!("{}/api/calls/{front}/recording", s.base))
        .set(
            "Cookie",
            match &andy {
                Auth::Cookie(c) => c,
                _ => unreachable!(),
            },
        )
        .call()
        .unwrap();
    assert_eq!(response.content_type(), "audio/wav");
    assert_eq!(response.header("x-recording-complete"), Some("true"));
    let mut wav = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut wav).unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 8000)
    );
    assert_eq!(reader.len(), 2 * 100 * 160, "two seconds of stereo");
    let reads: Vec<(String, String)> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "recording.read")
        .map(|e| (e.actor, e.target))
        .collect();
    assert_eq!(reads, [("andy".to_owned(), front.to_string())]);

    assert_eq!(
        s.get(&format!("/api/calls/{sales}/recording"), &andy)
            .status,
        404
    );
    assert_eq!(
        s.get(&format!("/api/calls/{unrecorded}/recording"), &andy)
            .status,
        404
    );
    assert_eq!(
        s.get(&format!("/api/calls/{front}/recording"), &Auth::Nobody)
            .status,
        401
    );
    let olga = s.login("olga");
    assert_eq!(
        s.get(&format!("/api/calls/{sales}/recording"), &olga)
            .status,
        200
    );
}

/// The daemon itself serves the API, and without models says why knowledge is unavailable.
#[test]
fn the_daemon_serves_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = switchboard::config::load(None, []).unwrap();
    config.data_dir = dir.path().join("data");
    config.models.dir = dir.path().join("no-models-here");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, task) = rt.block_on(async {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = http.local_addr().unwrap();
        let sip = switchboard::bind_sip(&config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let listeners = switchboard::Listeners { http, sip };
        let task = tokio::spawn(switchboard::run(config, listeners, async {
            let _ = stopped.await;
        }));
        (addr, task)
    });
    let base = format!("http://{addr}");
    // The database exists once /healthz answers.
    assert_eq!(
        ureq::get(&format!("{base}/healthz"))
            .call()
            .unwrap()
            .status(),
        200
    );
    let store = rt
        .block_on(Store::open_sqlite(
            &dir.path().join("data/switchboard.db"),
            switchboard::keys::data_key(&dir.path().join("data")).unwrap(),
        ))
        .unwrap();
    let hash = switchboard::auth::hash_password(PASSWORD).unwrap();
    rt.block_on(async {
        store.create_user("root", &hash, Role::Admin).await.unwrap();
        store.upsert_agent(&agent("front", "1000")).await.unwrap();
    });
    let login = ureq::post(&format!("{base}/api/login"))
        .set("Content-Type", "application/json")
        .send_string(&json!({ "username": "root", "password": PASSWORD }).to_string())
        .unwrap();
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let agents = ureq::get(&format!("{base}/api/agents"))
        .set("Cookie", &cookie)
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let agents: Value = serde_json::from_str(&agents).unwrap();
    assert_eq!(agents[0]["name"], "front");
    let Err(ureq::Error::Status(503, r)) = ureq::get(&format!("{base}/api/agents/front/knowledge"))
        .set("Cookie", &cookie)
        .call()
    else {
        panic!("knowledge without models is 503");
    };
    let why = r.into_string().unwrap();
    assert!(why.contains("no-models-here"), "{why}");

    stop.send(()).unwrap();
    rt.block_on(task).unwrap().unwrap();
}

/// A key file as `switchboard` writes one: 32 bytes only its owner may read.
fn write_key(path: &Path, secret: &[u8; 32]) {
    std::fs::write(path, secret).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// `switchboard keys rotate`: the database is sealed again under a new data key, which replaces
/// `data.key`; everything reads back, numbers are still found; a rotation cut off at either
/// point is finished by running it again; a running daemon's directory is refused.
#[test]
fn the_data_key_is_rotated_and_everything_reads_back_under_the_new_one() {
    let s = Server::start(false);
    let data = s.dir.path().join("data");
    let number = "+15550006666";
    finished_call(&s, "front", number, 1, "box-a", None);
    s.rt.block_on(s.store.add_to_dnd("+15550005555", "caller asked", "olga"))
        .unwrap();
    let key_file = || std::fs::read(data.join("data.key")).unwrap();
    let before = key_file();

    let (ok, out, err) = s.cli(&["keys", "rotate"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(report["resealed"].as_u64().unwrap() >= 4, "{report}");
    assert_ne!(key_file(), before, "a new key in data.key");
    assert!(!data.join("data.key.next").exists());
    let new_id = report["new_key"].as_str().unwrap().to_owned();
    let sealed: Vec<String> = s
        .rt
        .block_on(sqlx::query_scalar("SELECT from_number FROM calls").fetch_all(s.store.pool()))
        .unwrap();
    assert!(
        sealed[0].starts_with(&format!("sb1.{new_id}.")),
        "{sealed:?}"
    );
    // Commands opening the database under the new key find the caller by number.
    let (ok, out, err) = s.cli(&["erase", "--number", number]);
    assert!(ok, "{err}");
    assert!(out.contains("\"calls\": 1"), "{out}");
    let rotation = s
        .audit()
        .into_iter()
        .find(|e| e.action == "data_key.rotate")
        .unwrap();
    assert_eq!(
        (rotation.actor.as_str(), rotation.target.as_str()),
        ("cli:tester", new_id.as_str())
    );

    // Cut off after the database took the next key: running again finishes the swap.
    let current = DataKey::new(&key_file().try_into().unwrap());
    let secret = [7u8; 32];
    let next = DataKey::new(&secret);
    write_key(&data.join("data.key.next"), &secret);
    let reopened =
        s.rt.block_on(Store::open_sqlite(&data.join("switchboard.db"), current))
            .unwrap();
    s.rt.block_on(reopened.reseal(&next)).unwrap();
    let (ok, out, err) = s.cli(&["keys", "rotate"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"finished_interrupted_rotation\": true"),
        "{out}"
    );
    assert_eq!(key_file(), secret);
    // Cut off before the database changed: the stale next key is dropped and it starts over.
    write_key(&data.join("data.key.next"), &[9u8; 32]);
    let (ok, out, err) = s.cli(&["keys", "rotate"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"finished_interrupted_rotation\": false"),
        "{out}"
    );
    assert_ne!(key_file(), secret);
    assert_ne!(key_file(), [9u8; 32]);
    let (ok, out, err) = s.cli(&["erase", "--number", "+15550005555"]);
    assert!(ok && out.contains("\"kept_on_dnd\": true"), "{out}{err}");

    // Never beside a running daemon.
    let _daemon = switchboard::lock_data_dir(&data).unwrap();
    let (ok, _, err) = s.cli(&["keys", "rotate"]);
    assert!(
        !ok && err.contains("in use by a running switchboard"),
        "{err}"
    );
}

/// `switchboard keys rotate --recordings`: every recording is sealed again under a new recording
/// key, which replaces `recording.key`; a rotation cut off part way resumes with the same key.
#[test]
fn the_recording_key_is_rotated_file_by_file() {
    let s = Server::start(false);
    let data = s.dir.path().join("data");
    let vault = Vault::open(&data).unwrap();
    for id in ["one", "two", "three"] {
        let mut recorder = Recorder::start(&vault, id).unwrap();
        for _ in 0..60 {
            recorder.caller(&[1000; 160]);
            recorder.agent(&[-1000; 160]);
        }
        recorder.finish().unwrap();
    }
    let audio = vault.open_recording("two").unwrap().wav;
    let old_key = std::fs::read(data.join("recording.key")).unwrap();

    // Cut off after one file: the next key exists and "one" is already under it.
    let secret = [5u8; 32];
    write_key(&data.join("recording.key.next"), &secret);
    assert!(vault.reseal("one", &vault.with_key(&secret)).unwrap());

    let (ok, out, err) = s.cli(&["keys", "rotate", "--recordings"]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            report["resealed"].as_u64(),
            report["already_resealed"].as_u64()
        ),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(std::fs::read(data.join("recording.key")).unwrap(), secret);
    assert_ne!(secret.to_vec(), old_key);
    assert!(!data.join("recording.key.next").exists());
    let rotated = Vault::open(&data).unwrap();
    assert_eq!(rotated.open_recording("two").unwrap().wav, audio);
    assert!(rotated.open_recording("one").unwrap().complete);
    let rotation = s
        .audit()
        .into_iter()
        .find(|e| e.action == "recording_key.rotate")
        .unwrap();
    assert_eq!(rotation.target, rotated.key_id());
}

/// An operator imports a contact list and runs a campaign from the CLI: rows that cannot be
/// dialled are named by line, bad rules are refused before anything is stored, and every status
/// change is audited.
#[test]
fn contacts_are_imported_and_a_campaign_is_run_from_the_cli() {
    let s = Server::start(false);
    let csv = s.dir.path().join("patients.csv");
    std::fs::write(
        &csv,
        "Name;Phone;first_name\n\
         Ann Lee;020 7946 0958;Ann\n\
         Bob Roy;+1 212 555 0143;Bob\n\
         Cy;12345;Cy\n\
         Di;+44 20 7946 0958;Di\n",
    )
    .unwrap();
    let path = csv.to_str().unwrap();
    let import = [
        "contacts",
        "import",
        "patients",
        path,
        "--number-column",
        "Phone",
        "--name-column",
        "Name",
        "--country",
        "GB",
        "--time-zone",
        "Europe/London",
    ];
    let (ok, out, err) = s.cli(&import);
    assert!(ok, "{err}");
    assert!(out.contains("2 contact(s) added"), "{out}");
    assert!(err.contains("patients.csv:4: \"12345\""), "{err}");
    assert!(
        err.contains("patients.csv:5: the number of line 2"),
        "{err}"
    );
    // The same list again adds nothing.
    let (ok, out, _) = s.cli(&import);
    assert!(
        ok && out.contains("0 contact(s) added, 2 already on the list"),
        "{out}"
    );

    let create = |extra: &[&str]| {
        let mut args = vec![
            "campaign",
            "create",
            "reminders",
            "--agent",
            "front",
            "--list",
            "patients",
        ];
        args.extend_from_slice(extra);
        if !extra.contains(&"--trunk") {
            args.extend(["--trunk", "carrier"]);
        }
        s.cli(&args)
    };
    for (bad, says) in [
        (&["--window", "18:00-09:00"][..], "calling window"),
        (&["--days", "weekdays"][..], "days"),
        (&["--retry", "declined=2/1h"][..], "retry rule"),
        (&["--trunk", "nowhere"][..], "no [[trunks]] entry"),
    ] {
        let (ok, _, err) = create(bad);
        assert!(!ok && err.contains(says), "{bad:?}: {err}");
    }
    let (ok, _, err) = create(&["--days", "Mon-Fri", "--retry", "busy=2/5m"]);
    assert!(ok, "{err}");
    let (ok, _, err) = s.cli(&["campaign", "start", "reminders"]);
    assert!(ok, "{err}");
    let (ok, out, err) = s.cli(&["campaign", "status", "reminders"]);
    assert!(ok, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["status"], "running");
    assert_eq!(status["days"], "mon,tue,wed,thu,fri");
    assert_eq!(status["retry"], "busy=2/5m");
    assert_eq!(status["contacts"], 2);
    let (ok, _, _) = s.cli(&["campaign", "stop", "reminders"]);
    assert!(ok);
    let (ok, _, err) = s.cli(&["campaign", "start", "reminders"]);
    assert!(!ok && err.contains("finished"), "{err}");
    let changes: Vec<String> = s
        .audit()
        .into_iter()
        .filter(|e| e.action == "campaign.status" && e.actor == "cli:tester")
        .map(|e| e.detail)
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");

    // The same through the API, as an operator.
    let olga = s.login("olga");
    let csv = b"number,first_name\n+44 161 496 0000,Eve\nnot a number,Fay\n";
    let imported = s.send(
        "POST",
        "/api/lists/clinic/contacts?country=GB",
        &olga,
        Some(csv),
    );
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.body["added"], 1);
    assert_eq!(imported.body["rejected"][0]["line"], 3);
    let bad = s.send(
        "POST",
        "/api/lists/clinic/contacts?number_column=Tel",
        &olga,
        Some(csv),
    );
    assert_eq!(bad.status, 400);
    assert!(error(&bad).contains("Tel"), "{}", bad.body);
    let (ok, _, err) = s.cli(&[
        "campaign", "create", "recall", "--agent", "front", "--list", "clinic", "--trunk",
        "carrier",
    ]);
    assert!(ok, "{err}");
    let status = |to: &str| {
        let body = json!({ "status": to }).to_string();
        s.send(
            "POST",
            "/api/campaigns/recall/status",
            &olga,
            Some(body.as_bytes()),
        )
    };
    assert_eq!(status("running").status, 200);
    assert_eq!(status("draft").status, 400);
    let paused = status("paused");
    assert_eq!(paused.body["status"], "paused", "{}", paused.body);
    let shown = s.get("/api/campaigns/recall", &olga);
    assert_eq!(shown.body["contacts"], 1);
    assert!(shown.body["history"].is_array(), "{}", shown.body);
    let all = s.get("/api/campaigns", &olga);
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    assert_eq!(s.get("/api/campaigns/nothing", &olga).status, 404);
    assert!(s
        .audit()
        .iter()
        .any(|e| e.action == "campaign.status" && e.actor == "olga"));
}
