//! slogate-prometheus: instant queries against Prometheus' HTTP API (`/api/v1/query`) and
//! the readings slogate judges: one value ([`single_value`]) or the cumulative buckets of
//! a histogram by `le` ([`buckets`]).
//!
//! A query whose answer cannot be one value is an error, never a guess: an empty vector
//! ([`Error::Empty`]), NaN ([`Error::NotANumber`]), or several series ([`Error::ManySeries`],
//! whose message names the labels that differ so the query can be narrowed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;

/// Why a query gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL is not an http(s) URL.
    #[error("{url} is not an http(s) URL")]
    Url {
        /// The URL as given.
        url: String,
    },
    /// The CA file cannot be read or holds no certificate.
    #[error("cannot read the CA file {}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS or HTTP client cannot be set up.
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The bearer token file cannot be read.
    #[error("cannot read the bearer token file {}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The request failed: Prometheus down, unreachable, too slow.
    #[error("cannot query {url}")]
    Request {
        /// The endpoint.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus answered with an error.
    #[error("Prometheus answered {status}: {error_type}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Prometheus' `errorType` (`bad_data`, `execution` …).
        error_type: String,
        /// Prometheus' `error`.
        message: String,
    },
    /// The answer is not Prometheus' JSON.
    #[error("the answer (HTTP {status}) is not Prometheus' JSON")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The query gave a range or string, not an instant vector or scalar.
    #[error("the query gave a {0}, not an instant vector or a scalar")]
    Shape(String),
    /// The query gave no series.
    #[error("the query gave an empty result (no series matched)")]
    Empty,
    /// The query's value is NaN.
    #[error("the query's value is NaN")]
    NotANumber,
    /// The query's value is infinite (a division by a zero count, mostly).
    #[error("the query's value is {} (a division by zero?)", if *.0 > 0.0 { "+Inf" } else { "-Inf" })]
    Infinite(f64),
    /// The query gave several series where one is read.
    #[error("the query gave {count} series where one is needed; they differ in {}: aggregate them (sum by ...) or select one", .labels.join(", "))]
    ManySeries {
        /// How many.
        count: usize,
        /// The labels whose values differ between them, with the values seen
        /// (`code="200"|"500"`).
        labels: Vec<String>,
    },
    /// Bucket series without a usable `le` label, or two with the same `le`.
    #[error("the buckets are not one histogram: {0}")]
    Buckets(String),
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value (NaN and ±Inf as Prometheus writes them).
    pub value: f64,
}

/// A Prometheus server's HTTP API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    token_file: Option<PathBuf>,
}

impl Client {
    /// A client of the server at `base_url` (`http://prometheus:9090`), trusting the
    /// system's CAs and the one in `ca_file`, sending the token of `token_file` (read at
    /// each query, so a rotated Secret is used) as a bearer token, giving up on a query
    /// after `timeout`.
    pub fn new(
        base_url: &str,
        ca_file: Option<&Path>,
        token_file: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let url = url::Url::parse(base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::Url {
                url: base_url.to_owned(),
            })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            let ca_err = |source| Error::CaFile {
                path: path.to_owned(),
                source,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(std::io::Error::other(e)))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_err(std::io::Error::other(e)))?;
            if certs.is_empty() {
                return Err(ca_err(std::io::Error::other("no PEM certificate in it")));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| ca_err(std::io::Error::other(e)))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::CaFile {
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .build()
            .map_err(Error::Client)?;
        let endpoint = format!("{}/api/v1/query", url.as_str().trim_end_matches('/'));
        Ok(Self {
            http,
            endpoint,
            token_file,
        })
    }

    /// The query endpoint (`http://prometheus:9090/api/v1/query`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Evaluates `query` at the instant `at`: the series of the instant vector (a scalar
    /// is one series without labels).
    pub async fn instant(&self, query: &str, at: SystemTime) -> Result<Vec<Sample>, Error> {
        let seconds = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("query", query),
                ("time", &format!("{seconds:.3}")),
            ]));
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path).map_err(|source| Error::TokenFile {
                path: path.clone(),
                source,
            })?;
            request = request.bearer_auth(token.trim());
        }
        let request_err = |source| Error::Request {
            url: self.endpoint.clone(),
            source,
        };
        let response = request.send().await.map_err(request_err)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(request_err)?;
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|source| Error::Decode { status, source })?;
        if answer.status != "success" {
            return Err(Error::Api {
                status,
                error_type: answer.error_type.unwrap_or_default(),
                message: answer.error.unwrap_or_default(),
            });
        }
        let data = answer
            .data
            .ok_or_else(|| Error::Shape("answer without data".into()))?;
        match data.result_type.as_str() {
            "vector" => {
                let series: Vec<VectorSample> = serde_json::from_value(data.result)
                    .map_err(|source| Error::Decode { status, source })?;
                Ok(series
                    .into_iter()
                    .map(|s| Sample {
                        labels: s.metric,
                        value: parse_value(&s.value.1),
                    })
                    .collect())
            }
            "scalar" => {
                let (_, v): (f64, String) = serde_json::from_value(data.result)
                    .map_err(|source| Error::Decode { status, source })?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    value: parse_value(&v),
                }])
            }
            other => Err(Error::Shape(other.to_owned())),
        }
    }
}

