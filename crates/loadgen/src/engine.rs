//! The run itself: one task per connection, each recording into its own histograms and
//! counters (nothing shared on the hot path but one slot counter), merged at the end. The
//! connections are shared out among single-threaded runtimes, one per worker thread of the
//! caller's runtime, so each connection lives on one thread's event loop.
//!
//! Closed model: each connection sends its next request as soon as the previous one ends.
//! Open model: request `i` is due at `origin + i / qps`; a free connection takes the next
//! slot, waits for its due time and sends. Latency is measured from the due time, so a server
//! that stalls is charged for every request it kept waiting (coordinated omission corrected),
//! and from the actual send too (service time). When every connection is busy at a request's
//! due time, the connection that takes it late opens one more, up to the plan's
//! `max_connections`; a run that still fell behind is reported as saturated.
//!
//! A kept connection that ends before any byte of a response is resent once on a new
//! connection only when it had sat idle for [`IDLE_RESEND_AFTER`] since its last response
//! (the server's keep-alive timeout raced the request); otherwise the request was dropped,
//! and it counts as a `closed-without-response` error.

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use slogate_core::measure::{
    ErrorKind, Measurement, Saturation, new_latency_histogram, record_latency,
};
use slogate_core::spec::StatusRange;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::connect::{Connection, Connector};
use crate::failure::RequestError;
use crate::grpc::StatusError;
use crate::h1::Response;
use crate::http2::H2Conn;
use crate::plan::{LoadPlan, RequestTemplate, StopAfter, Warmup};
use crate::{LoadError, LoadProgress, Phase, RunOptions};

/// How often the progress ticker publishes a snapshot.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The timer wheel fires up to a millisecond after a deadline, so open-model sends are
/// scheduled this much early; latency is then counted from the send, never before it.
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// First and largest pause between failed connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(250);
/// `measure_start_ns` before measuring has begun.
const UNKNOWN: u64 = u64::MAX;
/// A kept connection the server closed without answering is taken for a keep-alive timeout
/// race, and its request resent once, only when it had sat idle at least this long since its
/// last response. Keep-alive timeouts are seconds (gunicorn 2 s, Node 5 s, nginx 75 s); a
/// connection busy until just before is never one a server closed for idleness.
pub(crate) const IDLE_RESEND_AFTER: Duration = Duration::from_secs(1);
/// Open model: a request taken this long after its due time found every connection busy.
const LATE_AFTER: Duration = Duration::from_millis(2);
/// Open model: the run is saturated when at least this share of measured requests waited for
/// a connection while every allowed one was open, and the planned rate needs at least
/// [`SATURATED_UTILISATION`] of them busy on average: then requests queue inside the load
/// generator, not in the service. Fewer late requests are a burst or a stall of the service,
/// which the corrected latency rightly charges to it.
const SATURATED_LATE_SHARE: f64 = 0.01;
const SATURATED_UTILISATION: f64 = 0.8;

