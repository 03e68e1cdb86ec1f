//! How slogate answers each of GitHub's answers: retry a transient failure with exponential
//! backoff and jitter, wait out a rate limit as GitHub's headers say (within a bound), or stop.
//!
//! Pure: [`classify`] looks at a status and headers, [`RetryPolicy::backoff`] computes a
//! delay; the client does the waiting.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// Bounds of retrying and waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Requests sent for one call at most, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry of a transient failure; doubles each time.
    pub base_delay: Duration,
    /// Backoff never exceeds this.
    pub max_delay: Duration,
    /// The longest a rate limit may make one call wait; a longer wait ends the promotion.
    pub max_rate_limit_wait: Duration,
    /// The first wait after a secondary rate limit that says nothing of how long to wait
    /// (no `Retry-After`, no exhausted quota): GitHub asks for at least a minute, and for
    /// longer each time the limit comes again, so it doubles with each such answer.
    pub secondary_limit_wait: Duration,
    /// The longest a whole promotion may take: a wait that would end past it ends the
    /// promotion at once instead, with the reason.
    pub budget: Duration,
    /// Connecting must succeed within this.
    pub connect_timeout: Duration,
    /// Each read of an answer must progress within this.
    pub read_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(300),
            secondary_limit_wait: SECONDARY_LIMIT_WAIT,
            budget: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry) of a transient failure:
    /// `base · 2^(retry-1)`, capped at `max_delay`, of which a random half is kept ("equal
    /// jitter") so that many runs failing together do not retry together. `unit` is a
    /// random number in [0, 1).
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The wait after the `hit`-th secondary rate limit (1 for the first) of one call that
    /// gave no `Retry-After`: `secondary_limit_wait · 2^(hit-1)`.
    pub fn secondary_wait(&self, hit: u32) -> Duration {
        self.secondary_limit_wait
            .saturating_mul(1u32 << hit.saturating_sub(1).min(20))
    }
}

/// What to do with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// 2xx: done.
    Success,
    /// A failure that may pass (5xx): retry with backoff.
    Transient,
    /// A rate limit: retry after this long (as GitHub's headers say).
    RateLimited(Duration),
    /// A secondary rate limit whose headers do not say how long to wait: wait at least
    /// [`RetryPolicy::secondary_wait`].
    SecondaryLimit,
    /// Retrying cannot help (401, 403 without a rate limit, 404, 422, …).
    Final,
}

/// Secondary rate limits without a `Retry-After` header: GitHub's documentation says to wait
/// at least one minute.
pub const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Classifies an answer by status, headers and body; `now_unix` is the current time in
/// seconds since the epoch, to read `x-ratelimit-reset`.
///
/// GitHub answers a secondary rate limit with 403 or 429 and a message saying so; only the
/// message tells a 403 secondary limit from a 403 for a missing permission.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now_unix: u64) -> Class {
    if status.is_success() {
        return Class::Success;
    }
    if status.is_server_error() {
        return Class::Transient;
    }
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(secs) = header_u64(headers, "retry-after") {
            return Class::RateLimited(Duration::from_secs(secs));
        }
        if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
            // The reset time is whole seconds; one extra second covers the clock skew
            // between this machine and GitHub.
            let reset = header_u64(headers, "x-ratelimit-reset").unwrap_or(now_unix);
            return Class::RateLimited(Duration::from_secs(reset.saturating_sub(now_unix) + 1));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || is_secondary_limit_message(body) {
            return Class::SecondaryLimit;
        }
    }
    Class::Final
}

/// Whether an error body is GitHub's secondary rate limit message ("You have exceeded a
/// secondary rate limit", or the older "abuse detection mechanism").
pub fn is_secondary_limit_message(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_lowercase();
    text.contains("secondary rate limit") || text.contains("abuse detection")
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_final() {
        let none = HeaderMap::new();
        assert_eq!(classify(StatusCode::OK, &none, b"", 0), Class::Success);
        assert_eq!(classify(StatusCode::CREATED, &none, b"", 0), Class::Success);
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, &none, b"", 0),
            Class::Transient
        );
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, &none, b"", 0),
            Class::Transient
        );
        for s in [401, 403, 404, 422] {
            let status = StatusCode::from_u16(s).unwrap();
            assert_eq!(classify(status, &none, b"", 0), Class::Final, "{s}");
        }
    }

    #[test]
    fn rate_limits_wait_as_the_headers_say() {
        let now = 1_700_000_000;
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1700000042"),
        ]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &primary, b"", now),
            Class::RateLimited(Duration::from_secs(43))
        );
        let secondary = headers(&[("retry-after", "7")]);
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &secondary, b"", now),
            Class::RateLimited(Duration::from_secs(7))
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b"", now),
            Class::SecondaryLimit
        );
        let plenty = headers(&[("x-ratelimit-remaining", "4999")]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &plenty, b"{}", now),
            Class::Final
        );
    }

    #[test]
    fn secondary_limit_403_without_retry_after_waits_at_least_a_minute() {
        let plenty = headers(&[("x-ratelimit-remaining", "4999")]);
        let body = br#"{"message":"You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}"#;
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &plenty, body, 0),
            Class::SecondaryLimit
        );
        let p = RetryPolicy::default();
        assert_eq!(p.secondary_wait(1), Duration::from_secs(60));
        assert_eq!(p.secondary_wait(3), Duration::from_secs(240));
        // Retry-After, when GitHub sends it, still decides.
        let after = headers(&[("retry-after", "90")]);
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &after, body, 0),
            Class::RateLimited(Duration::from_secs(90))
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(3, 0.0), Duration::from_millis(200));
        assert_eq!(p.backoff(10, 1.0), Duration::from_millis(1000));
        assert_eq!(p.backoff(60, 0.5), Duration::from_millis(750));
    }
}
