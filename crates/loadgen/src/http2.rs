//! HTTP/2 client connections (RFC 9113) built for the load engine: the same request goes out
//! millions of times and only its status, gRPC status and body length matter.
//!
//! The request's header block is encoded once per run ([`crate::hpack::encode_request`])
//! and written with its frame header straight into the connection's write buffer; response
//! header blocks are read for `:status` and `grpc-status` only, and DATA is counted, not
//! kept. Every stream of a connection lives in one task (the engine's lanes), and whichever
//! stream is waiting reads the socket for all of them, so no wake-up crosses tasks and no
//! connection task sits between a request and its response. A general client (the `h2`
//! crate) builds a request and a header map per request, decodes every response header
//! into owned values and queues frames through its stream store; on loopback that was more
//! user-space CPU per request than h2load spends, which is what limits the requests per
//! second one load thread drives.
//!
//! The client advertises 2^30−1 byte stream and connection windows (as h2load does) and
//! returns the connection window once half of it is used; it honours the server's
//! SETTINGS (concurrent streams, initial window, frame size), answers PING, and follows
//! GOAWAY: streams above the server's last stream id were not processed and fail as
//! [`Unanswered`], so the engine may resend them.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::future::poll_fn;
use slogate_core::measure::ErrorKind;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::failure::{RequestError, Unanswered};
use crate::grpc::StatusError;
use crate::h1::Io;
use crate::hpack::{Decoder, Fields, HpackError};

/// The stream and connection flow-control windows the client advertises.
pub(crate) const WINDOW: u32 = (1 << 30) - 1;
/// What every client connection starts with (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The initial flow-control window before SETTINGS say otherwise.
const DEFAULT_WINDOW: i64 = 65_535;
/// The largest frame payload this client accepts (SETTINGS_MAX_FRAME_SIZE, the default).
const MAX_FRAME: usize = 16_384;
/// The largest header block (all its fragments) this client accepts.
const MAX_BLOCK: usize = 256 * 1024;
/// Room for incoming frames: several whole frames of the largest size.
const READ_BUFFER: usize = 64 * 1024;
/// Stream ids are 31 bits; a connection whose ids run out takes no more requests.
const LAST_STREAM_ID: u32 = (1 << 31) - 1;
/// A flow-control window may not exceed this (RFC 9113, section 6.9.1).
const MAX_WINDOW: i64 = (1 << 31) - 1;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

const SETTINGS_ENABLE_PUSH: u16 = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

const PROTOCOL_ERROR: u32 = 0x1;
const CANCEL: u32 = 0x8;

/// The name of an HTTP/2 error code (RFC 9113, section 7).
fn code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        other => return format!("error code {other:#x}"),
    };
    name.to_owned()
}

