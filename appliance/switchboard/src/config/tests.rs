use super::*;
use std::io::Write;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn error(text: &str) -> String {
    let f = file(text);
    let e = load(Some(f.path()), []).unwrap_err().to_string();
    e.strip_prefix(&f.path().display().to_string())
        .map(str::to_string)
        .unwrap_or(e)
}

#[test]
fn the_example_config_loads_and_is_the_defaults_plus_documentation() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml");
    let c = load(Some(&path), []).unwrap();
    assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.sip.listen, "0.0.0.0:5060".parse().unwrap());
    assert_eq!(c.models.profile, Profile::Small);
    assert_eq!(c.database.url, "");
    assert_eq!(c.agents[0].numbers, ["demo", "1000"]);
    assert!(c.agents[0].prompt_text().unwrap().contains("Acme Dental"));
}

#[test]
fn the_example_trunk_block_loads_when_uncommented() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let block: String = text
        .lines()
        .skip_while(|l| *l != "# [[trunks]]")
        .take_while(|l| l.starts_with("# "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    assert!(block.contains("proxy"), "no trunk block in the example");
    // `agents` names the example's agent; the block goes after it.
    let agents = &text[text.find("[[agents]]").unwrap()..];
    let f = file(&format!("{agents}\n{block}"));
    let c = load(Some(f.path()), []).unwrap();
    let t = &c.trunks[0];
    assert_eq!(t.proxy.transport, TrunkTransport::Udp);
    assert_eq!((t.options_interval, t.register), (30, false));
    assert_eq!(t.caller_id(), Some("+15551230000"));
    assert_eq!(c.outbound_trunk("demo").unwrap().name, "carrier");
    assert_eq!(c.outbound_trunk("demo"), c.trunks.first());
}

#[test]
fn no_file_means_defaults() {
    assert_eq!(load(None, []).unwrap(), Config::default());
    assert!(Config::default()
        .database_url()
        .ends_with("var/switchboard.db?mode=rwc"));
}

#[test]
fn wrong_type_names_line_and_field() {
    let e = error("data_dir = \"/tmp/sb\"\n\n[http]\nlisten = 8080\n");
    assert!(e.starts_with(":4: http.listen: "), "{e}");
    assert!(e.contains("invalid"), "{e}");
}

#[test]
fn unknown_field_and_bad_enum_are_rejected_with_line() {
    let e = error("[sip]\nlisten = \"0.0.0.0:5070\"\nlisen = \"x\"\n");
    assert!(e.starts_with(":3: sip"), "{e}");
    assert!(e.contains("unknown field `lisen`"), "{e}");
    let e = error("[models]\nprofile = \"huge\"\n");
    assert!(e.starts_with(":2: models.profile: "), "{e}");
    assert!(e.contains("small") && e.contains("standard"), "{e}");
}

#[test]
fn llm_is_local_or_an_openai_endpoint() {
    assert_eq!(Config::default().models.llm, LlmBackend::Local);
    let f = file("[models]\nllm = \"local\"\n");
    assert_eq!(
        load(Some(f.path()), []).unwrap().models.llm,
        LlmBackend::Local
    );
    let f = file(
        "[models]\nllm = { openai = { url = \"https://llm.example.internal/v1\", model = \"qwen\", \
         api_key_file = \"/etc/switchboard/openai.key\", ca_file = \"/etc/switchboard/ca.pem\" } }\n",
    );
    assert_eq!(
        load(Some(f.path()), []).unwrap().models.llm,
        LlmBackend::OpenAi(OpenAiBackend {
            url: "https://llm.example.internal/v1".into(),
            model: "qwen".into(),
            api_key_file: Some("/etc/switchboard/openai.key".into()),
            ca_file: Some("/etc/switchboard/ca.pem".into()),
            allow_plain_http: false,
        })
    );
    let e = error("[models]\nllm = \"remote\"\n");
    assert!(e.starts_with(":2: models.llm: "), "{e}");
    assert!(e.contains("local") && e.contains("openai"), "{e}");
    let e = error(
        "[models]\nllm = { openai = { url = \"http://h/v1\", model = \"m\", key = \"x\" } }\n",
    );
    assert!(e.starts_with(":2: models.llm"), "{e}");
    assert!(e.contains("unknown field `key`"), "{e}");
    let e = error("[models.llm.openai]\nmodel = \"m\"\nurl = \"ftp://api.example.com/v1\"\n");
    assert!(
        e.starts_with(
            ":3: models.llm.openai.url: \"ftp://api.example.com/v1\" is not an https:// URL"
        ),
        "{e}"
    );
    // The callers' words leave the box in clear only when the operator says so.
    let plain = "[models.llm.openai]\nmodel = \"m\"\nurl = \"http://10.0.0.5:8000/v1\"\n";
    let e = error(plain);
    assert!(
        e.contains("in clear to 10.0.0.5") && e.contains("allow_plain_http"),
        "{e}"
    );
    let f = file(&format!("{plain}allow_plain_http = true\n"));
    assert!(load(Some(f.path()), []).is_ok());
    let f = file("[models.llm.openai]\nmodel = \"m\"\nurl = \"http://127.0.0.1:8000/v1\"\n");
    assert!(
        load(Some(f.path()), []).is_ok(),
        "a server on this box needs no TLS"
    );
}

#[test]
fn admin_tls_takes_a_mode_and_a_certificate_with_its_key() {
    let c = load(Some(file("[http]\ntls = \"on\"\n").path()), []).unwrap();
    assert_eq!(c.http.tls, TlsMode::On);
    let e = error("[http]\ncert = \"/etc/switchboard/admin.crt\"\n");
    assert!(e.starts_with(":2: http.cert: "), "{e}");
    let e = error("[http]\ntls = \"maybe\"\n");
    assert!(e.starts_with(":2: http.tls"), "{e}");
}

#[test]
fn syntax_error_names_line() {
    let e = error("[http]\nlisten = \"127.0.0.1:80\n");
    assert!(e.starts_with(":2"), "{e}");
}

#[test]
fn semantic_error_names_line() {
    let e = error("[http]\nlisten = \"127.0.0.1:9000\"\n[database]\nurl = \"mysql://x\"\n");
    assert!(e.starts_with(":4: database.url: "), "{e}");
    let e = error("[http]\nlisten = \"0.0.0.0:5060\"\n");
    assert!(
        e.starts_with(": sip.listen: ") || e.contains("sip.listen"),
        "{e}"
    );
}

#[test]
fn agents_are_checked_where_they_are_written() {
    let agent = |name: &str, number: &str| {
        format!("[[agents]]\nname = \"{name}\"\nnumbers = [\"{number}\"]\ngreeting = \"Hi\"\nprompt = \"Be nice\"\n")
    };
    let ok = format!("{}{}", agent("a", "1000"), agent("b", "2000"));
    let f = file(&ok);
    let c = load(Some(f.path()), []).unwrap();
    assert_eq!(c.agents.len(), 2);
    assert_eq!(c.agents[1].consent, ConsentSetting::Off);
    assert_eq!(c.agents[1].voice, "en_US-joe-medium");

    let e = error(&format!("{}{}", agent("a", "1000"), agent("b", "1000")));
    assert!(
        e.starts_with(":8: agents[1].numbers: \"1000\" already routes to agent \"a\""),
        "{e}"
    );
    let e = error(&format!(
        "{}transfer_to = \"frontdesk\"\n",
        agent("a", "1000")
    ));
    assert!(e.starts_with(":6: agents[0].transfer_to: "), "{e}");
    let e = error("[[agents]]\nname = \"a\"\nnumbers = []\ngreeting = \"Hi\"\n");
    assert!(
        e.contains("agents[0].prompt: an agent needs prompt or prompt_file"),
        "{e}"
    );
    let e = error(&format!("{}consent = \"maybe\"\n", agent("a", "1000")));
    assert!(e.starts_with(":6: agents[0].consent: "), "{e}");
}

#[test]
fn trunk_allow_list_entries_are_checked() {
    let f = file("[sip]\nallow = [\"203.0.113.0/24\", \"2001:db8::1\"]\n");
    assert_eq!(load(Some(f.path()), []).unwrap().sip.allow.len(), 2);
    let e = error("[sip]\nallow = [\"203.0.113.0/24\",\n  \"carrier.example\"]\n");
    assert!(
        e.starts_with(":3: sip.allow[1]: \"carrier.example\" is not"),
        "{e}"
    );
}

#[test]
fn dns_servers_are_addresses_with_an_optional_port() {
    let f =
        file("[sip]\ndns_servers = [\"10.0.0.53\", \"10.0.0.54:5353\", \"[2001:db8::53]:53\"]\n");
    let sip = load(Some(f.path()), []).unwrap().sip;
    assert_eq!(
        sip.dns_servers(),
        [
            "10.0.0.53:53".parse::<SocketAddr>().unwrap(),
            "10.0.0.54:5353".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
        ]
    );
    let e = error("[sip]\ndns_servers = [\"10.0.0.53\",\n  \"ns1.example.com\"]\n");
    assert!(
        e.starts_with(":3: sip.dns_servers[1]: \"ns1.example.com\" is not an address"),
        "{e}"
    );
}

fn trunk(extra: &str) -> String {
    format!("[[trunks]]\nname = \"carrier\"\nproxy = \"sip:203.0.113.5\"\n{extra}")
}

#[test]
fn trunks_load_with_defaults_and_parsed_targets() {
    let f = file(&format!(
        "{}{}",
        trunk("allow = [\"203.0.113.0/24\"]\n"),
        "[[trunks]]\nname = \"pbx\"\nproxy = \"sip:pbx.example.internal:5070;transport=tcp\"\nusername = \"2001\"\npassword = \"s3cret\"\nregister = true\noptions_interval = 0\n"
    ));
    let c = load(Some(f.path()), []).unwrap();
    assert_eq!(c.trunks.len(), 2);
    let carrier = &c.trunks[0];
    assert_eq!(carrier.options_interval, 30);
    assert!(!carrier.register);
    assert_eq!(
        carrier.proxy.clone(),
        TrunkTarget {
            host: "203.0.113.5".into(),
            port: 5060,
            transport: TrunkTransport::Udp,
            uri: "sip:203.0.113.5".into(),
        }
    );
    assert_eq!(carrier.caller_id(), None);
    assert_eq!(c.trunks[1].caller_id(), Some("2001"));
    assert_eq!(c.outbound_trunk("anyone").unwrap().name, "carrier");
    let pbx = c.trunks[1].proxy.clone();
    assert_eq!(
        (pbx.host.as_str(), pbx.port),
        ("pbx.example.internal", 5070)
    );
    assert_eq!(pbx.transport, TrunkTransport::Tcp);
    assert_eq!(
        c.trunks[1].password_text().unwrap().as_deref(),
        Some("s3cret")
    );
    let tls: TrunkTarget = "sips:trunk.example.net".parse().unwrap();
    assert_eq!((tls.port, tls.transport), (5061, TrunkTransport::Tls));
}

#[test]
fn trunk_mistakes_are_named_where_they_are_written() {
    let e = error(&trunk("").replace("sip:203.0.113.5", "sip:203.0.113.5;transport=sctp"));
    assert!(
        e.starts_with(":3: trunks[0].proxy: \"sip:203.0.113.5;transport=sctp\": transport \"sctp\" is not udp, tcp or tls"),
        "{e}"
    );
    let e = error(&trunk("").replace("sip:203.0.113.5", "http://example.com"));
    assert!(e.starts_with(":3: trunks[0].proxy: "), "{e}");
    let e = error(&trunk("allow = [\"203.0.113.0/24\",\n  \"10.0.0.0/33\"]\n"));
    assert!(
        e.starts_with(":5: trunks[0].allow[1]: \"10.0.0.0/33\" is not an address or CIDR block"),
        "{e}"
    );
    let e = error(&trunk("register = true\n"));
    assert!(
        e.starts_with(":4: trunks[0].register: registering needs username and password"),
        "{e}"
    );
    let e = error(&trunk("username = \"acme\"\n"));
    assert!(
        e.starts_with(":4: trunks[0].username: a username needs password or password_file"),
        "{e}"
    );
    let e = error(&trunk("password = \"x\"\n"));
    assert!(
        e.starts_with(":4: trunks[0].password: a password needs a username"),
        "{e}"
    );
    let e = error(&trunk(
        "username = \"a\"\npassword_file = \"/nonexistent/trunk.pw\"\n",
    ));
    assert!(
        e.starts_with(":5: trunks[0].password_file: /nonexistent/trunk.pw is not a readable file"),
        "{e}"
    );
    let e = error(&trunk("agents = [\"nobody\"]\n"));
    assert!(
        e.starts_with(":4: trunks[0].agents: no agent is named \"nobody\""),
        "{e}"
    );
    let e = error(&trunk("options_intervall = 10\n"));
    assert!(e.contains("unknown field `options_intervall`"), "{e}");
    let e = error(&trunk("ca_file = \"/etc/ssl/certs/ca.pem\"\n"));
    assert!(
        e.starts_with(":4: trunks[0].ca_file: applies to TLS trunks only"),
        "{e}"
    );
    let e = error(
        &trunk("ca_file = \"/nonexistent/ca.pem\"\n")
            .replace("sip:203.0.113.5", "sips:sbc.example"),
    );
    assert!(
        e.starts_with(":4: trunks[0].ca_file: /nonexistent/ca.pem is not a readable file"),
        "{e}"
    );
    let e = error(&format!("{}{}", trunk(""), trunk("")));
    assert!(
        e.starts_with(":5: trunks[1].name: trunk \"carrier\" is declared twice"),
        "{e}"
    );
}

#[test]
fn trunks_authenticate_each_with_its_own_credentials() {
    let f = file(&format!(
        "{}{}",
        trunk("username = \"acme\"\npassword = \"x\"\n"),
        trunk("username = \"2001\"\npassword = \"y\"\nregister = true\n").replace("carrier", "pbx")
    ));
    let c = load(Some(f.path()), []).unwrap();
    assert_eq!(c.trunks[0].username.as_deref(), Some("acme"));
    assert_eq!(c.trunks[1].password_text().unwrap().as_deref(), Some("y"));
}

#[test]
fn trunk_password_comes_from_its_file() {
    let pw = file("hunter2\n");
    let f = file(&trunk(&format!(
        "username = \"acme\"\npassword_file = \"{}\"\n",
        pw.path().display()
    )));
    let c = load(Some(f.path()), []).unwrap();
    assert_eq!(
        c.trunks[0].password_text().unwrap().as_deref(),
        Some("hunter2")
    );
}

#[test]
fn inbound_allow_is_the_union_of_sip_and_trunk_lists() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let allows = |c: &Config, s: &str| {
        c.inbound_allow()
            .is_some_and(|blocks| blocks.iter().any(|b| b.contains(ip(s))))
    };
    // Nothing anywhere: nobody may call, unless the operator says anyone may.
    let c = load(Some(file(&trunk("")).path()), []).unwrap();
    assert_eq!(c.inbound_allow(), Some(Vec::new()));
    let c = load(Some(file("[sip]\nallow_any = true\n").path()), []).unwrap();
    assert_eq!(c.inbound_allow(), None);
    // sip.allow alone still works.
    let c = load(Some(file("[sip]\nallow = [\"198.51.100.7\"]\n").path()), []).unwrap();
    assert!(allows(&c, "198.51.100.7") && !allows(&c, "203.0.113.9"));
    // Union; a registering trunk's literal address joins once a list exists.
    let text = format!(
        "[sip]\nallow = [\"198.51.100.7\"]\n{}[[trunks]]\nname = \"pbx\"\nproxy = \"sip:192.0.2.20\"\nusername = \"2001\"\npassword = \"x\"\nregister = true\n",
        trunk("allow = [\"203.0.113.0/24\"]\n")
    );
    let c = load(Some(file(&text).path()), []).unwrap();
    for yes in ["198.51.100.7", "203.0.113.9", "192.0.2.20"] {
        assert!(allows(&c, yes), "{yes}");
    }
    assert!(!allows(&c, "192.0.2.21"));
}

