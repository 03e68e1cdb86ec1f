//! gRPC status codes: their names, and the code an HTTP status stands for when a response
//! carries no `grpc-status` (gRPC's "HTTP to gRPC status code mapping").

/// `OK`: the call succeeded; every other code is an error.
pub const OK: u16 = 0;
/// `UNKNOWN`: what a call's outcome is when nothing better is known.
pub const UNKNOWN: u16 = 2;
/// `DEADLINE_EXCEEDED`: the call did not finish within its deadline.
pub const DEADLINE_EXCEEDED: u16 = 4;
/// `UNAVAILABLE`: the service cannot take the call now (overload, restart).
pub const UNAVAILABLE: u16 = 14;

const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The canonical name of a status code (`DEADLINE_EXCEEDED`), or `None` for a code gRPC
/// does not define.
pub fn status_name(code: u16) -> Option<&'static str> {
    NAMES.get(usize::from(code)).copied()
}

/// The name reports show for a code: its canonical name, or the number for an undefined one.
pub fn status_label(code: u16) -> String {
    status_name(code).map_or_else(|| code.to_string(), str::to_owned)
}

/// The code a name stands for (`UNAVAILABLE` → 14).
pub fn status_code(name: &str) -> Option<u16> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u16)
}

/// The gRPC code of a response whose HTTP status is not 200 and that carries no
/// `grpc-status` (a proxy's answer, say), as gRPC's mapping gives it.
pub fn from_http_status(status: u16) -> u16 {
    match status {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        429 | 502..=504 => 14, // UNAVAILABLE
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for code in 0..=16 {
            let name = status_name(code).unwrap();
            assert_eq!(status_code(name), Some(code));
        }
        assert_eq!(status_name(DEADLINE_EXCEEDED), Some("DEADLINE_EXCEEDED"));
        assert_eq!(status_name(17), None);
        assert_eq!(status_label(17), "17");
    }

    #[test]
    fn http_statuses_map_as_grpc_says() {
        assert_eq!(from_http_status(503), UNAVAILABLE);
        assert_eq!(from_http_status(404), 12);
        assert_eq!(from_http_status(500), UNKNOWN);
    }
}