/// Why a stream or a connection failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum H2Error {
    /// The server reset the stream (RST_STREAM).
    #[error("the server reset the stream ({})", code_name(*.0))]
    StreamReset(u32),
    /// The server ended the connection (GOAWAY) with the stream under way.
    #[error("the server ended the connection ({}) during the response", code_name(*.0))]
    GoAway(u32),
    /// The connection ended without GOAWAY.
    #[error("the server closed the connection")]
    Closed,
    /// Reading or writing the connection failed.
    #[error("the connection failed")]
    Io(#[source] Arc<io::Error>),
    /// The server broke the protocol.
    #[error("HTTP/2 protocol error: {0}")]
    Protocol(&'static str),
    /// A header block that cannot be read (a COMPRESSION_ERROR).
    #[error("HTTP/2 header compression error")]
    Hpack(#[source] HpackError),
}

impl H2Error {
    /// The request error a stream counts: one the server did not answer (a connection that
    /// ended cleanly, or after GOAWAY, before its response head) is [`Unanswered`]; resets
    /// and connections ended otherwise are resets; broken protocol is a protocol error.
    fn for_stream(&self, answered: bool, after_goaway: bool) -> RequestError {
        match self {
            H2Error::Closed | H2Error::Io(_) | H2Error::GoAway(_) if after_goaway && !answered => {
                unanswered()
            }
            // A clean close (FIN) before the response head, as on HTTP/1.1.
            H2Error::Closed if !answered => unanswered(),
            H2Error::StreamReset(_) | H2Error::GoAway(_) | H2Error::Closed | H2Error::Io(_) => {
                RequestError::new(ErrorKind::Reset, self.clone())
            }
            H2Error::Protocol(_) | H2Error::Hpack(_) => {
                RequestError::new(ErrorKind::Protocol, self.clone())
            }
        }
    }
}

fn unanswered() -> RequestError {
    RequestError::new(ErrorKind::ClosedWithoutResponse, Unanswered)
}

/// What the engine keeps of one HTTP/2 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct H2Response {
    /// The final `:status`.
    pub(crate) status: u16,
    /// `grpc-status` in the response head (a trailers-only answer).
    pub(crate) head_grpc: Option<Result<u16, StatusError>>,
    /// `grpc-status` in the trailers.
    pub(crate) trailer_grpc: Option<Result<u16, StatusError>>,
    /// DATA octets, padding excluded.
    pub(crate) body_bytes: u64,
    /// False once the connection takes no more requests.
    pub(crate) reusable: bool,
}

/// One request under way on a connection.
struct Stream {
    id: u32,
    status: Option<u16>,
    head_grpc: Option<Result<u16, StatusError>>,
    trailer_grpc: Option<Result<u16, StatusError>>,
    body_bytes: u64,
    /// Octets received since the stream's window was last topped up.
    unacked: u32,
    /// How much body the server lets the client send on this stream.
    send_window: i64,
    /// The request body and how much of it has gone out.
    body: Bytes,
    body_sent: usize,
    /// Set once the stream is over: its response, or why it failed.
    end: Option<Result<(), RequestError>>,
    /// The lane waiting for it.
    waker: Option<Waker>,
}

/// The protocol state of a connection and what it has queued to write.
struct State {
    out: Vec<u8>,
    decoder: Decoder,
    /// A header block being assembled from CONTINUATION frames: its stream and END_STREAM.
    block: Vec<u8>,
    block_for: Option<(u32, bool)>,
    next_id: u32,
    streams: Vec<Stream>,
    max_streams: usize,
    peer_initial_window: i64,
    peer_max_frame: usize,
    send_window: i64,
    /// Connection-level octets received since the window was last topped up.
    unacked: u32,
    /// The server's GOAWAY: its last stream id and error code.
    goaway: Option<(u32, u32)>,
    /// Why the connection ended, once it has.
    ended: Option<H2Error>,
    /// Whether the server's first SETTINGS arrived.
    settings_seen: bool,
    /// Lanes waiting for the server to allow one more stream.
    openers: Vec<Waker>,
}

/// A connection: the byte stream, its buffers and its protocol state.
struct Core {
    io: Box<dyn Io>,
    rbuf: Box<[u8]>,
    /// Unconsumed bytes are `rbuf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of `state.out` already written.
    written: usize,
    state: State,
}

/// One HTTP/2 connection, shared by the lanes (streams) of one engine task. Clones are
/// handles on the same connection.
#[derive(Clone)]
pub(crate) struct H2Conn {
    core: Arc<Mutex<Core>>,
}

impl H2Conn {
    /// Starts HTTP/2 on `io`: the preface and the client's SETTINGS, then waits for the
    /// server's SETTINGS (a server that does not speak HTTP/2 fails here, with a protocol
    /// error, rather than on every request).
    pub(crate) async fn handshake(io: Box<dyn Io>) -> Result<H2Conn, RequestError> {
        let mut out = Vec::with_capacity(16 * 1024);
        out.extend_from_slice(PREFACE);
        frame_head(&mut out, 12, SETTINGS, 0, 0);
        setting(&mut out, SETTINGS_ENABLE_PUSH, 0);
        setting(&mut out, SETTINGS_INITIAL_WINDOW_SIZE, WINDOW);
        window_update(&mut out, 0, WINDOW - DEFAULT_WINDOW as u32);
        let conn = H2Conn {
            core: Arc::new(Mutex::new(Core {
                io,
                rbuf: vec![0; READ_BUFFER].into_boxed_slice(),
                start: 0,
                end: 0,
                written: 0,
                state: State {
                    out,
                    decoder: Decoder::default(),
                    block: Vec::new(),
                    block_for: None,
                    next_id: 1,
                    streams: Vec::new(),
                    max_streams: usize::MAX,
                    peer_initial_window: DEFAULT_WINDOW,
                    peer_max_frame: MAX_FRAME,
                    send_window: DEFAULT_WINDOW,
                    unacked: 0,
                    goaway: None,
                    ended: None,
                    settings_seen: false,
                    openers: Vec::new(),
                },
            })),
        };
        poll_fn(|cx| conn.lock().poll_handshake(cx)).await?;
        Ok(conn)
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `self` and `other` are the same connection.
    pub(crate) fn same(&self, other: &H2Conn) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }

    /// Whether the connection takes no more requests (it ended, the server sent GOAWAY, or
    /// its stream ids ran out).
    pub(crate) fn has_ended(&self) -> bool {
        self.lock().state.closed_to_new()
    }

    /// Sends one request, `block` its encoded header block and `body` its body, and reads
    /// its whole response. Dropping the future cancels the stream (RST_STREAM CANCEL).
    pub(crate) async fn exchange(
        &self,
        block: &[u8],
        body: &Bytes,
    ) -> Result<H2Response, RequestError> {
        let mut open = Open {
            conn: self,
            id: None,
        };
        poll_fn(|cx| {
            let mut core = self.lock();
            let id = match open.id {
                Some(id) => id,
                None => match core.state.poll_open(cx, block, body) {
                    Poll::Ready(Ok(id)) => *open.id.insert(id),
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => return Poll::Pending,
                },
            };
            let polled = core.poll_stream(cx, id);
            if polled.is_ready() {
                open.id = None;
            }
            polled
        })
        .await
    }
}

/// A stream opened by [`H2Conn::exchange`]; cancelled when dropped before its end.
struct Open<'a> {
    conn: &'a H2Conn,
    id: Option<u32>,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.conn.lock().state.cancel(id);
        }
    }
}