#[test]
fn caller_id_is_trusted_only_from_listed_sources() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let c = load(
        Some(file(&trunk("allow = [\"203.0.113.0/24\"]\n")).path()),
        [],
    )
    .unwrap();
    assert!(
        !c.trusted_callers().allows(ip("203.0.113.9")),
        "allowed is not trusted"
    );
    let text = format!(
        "[sip]\ntrust_caller_id_from = [\"10.0.0.5\"]\n{}",
        trunk("allow = [\"203.0.113.0/24\"]\ntrust_caller_id = true\n")
    );
    let c = load(Some(file(&text).path()), []).unwrap();
    for yes in ["10.0.0.5", "203.0.113.9"] {
        assert!(c.trusted_callers().allows(ip(yes)), "{yes}");
    }
    assert!(!c.trusted_callers().allows(ip("10.0.0.6")));
    let e = error(&trunk("trust_caller_id = true\n"));
    assert!(
        e.contains("trust_caller_id: needs the trunk's allow list"),
        "{e}"
    );
    let e = error("[sip]\ntrust_caller_id_from = [\"pbx.example\"]\n");
    assert!(e.contains("sip.trust_caller_id_from[0]"), "{e}");
}

#[test]
fn environment_overrides_file() {
    let f =
        file("[http]\nlisten = \"127.0.0.1:9000\"\n[sip]\nexternal_address = \"198.51.100.7\"\n");
    let env = [
        (
            "SWITCHBOARD_HTTP_LISTEN".to_string(),
            "127.0.0.1:9100".to_string(),
        ),
        ("SWITCHBOARD_DATA_DIR".to_string(), "/srv/sb".to_string()),
        ("SWITCHBOARD_CONFIG".to_string(), "ignored".to_string()),
        ("PATH".to_string(), "/bin".to_string()),
    ];
    let c = load(Some(f.path()), env).unwrap();
    assert_eq!(c.http.listen, "127.0.0.1:9100".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("/srv/sb"));
    assert_eq!(
        c.sip.external_address,
        Some("198.51.100.7".parse().unwrap())
    );
}