/// Counters one connection publishes for the progress ticker, on its own cache line.
#[derive(Default)]
#[repr(align(128))]
struct Published {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// The shared timetable and stop conditions.
struct Schedule {
    origin: Instant,
    /// Open model: nanoseconds between consecutive due times.
    ns_per_request: Option<f64>,
    next_slot: AtomicU64,
    /// Whether requests claim numbered slots (count limits, request warmup, open model).
    numbered: bool,
    warmup_requests: u64,
    warmup_ns: u64,
    /// Slots in total (warmup included) when the run is count-limited.
    slot_limit: Option<u64>,
    duration_ns: Option<u64>,
    /// Nanoseconds after `origin` at which measuring began; [`UNKNOWN`] until then.
    measure_start_ns: AtomicU64,
}

enum Next {
    Stop,
    Send {
        measured: bool,
        /// Open model: when the request is due, in nanoseconds after `origin`.
        due_ns: Option<u64>,
    },
}

impl Schedule {
    fn new(plan: &LoadPlan, origin: Instant) -> Self {
        let (warmup_requests, warmup_ns) = match plan.settings.warmup() {
            Warmup::None => (0, 0),
            Warmup::Requests(n) => (n, 0),
            Warmup::Duration(d) => (0, nanos(d)),
        };
        let ns_per_request = plan.settings.qps().map(|qps| 1e9 / qps);
        let (slot_limit, duration_ns) = match plan.settings.stop_after() {
            StopAfter::Requests(n) => (Some(warmup_requests.saturating_add(n)), None),
            StopAfter::Duration(d) => (None, Some(nanos(d))),
        };
        let measure_start_ns = match (ns_per_request, warmup_requests) {
            (_, 0) => warmup_ns,
            (Some(ns), w) => (w as f64 * ns) as u64,
            // Closed model with a request warmup: known when the first measured slot is taken.
            (None, _) => UNKNOWN,
        };
        Self {
            origin,
            ns_per_request,
            next_slot: AtomicU64::new(0),
            numbered: ns_per_request.is_some() || slot_limit.is_some() || warmup_requests > 0,
            warmup_requests,
            warmup_ns,
            slot_limit,
            duration_ns,
            measure_start_ns: AtomicU64::new(measure_start_ns),
        }
    }

    fn next(&self, now: Instant) -> Next {
        let now_ns = nanos(now.saturating_duration_since(self.origin));
        match self.ns_per_request {
            Some(ns_per_request) => self.next_open(ns_per_request),
            None => self.next_closed(now_ns),
        }
    }

    fn next_open(&self, ns_per_request: f64) -> Next {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        if self.slot_limit.is_some_and(|limit| slot >= limit) {
            return Next::Stop;
        }
        let due_ns = (slot as f64 * ns_per_request) as u64;
        if let Some(duration_ns) = self.duration_ns {
            let start = self.measure_start_ns.load(Ordering::Relaxed);
            if due_ns >= start.saturating_add(duration_ns) {
                return Next::Stop;
            }
        }
        Next::Send {
            measured: slot >= self.warmup_requests && due_ns >= self.warmup_ns,
            due_ns: Some(due_ns),
        }
    }

    fn next_closed(&self, now_ns: u64) -> Next {
        if now_ns < self.warmup_ns {
            return Next::Send {
                measured: false,
                due_ns: None,
            };
        }
        if self.numbered {
            let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
            if slot < self.warmup_requests {
                return Next::Send {
                    measured: false,
                    due_ns: None,
                };
            }
            if self.slot_limit.is_some_and(|limit| slot >= limit) {
                return Next::Stop;
            }
            if slot == self.warmup_requests && self.warmup_requests > 0 {
                self.measure_start_ns.store(now_ns, Ordering::Relaxed);
            }
        }
        if let Some(duration_ns) = self.duration_ns {
            let start = self.measure_start_ns.load(Ordering::Relaxed);
            if start != UNKNOWN && now_ns >= start.saturating_add(duration_ns) {
                return Next::Stop;
            }
        }
        Next::Send {
            measured: true,
            due_ns: None,
        }
    }