/// `application/x-www-form-urlencoded` of the pairs.
fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Prometheus writes sample values as strings: `"1.5"`, `"NaN"`, `"+Inf"`.
fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => text.parse().unwrap_or(f64::NAN),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// The labels whose values differ between the series, each with the values seen
/// (`code="200"|"500"`), or `no label` when the series are indistinguishable.
fn differing_labels(samples: &[Sample]) -> Vec<String> {
    let names: BTreeSet<&String> = samples.iter().flat_map(|s| s.labels.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let values: BTreeSet<Option<&String>> =
            samples.iter().map(|s| s.labels.get(name)).collect();
        if values.len() > 1 {
            let shown: Vec<String> = values
                .iter()
                .take(5)
                .map(|v| v.map_or("(absent)".to_owned(), |v| format!("{v:?}")))
                .collect();
            out.push(format!("{name}={}", shown.join("|")));
        }
    }
    if out.is_empty() {
        out.push("no label".to_owned());
    }
    out
}

/// The one value of a query's answer.
pub fn single_value(samples: &[Sample]) -> Result<f64, Error> {
    match samples {
        [] => Err(Error::Empty),
        [one] if one.value.is_nan() => Err(Error::NotANumber),
        [one] if one.value.is_infinite() => Err(Error::Infinite(one.value)),
        [one] => Ok(one.value),
        many => Err(Error::ManySeries {
            count: many.len(),
            labels: differing_labels(many),
        }),
    }
}

/// The cumulative buckets `(le, count)` of one histogram, sorted by `le`, from the
/// `_bucket` series of an answer: one series per `le`, no other label differing.
pub fn buckets(samples: &[Sample]) -> Result<Vec<(f64, f64)>, Error> {
    if samples.is_empty() {
        return Err(Error::Empty);
    }
    let without_le: Vec<Sample> = samples
        .iter()
        .map(|s| {
            let mut labels = s.labels.clone();
            labels.remove("le");
            Sample {
                labels,
                value: s.value,
            }
        })
        .collect();
    let others = differing_labels(&without_le);
    if others != ["no label"] {
        return Err(Error::ManySeries {
            count: samples.len(),
            labels: others,
        });
    }
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let le = s
            .labels
            .get("le")
            .ok_or_else(|| Error::Buckets("a series has no le label: group by le".into()))?;
        let le = parse_value(le);
        if le.is_nan() {
            return Err(Error::Buckets(format!("le={le:?} is not a number")));
        }
        if s.value.is_nan() {
            return Err(Error::NotANumber);
        }
        if s.value.is_infinite() {
            return Err(Error::Infinite(s.value));
        }
        out.push((le, s.value));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    if out.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Error::Buckets("two series have the same le".into()));
    }
    if out.last().is_none_or(|b| b.0.is_finite()) {
        return Err(Error::Buckets("no le=\"+Inf\" bucket".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    #[test]
    fn many_series_name_the_labels_that_differ() {
        let err = single_value(&[
            sample(&[("job", "a"), ("code", "200")], 1.0),
            sample(&[("job", "a"), ("code", "500")], 2.0),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("code=\"200\"|\"500\""), "{text}");
        assert!(!text.contains("job"), "{text}");
    }

    #[test]
    fn buckets_are_sorted_by_le_and_need_the_inf_bucket() {
        let b = buckets(&[
            sample(&[("le", "+Inf")], 10.0),
            sample(&[("le", "0.1")], 4.0),
        ])
        .unwrap();
        assert_eq!(b, vec![(0.1, 4.0), (f64::INFINITY, 10.0)]);
        assert!(buckets(&[sample(&[("le", "0.1")], 4.0)]).is_err());
    }

    #[test]
    fn nan_and_infinite_values_are_no_value() {
        assert!(matches!(
            single_value(&[sample(&[], f64::NAN)]),
            Err(Error::NotANumber)
        ));
        let err = single_value(&[sample(&[], f64::INFINITY)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the query's value is +Inf (a division by zero?)"
        );
        assert!(matches!(single_value(&[]), Err(Error::Empty)));
    }

    #[test]
    fn a_url_that_is_not_http_is_refused() {
        let err = Client::new("ftp://x", None, None, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, Error::Url { .. }));
    }
}