#[test]
fn retention_periods_are_whole_days_and_an_agent_overrides_the_box() {
    let f = file(
        "[retention]\ncalls_days = 365\n[[agents]]\nname = \"a\"\nnumbers = []\n\
         greeting = \"Hi.\"\nprompt = \"Be brief.\"\n[agents.retention]\nrecordings_days = 7\n",
    );
    let env = [(
        "SWITCHBOARD_RETENTION_TRANSCRIPTS_DAYS".to_string(),
        "90".to_string(),
    )];
    let c = load(Some(f.path()), env).unwrap();
    let policy = c.agents[0].retention.or(c.retention);
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(
        policy.applied(),
        Retention {
            recordings: Some(7 * day),
            transcripts: Some(90 * day),
            calls: Some(365 * day),
        }
    );
    let e = error("[retention]\nrecordings_days = 0\n");
    assert!(
        e.contains("retention.recordings_days") && e.contains("nonzero"),
        "{e}"
    );
}

#[test]
fn a_database_across_the_network_needs_a_tls_choice() {
    let url = |u: &str| format!("[database]\nurl = \"{u}\"\n");
    let e = error(&url("postgres://sb:pw@db.example:5432/sb"));
    assert!(
        e.contains("database.url") && e.contains("db.example") && e.contains("sslmode=verify-full"),
        "{e}"
    );
    assert!(error(&url("postgresql://sb@[2001:db8::5]/sb")).contains("2001:db8::5"));
    for fine in [
        "postgres://sb:pw@db.example/sb?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        "postgres://sb@db.example/sb?application_name=x&sslmode=disable",
        "postgres://sb@127.0.0.1:5432/sb",
        "postgres://sb@localhost/sb",
        "postgres://sb@[::1]/sb",
        "postgres:///sb?host=/var/run/postgresql",
    ] {
        let f = file(&url(fine));
        assert!(load(Some(f.path()), []).is_ok(), "{fine}");
    }
}

#[test]
fn bad_environment_override_names_the_variable() {
    let env = [("SWITCHBOARD_MODELS_PROFILE".to_string(), "tiny".to_string())];
    let e = load(None, env).unwrap_err().to_string();
    assert!(
        e.starts_with("env SWITCHBOARD_MODELS_PROFILE: models.profile: "),
        "{e}"
    );
    let env = [(
        "SWITCHBOARD_DATABASE_URL".to_string(),
        "oracle://db".to_string(),
    )];
    let e = load(None, env).unwrap_err().to_string();
    assert!(
        e.starts_with("env SWITCHBOARD_DATABASE_URL: database.url: "),
        "{e}"
    );
    let env = [("SWITCHBOARD_SIP_PORT".to_string(), "5060".to_string())];
    let e = load(None, env).unwrap_err().to_string();
    assert!(e.contains("unknown field `port`"), "{e}");
}
