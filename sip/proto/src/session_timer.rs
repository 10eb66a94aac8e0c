//! RFC 4028 session timers: negotiating the session interval and the
//! refresher on INVITE/2xx (and on every refresh), and the two deadlines of
//! an established call: the refresher's refresh at half the interval (§10)
//! and the BYE when the session expires unrefreshed (§10: at the interval
//! minus the lesser of 32 s and a third of it).

use std::time::{Duration, Instant};

use sip_message::{Header, Headers, Refresher, Request, SessionExpires};

/// RFC 4028 §4: the smallest Session-Expires and Min-SE allowed.
pub const MIN_SE_FLOOR: u32 = 90;

/// How we take part in session timers. `Config::session_timer: None`
/// turns them off (we neither ask for nor refresh sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The Session-Expires we ask for (UAC) or impose when the caller asks
    /// for nothing (UAS), seconds.
    pub interval: u32,
    /// Our Min-SE: shorter intervals are refused with 422 (§8.1), seconds.
    pub min_se: u32,
    /// How we refresh when we are the refresher.
    pub refresh_method: RefreshMethod,
}

impl Default for SessionTimerConfig {
    /// 30 minutes, Min-SE 90 s, UPDATE when the peer allows it.
    fn default() -> Self {
        SessionTimerConfig {
            interval: 1800,
            min_se: MIN_SE_FLOOR,
            refresh_method: RefreshMethod::UpdateWhenAllowed,
        }
    }
}

/// The request that refreshes a session (RFC 4028 §7.4, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMethod {
    /// UPDATE without a body when the peer's Allow lists UPDATE (no SDP
    /// renegotiation), else re-INVITE.
    UpdateWhenAllowed,
    /// Always re-INVITE with our current SDP (for peers that mishandle UPDATE).
    Reinvite,
}

/// The deadlines of a running session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTimer {
    pub interval: u32,
    pub we_refresh: bool,
    /// When we send the next refresh (refresher only; `None` while one is in flight).
    pub refresh_at: Option<Instant>,
    /// When we send BYE if no refresh succeeded (§10).
    pub expire_at: Instant,
}

impl SessionTimer {
    /// Starts (or restarts, on a 2xx to a refresh) the timer at `now`.
    pub(crate) fn start(now: Instant, interval: u32, we_refresh: bool) -> SessionTimer {
        let whole = Duration::from_secs(u64::from(interval));
        SessionTimer {
            interval,
            we_refresh,
            // §10: "the refresher SHOULD send a refresh at half the interval".
            refresh_at: we_refresh.then_some(now + whole / 2),
            // §10: BYE "before the session expires", at
            // interval - min(32, interval/3).
            expire_at: now + whole - Duration::from_secs(u64::from((interval / 3).min(32))),
        }
    }

    pub(crate) fn next_timeout(&self) -> Instant {
        self.refresh_at
            .map_or(self.expire_at, |r| r.min(self.expire_at))
    }
}

/// The agreed session interval and which side of the transaction refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    pub interval: u32,
    pub refresher: Refresher,
}

/// What a UAS does with the session-timer headers of an INVITE or UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UasNegotiation {
    /// No session timer on this session.
    None,
    Agreed(Agreed),
    /// §8.1: the interval is below our Min-SE: 422 with Min-SE.
    TooSmall {
        min_se: u32,
    },
}

/// §9: the UAS side of the negotiation.
pub(crate) fn negotiate_as_uas(
    config: Option<&SessionTimerConfig>,
    request: &Request,
) -> UasNegotiation {
    let Some(config) = config else {
        return UasNegotiation::None;
    };
    let h = &request.headers;
    let peer_supports = h.lists("Supported", "timer") || h.lists("Require", "timer");
    let their_min = h.min_se().ok().flatten().unwrap_or(MIN_SE_FLOOR);
    match h.session_expires().ok().flatten() {
        Some(se) if se.delta < config.min_se => UasNegotiation::TooSmall {
            min_se: config.min_se,
        },
        Some(se) => {
            // §9: the UAS may shorten the interval, never below the Min-SE.
            let interval = se.delta.min(config.interval.max(their_min));
            // §9: with no refresher named, the UAS picks; a UAC without
            // timer support cannot refresh.
            let refresher = match (se.refresher, peer_supports) {
                (Some(r), true) => r,
                (Some(_), false) | (None, false) => Refresher::Uas,
                (None, true) => Refresher::Uac,
            };
            UasNegotiation::Agreed(Agreed {
                interval,
                refresher,
            })
        }
        // §9: the UAS may impose a session timer it refreshes itself.
        None => UasNegotiation::Agreed(Agreed {
            interval: config.interval.max(their_min).max(config.min_se),
            refresher: Refresher::Uas,
        }),
    }
}

