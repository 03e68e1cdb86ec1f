//! Naming what went wrong when a connection or an exchange fails: the [`ErrorKind`] a
//! measurement counts, with the cause kept as the source.

use std::error::Error as StdError;
use std::io;

use slogate_core::measure::ErrorKind;

/// A request the server did not answer: the connection ended cleanly (FIN, not RST) before a
/// byte of its response arrived (HTTP/1.1), or the server sent GOAWAY before answering or the
/// connection never took the request up (HTTP/2). On a kept connection that had sat idle for
/// a while this is a server that closed it at its keep-alive timeout as the request went out,
/// and the request is sent again; otherwise the server dropped it (an error).
#[derive(Debug, thiserror::Error)]
#[error("the server closed the connection before responding")]
pub(crate) struct Unanswered;

/// A failed request or connection attempt, classified.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?}: {source}")]
pub struct RequestError {
    /// The kind of failure, as counted in the measurement.
    pub kind: ErrorKind,
    /// The underlying cause.
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl RequestError {
    pub(crate) fn new(kind: ErrorKind, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }

    /// Whether the server closed the connection without a byte of response (see
    /// [`Unanswered`]).
    pub(crate) fn is_unanswered(&self) -> bool {
        self.source.is::<Unanswered>()
    }
}

pub(crate) fn classify_io(err: &io::Error) -> ErrorKind {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => ErrorKind::Reset,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_kinds() {
        let kind = |k| classify_io(&io::Error::from(k));
        assert_eq!(
            kind(io::ErrorKind::ConnectionRefused),
            ErrorKind::ConnectRefused
        );
        assert_eq!(kind(io::ErrorKind::ConnectionReset), ErrorKind::Reset);
        assert_eq!(kind(io::ErrorKind::BrokenPipe), ErrorKind::Reset);
        assert_eq!(kind(io::ErrorKind::TimedOut), ErrorKind::Timeout);
        assert_eq!(kind(io::ErrorKind::InvalidData), ErrorKind::Protocol);
    }
}
