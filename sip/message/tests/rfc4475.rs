//! RFC 4475 §3: every torture message, with what it must do.
//!
//! `Parses` messages must parse and validate (and round-trip); `Rejects`
//! must fail `Message::parse`; `Invalid` parse but fail `validate()` with
//! the given error — the checks a transaction layer runs. Extra checks on
//! what was parsed follow the table.

use std::path::Path;

use sip_message::{Contact, Host, Message, Method, ParseError, Transport, Uri};

enum Expect {
    Parses,
    Rejects(fn(&ParseError) -> bool),
    Invalid(fn(&ParseError) -> bool),
}
use Expect::*;

fn bad_header(name: &'static str) -> impl Fn(&ParseError) -> bool {
    move |e| matches!(e, ParseError::BadHeader { name: n, .. } if *n == name)
}

const TABLE: &[(&str, Expect)] = &[
    ("3.1.1.1_wsinv", Parses),
    ("3.1.1.2_intmeth", Parses),
    ("3.1.1.3_esc01", Parses),
    ("3.1.1.4_escnull", Parses),
    ("3.1.1.5_esc02", Parses),
    ("3.1.1.6_lwsdisp", Parses),
    ("3.1.1.7_longreq", Parses),
    ("3.1.1.8_dblreq", Parses),
    ("3.1.1.9_semiuri", Parses),
    ("3.1.1.10_transports", Parses),
    ("3.1.1.11_mpart01", Parses),
    ("3.1.1.12_unreason", Parses),
    ("3.1.1.13_noreason", Parses),
    // Empty Via/Contact parameters.
    (
        "3.1.2.1_badinv01",
        Invalid(|e| matches!(e, ParseError::BadHeader { name: "Via", .. })),
    ),
    (
        "3.1.2.2_clerr",
        Rejects(|e| matches!(e, ParseError::ContentLengthMismatch { declared: 9999, .. })),
    ),
    (
        "3.1.2.3_ncl",
        Rejects(|e| {
            matches!(
                e,
                ParseError::BadHeader {
                    name: "Content-Length",
                    ..
                }
            )
        }),
    ),
    (
        "3.1.2.4_scalar02",
        Invalid(|e| matches!(e, ParseError::BadHeader { name: "CSeq", .. })),
    ),
    (
        "3.1.2.5_scalarlg",
        Invalid(|e| matches!(e, ParseError::BadHeader { name: "CSeq", .. })),
    ),
    (
        "3.1.2.6_quotbal",
        Invalid(|e| matches!(e, ParseError::BadHeader { name: "To", .. })),
    ),
    (
        "3.1.2.7_ltgtruri",
        Rejects(|e| matches!(e, ParseError::BadRequestUri { .. })),
    ),
    (
        "3.1.2.8_lwsruri",
        Rejects(|e| matches!(e, ParseError::BadStartLine { .. })),
    ),
    (
        "3.1.2.9_lwsstart",
        Rejects(|e| matches!(e, ParseError::BadStartLine { .. })),
    ),
    (
        "3.1.2.10_trws",
        Rejects(|e| matches!(e, ParseError::BadStartLine { .. })),
    ),
    (
        "3.1.2.11_escruri",
        Invalid(|e| matches!(e, ParseError::BadRequestUri { .. })),
    ),
    (
        "3.1.2.12_baddate",
        Invalid(|e| matches!(e, ParseError::BadHeader { name: "Date", .. })),
    ),
    (
        "3.1.2.13_regbadct",
        Invalid(|e| {
            matches!(
                e,
                ParseError::BadHeader {
                    name: "Contact",
                    ..
                }
            )
        }),
    ),
    (
        "3.1.2.14_badaspec",
        Invalid(|e| matches!(e, ParseError::BadHeader { name: "To", .. })),
    ),
    // The archive's baddn has no empty line after its headers; the display
    // name check is exercised separately below.
    (
        "3.1.2.15_baddn",
        Rejects(|e| matches!(e, ParseError::MissingEmptyLine)),
    ),
    (
        "3.1.2.16_badvers",
        Rejects(|e| matches!(e, ParseError::VersionNotSupported { .. })),
    ),
    (
        "3.1.2.17_mismatch01",
        Invalid(|e| matches!(e, ParseError::CSeqMethodMismatch { .. })),
    ),
    (
        "3.1.2.18_mismatch02",
        Invalid(|e| matches!(e, ParseError::CSeqMethodMismatch { .. })),
    ),
    (
        "3.1.2.19_bigcode",
        Rejects(|e| matches!(e, ParseError::BadStartLine { .. })),
    ),
    // Valid syntax; a bare magic cookie is for the transaction layer.
    ("3.2.1_badbranch", Parses),
    (
        "3.3.1_insuf",
        Invalid(|e| matches!(e, ParseError::MissingHeader("From"))),
    ),
    (
        "3.3.2_unkscm",
        Invalid(|e| matches!(e, ParseError::UnsupportedUriScheme { .. })),
    ),
    (
        "3.3.3_novelsc",
        Invalid(|e| matches!(e, ParseError::UnsupportedUriScheme { .. })),
    ),
    // isbn:/http:/name: in To/From/Contact are fine to parse (§3.3.4).
    ("3.3.4_unksm2", Parses),
    ("3.3.5_bext01", Parses),
    ("3.3.6_invut", Parses),
    ("3.3.7_regaut01", Parses),
    (
        "3.3.8_multi01",
        Invalid(|e| matches!(e, ParseError::DuplicateHeader(_))),
    ),
    (
        "3.3.9_mcl01",
        Rejects(|e| matches!(e, ParseError::DuplicateHeader("Content-Length"))),
    ),
    ("3.3.10_bcast", Parses),
    ("3.3.11_zeromf", Parses),
    ("3.3.12_cparam01", Parses),
    ("3.3.13_cparam02", Parses),
    ("3.3.14_regescrt", Parses),
    ("3.3.15_sdp01", Parses),
    // RFC 2543 syntax: no branch, no Max-Forwards, no Content-Length.
    ("3.4.1_inv2543", Parses),
];