impl Core {
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RequestError>> {
        loop {
            if let Some(err) = &self.state.ended {
                let kind = match err {
                    H2Error::Protocol(_) | H2Error::Hpack(_) => ErrorKind::Protocol,
                    _ => ErrorKind::Reset,
                };
                return Poll::Ready(Err(RequestError::new(kind, err.clone())));
            }
            if self.state.settings_seen {
                self.flush(cx);
                return Poll::Ready(Ok(()));
            }
            self.flush(cx);
            if self.read(cx, None).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Drives the connection until stream `id` is over.
    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
        id: u32,
    ) -> Poll<Result<H2Response, RequestError>> {
        loop {
            if let Some(done) = self.state.take_ended(id) {
                if self.written < self.state.out.len() {
                    // Acknowledgements and window updates queued meanwhile go out now.
                    self.flush(cx);
                }
                return Poll::Ready(done);
            }
            if self.state.ended.is_some() {
                // Every stream has its end once the connection has; this one is not known.
                return Poll::Ready(Err(unanswered()));
            }
            self.flush(cx);
            if self.state.ended.is_some() {
                // `take_ended` sees the stream's end on the next turn.
                continue;
            }
            if self.read(cx, Some(id)).is_pending() {
                self.state.park(id, cx.waker());
                return Poll::Pending;
            }
        }
    }

    /// Writes what is queued, as far as the socket takes it; a failure ends the connection.
    fn flush(&mut self, cx: &mut Context<'_>) {
        if self.state.out.is_empty() {
            return;
        }
        while self.written < self.state.out.len() {
            match std::pin::Pin::new(&mut self.io).poll_write(cx, &self.state.out[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    self.state.fail(H2Error::Io(Arc::new(err)));
                    return;
                }
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(err)) => {
                    self.state.fail(H2Error::Io(Arc::new(err)));
                    return;
                }
                Poll::Pending => return,
            }
        }
        self.state.out.clear();
        self.written = 0;
        // TLS keeps records until flushed; on TCP this does nothing.
        if let Poll::Ready(Err(err)) = std::pin::Pin::new(&mut self.io).poll_flush(cx) {
            self.state.fail(H2Error::Io(Arc::new(err)));
        }
    }

