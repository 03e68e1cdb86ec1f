//! Turning a version and its checked [`LoadSettings`] into a [`LoadPlan`]: the URL parsed,
//! the body loaded once, the request template and the connector built before any load is sent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, TE, USER_AGENT,
};
use http::{Method, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use slogate_core::quote::quote;
use slogate_core::spec::{BodySource, LoadSettings, VersionSpec};
pub use slogate_core::spec::{StopAfter, Warmup};

use crate::LoadError;
use crate::connect::{Connector, tls_config};
use crate::grpc::GrpcCall;

/// Largest payload `payloadUrl` may deliver.
const MAX_PAYLOAD_BYTES: usize = 64 << 20;

/// A load run ready to start: settings checked, body loaded, connector built.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub(crate) version: String,
    pub(crate) url: url::Url,
    /// The checked settings the plan was built from: counts, rate, stop and warmup rules.
    pub(crate) settings: LoadSettings,
    pub(crate) template: Arc<RequestTemplate>,
    pub(crate) connector: Connector,
}

/// The request every connection sends, built once.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    /// The whole HTTP/1.1 request as written on the wire: request line, headers, body.
    pub(crate) h1: Bytes,
    /// Whether the method is `HEAD`, whose responses carry no body.
    pub(crate) head: bool,
    /// The HPACK-encoded HTTP/2 header block, the same for every request.
    pub(crate) h2_block: Bytes,
    pub(crate) body: Bytes,
    /// A gRPC call: its outcome is the response's `grpc-status`, and it needs HTTP/2.
    pub(crate) grpc: bool,
}

/// The HTTP/2 header block of every request: the pseudo-header fields (`:authority` is the
/// `Host` header, the URL's authority unless one was given), then the other headers.
fn h2_block(method: &Method, url: &url::Url, headers: &HeaderMap) -> Bytes {
    let authority = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .map_or_else(|| authority(url), str::to_owned);
    let fields = headers
        .iter()
        .filter(|(name, _)| **name != HOST)
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    Bytes::from(crate::hpack::encode_request(
        method.as_str(),
        url.scheme(),
        &authority,
        &origin_form(url),
        fields,
    ))
}

/// Header fields HTTP/2 forbids (RFC 9113, section 8.2.2): they describe an HTTP/1.1
/// connection. `TE` may only be `trailers`.
fn connection_specific(name: &HeaderName, value: &HeaderValue) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
    ) || (*name == TE && !value.as_bytes().eq_ignore_ascii_case(b"trailers"))
}

