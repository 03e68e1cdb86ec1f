//! HTTP/1.1 exchanges on one keep-alive connection: the request, serialized once per plan, is
//! written in one go; the response head is parsed in place with `httparse`; the body is framed
//! by `Content-Length`, chunked encoding or the end of the connection, counted and dropped.
//!
//! The engine asks little of a response (status, how its body ends, whether the connection
//! stays open, how many bytes came) and the same request goes out millions of times, so it
//! skips what a general client does per request: building a request and a header map,
//! handing both to a connection task through a channel, keeping the body. Against nginx on
//! loopback that work took about 3.6 µs of user-space CPU per request, four times wrk's, and
//! user-space CPU is what limits the requests per second one load thread drives. Here it is
//! about 1.3 µs. HTTP/2 has a client of its own built the same way (`crate::http2`).

use std::io;

use slogate_core::measure::ErrorKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::failure::{RequestError, Unanswered, classify_io};

/// A byte stream a connection runs over: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Room for the start of a response; grown for a longer head, up to [`MAX_HEAD`].
const INITIAL_BUFFER: usize = 8 * 1024;
/// A longer response head (or line of chunked framing) is refused as a protocol error.
const MAX_HEAD: usize = 64 * 1024;
/// A response with more header fields is refused as a protocol error.
const MAX_HEADERS: usize = 100;

/// What the engine keeps of one response (HTTP/1.1 or HTTP/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Body bytes after removing chunked framing.
    pub(crate) body_bytes: u64,
    /// False when the server closes the connection after this response.
    pub(crate) reusable: bool,
}

/// How the body of a response ends (RFC 9112, section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the head of a response says, copied out of the read buffer.
#[derive(Debug)]
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

/// One HTTP/1.1 client connection.
pub(crate) struct Http1 {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Whether any byte arrived since the current request was written.
    received: bool,
}

impl Http1 {
    pub(crate) fn new(io: Box<dyn Io>) -> Self {
        Self {
            io,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            received: false,
        }
    }

    /// Sends `request` (a complete serialized request) and reads the whole response.
    /// `head_request` says the request was a `HEAD`, whose response has no body. A connection
    /// that ends before a byte of the response arrived fails with [`Unanswered`] as source.
    pub(crate) async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
    ) -> Result<Response, RequestError> {
        self.received = false;
        self.io.write_all(request).await.map_err(io_error)?;
        self.io.flush().await.map_err(io_error)?;
        let head = loop {
            let head = self.read_head(head_request).await?;
            // Interim responses (100 Continue, 103 Early Hints) precede the real one.
            if !(100..200).contains(&head.status) {
                break head;
            }
            if head.status == 101 {
                return Err(protocol("the server switched protocols (101) unasked"));
            }
        };
        let body_bytes = match head.framing {
            Framing::Empty => 0,
            Framing::Length(length) => {
                self.skip(length).await?;
                length
            }
            Framing::Chunked => self.skip_chunked().await?,
            Framing::UntilClose => self.skip_to_end().await?,
        };
        // Bytes beyond the response were never asked for: the connection is out of step.
        let in_step = self.start == self.end;
        self.start = 0;
        self.end = 0;
        Ok(Response {
            status: head.status,
            body_bytes,
            reusable: head.keep_alive && head.framing != Framing::UntilClose && in_step,
        })
    }

    /// Reads and parses one response head, consuming it from the buffer.
    async fn read_head(&mut self, head_request: bool) -> Result<Head, RequestError> {
        loop {
            if self.start < self.end {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(length)) => {
                        let head = Head::from_parsed(&response, head_request)?;
                        self.start += length;
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(err) => return Err(protocol(format!("bad response head: {err}"))),
                }
            }
            if self.fill().await? == 0 {
                if !self.received {
                    return Err(RequestError::new(
                        ErrorKind::ClosedWithoutResponse,
                        Unanswered,
                    ));
                }
                return Err(closed(
                    "the server closed the connection within the response head",
                ));
            }
        }
    }

    /// Consumes `length` body bytes.
    async fn skip(&mut self, mut length: u64) -> Result<(), RequestError> {
        loop {
            let available = (self.end - self.start) as u64;
            let taken = available.min(length);
            self.start += taken as usize;
            length -= taken;
            if length == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Err(closed("the server closed the connection within the body"));
            }
        }
    }

    /// Consumes a chunked body and its trailers; returns the size of the data it carried.
    async fn skip_chunked(&mut self) -> Result<u64, RequestError> {
        let mut total = 0u64;
        loop {
            let size = match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                Ok(httparse::Status::Complete((used, size))) => {
                    self.start += used;
                    size
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill().await? == 0 {
                        return Err(closed("the server closed the connection within a chunk"));
                    }
                    continue;
                }
                Err(httparse::InvalidChunkSize) => return Err(protocol("bad chunk size line")),
            };
            if size == 0 {
                self.skip_trailers().await?;
                return Ok(total);
            }
            self.skip(size).await?;
            total = total.saturating_add(size);
            self.expect_line_end().await?;
        }
    }

    /// Consumes trailer lines up to and including the empty line that ends the body.
    async fn skip_trailers(&mut self) -> Result<(), RequestError> {
        loop {
            match self.buf[self.start..self.end]
                .windows(2)
                .position(|pair| pair == b"\r\n")
            {
                Some(line) => {
                    self.start += line + 2;
                    if line == 0 {
                        return Ok(());
                    }
                }
                None => {
                    if self.fill().await? == 0 {
                        return Err(closed("the server closed the connection within trailers"));
                    }
                }
            }
        }
    }

    /// Consumes the CRLF that ends a chunk's data.
    async fn expect_line_end(&mut self) -> Result<(), RequestError> {
        while self.end - self.start < 2 {
            if self.fill().await? == 0 {
                return Err(closed("the server closed the connection within a chunk"));
            }
        }
        if &self.buf[self.start..self.start + 2] != b"\r\n" {
            return Err(protocol("chunk data longer than its size"));
        }
        self.start += 2;
        Ok(())
    }

    /// Consumes everything up to the end of the connection; returns how much that was.
    async fn skip_to_end(&mut self) -> Result<u64, RequestError> {
        let mut total = (self.end - self.start) as u64;
        self.start = self.end;
        loop {
            match self.fill().await? {
                0 => return Ok(total),
                n => {
                    total += n as u64;
                    self.start = self.end;
                }
            }
        }
    }

    /// Reads more bytes after the unconsumed ones, making room first; returns how many
    /// came (0 when the server closed the connection).
    async fn fill(&mut self) -> Result<usize, RequestError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_HEAD {
                // Only a head or a line of chunked framing is kept whole.
                self.buf.resize((self.buf.len() * 2).min(MAX_HEAD), 0);
            } else {
                return Err(protocol(format!(
                    "a response head or chunk line longer than {} KiB",
                    MAX_HEAD / 1024
                )));
            }
        }
        let n = match self.io.read(&mut self.buf[self.end..]).await {
            Ok(n) => n,
            // TLS without a close_notify: an end like any other for counting purposes.
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(err) => return Err(io_error(err)),
        };
        self.end += n;
        self.received |= n > 0;
        Ok(n)
    }
}