fn corpus_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc4475"))
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(format!("{name}.dat"))).expect("corpus file")
}

fn parse(name: &str) -> Message {
    Message::parse(&load(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn table_covers_every_file() {
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".dat").map(str::to_owned))
        .collect();
    files.sort();
    let mut names: Vec<String> = TABLE.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(files, names);
    assert_eq!(files.len(), 49);
}

#[test]
fn corpus_matches_sha256sums_line_count() {
    // The digests are checked with `sha256sum -c SHA256SUMS` (no hashing
    // crate here); this guards that every file is listed.
    let sums = std::fs::read_to_string(corpus_dir().join("SHA256SUMS")).expect("sums");
    for (name, _) in TABLE {
        assert!(
            sums.contains(&format!("  {name}.dat")),
            "{name} not in SHA256SUMS"
        );
    }
}

#[test]
fn every_message_meets_its_expectation() {
    for (name, expect) in TABLE {
        let bytes = load(name);
        let parsed = Message::parse(&bytes);
        match expect {
            Parses => {
                let message = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                message
                    .validate()
                    .unwrap_or_else(|e| panic!("{name}: validate: {e}"));
                // Round trip: what we write reads back the same.
                let again = Message::parse(&message.to_bytes())
                    .unwrap_or_else(|e| panic!("{name}: reparse: {e}"));
                assert_eq!(again.body(), message.body(), "{name}");
                assert_eq!(
                    again.headers().len(),
                    message.headers().len()
                        + usize::from(message.headers().get("Content-Length").is_none()),
                    "{name}"
                );
            }
            Rejects(check) => {
                let err = parsed.err().unwrap_or_else(|| panic!("{name}: parsed"));
                assert!(check(&err), "{name}: wrong error {err:?}");
            }
            Invalid(check) => {
                let message = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                let err = message
                    .validate()
                    .err()
                    .unwrap_or_else(|| panic!("{name}: valid"));
                assert!(check(&err), "{name}: wrong error {err:?}");
            }
        }
    }
}

#[test]
fn wsinv_details() {
    let m = parse("3.1.1.1_wsinv");
    let h = m.headers();
    assert_eq!(h.call_id().unwrap().as_str(), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    let cseq = h.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let vias = h.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].host, Host::Ipv4("192.0.2.2".parse().unwrap()));
    assert_eq!(vias[0].rport, None);
    assert_eq!(vias[0].branch.as_ref().unwrap().as_str(), "390skdjuw");
    assert_eq!(vias[1].transport, Transport::Tcp);
    assert_eq!(vias[2].branch.as_ref().unwrap().as_str(), "z9hG4bK30239");
    let from = h.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag().unwrap().as_str(), "98asjd8");
    assert_eq!(h.to().unwrap().tag().unwrap().as_str(), "1918181833n");
    assert_eq!(h.get("Subject").unwrap().value, b"");
    assert_eq!(
        h.get("NewFangledHeader").unwrap().value,
        b"newfangled value continued newfangled value"
    );
    assert_eq!(
        h.get("UnknownHeaderWithUnusualValue").unwrap().value,
        b";;,,;;,;"
    );
    let contacts = h.contacts().unwrap();
    let Contact::Address(c) = &contacts[0] else {
        panic!()
    };
    assert_eq!(c.display_name.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contacts[0].q().unwrap().unwrap().thousandths(), 330);
    assert_eq!(m.body().len(), 150);
    let Uri::Sip(ruri) = &m.as_request().unwrap().uri else {
        panic!()
    };
    assert_eq!(ruri.params.get("unknownparam"), Some(None));
}