    fn measure_start(&self) -> Option<Instant> {
        match self.measure_start_ns.load(Ordering::Relaxed) {
            UNKNOWN => None,
            ns => Some(self.origin + Duration::from_nanos(ns)),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What one connection measured; merged into the [`Measurement`] at the end.
struct Recorder {
    latency: Histogram<u64>,
    service_time: Option<Histogram<u64>>,
    requests: u64,
    errors: u64,
    /// Status code and count; a handful of distinct codes, so a linear scan is fastest.
    statuses: Vec<(u16, u64)>,
    kinds: [u64; ERROR_KINDS.len()],
    bytes_received: u64,
    bytes_sent: u64,
    last_done: Option<Instant>,
    /// Latencies beyond what the histogram holds.
    latency_out_of_range: u64,
    /// Measured requests sent again after a keep-alive timeout race.
    resends: u64,
    /// Measured requests that waited for a connection while every allowed one was open.
    late: u64,
}

const ERROR_KINDS: [ErrorKind; 8] = [
    ErrorKind::ConnectRefused,
    ErrorKind::Connect,
    ErrorKind::Reset,
    ErrorKind::Timeout,
    ErrorKind::Tls,
    ErrorKind::Status,
    ErrorKind::Protocol,
    ErrorKind::ClosedWithoutResponse,
];

fn kind_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::ConnectRefused => 0,
        ErrorKind::Connect => 1,
        ErrorKind::Reset => 2,
        ErrorKind::Timeout => 3,
        ErrorKind::Tls => 4,
        ErrorKind::Status => 5,
        ErrorKind::Protocol => 6,
        ErrorKind::ClosedWithoutResponse => 7,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Recorder {
    fn new(open: bool) -> Self {
        Self {
            latency: new_latency_histogram(),
            service_time: open.then(new_latency_histogram),
            requests: 0,
            errors: 0,
            statuses: Vec::new(),
            kinds: [0; ERROR_KINDS.len()],
            bytes_received: 0,
            bytes_sent: 0,
            last_done: None,
            latency_out_of_range: 0,
            resends: 0,
            late: 0,
        }
    }

    /// Records a request that got a response or timed out: its latency counts.
    fn timed(&mut self, sent: Instant, due: Option<Instant>, done: Instant) {
        // Open-model sends may leave up to TIMER_SLACK early; latency never starts before the send.
        let from = due.map_or(sent, |due| due.min(sent));
        if !record_latency(
            &mut self.latency,
            micros(done.saturating_duration_since(from)),
        ) {
            self.latency_out_of_range = self.latency_out_of_range.saturating_add(1);
        }
        if let Some(service) = &mut self.service_time {
            service.saturating_record(micros(done.saturating_duration_since(sent)));
        }
    }

    fn status(&mut self, status: u16, is_error: bool) {
        self.requests += 1;
        self.tally(status);
        if is_error {
            self.error(ErrorKind::Status);
        }
    }

    /// Counts one response with `status` in the status distribution.
    fn tally(&mut self, status: u16) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, count)) => *count += 1,
            None => self.statuses.push((status, 1)),
        }
    }

    fn failure(&mut self, kind: ErrorKind) {
        self.requests += 1;
        self.error(kind);
    }

    fn error(&mut self, kind: ErrorKind) {
        self.errors += 1;
        self.kinds[kind_index(kind)] += 1;
    }

    fn merge_into(self, m: &mut Measurement) {
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = m.latency.add(&self.latency);
        if let (Some(total), Some(mine)) = (&mut m.service_time, &self.service_time) {
            let _ = total.add(mine);
        }
        m.requests += self.requests;
        m.errors += self.errors;
        m.latency_out_of_range = m
            .latency_out_of_range
            .saturating_add(self.latency_out_of_range);
        for (status, count) in self.statuses {
            *m.status_counts.entry(status).or_default() += count;
        }
        for (kind, count) in ERROR_KINDS.iter().zip(self.kinds) {
            if count > 0 {
                *m.error_kinds.entry(*kind).or_default() += count;
            }
        }
        m.bytes_received += self.bytes_received;
        m.bytes_sent += self.bytes_sent;
        m.resends += self.resends;
    }
}

struct Shared {
    schedule: Schedule,
    template: Arc<RequestTemplate>,
    connector: Connector,
    timeout: Duration,
    error_ranges: Vec<StatusRange>,
    /// One per stream of each connection that may be opened (`max_connections` × `streams`).
    published: Vec<Published>,
    /// Requests each connection keeps in flight (HTTP/2 streams; 1 on HTTP/1.1).
    streams: usize,
    /// Connections opened so far, each with its index below this.
    open_connections: AtomicUsize,
    max_connections: usize,
}