impl Head {
    fn from_parsed(
        response: &httparse::Response<'_, '_>,
        head_request: bool,
    ) -> Result<Self, RequestError> {
        let status = response.code.unwrap_or_default();
        // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when asked.
        let (mut close, mut keep_alive) = (false, response.version == Some(1));
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut transfer_encoded = false;
        for header in response.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let value = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| protocol("bad Content-Length"))?;
                if length.is_some_and(|seen| seen != value) {
                    return Err(protocol("conflicting Content-Length headers"));
                }
                length = Some(value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoded = true;
                // Only the last coding decides: chunked must be the final one.
                chunked = tokens(header.value)
                    .last()
                    .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                for token in tokens(header.value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        let framing = if head_request || status == 204 || status == 304 || status < 200 {
            Framing::Empty
        } else if transfer_encoded {
            if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }
        } else {
            match length {
                Some(0) => Framing::Empty,
                Some(length) => Framing::Length(length),
                None => Framing::UntilClose,
            }
        };
        Ok(Self {
            status,
            framing,
            keep_alive: keep_alive && !close,
        })
    }
}

/// The comma-separated tokens of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

fn io_error(err: io::Error) -> RequestError {
    RequestError::new(classify_io(&err), err)
}

fn protocol(message: impl Into<String>) -> RequestError {
    RequestError::new(ErrorKind::Protocol, message.into())
}