/// Why a header value is refused, without showing it: the first byte a header value cannot
/// hold (control characters but tab; HTTP allows visible ASCII, space, tab and obs-text).
fn header_value_problem(value: &str) -> String {
    match value
        .bytes()
        .position(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        Some(at) => format!("byte {} is a control character", at + 1),
        None => "it is not a valid header value".to_owned(),
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl LoadPlan {
    /// Parses the version's URL and loads the body (file or payload URL) once.
    pub async fn new(version: &VersionSpec, load: &LoadSettings) -> Result<Self, LoadError> {
        Self::with_root_certificates(version, load, Vec::new()).await
    }

    /// Like [`LoadPlan::new`], also trusting `extra_roots` for HTTPS (e.g. a private CA)
    /// besides the system's roots.
    pub async fn with_root_certificates(
        version: &VersionSpec,
        load: &LoadSettings,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, LoadError> {
        let Some(grpc) = &version.grpc else {
            let target = parse_target(&version.url, "url")?;
            let connector = connector_for(&target, load.http2(), load.timeout(), &extra_roots)?;
            let body = load_body(load, &extra_roots).await?;
            let template = build_template(version, load, &target.url, body)?;
            return Ok(Self {
                version: version.name.clone(),
                url: target.url,
                settings: load.clone(),
                template: Arc::new(template),
                connector,
            });
        };
        let call = GrpcCall::resolve(grpc).map_err(LoadError::Grpc)?;
        let target = parse_grpc_target(&version.url, &call.path)?;
        let tls = if target.https {
            let config = grpc_tls_config(&extra_roots).map_err(LoadError::Tls)?;
            let name = ServerName::try_from(target.host.clone())
                .map_err(|err| invalid("url", format!("host {:?}: {err}", target.host)))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        let connector = Connector::new(
            target.host.clone(),
            target.port,
            tls,
            !target.https,
            load.timeout(),
        );
        let template = grpc_template(version, load, &target.url, call)?;
        Ok(Self {
            version: version.name.clone(),
            url: target.url,
            settings: load.clone(),
            template: Arc::new(template),
            connector,
        })
    }

    /// The same plan for one iteration of the experiment loop
    /// ([`LoadSettings::for_iteration`]): the body and connector are shared, not rebuilt.
    pub fn for_iteration(&self, interval: Duration, first: bool) -> LoadPlan {
        LoadPlan {
            settings: self.settings.for_iteration(interval, first),
            ..self.clone()
        }
    }

    /// The version name the plan loads.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The URL every request goes to.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The checked load settings the plan runs with.
    pub fn settings(&self) -> &LoadSettings {
        &self.settings
    }

    /// Requests planned in total (measured ones), when the run is count-limited.
    pub fn planned_requests(&self) -> Option<u64> {
        match self.settings.stop_after() {
            StopAfter::Requests(n) => Some(n),
            StopAfter::Duration(d) => self
                .settings
                .qps()
                .map(|q| (d.as_secs_f64() * q).round() as u64),
        }
    }
}

struct Target {
    url: url::Url,
    host: String,
    port: u16,
    https: bool,
}

/// A `grpc://` or `grpcs://` target as the `http(s)://` URL its requests go to, with the
/// method's path.
fn parse_grpc_target(text: &str, path: &str) -> Result<Target, LoadError> {
    let url =
        url::Url::parse(text).map_err(|err| invalid("url", format!("{}: {err}", quote(text))))?;
    let scheme = match url.scheme() {
        "grpc" => "http",
        "grpcs" => "https",
        other => {
            return Err(invalid(
                "url",
                format!(
                    "{}: scheme {} is not grpc or grpcs",
                    quote(text),
                    quote(other)
                ),
            ));
        }
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port()) else {
        return Err(invalid(
            "url",
            format!("{} needs a host and a port", quote(text)),
        ));
    };
    let host_port = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let http = format!("{scheme}://{host_port}{path}");
    let mut target = parse_target(&http, "url")?;
    target.host = target
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(target)
}

/// TLS for gRPC: the system's roots and `extra_roots`, ALPN `h2` only (gRPC needs HTTP/2).
fn grpc_tls_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = tls_config(true, extra_roots)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The HTTP/2 request every gRPC call sends: `POST` to the method's path with gRPC's
/// headers, the deadline as `grpc-timeout`, the load's and the version's headers and the
/// call's metadata, and the framed message as the body.
fn grpc_template(
    version: &VersionSpec,
    load: &LoadSettings,
    url: &url::Url,
    call: GrpcCall,
) -> Result<RequestTemplate, LoadError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("slogate/", env!("CARGO_PKG_VERSION"))),
    );
    let timeout = HeaderValue::from_str(&crate::grpc::timeout_header(load.timeout()))
        .map_err(|_| invalid("timeout", "cannot be sent as grpc-timeout"))?;
    headers.insert("grpc-timeout", timeout);
    for header in load.headers().iter().chain(&version.headers) {
        let name =
            HeaderName::from_bytes(header.name.to_ascii_lowercase().as_bytes()).map_err(|_| {
                invalid(
                    "headers",
                    format!("{} is not a metadata key", quote(&header.name)),
                )
            })?;
        let value = HeaderValue::from_str(&header.value).map_err(|_| {
            invalid(
                "headers",
                format!(
                    "the value of {} is not a metadata value ({})",
                    quote(&header.name),
                    header_value_problem(&header.value)
                ),
            )
        })?;
        headers.append(name, value);
    }
    for (name, value) in &call.metadata {
        headers.append(name.clone(), value.clone());
    }
    refuse_connection_specific(&headers)?;
    Ok(RequestTemplate {
        h1: Bytes::new(),
        head: false,
        h2_block: h2_block(&Method::POST, url, &headers),
        body: call.body,
        grpc: true,
    })
}

/// Parses an http(s) URL with a host; `field` names the setting in errors.
fn parse_target(text: &str, field: &str) -> Result<Target, LoadError> {
    let url =
        url::Url::parse(text).map_err(|err| invalid(field, format!("{}: {err}", quote(text))))?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(invalid(
                field,
                format!(
                    "{}: scheme {} is not http or https",
                    quote(text),
                    quote(other)
                ),
            ));
        }
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(invalid(field, format!("{} has no host", quote(text)))),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| invalid(field, format!("{} has no port", quote(text))))?;
    Ok(Target {
        url,
        host,
        port,
        https,
    })
}