    /// Reads once and handles every whole frame read, waking the lanes whose streams ended
    /// (but not `polling`'s, which is being polled). Ready when something happened (frames
    /// handled, or the connection ended).
    fn read(&mut self, cx: &mut Context<'_>, polling: Option<u32>) -> Poll<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.rbuf.len() {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut buf = ReadBuf::new(&mut self.rbuf[self.end..]);
        match std::pin::Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(err)) => {
                self.state.fail(H2Error::Io(Arc::new(err)));
                return Poll::Ready(());
            }
            Poll::Ready(Ok(())) => {}
        }
        let n = buf.filled().len();
        if n == 0 {
            self.state.fail(H2Error::Closed);
            return Poll::Ready(());
        }
        self.end += n;
        while self.end - self.start >= 9 {
            let head = &self.rbuf[self.start..self.start + 9];
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & LAST_STREAM_ID;
            if len > MAX_FRAME {
                let why = if self.state.settings_seen {
                    "a frame larger than the 16384 octets allowed"
                } else {
                    "the server's first bytes are not an HTTP/2 frame; does it speak HTTP/2?"
                };
                self.state.fail(H2Error::Protocol(why));
                return Poll::Ready(());
            }
            if self.end - self.start < 9 + len {
                break;
            }
            let payload = &self.rbuf[self.start + 9..self.start + 9 + len];
            self.start += 9 + len;
            if let Err(err) = self.state.on_frame(kind, flags, id, payload) {
                self.state.fail(err);
                return Poll::Ready(());
            }
        }
        self.state.wake_ended(polling);
        Poll::Ready(())
    }
}

impl State {
    fn closed_to_new(&self) -> bool {
        self.ended.is_some() || self.goaway.is_some() || self.next_id > LAST_STREAM_ID
    }