impl Shared {
    /// Claims the index of one more connection, unless `max_connections` are open.
    fn claim_connection(&self) -> Option<usize> {
        self.open_connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < self.max_connections).then_some(open + 1)
            })
            .ok()
    }
}

impl Shared {
    /// An HTTP status in the error ranges, or a gRPC status other than `OK`.
    fn is_error_status(&self, status: u16) -> bool {
        if self.template.grpc {
            return status != slogate_core::grpc::OK;
        }
        self.error_ranges.iter().any(|r| r.contains(status))
    }
}

/// Runs `plan`; see [`crate::run`].
pub(crate) async fn run(plan: LoadPlan, options: RunOptions) -> Result<Measurement, LoadError> {
    let connections = plan.settings.connections() as usize;
    let open = plan.settings.qps().is_some();
    // Only the open model has a timetable to fall behind; the closed model keeps its count.
    let max_connections = if open {
        (plan.settings.max_connections() as usize).max(connections)
    } else {
        connections
    };
    let streams = (plan.settings.streams() as usize).max(1);
    let stop = options.stop.clone();

    // One event loop per thread, each owning a share of the connections (as wrk does): a
    // connection's wake-ups never cross threads and no task is ever stolen.
    let threads = options
        .threads
        .map_or_else(
            || tokio::runtime::Handle::current().metrics().num_workers(),
            NonZeroUsize::get,
        )
        .clamp(1, connections.max(1));
    let mut workers = Vec::with_capacity(threads);
    let mut opened = Vec::with_capacity(threads);
    let mut starts = Vec::with_capacity(threads);
    for thread in 0..threads {
        let indices: Vec<usize> = (thread..connections).step_by(threads).collect();
        let (opened_tx, opened_rx) = oneshot::channel();
        let (start_tx, start_rx) = oneshot::channel();
        let connector = plan.connector.clone();
        let stop = stop.clone();
        workers.push(tokio::task::spawn_blocking(move || {
            worker(indices, &connector, &stop, open, opened_tx, start_rx)
        }));
        opened.push(opened_rx);
        starts.push(start_tx);
    }

    // Every connection is open before the clock starts: connection setup is not part of any
    // request's latency, and all connections start sending together.
    let stopped = tokio::select! {
        () = stop.cancelled() => true,
        () = async { for rx in opened { let _ = rx.await; } } => false,
    };
    if stopped {
        // Dropping the start senders ends every worker that is still waiting for them.
        drop(starts);
        for joined in workers {
            joined.await.map_err(LoadError::Task)??;
        }
        return Ok(empty_measurement(&plan));
    }

    let shared = Arc::new(Shared {
        schedule: Schedule::new(&plan, Instant::now()),
        template: plan.template.clone(),
        connector: plan.connector.clone(),
        timeout: plan.settings.timeout(),
        error_ranges: plan.settings.error_ranges().to_vec(),
        published: (0..max_connections * streams)
            .map(|_| Published::default())
            .collect(),
        streams,
        open_connections: AtomicUsize::new(connections),
        max_connections,
    });
    for start in starts {
        // A worker that is gone has failed; its error is collected below.
        let _ = start.send(shared.clone());
    }

    let ticker_done = CancellationToken::new();
    let ticker = options.progress.clone().map(|progress| {
        let shared = shared.clone();
        let done = ticker_done.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tokio::select! {
                    () = done.cancelled() => break,
                    _ = every.tick() => { progress.send_replace(snapshot(&shared)); }
                }
            }
        })
    });

    let mut measurement = empty_measurement(&plan);
    let mut last_done: Option<Instant> = None;
    let mut late = 0;
    let mut failure = None;
    for joined in workers {
        // A worker only ends by returning its recorders; a panic would be a bug.
        match joined.await.map_err(LoadError::Task).and_then(|r| r) {
            Ok(recorders) => {
                for recorder in recorders {
                    last_done = last_done.max(recorder.last_done);
                    late += recorder.late;
                    recorder.merge_into(&mut measurement);
                }
            }
            Err(err) => failure = failure.or(Some(err)),
        }
    }
    ticker_done.cancel();
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
    if let Some(err) = failure {
        return Err(err);
    }
    let start = shared.schedule.measure_start();
    let end = last_done.unwrap_or_else(Instant::now);
    measurement.elapsed = start.map_or(Duration::ZERO, |s| end.saturating_duration_since(s));
    measurement.peak_connections =
        u32::try_from(shared.open_connections.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
    measurement.saturation = saturation(&measurement, late, max_connections);
    if let Some(progress) = &options.progress {
        let mut last = snapshot(&shared);
        last.elapsed = measurement.elapsed;
        progress.send_replace(last);
    }
    Ok(measurement)
}

