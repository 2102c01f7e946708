//! The HTTP API's connections, served so that hostile clients cannot take it down: a cap on open
//! connections (beyond it, a short 503 and close), a deadline for a request's headers that also
//! ends idle keep-alive connections, and a deadline for each request's answer. `axum::serve` has
//! none of these; idle half-requests used to hold every file descriptor.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// How much the API lets one client hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, counted from the connection's opening or the end
    /// of its previous answer (so it is also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Time for a handler to produce its answer's head.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Well under a systemd unit's LimitNOFILE, leaving room for the proxy and the store.
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// The answer to a connection beyond the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 45\r\nconnection: close\r\nretry-after: 1\r\n\r\n{\"error\":\"too many connections; retry later\"}";

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops accepting,
/// lets requests in flight finish, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = limits.request_timeout;
    let router = router.layer(axum::middleware::from_fn(move |request: Request, next: Next| async move {
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"error": "the request took too long"})))
                .into_response(),
        }
    }));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (mut stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors or a reset before accept: wait a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Answer, half-close, and drain what the client sent until it closes (for at most a
            // second): closing with its request unread would reset the connection, and the client
            // might never see the answer.
            tokio::spawn(async move {
                let answer = async {
                    stream.write_all(BUSY).await?;
                    stream.shutdown().await?;
                    let mut sink = [0u8; 1024];
                    while stream.read(&mut sink).await? != 0 {}
                    Ok::<_, std::io::Error>(())
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
            });
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = async { stopped.wait_for(|stop| *stop).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    let _ = stop.send(true);
    // Every connection task holds a slot until it ends.
    let _ = slots.acquire_many(limits.max_connections as u32).await;
    Ok(())
}

/// A future that never completes, for a server that runs until the process ends.
pub async fn forever() {
    std::future::pending::<Infallible>().await;
}
