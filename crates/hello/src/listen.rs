//! The accept loop both hello services (HTTP and gRPC) listen with.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// A listening socket whose connections are accepted and served until `stop`: its address,
/// how many connections it accepted, and the loop itself. Dropping it stops the loop.
#[derive(Debug)]
pub(crate) struct Listening {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    stop: CancellationToken,
    accept_loop: Option<JoinHandle<()>>,
}

impl Listening {
    /// Accepts on `listener` until `stop`, each connection served by `serve` in a task of
    /// its own; once stopped, lets the open ones finish for up to `grace` and closes the rest.
    /// Fails only when the listener's address cannot be read.
    pub(crate) fn spawn<F, Fut>(
        listener: TcpListener,
        stop: CancellationToken,
        grace: Duration,
        serve: F,
    ) -> std::io::Result<Self>
    where
        F: FnMut(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicU64::new(0));
        let accept_loop = tokio::spawn(accept_until(
            listener,
            stop.clone(),
            grace,
            accepted.clone(),
            serve,
        ));
        Ok(Self {
            addr,
            accepted,
            stop,
            accept_loop: Some(accept_loop),
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connections accepted so far.
    pub(crate) fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Stops accepting and waits until the open connections are done or closed.
    pub(crate) async fn shutdown(&mut self) {
        self.stop.cancel();
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.await;
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_until<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    grace: Duration,
    accepted: Arc<AtomicU64>,
    mut serve: F,
) where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            result = listener.accept() => match result {
                Ok((stream, _)) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(serve(stream));
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("hello: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        connections.shutdown().await;
    }
}