/// Open model: whether the run fell behind its timetable for want of connections, and how
/// many it would have needed (see [`SATURATED_LATE_SHARE`]).
fn saturation(m: &Measurement, late: u64, max_connections: usize) -> Option<Saturation> {
    let qps = m.target_qps?;
    let service = m.service_time.as_ref().filter(|h| !h.is_empty())?;
    if (late as f64) < SATURATED_LATE_SHARE * m.requests.max(1) as f64 {
        return None;
    }
    // Little's law: connections busy on average = rate × mean service time; with 20 % room
    // so that requests do not queue for a free one.
    let busy = qps * service.mean() / 1e6;
    let needed = (busy / SATURATED_UTILISATION).ceil();
    (needed > max_connections as f64).then(|| Saturation {
        connections_needed: needed as u64,
        max_connections: u32::try_from(max_connections).unwrap_or(u32::MAX),
        late_requests: late,
    })
}

/// Starts connection tasks on one engine thread.
struct Spawner {
    shared: Arc<Shared>,
    stop: CancellationToken,
    grow: mpsc::UnboundedSender<usize>,
    open: bool,
}

impl Spawner {
    /// Drives connection `index` on `connection`, or on a new one when `connect` is set: one
    /// lane per stream, all in one task, each with its own recorder.
    fn spawn(
        &self,
        tasks: &mut JoinSet<Vec<Recorder>>,
        index: usize,
        connection: Option<Connection>,
        connect: bool,
    ) {
        let shared = self.shared.clone();
        let stop = self.stop.child_token();
        let grow = self.grow.clone();
        let open = self.open;
        tasks.spawn(async move {
            let streams = shared.streams;
            let mut recorders: Vec<Recorder> = (0..streams).map(|_| Recorder::new(open)).collect();
            let work = async {
                let group = Group::default();
                let connection = if connect {
                    group.connect(&shared.connector, None).await.ok()
                } else {
                    connection
                };
                // Every lane starts on the same HTTP/2 connection; HTTP/1.1 has one lane.
                let mut firsts: Vec<Option<Connection>> = Vec::with_capacity(streams);
                if let Some(Connection::H2(h2)) = &connection {
                    group.seed(h2.clone());
                    for _ in 1..streams {
                        firsts.push(Some(Connection::H2(h2.clone())));
                    }
                }
                firsts.insert(0, connection);
                firsts.resize_with(streams, || None);
                let lanes = recorders.iter_mut().zip(firsts).enumerate().map(
                    |(lane, (recorder, first))| {
                        let lane = Lane {
                            index,
                            published: &shared.published[index * streams + lane],
                            group: &group,
                        };
                        drive(&shared, lane, first, recorder, &grow)
                    },
                );
                futures::future::join_all(lanes).await;
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => {}
                () = work => {}
            }
            recorders
        });
    }
}

/// The HTTP/2 connection the lanes (streams) of one connection task share: a lane whose
/// connection failed opens the next one here, and the others take it up from here.
#[derive(Default)]
struct Group {
    current: tokio::sync::Mutex<Option<H2Conn>>,
}

impl Group {
    /// Makes `conn` the connection the lanes share.
    fn seed(&self, conn: H2Conn) {
        if let Ok(mut current) = self.current.try_lock() {
            *current = Some(conn);
        }
    }