    /// Opens a stream for the request: HEADERS (and CONTINUATION) with the encoded block,
    /// then as much of the body as the windows allow.
    fn poll_open(
        &mut self,
        cx: &mut Context<'_>,
        block: &[u8],
        body: &Bytes,
    ) -> Poll<Result<u32, RequestError>> {
        if self.closed_to_new() {
            // The connection never took the request up: it was not sent.
            return Poll::Ready(Err(unanswered()));
        }
        if self.streams.len() >= self.max_streams {
            if !self.openers.iter().any(|w| w.will_wake(cx.waker())) {
                self.openers.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let id = self.next_id;
        self.next_id += 2;
        let mut rest = block;
        let mut kind = HEADERS;
        loop {
            let take = rest.len().min(self.peer_max_frame);
            let (now, later) = rest.split_at(take);
            let mut flags = if later.is_empty() { END_HEADERS } else { 0 };
            if kind == HEADERS && body.is_empty() {
                flags |= END_STREAM;
            }
            frame_head(&mut self.out, now.len(), kind, flags, id);
            self.out.extend_from_slice(now);
            if later.is_empty() {
                break;
            }
            rest = later;
            kind = CONTINUATION;
        }
        self.streams.push(Stream {
            id,
            status: None,
            head_grpc: None,
            trailer_grpc: None,
            body_bytes: 0,
            unacked: 0,
            send_window: self.peer_initial_window,
            body: body.clone(),
            body_sent: 0,
            end: None,
            waker: None,
        });
        if !body.is_empty() {
            self.send_bodies();
        }
        Poll::Ready(Ok(id))
    }

    /// Sends as much of every stream's remaining body as the flow-control windows allow.
    fn send_bodies(&mut self) {
        for stream in &mut self.streams {
            while stream.end.is_none() && stream.body_sent < stream.body.len() {
                let room = self.send_window.min(stream.send_window);
                if room <= 0 {
                    break;
                }
                let left = stream.body.len() - stream.body_sent;
                let take = left.min(self.peer_max_frame).min(room as usize);
                let last = take == left;
                frame_head(
                    &mut self.out,
                    take,
                    DATA,
                    if last { END_STREAM } else { 0 },
                    stream.id,
                );
                self.out
                    .extend_from_slice(&stream.body[stream.body_sent..stream.body_sent + take]);
                stream.body_sent += take;
                self.send_window -= take as i64;
                stream.send_window -= take as i64;
            }
        }
    }

    /// Takes stream `id`'s outcome once it is over, handing the socket on to another lane.
    fn take_ended(&mut self, id: u32) -> Option<Result<H2Response, RequestError>> {
        let at = self.streams.iter().position(|s| s.id == id)?;
        self.streams[at].end.as_ref()?;
        let stream = self.streams.swap_remove(at);
        self.after_removal();
        let reusable = !self.closed_to_new();
        Some(stream.end.unwrap_or(Ok(())).map(|()| H2Response {
            status: stream.status.unwrap_or_default(),
            head_grpc: stream.head_grpc,
            trailer_grpc: stream.trailer_grpc,
            body_bytes: stream.body_bytes,
            reusable,
        }))
    }

    /// A stream is gone: a lane waiting to open one may now, and, since the socket wakes
    /// only the lane that read it last, one lane still waiting takes over reading.
    fn after_removal(&mut self) {
        for opener in self.openers.drain(..) {
            opener.wake();
        }
        if let Some(waker) = self.streams.iter_mut().find_map(|s| s.waker.take()) {
            waker.wake();
        }
    }

    /// Records the lane waiting for stream `id`.
    fn park(&mut self, id: u32, waker: &Waker) {
        if let Some(stream) = self.streams.iter_mut().find(|s| s.id == id) {
            match &stream.waker {
                Some(old) if old.will_wake(waker) => {}
                _ => stream.waker = Some(waker.clone()),
            }
        }
    }

    /// Wakes the lanes whose streams are over, but `polling`'s: its lane is running now, and
    /// a wake-up would only poll it once more for nothing.
    fn wake_ended(&mut self, polling: Option<u32>) {
        for stream in &mut self.streams {
            if stream.end.is_some()
                && Some(stream.id) != polling
                && let Some(waker) = stream.waker.take()
            {
                waker.wake();
            }
        }
    }

    /// Drops stream `id` before its end, telling the server (RST_STREAM CANCEL).
    fn cancel(&mut self, id: u32) {
        let Some(at) = self.streams.iter().position(|s| s.id == id) else {
            return;
        };
        let stream = self.streams.swap_remove(at);
        if stream.end.is_none() && self.ended.is_none() {
            rst_stream(&mut self.out, id, CANCEL);
        }
        self.after_removal();
    }

    /// The connection ended: every stream still under way fails with `err`.
    fn fail(&mut self, err: H2Error) {
        if self.ended.is_some() {
            return;
        }
        let after_goaway = self.goaway.is_some();
        // The connection closing after GOAWAY is the GOAWAY's doing.
        let err = match (err, self.goaway) {
            (H2Error::Closed, Some((_, code))) => H2Error::GoAway(code),
            (err, _) => err,
        };
        for stream in &mut self.streams {
            if stream.end.is_none() {
                stream.end = Some(Err(err.for_stream(stream.status.is_some(), after_goaway)));
            }
            if let Some(waker) = stream.waker.take() {
                waker.wake();
            }
        }
        for opener in self.openers.drain(..) {
            opener.wake();
        }
        self.ended = Some(err);
    }

    /// Ends stream `id` with a protocol error of its own, telling the server.
    fn stream_error(&mut self, id: u32, why: &'static str) {
        if let Some(stream) = self.streams.iter_mut().find(|s| s.id == id)
            && stream.end.is_none()
        {
            stream.end = Some(Err(RequestError::new(
                ErrorKind::Protocol,
                H2Error::Protocol(why),
            )));
            rst_stream(&mut self.out, id, PROTOCOL_ERROR);
        }
    }

    /// Handles one frame; `Err` is a connection error.
    fn on_frame(&mut self, kind: u8, flags: u8, id: u32, payload: &[u8]) -> Result<(), H2Error> {
        if self.block_for.is_some() && kind != CONTINUATION {
            return Err(H2Error::Protocol(
                "a header block was interrupted by another frame",
            ));
        }
        if !self.settings_seen && kind != SETTINGS {
            return Err(H2Error::Protocol(
                "the server did not start with SETTINGS; does it speak HTTP/2?",
            ));
        }
        match kind {
            DATA => self.on_data(flags, id, payload),
            HEADERS => {
                if id == 0 {
                    return Err(H2Error::Protocol("HEADERS on stream 0"));
                }
                let mut fragment = unpad(flags, payload)?;
                if flags & PRIORITY != 0 {
                    fragment = fragment.get(5..).ok_or(H2Error::Protocol(
                        "a HEADERS frame too short for its priority",
                    ))?;
                }
                let end_stream = flags & END_STREAM != 0;
                if flags & END_HEADERS != 0 {
                    return self.on_block(id, end_stream, fragment);
                }
                self.block.clear();
                self.block.extend_from_slice(fragment);
                self.block_for = Some((id, end_stream));
                Ok(())
            }
            CONTINUATION => {
                let Some((for_id, end_stream)) = self.block_for else {
                    return Err(H2Error::Protocol("CONTINUATION without a header block"));
                };
                if for_id != id {
                    return Err(H2Error::Protocol("CONTINUATION on another stream"));
                }
                if self.block.len() + payload.len() > MAX_BLOCK {
                    return Err(H2Error::Protocol("a header block larger than 256 KiB"));
                }
                self.block.extend_from_slice(payload);
                if flags & END_HEADERS != 0 {
                    self.block_for = None;
                    let block = std::mem::take(&mut self.block);
                    let handled = self.on_block(id, end_stream, &block);
                    self.block = block;
                    return handled;
                }
                Ok(())
            }
            RST_STREAM => {
                let code = u32_payload(payload, id != 0, "a malformed RST_STREAM")?;
                if let Some(stream) = self.streams.iter_mut().find(|s| s.id == id)
                    && stream.end.is_none()
                {
                    stream.end = Some(Err(H2Error::StreamReset(code).for_stream(true, false)));
                }
                Ok(())
            }
            SETTINGS => self.on_settings(flags, id, payload),
            PUSH_PROMISE => Err(H2Error::Protocol("PUSH_PROMISE, though push is disabled")),
            PING => {
                if id != 0 || payload.len() != 8 {
                    return Err(H2Error::Protocol("a malformed PING"));
                }
                if flags & ACK == 0 {
                    frame_head(&mut self.out, 8, PING, ACK, 0);
                    self.out.extend_from_slice(payload);
                }
                Ok(())
            }
            GOAWAY => {
                if id != 0 || payload.len() < 8 {
                    return Err(H2Error::Protocol("a malformed GOAWAY"));
                }
                let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                    & LAST_STREAM_ID;
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                let last = self.goaway.map_or(last, |(old, _)| old.min(last));
                self.goaway = Some((last, code));
                for stream in &mut self.streams {
                    if stream.id > last && stream.end.is_none() {
                        // Never processed (RFC 9113, section 6.8): safe to send again.
                        stream.end = Some(Err(unanswered()));
                    }
                }
                Ok(())
            }
            WINDOW_UPDATE => {
                let increment = i64::from(u32_payload(payload, true, "a malformed WINDOW_UPDATE")?);
                if id == 0 {
                    if increment == 0 {
                        return Err(H2Error::Protocol("a WINDOW_UPDATE of 0"));
                    }
                    self.send_window += increment;
                    if self.send_window > MAX_WINDOW {
                        return Err(H2Error::Protocol("the connection window overflowed"));
                    }
                } else if let Some(stream) = self.streams.iter_mut().find(|s| s.id == id) {
                    stream.send_window += increment;
                    if increment == 0 || stream.send_window > MAX_WINDOW {
                        self.stream_error(id, "a bad WINDOW_UPDATE for the stream");
                    }
                }
                self.send_bodies();
                Ok(())
            }
            // PRIORITY and unknown frame types are ignored (RFC 9113, section 4.1).
            _ => Ok(()),
        }
    }

    fn on_data(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), H2Error> {
        if id == 0 {
            return Err(H2Error::Protocol("DATA on stream 0"));
        }
        let data = unpad(flags, payload)?;
        // Flow control counts the whole payload, padding included.
        let counted = payload.len() as u32;
        self.unacked += counted;
        if self.unacked >= WINDOW / 2 {
            window_update(&mut self.out, 0, self.unacked);
            self.unacked = 0;
        }
        let Some(stream) = self.streams.iter_mut().find(|s| s.id == id) else {
            return Ok(());
        };
        if stream.end.is_some() {
            return Ok(());
        }
        if stream.status.is_none() {
            self.stream_error(id, "DATA before the response head");
            return Ok(());
        }
        stream.body_bytes += data.len() as u64;
        if flags & END_STREAM != 0 {
            stream.end = Some(Ok(()));
            return Ok(());
        }
        stream.unacked += counted;
        if stream.unacked >= WINDOW / 2 {
            window_update(&mut self.out, id, stream.unacked);
            stream.unacked = 0;
        }
        Ok(())
    }

    /// A whole header block for stream `id`: the response head, an interim head, or the
    /// trailers. Every block is decoded, whatever its stream, to keep the table in step.
    fn on_block(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Result<(), H2Error> {
        let fields: Fields = self.decoder.decode(block).map_err(H2Error::Hpack)?;
        let Some(stream) = self.streams.iter_mut().find(|s| s.id == id) else {
            return Ok(());
        };
        if stream.end.is_some() {
            return Ok(());
        }
        if stream.status.is_some() {
            if !end_stream {
                self.stream_error(id, "trailers without END_STREAM");
                return Ok(());
            }
            stream.trailer_grpc = fields.grpc_status;
            stream.end = Some(Ok(()));
            return Ok(());
        }
        let status = match fields.status {
            Some(status) if !fields.bad_status => status,
            _ => {
                self.stream_error(id, "a response head without a valid :status");
                return Ok(());
            }
        };
        if (100..200).contains(&status) {
            // Interim responses (103 Early Hints) precede the real one.
            if status == 101 || end_stream {
                self.stream_error(id, "an interim response that ends the stream or is 101");
            }
            return Ok(());
        }
        stream.status = Some(status);
        stream.head_grpc = fields.grpc_status;
        if end_stream {
            stream.end = Some(Ok(()));
        }
        Ok(())
    }

    fn on_settings(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), H2Error> {
        if id != 0 {
            return Err(H2Error::Protocol("SETTINGS on a stream"));
        }
        if flags & ACK != 0 {
            return if payload.is_empty() {
                Ok(())
            } else {
                Err(H2Error::Protocol(
                    "a SETTINGS acknowledgement with a payload",
                ))
            };
        }
        if !payload.len().is_multiple_of(6) {
            return Err(H2Error::Protocol("a SETTINGS frame of a bad length"));
        }
        for pair in payload.chunks_exact(6) {
            let key = u16::from_be_bytes([pair[0], pair[1]]);
            let value = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
            match key {
                SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(H2Error::Protocol("SETTINGS_ENABLE_PUSH above 1"));
                }
                SETTINGS_MAX_CONCURRENT_STREAMS => {
                    self.max_streams = usize::try_from(value).unwrap_or(usize::MAX);
                }
                SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > MAX_WINDOW {
                        return Err(H2Error::Protocol("SETTINGS_INITIAL_WINDOW_SIZE too large"));
                    }
                    let change = value - self.peer_initial_window;
                    self.peer_initial_window = value;
                    for stream in &mut self.streams {
                        stream.send_window += change;
                    }
                }
                SETTINGS_MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(H2Error::Protocol("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = value as usize;
                }
                // The header table size binds only an encoder that indexes; this one never does.
                _ => {}
            }
        }
        self.settings_seen = true;
        frame_head(&mut self.out, 0, SETTINGS, ACK, 0);
        self.send_bodies();
        for opener in self.openers.drain(..) {
            opener.wake();
        }
        Ok(())
    }
}

/// A padded frame's content, without its padding.
fn unpad(flags: u8, payload: &[u8]) -> Result<&[u8], H2Error> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or(H2Error::Protocol("a padded frame without its pad length"))?;
    rest.len()
        .checked_sub(usize::from(pad))
        .map(|len| &rest[..len])
        .ok_or(H2Error::Protocol("padding longer than the frame"))
}

/// The 31-bit value of a four-octet frame (RST_STREAM, WINDOW_UPDATE); `malformed` when the
/// frame is not four octets or `allowed` is false.
fn u32_payload(payload: &[u8], allowed: bool, malformed: &'static str) -> Result<u32, H2Error> {
    match payload {
        [a, b, c, d] if allowed => Ok(u32::from_be_bytes([*a, *b, *c, *d]) & LAST_STREAM_ID),
        _ => Err(H2Error::Protocol(malformed)),
    }
}

fn frame_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, id: u32) {
    let len = len as u32;
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&id.to_be_bytes());
}

fn setting(out: &mut Vec<u8>, key: u16, value: u32) {
    out.extend_from_slice(&key.to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
}

fn window_update(out: &mut Vec<u8>, id: u32, increment: u32) {
    frame_head(out, 4, WINDOW_UPDATE, 0, id);
    out.extend_from_slice(&increment.to_be_bytes());
}

fn rst_stream(out: &mut Vec<u8>, id: u32, code: u32) {
    frame_head(out, 4, RST_STREAM, 0, id);
    out.extend_from_slice(&code.to_be_bytes());
}
