//! gRPC unary calls as HTTP/2 requests.
//!
//! The method and the request message are resolved once, when the plan is built: the
//! `.proto` file is compiled in process (no `protoc`), the method looked up in its
//! descriptors, and the JSON message turned into protobuf bytes through the method's input
//! descriptor. Each call is then the same HTTP/2 request (`POST /package.Service/Method`,
//! `content-type: application/grpc`, the length-prefixed message), and its outcome is the
//! `grpc-status` of the response's trailers, or of its headers for a trailers-only answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use slogate_core::grpc;
use slogate_core::quote::quote;
use slogate_core::spec::GrpcSpec;

/// Why a gRPC call cannot be planned; each names what in the `grpc` section is wrong.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The `.proto` file cannot be read.
    #[error("cannot read {}", path.display())]
    ProtoFile {
        /// The proto file named by the spec or flag.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The `.proto` file (or one it imports) does not compile.
    #[error("cannot compile {}{at}", path.display())]
    Proto {
        /// The proto file named by the spec or flag.
        path: PathBuf,
        /// Where the compiler stopped, ` at FILE:LINE:COLUMN`, when it says.
        at: String,
        /// What the compiler said.
        #[source]
        source: Box<protox::Error>,
    },
    /// The proto file declares no service of that name.
    #[error("{} declares no service {} (services: {known})", path.display(), quote(service))]
    NoService {
        /// The proto file.
        path: PathBuf,
        /// The service asked for.
        service: String,
        /// The services it does declare.
        known: String,
    },
    /// The service has no method of that name.
    #[error(
        "service {} has no method {} (methods: {known})",
        quote(service),
        quote(method)
    )]
    NoMethod {
        /// The service.
        service: String,
        /// The method asked for.
        method: String,
        /// The methods it does have.
        known: String,
    },
    /// The method streams; only unary calls are loaded.
    #[error(
        "{} is a streaming method; slogate loads unary calls only",
        quote(call)
    )]
    Streaming {
        /// `package.Service/Method`.
        call: String,
    },
    /// The JSON message does not fit the method's request message.
    #[error("not a {message} message")]
    Data {
        /// The request message's full name.
        message: String,
        /// What did not fit (the field, the expected type).
        #[source]
        source: serde_json::Error,
    },
    /// A metadata entry cannot be sent.
    #[error("metadata {}: {reason}", quote(key))]
    Metadata {
        /// The metadata key.
        key: String,
        /// Why it cannot be sent.
        reason: &'static str,
    },
}

impl GrpcError {
    /// The field of the `grpc` section the error is about (`proto`, `call`, `data`,
    /// `metadata`).
    pub fn field(&self) -> &'static str {
        match self {
            GrpcError::Proto { .. } | GrpcError::ProtoFile { .. } => "proto",
            GrpcError::NoService { .. }
            | GrpcError::NoMethod { .. }
            | GrpcError::Streaming { .. } => "call",
            GrpcError::Data { .. } => "data",
            GrpcError::Metadata { .. } => "metadata",
        }
    }
}

/// One call, resolved: the request path, the framed message and the metadata.
#[derive(Debug, Clone)]
pub(crate) struct GrpcCall {
    /// `/package.Service/Method`.
    pub(crate) path: String,
    /// The length-prefixed message, as the request body carries it.
    pub(crate) body: Bytes,
    /// The metadata, as HTTP/2 headers.
    pub(crate) metadata: HeaderMap,
}

impl GrpcCall {
    /// Compiles the proto file, finds the unary method and encodes the message.
    pub(crate) fn resolve(spec: &GrpcSpec) -> Result<Self, GrpcError> {
        let pool = compile(&spec.proto, &spec.import_paths)?;
        let (service_name, method_name) =
            spec.service_and_method()
                .ok_or_else(|| GrpcError::NoService {
                    path: spec.proto.clone(),
                    service: spec.call.clone(),
                    known: list(pool.services().map(|s| s.full_name().to_owned())),
                })?;
        let service =
            pool.get_service_by_name(service_name)
                .ok_or_else(|| GrpcError::NoService {
                    path: spec.proto.clone(),
                    service: service_name.to_owned(),
                    known: list(pool.services().map(|s| s.full_name().to_owned())),
                })?;
        let method = service
            .methods()
            .find(|m| m.name() == method_name)
            .ok_or_else(|| GrpcError::NoMethod {
                service: service_name.to_owned(),
                method: method_name.to_owned(),
                known: list(service.methods().map(|m| m.name().to_owned())),
            })?;
        if method.is_client_streaming() || method.is_server_streaming() {
            return Err(GrpcError::Streaming {
                call: spec.call.clone(),
            });
        }
        let input = method.input();
        let message =
            DynamicMessage::deserialize(input.clone(), spec.data.clone()).map_err(|source| {
                GrpcError::Data {
                    message: input.full_name().to_owned(),
                    source,
                }
            })?;
        Ok(Self {
            path: format!("/{service_name}/{method_name}"),
            body: frame(&message.encode_to_vec()),
            metadata: metadata(spec)?,
        })
    }
}