/// §7.2: what the 2xx to our INVITE or UPDATE agreed, if anything.
pub(crate) fn agreed_by_response(headers: &Headers) -> Option<Agreed> {
    let se = headers.session_expires().ok().flatten()?;
    Some(Agreed {
        interval: se.delta,
        // §7.2: a 2xx naming no refresher leaves it to the UAC.
        refresher: se.refresher.unwrap_or(Refresher::Uac),
    })
}

/// Supported, Session-Expires and Min-SE for a request (§7.1, §7.4).
pub(crate) fn add_request_headers(
    headers: &mut Headers,
    interval: u32,
    min_se: u32,
    refresher: Option<Refresher>,
) {
    headers.push(Header::new("Supported", "timer"));
    let se = SessionExpires {
        delta: interval,
        refresher,
    };
    headers.push(Header::new("Session-Expires", se.to_string()));
    headers.push(Header::new("Min-SE", min_se.to_string()));
}

/// Session-Expires (and Require: timer when the UAC refreshes) for a 2xx (§9).
pub(crate) fn add_response_headers(headers: &mut Headers, agreed: Agreed) {
    let se = SessionExpires {
        delta: agreed.interval,
        refresher: Some(agreed.refresher),
    };
    headers.push(Header::new("Supported", "timer"));
    if agreed.refresher == Refresher::Uac {
        headers.push(Header::new("Require", "timer"));
    }
    headers.push(Header::new("Session-Expires", se.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_message::Message;

    fn request(extra: &str) -> Request {
        let text = format!("INVITE sip:a@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n");
        match Message::parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uas_negotiation_follows_section_9() {
        let config = SessionTimerConfig::default();
        let c = Some(&config);
        assert_eq!(
            negotiate_as_uas(c, &request("Supported: timer\r\nSession-Expires: 60\r\n")),
            UasNegotiation::TooSmall { min_se: 90 }
        );
        assert_eq!(
            negotiate_as_uas(c, &request("Supported: timer\r\nSession-Expires: 120\r\n")),
            UasNegotiation::Agreed(Agreed {
                interval: 120,
                refresher: Refresher::Uac
            })
        );
        assert_eq!(
            negotiate_as_uas(c, &request("Session-Expires: 120;refresher=uac\r\n")),
            UasNegotiation::Agreed(Agreed {
                interval: 120,
                refresher: Refresher::Uas
            }),
            "a UAC without timer support cannot refresh"
        );
        assert_eq!(
            negotiate_as_uas(c, &request("Supported: timer\r\nx: 7200;refresher=uas\r\n")),
            UasNegotiation::Agreed(Agreed {
                interval: 1800,
                refresher: Refresher::Uas
            }),
            "shortened to ours; compact form read"
        );
        assert_eq!(
            negotiate_as_uas(c, &request("")),
            UasNegotiation::Agreed(Agreed {
                interval: 1800,
                refresher: Refresher::Uas
            })
        );
        assert_eq!(
            negotiate_as_uas(None, &request("Session-Expires: 120\r\n")),
            UasNegotiation::None
        );
    }

    #[test]
    fn deadlines_follow_section_10() {
        let t0 = Instant::now();
        let t = SessionTimer::start(t0, 90, true);
        assert_eq!(t.refresh_at, Some(t0 + Duration::from_secs(45)));
        assert_eq!(t.expire_at, t0 + Duration::from_secs(60));
        let t = SessionTimer::start(t0, 1800, false);
        assert_eq!(t.refresh_at, None);
        assert_eq!(t.expire_at, t0 + Duration::from_secs(1768));
    }
}