    /// A connection for a lane: the shared HTTP/2 one when it is still up and is not
    /// `stale` (the one the lane just gave up), else a new one, shared from then on.
    async fn connect(
        &self,
        connector: &Connector,
        stale: Option<&H2Conn>,
    ) -> Result<Connection, crate::RequestError> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref()
            && !stale.is_some_and(|stale| stale.same(conn))
            && !conn.has_ended()
        {
            return Ok(Connection::H2(conn.clone()));
        }
        let fresh = connector.connect().await?;
        *current = match &fresh {
            Connection::H2(conn) => Some(conn.clone()),
            Connection::H1(_) => None,
        };
        Ok(fresh)
    }
}

/// Where one lane of a connection task reports, and the connection it shares.
struct Lane<'a> {
    /// The connection's index.
    index: usize,
    published: &'a Published,
    group: &'a Group,
}

/// One engine thread: opens `indices`' connections on its own single-threaded runtime,
/// reports them open, then drives them once the run's shared state arrives on `start`.
fn worker(
    indices: Vec<usize>,
    connector: &Connector,
    stop: &CancellationToken,
    open: bool,
    opened: oneshot::Sender<()>,
    start: oneshot::Receiver<Arc<Shared>>,
) -> Result<Vec<Recorder>, LoadError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    runtime.block_on(async {
        // Opened concurrently; awaited in order so each connection keeps its index.
        let opening: Vec<_> = indices
            .into_iter()
            .map(|index| {
                let connector = connector.clone();
                (
                    index,
                    tokio::spawn(async move { connector.connect().await.ok() }),
                )
            })
            .collect();
        let mut initial = Vec::with_capacity(opening.len());
        tokio::select! {
            () = stop.cancelled() => return Ok(Vec::new()),
            () = async { for (index, handle) in opening {
                initial.push((index, handle.await.ok().flatten()));
            } } => {}
        }
        let _ = opened.send(());
        let Ok(shared) = start.await else {
            return Ok(Vec::new());
        };
        // A connection that falls behind the timetable asks its own thread for one more.
        let (grow, mut grown) = mpsc::unbounded_channel();
        let spawner = Spawner {
            shared,
            stop: stop.clone(),
            grow,
            open,
        };
        let mut tasks: JoinSet<Vec<Recorder>> = JoinSet::new();
        for (index, connection) in initial {
            spawner.spawn(&mut tasks, index, connection, false);
        }
        let mut recorders = Vec::with_capacity(tasks.len());
        loop {
            // Only this thread's tasks ask here, so once they have all ended no ask is left.
            while let Ok(index) = grown.try_recv() {
                spawner.spawn(&mut tasks, index, None, true);
            }
            if tasks.is_empty() {
                break;
            }
            tokio::select! {
                Some(joined) = tasks.join_next() => recorders.extend(joined.map_err(LoadError::Task)?),
                Some(index) = grown.recv() => spawner.spawn(&mut tasks, index, None, true),
            }
        }
        Ok(recorders)
    })
}

fn empty_measurement(plan: &LoadPlan) -> Measurement {
    Measurement {
        service_time: plan.settings.qps().map(|_| new_latency_histogram()),
        target_qps: plan.settings.qps(),
        ..Measurement::default()
    }
}

fn snapshot(shared: &Shared) -> LoadProgress {
    let (mut requests, mut errors) = (0, 0);
    for p in &shared.published {
        requests += p.requests.load(Ordering::Relaxed);
        errors += p.errors.load(Ordering::Relaxed);
    }
    let start = shared.schedule.measure_start();
    let now = Instant::now();
    match start {
        Some(start) if now >= start => LoadProgress {
            phase: Phase::Measure,
            requests,
            errors,
            elapsed: now - start,
        },
        _ => LoadProgress {
            phase: Phase::Warmup,
            requests,
            errors,
            elapsed: Duration::ZERO,
        },
    }
}