/// Compiles `proto` with its imports: looked up in `import_paths`, then in its directory.
fn compile(proto: &Path, import_paths: &[PathBuf]) -> Result<DescriptorPool, GrpcError> {
    if let Err(source) = std::fs::metadata(proto) {
        return Err(GrpcError::ProtoFile {
            path: proto.to_path_buf(),
            source,
        });
    }
    let fail = |source: protox::Error| GrpcError::Proto {
        path: proto.to_path_buf(),
        at: location(&source),
        source: Box::new(source),
    };
    let own_dir = match proto.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut includes: Vec<PathBuf> = import_paths.to_vec();
    includes.push(own_dir);
    let mut compiler = protox::Compiler::new(includes).map_err(fail)?;
    compiler.include_imports(true);
    compiler.open_file(proto).map_err(fail)?;
    Ok(compiler.descriptor_pool())
}

/// ` at FILE:LINE:COLUMN` of the first place a compiler error points at, or nothing.
fn location(err: &protox::Error) -> String {
    use miette::Diagnostic as _;
    let (Some(mut labels), Some(source)) = (err.labels(), err.source_code()) else {
        return String::new();
    };
    let Some(label) = labels.next() else {
        return String::new();
    };
    match source.read_span(label.inner(), 0, 0) {
        Ok(span) => format!(
            " at {}:{}:{}",
            span.name().or(err.file()).unwrap_or("?"),
            span.line() + 1,
            span.column() + 1
        ),
        Err(_) => String::new(),
    }
}

fn list(names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = names.map(|n| quote(&n)).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// gRPC's length-prefixed message: a flag byte (0, not compressed), the length as four
/// big-endian bytes, the message.
fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

fn metadata(spec: &GrpcSpec) -> Result<HeaderMap, GrpcError> {
    let mut headers = HeaderMap::new();
    for (key, value) in &spec.metadata {
        let bad = |reason| GrpcError::Metadata {
            key: key.clone(),
            reason,
        };
        let name = http::HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| bad("is not a metadata key"))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| bad("the value holds a character metadata cannot carry"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The `grpc-timeout` header for a deadline: milliseconds, at most eight digits.
pub(crate) fn timeout_header(timeout: Duration) -> String {
    let ms = timeout.as_millis().clamp(1, 99_999_999);
    format!("{ms}m")
}

/// Why a response carries no usable status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StatusError {
    /// Neither the headers nor the trailers have a `grpc-status`.
    #[error("the response has no grpc-status")]
    Missing,
    /// The `grpc-status` is not a number.
    #[error("the response's grpc-status is not a number")]
    Malformed,
}

/// The call's status: from a trailers-only answer's headers, from the trailers, or, for an
/// HTTP error without either (a proxy's answer), from the HTTP status as gRPC maps it.
pub(crate) fn status(
    http_status: u16,
    headers: Option<u16>,
    trailers: Option<u16>,
) -> Result<u16, StatusError> {
    match headers.or(trailers) {
        Some(code) => Ok(code),
        None if http_status != 200 => Ok(grpc::from_http_status(http_status)),
        None => Err(StatusError::Missing),
    }
}

/// A `grpc-status` value as a code.
pub(crate) fn parse_status_bytes(value: &[u8]) -> Result<u16, StatusError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(StatusError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_framed_with_its_length() {
        let framed = frame(b"abc");
        assert_eq!(&framed[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn the_status_comes_from_headers_trailers_or_http() {
        assert_eq!(status(200, None, Some(14)).unwrap(), 14);
        assert_eq!(status(200, Some(4), None).unwrap(), 4);
        assert_eq!(status(503, None, None).unwrap(), grpc::UNAVAILABLE);
        assert_eq!(status(200, None, None), Err(StatusError::Missing));
        assert_eq!(parse_status_bytes(b"14"), Ok(14));
        assert_eq!(parse_status_bytes(b"x"), Err(StatusError::Malformed));
    }

    #[test]
    fn deadlines_are_sent_in_milliseconds() {
        assert_eq!(timeout_header(Duration::from_secs(10)), "10000m");
        assert_eq!(timeout_header(Duration::from_micros(10)), "1m");
    }
}
