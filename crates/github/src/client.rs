//! Sending requests to GitHub with octocrab: authentication, the API base URL (GitHub
//! Enterprise's `https://HOST/api/v3` works), timeouts, and the [`RetryPolicy`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;

use crate::retry::{Class, RetryPolicy, classify};
use crate::token::Token;

/// Why a call to GitHub did not succeed. No variant holds the token: the request is named by
/// method and path, GitHub's answer by status and message.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// The API URL is not a URI octocrab accepts.
    #[error("promotion.apiUrl \"{url}\" is not usable as the GitHub API URL")]
    ApiUrl {
        /// The URL from the spec.
        url: String,
        /// What octocrab said.
        #[source]
        source: octocrab::Error,
    },
    /// The HTTP client could not be built (e.g. no CA certificates on this machine).
    #[error("cannot set up the GitHub client")]
    Setup(#[source] octocrab::Error),
    /// GitHub answered with an error retrying cannot fix.
    #[error("GitHub answered {status} to {method} {path}: {message}{hint}")]
    Api {
        /// Request method.
        method: Method,
        /// Request path (no query, never the token).
        path: String,
        /// GitHub's status.
        status: StatusCode,
        /// GitHub's `message` and the `errors[].message` details, or the raw body.
        message: String,
        /// What the status usually means for slogate's requests, with a leading space; may
        /// be empty.
        hint: String,
    },
    /// A rate limit asked to wait longer than the policy allows.
    #[error("{method} {path}: GitHub's {limit} asks to wait {}s, longer than the {}s slogate waits at most", wait.as_secs(), bound.as_secs())]
    RateLimitTooLong {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// `rate limit` or `secondary rate limit`.
        limit: &'static str,
        /// What GitHub asked for.
        wait: Duration,
        /// [`RetryPolicy::max_rate_limit_wait`].
        bound: Duration,
    },
    /// A rate limit asked to wait past the end of the promotion's time budget.
    #[error("{method} {path}: GitHub's {limit} asks to wait {}s, but only {}s of the promotion's {}s budget are left", wait.as_secs(), left.as_secs(), budget.as_secs())]
    OverBudget {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// `rate limit` or `secondary rate limit`.
        limit: &'static str,
        /// What GitHub asked for.
        wait: Duration,
        /// What was left of [`RetryPolicy::budget`].
        left: Duration,
        /// [`RetryPolicy::budget`].
        budget: Duration,
    },
    /// Every attempt failed transiently (5xx, timeout, connection error).
    #[error("{method} {path} failed {attempts} times; the last time: {last}")]
    Exhausted {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// Requests sent.
        attempts: u32,
        /// The last failure, in words.
        last: String,
    },
    /// GitHub's answer is not shaped the way its API description says.
    #[error("{method} {path}: GitHub's answer is not what its API description says")]
    Decode {
        /// Request method.
        method: Method,
        /// Request path.
        path: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl GitHubError {
    /// The HTTP status of a final error answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            GitHubError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// GitHub's message of a final error answer.
    pub fn message(&self) -> Option<&str> {
        match self {
            GitHubError::Api { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// The 2xx status.
    pub status: StatusCode,
    /// The body, as sent.
    pub body: bytes::Bytes,
}

/// GitHub's REST API for one token, with the retry policy applied to every call.
pub struct Client {
    octo: Octocrab,
    policy: RetryPolicy,
    sent: AtomicU32,
    /// When the client was made: the start of the promotion's time budget.
    started: tokio::time::Instant,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("policy", &self.policy)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `api_url` (e.g. `https://api.github.com`).
    pub fn new(api_url: &str, token: &Token, policy: RetryPolicy) -> Result<Client, GitHubError> {
        let octo = Octocrab::builder()
            .base_uri(api_url.trim_end_matches('/'))
            .map_err(|source| GitHubError::ApiUrl {
                url: api_url.to_owned(),
                source,
            })?
            .personal_token(token.expose().to_owned())
            .set_connect_timeout(Some(policy.connect_timeout))
            .set_read_timeout(Some(policy.read_timeout))
            .build()
            .map_err(GitHubError::Setup)?;
        Ok(Client {
            octo,
            policy,
            sent: AtomicU32::new(0),
            started: tokio::time::Instant::now(),
        })
    }

    /// The retry policy the client applies.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// What is left of the promotion's time budget.
    pub fn budget_left(&self) -> Duration {
        self.policy.budget.saturating_sub(self.started.elapsed())
    }

    /// Requests sent so far, retries included.
    pub fn requests_sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Sends one call and decodes a 2xx answer as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, GitHubError> {
        let answer = self.send(method.clone(), path, query, body).await?;
        serde_json::from_slice(&answer.body).map_err(|source| GitHubError::Decode {
            method,
            path: path.to_owned(),
            source,
        })
    }

    /// Sends one call, retrying as the policy says, and returns the 2xx answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, GitHubError> {
        let uri = with_query(path, query);
        let mut attempt = 0;
        let mut secondary_hits = 0;
        loop {
            attempt += 1;
            let last = match self.attempt(&method, &uri, body).await {
                Ok((status, headers, bytes)) => {
                    match classify(status, &headers, &bytes, unix_now()) {
                        Class::Success => {
                            tracing::debug!(%method, path, %status, attempt, "GitHub answered");
                            return Ok(Answer {
                                status,
                                body: bytes,
                            });
                        }
                        Class::Final => {
                            return Err(api_error(&method, path, status, &bytes));
                        }
                        class @ (Class::RateLimited(_) | Class::SecondaryLimit) => {
                            let (wait, limit) = match class {
                                Class::RateLimited(wait) => (wait, "rate limit"),
                                _ => {
                                    secondary_hits += 1;
                                    (
                                        self.policy.secondary_wait(secondary_hits),
                                        "secondary rate limit",
                                    )
                                }
                            };
                            if wait > self.policy.max_rate_limit_wait {
                                return Err(GitHubError::RateLimitTooLong {
                                    method,
                                    path: path.to_owned(),
                                    limit,
                                    wait,
                                    bound: self.policy.max_rate_limit_wait,
                                });
                            }
                            let left = self.budget_left();
                            if wait > left {
                                return Err(GitHubError::OverBudget {
                                    method,
                                    path: path.to_owned(),
                                    limit,
                                    wait,
                                    left,
                                    budget: self.policy.budget,
                                });
                            }
                            if attempt < self.policy.max_attempts {
                                tracing::warn!(%method, path, %status, wait_ms = wait.as_millis() as u64, limit, "GitHub rate limit; waiting before the retry");
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                            format!("{status} ({limit}: {})", github_message(&bytes))
                        }
                        Class::Transient => {
                            format!("{status}: {}", github_message(&bytes))
                        }
                    }
                }
                Err(transport) => transport,
            };
            if attempt >= self.policy.max_attempts {
                return Err(GitHubError::Exhausted {
                    method,
                    path: path.to_owned(),
                    attempts: attempt,
                    last,
                });
            }
            let delay = self.policy.backoff(attempt, rand::random::<f64>());
            tracing::warn!(%method, path, attempt, failure = %last, delay_ms = delay.as_millis() as u64, "GitHub request failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One request. A transport failure (connect, timeout, reset) comes back as its
    /// description, to be retried.
    async fn attempt(
        &self,
        method: &Method,
        uri: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, http::HeaderMap, bytes::Bytes), String> {
        let builder = http::Request::builder().method(method.clone()).uri(uri);
        let request = self
            .octo
            .build_request(builder, body)
            .map_err(|e| describe(&e))?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        let bound = self.policy.connect_timeout + self.policy.read_timeout;
        let exchange = async {
            let response = self.octo.execute(request).await.map_err(|e| describe(&e))?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(|e| describe(&e))?.to_bytes();
            Ok((parts.status, parts.headers, bytes))
        };
        match tokio::time::timeout(bound, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no complete answer within {}s", bound.as_secs())),
        }
    }
}

/// An error and its causes on one line.
pub(crate) fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

fn with_query(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

/// Percent-encodes one path segment (an owner, a repository or branch name, a SHA).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// GitHub's error body: `message`, and for 422 the `errors[]` details that say what was wrong.
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    message: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

fn github_message(bytes: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => {
            let mut text = body.message.unwrap_or_else(|| "(no message)".to_owned());
            let details: Vec<String> = body
                .errors
                .iter()
                .filter_map(|e| match e {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Object(o) => o
                        .get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                        .or_else(|| {
                            let field = o.get("field")?.as_str()?;
                            let code = o.get("code")?.as_str()?;
                            Some(format!("{field} {code}"))
                        }),
                    _ => None,
                })
                .collect();
            if !details.is_empty() {
                text.push_str(": ");
                text.push_str(&details.join("; "));
            }
            text
        }
        Err(_) => {
            let raw = String::from_utf8_lossy(bytes);
            let line: String = raw.trim().chars().take(200).collect();
            if line.is_empty() {
                "(empty body)".to_owned()
            } else {
                line
            }
        }
    }
}

fn api_error(method: &Method, path: &str, status: StatusCode, bytes: &[u8]) -> GitHubError {
    let hint = match status.as_u16() {
        401 => " (the token is not valid: expired, revoked or mistyped)",
        403 => " (the token lacks a permission this request needs)",
        404 => " (the repository does not exist, or the token cannot see it)",
        _ => "",
    };
    GitHubError::Api {
        method: method.clone(),
        path: path.to_owned(),
        status,
        message: github_message(bytes),
        hint: hint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_carry_githubs_detail() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"No commits between master and staging"}],"documentation_url":"https://docs.github.com/rest/pulls/pulls#create-a-pull-request","status":"422"}"#;
        let err = api_error(
            &Method::POST,
            "/repos/o/r/pulls",
            StatusCode::UNPROCESSABLE_ENTITY,
            body,
        );
        assert_eq!(
            err.to_string(),
            "GitHub answered 422 Unprocessable Entity to POST /repos/o/r/pulls: Validation Failed: No commits between master and staging"
        );
    }

    #[test]
    fn field_errors_and_raw_bodies_are_readable() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"Label","field":"name","code":"invalid"}]}"#;
        assert_eq!(github_message(body), "Validation Failed: name invalid");
        assert_eq!(
            github_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(github_message(b""), "(empty body)");
    }

    #[test]
    fn path_segments_and_queries_are_encoded() {
        assert_eq!(segment("feature/x y"), "feature%2Fx%20y");
        assert_eq!(
            with_query("/p", &[("head", "octo:feature/x"), ("state", "open")]),
            "/p?head=octo%3Afeature%2Fx&state=open"
        );
    }
}