/// One connection's loop: take the next request slot, send, record; reconnect on failure.
/// In the open model a slot taken late asks for one more connection on `grow`.
async fn drive(
    shared: &Shared,
    lane: Lane<'_>,
    mut connection: Option<Connection>,
    rec: &mut Recorder,
    grow: &mpsc::UnboundedSender<usize>,
) {
    let schedule = &shared.schedule;
    let Lane {
        index,
        published,
        group,
    } = lane;
    // The HTTP/2 connection this lane last gave up: not to be taken up again.
    let mut stale: Option<H2Conn> = None;
    let mut backoff = BACKOFF_MIN;
    // Since when the open connection has carried no request: its opening, then its last
    // response. Only a connection idle for IDLE_RESEND_AFTER may have been closed for idleness.
    let mut idle_since = connection.as_ref().map(|_| Instant::now());
    // One timer per connection, re-armed only when it fires early: see `exchange`.
    let mut timer = Box::pin(tokio::time::sleep(shared.timeout));
    // The clock is read once per exchange: its end is also when the next one is scheduled.
    let mut now = Instant::now();
    while let Next::Send { measured, due_ns } = schedule.next(now) {
        let due = due_ns.map(|ns| schedule.origin + Duration::from_nanos(ns));
        if let Some(due) = due {
            let wake = due.checked_sub(TIMER_SLACK).unwrap_or(due);
            let free_at = Instant::now();
            if wake > free_at {
                tokio::time::sleep_until(wake).await;
            } else if free_at > due + LATE_AFTER {
                // Every connection was busy at this request's due time.
                match shared.claim_connection() {
                    Some(more) => {
                        let _ = grow.send(more);
                    }
                    None if measured => rec.late += 1,
                    None => {}
                }
            }
        }
        let reused = connection.is_some();
        let conn = match &mut connection {
            Some(conn) => conn,
            None => match group.connect(&shared.connector, stale.as_ref()).await {
                Ok(conn) => {
                    stale = None;
                    backoff = BACKOFF_MIN;
                    idle_since = Some(Instant::now());
                    connection.insert(conn)
                }
                Err(err) => {
                    if measured {
                        rec.failure(err.kind);
                        rec.last_done = Some(Instant::now());
                        publish(published, rec);
                    }
                    tracing::debug!("connection {index}: {err}");
                    // A dead target must not make every connection spin.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    now = Instant::now();
                    continue;
                }
            },
        };
        // Only a wait or a new connection since `now` makes it stale.
        let sent = if due.is_none() && reused {
            now
        } else {
            Instant::now()
        };
        let deadline = sent + shared.timeout;
        let mut outcome = exchange(conn, &shared.template, deadline, &mut timer).await;
        let idle = idle_since.map_or(Duration::ZERO, |since| {
            sent.saturating_duration_since(since)
        });
        if reused
            && idle >= IDLE_RESEND_AFTER
            && outcome.as_ref().is_err_and(RequestError::is_unanswered)
        {
            // The server closed the kept connection at its keep-alive timeout as the request
            // went out, so it never took the request up: it goes again, once, on a new
            // connection, and the time that takes counts towards its latency. A connection
            // that was busy until just before was not closed for idleness: its request was
            // dropped and counts as `closed-without-response`.
            tracing::debug!(
                "connection {index}: closed by the server after {idle:?} idle, resending"
            );
            if measured {
                rec.resends += 1;
            }
            let gave_up = match connection.take() {
                Some(Connection::H2(h2)) => Some(h2),
                _ => None,
            };
            outcome = match group.connect(&shared.connector, gave_up.as_ref()).await {
                Ok(fresh) => {
                    let fresh = connection.insert(fresh);
                    exchange(fresh, &shared.template, deadline, &mut timer).await
                }
                Err(err) => Err(err),
            };
        }
        let done = Instant::now();
        let keep = match outcome {
            Ok(Response {
                status,
                body_bytes,
                reusable,
            }) => {
                if measured {
                    rec.timed(sent, due, done);
                    rec.status(status, shared.is_error_status(status));
                    rec.bytes_received += body_bytes;
                    rec.bytes_sent += shared.template.body.len() as u64;
                }
                reusable
            }
            Err(err) => {
                if measured {
                    if err.kind == ErrorKind::Timeout {
                        rec.timed(sent, due, done);
                        // A gRPC call whose deadline passed ends DEADLINE_EXCEEDED, whether
                        // the server or the client noticed first.
                        if shared.template.grpc {
                            rec.tally(slogate_core::grpc::DEADLINE_EXCEEDED);
                        }
                    }
                    rec.failure(err.kind);
                    rec.bytes_sent += shared.template.body.len() as u64;
                }
                tracing::debug!("connection {index}: {err}");
                false
            }
        };
        if measured {
            rec.last_done = Some(done);
            publish(published, rec);
        }
        now = done;
        if keep {
            idle_since = Some(done);
        } else {
            if let Some(Connection::H2(h2)) = connection.take() {
                stale = Some(h2);
            }
            idle_since = None;
        }
    }
}