#[test]
fn intmeth_esc_semiuri_details() {
    let m = parse("3.1.1.2_intmeth");
    let req = m.as_request().unwrap();
    assert_eq!(
        req.method,
        Method::Extension("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    let Uri::Sip(u) = &req.uri else { panic!() };
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(
        m.headers().call_id().unwrap().as_str(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    assert_eq!(
        m.headers().to().unwrap().display_name.as_deref(),
        Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}")
    );

    let m = parse("3.1.1.3_esc01");
    let Uri::Sip(u) = &m.as_request().unwrap().uri else {
        panic!()
    };
    assert_eq!(u.user.as_deref(), Some("sips%3Auser%40example.com"));
    assert_eq!(
        m.headers().call_id().unwrap().as_str(),
        "esc01.239409asdfakjkn23onasd0-3234"
    );

    let m = parse("3.1.1.5_esc02");
    assert_eq!(
        m.as_request().unwrap().method,
        Method::Extension("RE%47IST%45R".into())
    );
    assert_eq!(
        m.headers().contacts().unwrap().len(),
        2,
        "C%6Fntact is not Contact"
    );

    let m = parse("3.1.1.9_semiuri");
    let Uri::Sip(u) = &m.as_request().unwrap().uri else {
        panic!()
    };
    assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(m.headers().values("Accept").len(), 6);
}

#[test]
fn datagram_and_response_details() {
    let m = parse("3.1.1.8_dblreq");
    assert_eq!(m.as_request().unwrap().method, Method::Register);
    assert!(m.body().is_empty());

    let m = parse("3.1.1.11_mpart01");
    assert_eq!(m.body().len(), 553);

    let m = parse("3.1.1.12_unreason");
    let r = m.as_response().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.reason.ends_with("простое"));

    let m = parse("3.1.1.13_noreason");
    assert_eq!(m.as_response().unwrap().reason, "");

    let m = parse("3.1.1.10_transports");
    let t: Vec<Transport> = m
        .headers()
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(
        t,
        [
            Transport::Udp,
            Transport::Sctp,
            Transport::Tls,
            Transport::Other("UNKNOWN".into()),
            Transport::Tcp
        ]
    );

    let m = parse("3.1.1.7_longreq");
    assert_eq!(m.headers().vias().unwrap().len(), 34);
}

#[test]
fn semantic_details() {
    let m = parse("3.2.1_badbranch");
    assert!(!m.headers().top_via().unwrap().branch.unwrap().is_rfc3261());

    let m = parse("3.3.1_insuf");
    assert!(!m.as_request().unwrap().can_respond());

    let m = parse("3.3.2_unkscm");
    assert_eq!(m.validate().unwrap_err().status().0, 416);

    let m = parse("3.3.4_unksm2");
    assert_eq!(m.headers().to().unwrap().uri.scheme(), "isbn");

    let m = parse("3.3.8_multi01");
    assert_eq!(m.validate().unwrap_err().status().0, 400);

    let m = parse("3.3.11_zeromf");
    assert_eq!(m.headers().max_forwards().unwrap(), Some(0));

    // cparam01: unbracketed, so `unknownparam` is a Contact parameter;
    // cparam02: bracketed, so it is a URI parameter.
    let m = parse("3.3.12_cparam01");
    let Contact::Address(a) = &m.headers().contacts().unwrap()[0] else {
        panic!()
    };
    assert!(a.params.contains("unknownparam"));
    let m = parse("3.3.13_cparam02");
    let Contact::Address(a) = &m.headers().contacts().unwrap()[0] else {
        panic!()
    };
    assert!(a.uri.as_sip().unwrap().params.contains("unknownparam"));

    let m = parse("3.3.14_regescrt");
    let Contact::Address(a) = &m.headers().contacts().unwrap()[0] else {
        panic!()
    };
    assert_eq!(a.uri.as_sip().unwrap().headers[0].0, "Route");

    let m = parse("3.4.1_inv2543");
    assert!(m.headers().top_via().unwrap().branch.is_none());

    let err = Message::parse(&load("3.1.2.16_badvers")).unwrap_err();
    assert_eq!(err.status().0, 505);
}

#[test]
fn baddn_display_name_is_rejected_once_terminated() {
    let mut bytes = load("3.1.2.15_baddn");
    bytes.extend_from_slice(b"\r\n");
    let m = Message::parse(&bytes).unwrap();
    let err = m.validate().unwrap_err();
    assert!(bad_header("From")(&err), "{err:?}");
}
