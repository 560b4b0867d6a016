//! Session timers (RFC 4028): the interval agreed in the INVITE, who refreshes, and
//! when the session is declared dead.

use std::time::{Duration, Instant};

/// Smallest session interval we accept (RFC 4028 §4: 90 s).
pub const MIN_SE: u32 = 90;

/// A negotiated session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// Session interval in seconds.
    pub interval: u32,
    /// True when we (the UAS) refresh; false when the trunk does.
    pub we_refresh: bool,
    /// Last refresh (or start).
    pub refreshed: Instant,
}

/// What the Session-Expires header of a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionExpires {
    /// No session timer.
    None,
    /// Interval below Min-SE: answer 422 with `Min-SE: 90`.
    TooSmall,
    /// Accept with this interval; `uas_refresh` when the refresher is us.
    Accept {
        /// Seconds.
        interval: u32,
        /// We refresh.
        uas_refresh: bool,
    },
}

/// Reads `Session-Expires: 1800;refresher=uac`.
pub fn read_session_expires(value: Option<&str>) -> SessionExpires {
    let Some(v) = value else {
        return SessionExpires::None;
    };
    let mut parts = v.split(';');
    let Some(interval) = parts.next().and_then(|n| n.trim().parse::<u32>().ok()) else {
        return SessionExpires::None;
    };
    if interval < MIN_SE {
        return SessionExpires::TooSmall;
    }
    let uas_refresh = parts.any(|p| {
        let p = p.trim();
        p.eq_ignore_ascii_case("refresher=uas")
    });
    SessionExpires::Accept {
        interval,
        uas_refresh,
    }
}

impl SessionTimer {
    /// When we must send a refresh (half the interval) if we are the refresher.
    pub fn refresh_due(&self) -> Option<Instant> {
        self.we_refresh
            .then(|| self.refreshed + Duration::from_secs(u64::from(self.interval) / 2))
    }

    /// When the session is dead without a refresh (§10: interval minus
    /// min(32, interval/3)), if the trunk refreshes.
    pub fn expiry(&self) -> Instant {
        let i = u64::from(self.interval);
        self.refreshed + Duration::from_secs(i - (i / 3).min(32))
    }

    /// The Session-Expires value for our responses.
    pub fn header(&self) -> String {
        let who = if self.we_refresh { "uas" } else { "uac" };
        format!("{};refresher={who}", self.interval)
    }
}

#[cfg(test)]
mod rfc4028 {
    use super::*;

    #[test]
    fn session_expires_is_read_and_bounded() {
        assert_eq!(read_session_expires(None), SessionExpires::None);
        assert_eq!(read_session_expires(Some("60")), SessionExpires::TooSmall);
        assert_eq!(
            read_session_expires(Some("1800;refresher=uac")),
            SessionExpires::Accept {
                interval: 1800,
                uas_refresh: false
            }
        );
        assert_eq!(
            read_session_expires(Some("90 ; refresher=uas")),
            SessionExpires::Accept {
                interval: 90,
                uas_refresh: true
            }
        );
        let t0 = Instant::now();
        let st = SessionTimer {
            interval: 90,
            we_refresh: false,
            refreshed: t0,
        };
        assert_eq!(st.expiry(), t0 + Duration::from_secs(60));
        assert_eq!(st.refresh_due(), None);
        let st = SessionTimer {
            interval: 1800,
            we_refresh: true,
            refreshed: t0,
        };
        assert_eq!(st.expiry(), t0 + Duration::from_secs(1768));
        assert_eq!(st.refresh_due(), Some(t0 + Duration::from_secs(900)));
        assert_eq!(st.header(), "1800;refresher=uas");
    }
}