fn connector_for(
    target: &Target,
    http2: bool,
    timeout: Duration,
    extra_roots: &[CertificateDer<'static>],
) -> Result<Connector, LoadError> {
    let tls = if target.https {
        let config = tls_config(http2, extra_roots).map_err(LoadError::Tls)?;
        let name = ServerName::try_from(target.host.clone())
            .map_err(|err| invalid("url", format!("host {:?}: {err}", target.host)))?;
        Some((Arc::new(config), name))
    } else {
        None
    };
    Ok(Connector::new(
        target.host.clone(),
        target.port,
        tls,
        http2 && !target.https,
        timeout,
    ))
}

async fn load_body(
    load: &LoadSettings,
    extra_roots: &[CertificateDer<'static>],
) -> Result<Bytes, LoadError> {
    match load.body() {
        BodySource::None => Ok(Bytes::new()),
        BodySource::Inline(body) => Ok(Bytes::from(body.clone())),
        BodySource::File(path) => tokio::fs::read(path)
            .await
            .map(Bytes::from)
            .map_err(|source| LoadError::BodyFile {
                path: path.clone(),
                source,
            }),
        BodySource::Download(url) => download(url, load.timeout(), extra_roots).await,
    }
}

/// Fetches the payload once over a fresh connection (HTTP/1.1, or h2 by ALPN).
async fn download(
    url: &str,
    timeout: Duration,
    extra_roots: &[CertificateDer<'static>],
) -> Result<Bytes, LoadError> {
    let target = parse_target(url, "payloadUrl")?;
    let connector = connector_for(&target, false, timeout, extra_roots)?;
    let payload_error = |source: Box<dyn std::error::Error + Send + Sync>| LoadError::Payload {
        url: url.to_owned(),
        source,
    };
    let fetch = async {
        // The connector offers HTTP/1.1 only (no h2c, no `h2` in ALPN).
        let (stream, _) = connector
            .open_stream()
            .await
            .map_err(|e| payload_error(e.into()))?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| payload_error(e.into()))?;
        let driver = tokio::spawn(connection);
        let mut request = http::Request::new(Full::new(Bytes::new()));
        *request.uri_mut() =
            Uri::try_from(origin_form(&target.url)).map_err(|e| payload_error(e.into()))?;
        request.headers_mut().insert(
            HOST,
            HeaderValue::from_str(&authority(&target.url)).map_err(|e| payload_error(e.into()))?,
        );
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| payload_error(e.into()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(payload_error(format!("status {status}").into()));
        }
        let body = Limited::new(response.into_body(), MAX_PAYLOAD_BYTES)
            .collect()
            .await
            .map_err(payload_error)?
            .to_bytes();
        driver.abort();
        Ok(body)
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|e| payload_error(e.into()))?
}

fn origin_form(url: &url::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

fn authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn build_template(
    version: &VersionSpec,
    load: &LoadSettings,
    url: &url::Url,
    body: Bytes,
) -> Result<RequestTemplate, LoadError> {
    let method = match load.method() {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| invalid("method", format!("{} is not an HTTP method", quote(m))))?,
        None if body.is_empty() => Method::GET,
        None => Method::POST,
    };
    let origin_uri = Uri::try_from(origin_form(url))
        .map_err(|err| invalid("url", format!("{}: {err}", quote(url.as_str()))))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("slogate/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(content_type) = load.content_type() {
        let value = HeaderValue::from_str(content_type).map_err(|_| {
            invalid(
                "contentType",
                format!("{} is not a header value", quote(content_type)),
            )
        })?;
        headers.insert(CONTENT_TYPE, value);
    }
    let mut given = Vec::new();
    for header in load.headers().iter().chain(&version.headers) {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            invalid(
                "headers",
                format!("{} is not a header name", quote(&header.name)),
            )
        })?;
        let value = HeaderValue::from_str(&header.value).map_err(|_| {
            invalid(
                "headers",
                // The value is not shown: headers carry credentials.
                format!(
                    "the value of {} is not a header value ({})",
                    quote(&header.name),
                    header_value_problem(&header.value)
                ),
            )
        })?;
        given.push((name, value));
    }
    // A header given by the user replaces the default of the same name.
    // The body's real length is sent; a Content-Length given by the user is not.
    given.retain(|(name, _)| *name != CONTENT_LENGTH);
    for (name, _) in &given {
        headers.remove(name);
    }
    for (name, value) in given {
        headers.append(name, value);
    }
    if !headers.contains_key(HOST) {
        let host = HeaderValue::from_str(&authority(url))
            .map_err(|err| invalid("url", format!("{}: {err}", quote(url.as_str()))))?;
        headers.insert(HOST, host);
    }
    if load.http2() {
        refuse_connection_specific(&headers)?;
    }
    let h1 = serialize_h1(&method, &origin_uri, &headers, &body);
    Ok(RequestTemplate {
        h1,
        head: method == Method::HEAD,
        h2_block: h2_block(&method, url, &headers),
        body,
        grpc: false,
    })
}