fn closed(message: &str) -> RequestError {
    RequestError::new(ErrorKind::Reset, message.to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    use super::*;

    const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n";
    const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nhost: test\r\n\r\n";

    /// A loopback server for one connection: it reads each request (head only) and answers
    /// it with the next reply, a byte at a time when `trickle`; after the last reply it
    /// closes the connection. Its task returns the requests it received.
    async fn serve(replies: Vec<Vec<u8>>, trickle: bool) -> (Http1, JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            let mut received = Vec::new();
            for reply in replies {
                let mut request = Vec::new();
                while !request.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8];
                    if socket.read(&mut byte).await.unwrap() == 0 {
                        return received;
                    }
                    request.push(byte[0]);
                }
                received.push(request);
                if trickle {
                    for byte in reply {
                        socket.write_all(&[byte]).await.unwrap();
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                } else {
                    socket.write_all(&reply).await.unwrap();
                }
            }
            received
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        (Http1::new(Box::new(stream)), server)
    }

    fn replies(texts: &[&str]) -> Vec<Vec<u8>> {
        texts.iter().map(|t| t.as_bytes().to_vec()).collect()
    }

    fn ok(status: u16, body_bytes: u64, reusable: bool) -> Response {
        Response {
            status,
            body_bytes,
            reusable,
        }
    }

    async fn kind_of(reply: Vec<u8>) -> (ErrorKind, String) {
        let (mut conn, _) = serve(vec![reply], false).await;
        let err = conn.exchange(GET, false).await.unwrap_err();
        (err.kind, err.source.to_string())
    }

    #[tokio::test]
    async fn content_length_bodies_on_one_kept_connection() {
        let (mut conn, server) = serve(
            replies(&[
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length:  3 \r\n\r\nbad",
            ]),
            false,
        )
        .await;
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(200, 5, true));
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(503, 3, true));
        assert_eq!(server.await.unwrap(), vec![GET.to_vec(), GET.to_vec()]);
    }

    #[tokio::test]
    async fn chunked_bodies_arriving_a_byte_at_a_time() {
        let (mut conn, _) = serve(
            replies(&[
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n\
                 5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n",
                "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ]),
            true,
        )
        .await;
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(200, 11, true));
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(201, 0, true));
    }

    #[tokio::test]
    async fn a_body_larger_than_the_buffer_is_counted_not_kept() {
        let size = 3 * INITIAL_BUFFER + 17;
        let mut reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
        reply.resize(reply.len() + size, b'x');
        let (mut conn, _) = serve(vec![reply], false).await;
        let response = conn.exchange(GET, false).await.unwrap();
        assert_eq!(response, ok(200, size as u64, true));
        assert_eq!(conn.buf.len(), INITIAL_BUFFER);
    }

    #[tokio::test]
    async fn a_body_without_length_runs_to_the_end_of_the_connection() {
        let (mut conn, _) = serve(replies(&["HTTP/1.1 200 OK\r\n\r\nuntil the end"]), true).await;
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(200, 13, false));
    }

    #[tokio::test]
    async fn connection_close_and_http_1_0_end_the_connection() {
        for (reply, reusable) in [
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
                true,
            ),
        ] {
            let (mut conn, _) = serve(replies(&[reply]), false).await;
            let response = conn.exchange(GET, false).await.unwrap();
            assert_eq!(response.reusable, reusable, "{reply:?}");
        }
    }

    #[tokio::test]
    async fn responses_without_a_body_leave_the_connection_in_step() {
        let (mut conn, _) = serve(
            replies(&[
                "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                 HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ]),
            false,
        )
        .await;
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(204, 0, true));
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(304, 0, true));
        assert_eq!(conn.exchange(HEAD, true).await.unwrap(), ok(200, 0, true));
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(200, 2, true));
    }

    #[tokio::test]
    async fn bytes_beyond_the_response_end_the_connection() {
        let (mut conn, _) = serve(
            replies(&["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"]),
            false,
        )
        .await;
        assert_eq!(conn.exchange(GET, false).await.unwrap(), ok(200, 2, false));
    }

    #[tokio::test]
    async fn a_connection_closed_early_is_a_reset_or_closed_without_response() {
        for (reply, why) in [
            ("", "before responding"),
            ("HTTP/1.1 200 OK\r\nContent-", "within the response head"),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
                "within the body",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe",
                "within the body",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n1",
                "within a chunk",
            ),
        ] {
            let (kind, message) = kind_of(reply.as_bytes().to_vec()).await;
            // Before any byte of a response it is a request the server dropped.
            let expected = if reply.is_empty() {
                ErrorKind::ClosedWithoutResponse
            } else {
                ErrorKind::Reset
            };
            assert_eq!(kind, expected, "{reply:?}");
            assert!(message.contains(why), "{reply:?}: {message}");
        }
    }

    #[tokio::test]
    async fn a_kept_connection_closed_while_idle_is_told_apart() {
        // The server answers once and closes the connection (FIN) without announcing it.
        let reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (mut conn, server) = serve(replies(&[reply]), false).await;
        let first = conn.exchange(GET, false).await;
        server.await.unwrap();
        assert_eq!(first.unwrap(), ok(200, 0, true));
        let err = conn.exchange(GET, false).await.unwrap_err();
        assert!(err.is_unanswered(), "{err}");
        assert_eq!(err.kind, ErrorKind::ClosedWithoutResponse);
        // A connection cut within a response is a plain reset.
        let (mut conn, _) = serve(replies(&["HTTP/1.1 200"]), false).await;
        assert!(!conn.exchange(GET, false).await.unwrap_err().is_unanswered());
    }

    #[tokio::test]
    async fn malformed_responses_are_protocol_errors() {
        let mut long_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while long_head.len() <= MAX_HEAD {
            long_head.extend_from_slice(format!("X-Padding: {}\r\n", "a".repeat(1000)).as_bytes());
        }
        let mut long_chunk_line =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=".to_vec();
        long_chunk_line.resize(long_chunk_line.len() + MAX_HEAD + 1, b'a');
        for (reply, why) in [
            (b"HELLO\r\n\r\n".to_vec(), "bad response head"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n".to_vec(),
                "bad Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
                "conflicting Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
                "bad chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"
                    .to_vec(),
                "chunk data longer than its size",
            ),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec(), "101"),
            (long_head, "longer than 64 KiB"),
            (long_chunk_line, "longer than 64 KiB"),
        ] {
            let (kind, message) = kind_of(reply).await;
            assert_eq!(kind, ErrorKind::Protocol, "{message}");
            assert!(message.contains(why), "{message}");
        }
    }
}
