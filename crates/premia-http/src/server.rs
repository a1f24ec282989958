//! The accept loop: every connection served by hyper's HTTP/1 server with a header read
//! timeout, counted against [`Limits::max_connections`] ([`crate::connections`] says which one
//! gives way at the cap). axum::serve does the same without either, so a client that sends half
//! a request line and then nothing held its connection and buffers for ever.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::connections::{Connection, Connections};
use crate::limits::Limits;

/// How long the loop waits after an accept failed for want of something (file descriptors,
/// memory), so that it does not spin while none is freed.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until the process ends.
pub(crate) async fn run(listener: TcpListener, app: Router, limits: Limits) -> std::io::Result<()> {
    let connections = Connections::new(limits.max_connections);
    let mut http = http1::Builder::new();
    // The timer starts when the connection waits for a request head: on a new connection and
    // between keep-alive requests, so it is the idle timeout as well.
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(&e, limits.max_connections).await;
                continue;
            }
        };
        match connections.admit() {
            Some(connection) => {
                tokio::spawn(serve(http.clone(), stream, app.clone(), connection));
            }
            None => refuse(stream),
        }
    }
}

/// A connection that failed before it was accepted (the client gave up) is none of the
/// server's business; a server out of file descriptors or memory waits a little.
async fn accept_failed(e: &std::io::Error, max_connections: usize) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    tracing::warn!(
        error = %e,
        "the HTTP API cannot accept a connection; if it is out of open files, raise the limit (ulimit -n, or \
         LimitNOFILE= in a systemd unit) well above [http] max_connections ({max_connections})"
    );
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// Every connection is busy: the new one gets a 503 if its socket takes it at once, and is
/// closed.
fn refuse(stream: TcpStream) {
    let body = r#"{"error":"the server has as many connections open as [http] max_connections allows, each answering a request; try again in a moment"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// Serves one connection until it ends, or until a newer one takes its place while it is idle.
async fn serve(http: http1::Builder, stream: TcpStream, app: Router, connection: Connection) {
    let connection = Arc::new(connection);
    let requests = connection.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        // Busy from when the head is read until the answer's body is dropped (sent, or the
        // client gone): a feed keeps its connection busy for as long as it is open.
        let in_flight = requests.begin();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap_or_else(|never: Infallible| match never {});
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    in_flight.hold();
                    frame
                }))
            }))
        }
    });
    let served = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "an HTTP connection ended with an error");
            }
        }
        () = connection.evicted() => {
            // Idle (no request answered): dropping it closes the socket, with any half-sent
            // head. A request that began meanwhile is answered first.
            if connection.is_busy() {
                served.as_mut().graceful_shutdown();
                let _ = served.await;
            }
        }
    }
}