/// Refuses a header HTTP/2 cannot carry, naming it.
fn refuse_connection_specific(headers: &HeaderMap) -> Result<(), LoadError> {
    match headers
        .iter()
        .find(|(name, value)| connection_specific(name, value))
    {
        Some((name, _)) => Err(invalid(
            "headers",
            format!(
                "{} describes an HTTP/1.1 connection and cannot be sent over HTTP/2",
                quote(name.as_str())
            ),
        )),
        None => Ok(()),
    }
}

/// Writes an HTTP/1.1 request: `Host` first, the other headers in order, then
/// `Content-Length` when there is a body or the method expects one.
fn serialize_h1(method: &Method, target: &Uri, headers: &HeaderMap, body: &Bytes) -> Bytes {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.to_string().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let host = headers.get_all(HOST).iter().map(|value| (&HOST, value));
    let rest = headers.iter().filter(|(name, _)| **name != HOST);
    for (name, value) in host.chain(rest) {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || [Method::POST, Method::PUT, Method::PATCH].contains(method) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slogate_core::spec::{DEFAULT_NUM_REQUESTS, Header, LoadSpec};

    fn version(url: &str) -> VersionSpec {
        VersionSpec {
            name: "v".into(),
            url: url.into(),
            headers: Vec::new(),
            role: Default::default(),
            variables: Default::default(),
            weight_obj_ref: None,
            grpc: None,
        }
    }

    #[tokio::test]
    async fn a_url_the_engine_cannot_load_names_the_url() {
        let load = LoadSpec::default().settings().unwrap();
        for url in ["ftp://x/", "not a url", "http:///"] {
            match LoadPlan::new(&version(url), &load).await {
                Err(LoadError::Invalid { field, .. }) => assert_eq!(field, "url", "{url}"),
                other => panic!("{url}: expected an invalid url, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_missing_body_file_is_refused_with_the_os_reason() {
        let load = LoadSpec {
            body_file: Some("/nonexistent/slogate-body.json".into()),
            ..LoadSpec::default()
        };
        let err = LoadPlan::new(&version("http://127.0.0.1:1/"), &load.settings().unwrap())
            .await
            .unwrap_err();
        let LoadError::BodyFile { path, source } = err else {
            panic!("expected a body-file error, got {err:?}");
        };
        assert_eq!(path, std::path::Path::new("/nonexistent/slogate-body.json"));
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_bad_header_value_is_refused_without_showing_it() {
        let load = LoadSpec {
            headers: vec![Header {
                name: "Authorization".into(),
                value: "Bearer s3cret-token\r\nX-Injected: 1".into(),
            }],
            ..LoadSpec::default()
        };
        let message = match load.settings() {
            Err(problems) => format!("{problems:?}"),
            Ok(settings) => LoadPlan::new(&version("http://127.0.0.1:1/"), &settings)
                .await
                .unwrap_err()
                .to_string(),
        };
        assert!(
            message.contains("Authorization") || message.contains("headers[0]"),
            "the message names the header: {message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[tokio::test]
    async fn http2_refuses_connection_headers_and_sends_host_as_authority() {
        let header = |name: &str, value: &str| Header {
            name: name.into(),
            value: value.into(),
        };
        for (name, value) in [
            ("Connection", "keep-alive"),
            ("TE", "gzip"),
            ("Upgrade", "h2c"),
        ] {
            let load = LoadSpec {
                http2: true,
                headers: vec![header(name, value)],
                ..LoadSpec::default()
            };
            let err = LoadPlan::new(&version("http://127.0.0.1:1/"), &load.settings().unwrap())
                .await
                .unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, LoadError::Invalid { ref field, .. } if field == "headers"),
                "{message}"
            );
            assert!(message.contains(&name.to_ascii_lowercase()), "{message}");
        }
        // Over HTTP/1.1 the same header is the user's to send.
        let h1 = LoadSpec {
            headers: vec![header("Connection", "close")],
            ..LoadSpec::default()
        };
        assert!(
            LoadPlan::new(&version("http://127.0.0.1:1/"), &h1.settings().unwrap())
                .await
                .is_ok()
        );
        let load = LoadSpec {
            http2: true,
            headers: vec![header("Host", "example.test"), header("TE", "trailers")],
            ..LoadSpec::default()
        };
        let plan = LoadPlan::new(&version("http://127.0.0.1:1/x"), &load.settings().unwrap())
            .await
            .unwrap();
        let expected = crate::hpack::encode_request(
            "GET",
            "http",
            "example.test",
            "/x",
            [
                (
                    "user-agent",
                    concat!("slogate/", env!("CARGO_PKG_VERSION")).as_bytes(),
                ),
                ("te", &b"trailers"[..]),
            ],
        );
        assert_eq!(&plan.template.h2_block[..], &expected[..]);
    }

    #[tokio::test]
    async fn body_sets_post_and_user_headers_replace_defaults() {
        let load = LoadSpec {
            body: Some("{}".into()),
            content_type: Some("application/json".into()),
            headers: vec![Header {
                name: "User-Agent".into(),
                value: "me".into(),
            }],
            ..LoadSpec::default()
        };
        let plan = LoadPlan::new(
            &version("http://localhost:8080/a?b=1"),
            &load.settings().unwrap(),
        )
        .await
        .unwrap();
        let t = &plan.template;
        assert_eq!(
            std::str::from_utf8(&t.h1).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\n\
             host: localhost:8080\r\n\
             content-type: application/json\r\n\
             user-agent: me\r\n\
             content-length: 2\r\n\
             \r\n\
             {}"
        );
        assert!(!t.head);
        // HTTP/2: the same method, authority, path and headers, Host as `:authority`.
        let h2 = crate::hpack::encode_request(
            "POST",
            "http",
            "localhost:8080",
            "/a?b=1",
            [
                ("content-type", &b"application/json"[..]),
                ("user-agent", &b"me"[..]),
            ],
        );
        assert_eq!(&t.h2_block[..], &h2[..]);
        assert_eq!(
            plan.settings().stop_after(),
            StopAfter::Requests(DEFAULT_NUM_REQUESTS)
        );
    }
}