fn publish(published: &Published, rec: &Recorder) {
    // Only this connection writes these; plain stores, no read-modify-write.
    published.requests.store(rec.requests, Ordering::Relaxed);
    published.errors.store(rec.errors, Ordering::Relaxed);
}

/// Sends one request and reads the whole response within `deadline`.
///
/// `timer` is the connection's timeout timer. Arming a timer per request costs more than
/// the request on loopback, so the timer keeps an earlier deadline and, when it fires before
/// the current request's deadline, is simply re-armed to it.
async fn exchange(
    conn: &mut Connection,
    template: &RequestTemplate,
    deadline: Instant,
    timer: &mut Pin<Box<Sleep>>,
) -> Result<Response, RequestError> {
    match conn {
        Connection::H1(_) if template.grpc => Err(RequestError::new(
            ErrorKind::Protocol,
            "the server did not agree to HTTP/2 (ALPN h2), which gRPC needs",
        )),
        Connection::H1(http1) => {
            let work = http1.exchange(&template.h1, template.head);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    biased;
                    response = &mut work => return response,
                    () = timer.as_mut() => timed_out(deadline, timer)?,
                }
            }
        }
        Connection::H2(h2) => exchange_h2(h2, template, deadline, timer).await,
    }
}

/// The timeout timer fired: an error once `deadline` has passed, else re-armed to it.
fn timed_out(deadline: Instant, timer: &mut Pin<Box<Sleep>>) -> Result<(), RequestError> {
    if Instant::now() >= deadline {
        return Err(RequestError::new(
            ErrorKind::Timeout,
            "no full response within the request timeout",
        ));
    }
    timer.as_mut().reset(deadline);
    Ok(())
}

/// An HTTP/2 exchange: the stream's response, its gRPC status when the run is gRPC.
async fn exchange_h2(
    conn: &H2Conn,
    template: &RequestTemplate,
    deadline: Instant,
    timer: &mut Pin<Box<Sleep>>,
) -> Result<Response, RequestError> {
    let work = conn.exchange(&template.h2_block, &template.body);
    tokio::pin!(work);
    let response = loop {
        tokio::select! {
            biased;
            response = &mut work => break response?,
            () = timer.as_mut() => timed_out(deadline, timer)?,
        }
    };
    let status = if template.grpc {
        let read = |status: Option<Result<u16, StatusError>>| {
            status
                .transpose()
                .map_err(|err| RequestError::new(ErrorKind::Protocol, err))
        };
        let head = read(response.head_grpc)?;
        let trailers = read(response.trailer_grpc)?;
        crate::grpc::status(response.status, head, trailers)
            .map_err(|err| RequestError::new(ErrorKind::Protocol, err))?
    } else {
        response.status
    };
    Ok(Response {
        status,
        body_bytes: response.body_bytes,
        reusable: response.reusable,
    })
}
