//! `premia serve --http` under hostile clients, against a real nats-server and the real binary,
//! over raw loopback sockets: a request head that never ends (silent, or trickled a byte at a
//! time) is closed after the header timeout; a body that never ends (silent, or trickled) gets
//! 408 and the connection closed; connections over the cap close the oldest idle ones, and
//! /healthz keeps answering; with every connection busy a new one gets 503; a token holds at
//! most its share of feeds (429 with Retry-After) and closing a feed gives its slot back.
//! Timeouts and caps are small, set in the config file; the only time bound asserted is a
//! generous one (a read that waits 30 s for the server to close).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

mod support;
use support::nats_server::NatsServer;
use support::Reaped as Serve;

const AUDITOR: &str = "auditor-5b1c-hostile-token";
const ADMIN: &str = "admin-9e02-hostile-token";
const PUBLISHER: &str = "publisher-c4d8-hostile-token";

/// Far longer than any timeout configured here: a read that waits this long for the server
/// to answer or close means it did neither.
const PATIENCE: Duration = Duration::from_secs(30);

fn start(work: &Path, server: &NatsServer, http: &str) -> (Serve, String) {
    let tokens = [(AUDITOR, "auditor"), (ADMIN, "admin"), (PUBLISHER, "publisher")];
    support::serve_http_configured(work, &server.url(), &tokens, http, &[])
}

fn connect(base: &str) -> TcpStream {
    let stream = TcpStream::connect(base.trim_start_matches("http://")).expect("connect to serve");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads until the server closes the connection: what it sent, or `None` when it neither
/// closed nor sent anything more within [`PATIENCE`].
fn until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            // A reset closes it too (the server closed with bytes of ours unread).
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&received).into_owned())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(e) => panic!("reading from serve: {e}"),
        }
    }
}

/// Writes `bytes` a byte at a time, 200 ms apart, on a thread of its own, until the server
/// closes the connection (a write fails) or a minute has passed.
fn trickle(stream: &TcpStream, bytes: &'static [u8]) -> std::thread::JoinHandle<()> {
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        for byte in bytes.iter().cycle() {
            if Instant::now() > deadline || writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// `GET /healthz` on a connection of its own, closed after the answer: its status line.
fn healthz(base: &str) -> String {
    let mut stream = connect(base);
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: premia\r\nConnection: close\r\n\r\n").unwrap();
    let answer = until_closed(&mut stream).expect("/healthz answered and closed its connection");
    answer.lines().next().unwrap_or_default().to_string()
}

fn stderr(work: &Path) -> String {
    std::fs::read_to_string(work.join("serve.stderr")).unwrap_or_default()
}

#[test]
fn a_request_that_never_ends_is_cut_off_and_the_server_keeps_answering() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let (_serve, base) = start(work.path(), &server, "header_timeout_secs = 1\nbody_timeout_secs = 1");

    // Half a request line, then nothing: closed, without an answer.
    let mut silent = connect(&base);
    silent.write_all(b"GET /healthz HTT").unwrap();
    // A head trickled in a byte at a time, never ending: the timeout is for the whole head.
    let mut trickled = connect(&base);
    let trickling = trickle(&trickled, b"X-Slow: a");
    trickled.write_all(b"GET /healthz HTTP/1.1\r\nHost: premia\r\n").unwrap();
    for (name, stream) in [("half a request line", &mut silent), ("a trickled head", &mut trickled)] {
        let answer = until_closed(stream)
            .unwrap_or_else(|| panic!("{name} still held its connection after {PATIENCE:?}; {}", stderr(work.path())));
        assert!(!answer.contains("200 OK"), "{name} was answered as if whole: {answer}");
    }
    trickling.join().unwrap();

    // A body that never comes in full: 408 with what to do, and the connection closed.
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: premia\r\nAuthorization: Bearer {PUBLISHER}\r\n\
         Content-Type: application/cloudevents-batch+json\r\nContent-Length: 100000\r\n\r\n"
    );
    let mut silent = connect(&base);
    silent.write_all(format!("{head}[{{\"specversion\":").as_bytes()).unwrap();
    let mut trickled = connect(&base);
    trickled.write_all(head.as_bytes()).unwrap();
    let trickling = trickle(&trickled, b"[ ");
    for (name, stream) in [("a silent body", &mut silent), ("a trickled body", &mut trickled)] {
        let answer = until_closed(stream)
            .unwrap_or_else(|| panic!("{name} still held its connection after {PATIENCE:?}; {}", stderr(work.path())));
        assert!(answer.starts_with("HTTP/1.1 408"), "{name}: {answer}");
        assert!(answer.contains("body_timeout_secs"), "the 408 says which setting: {answer}");
    }
    trickling.join().unwrap();

    assert_eq!(healthz(&base), "HTTP/1.1 200 OK");
    // A whole request, sent at once, is not cut by either timeout.
    let answer = ureq::get(&format!("{base}/v1/periods"))
        .set("Authorization", &format!("Bearer {AUDITOR}"))
        .call()
        .expect("/v1/periods answers");
    assert_eq!(answer.status(), 200);
}

#[test]
fn over_the_connection_cap_the_oldest_idle_connections_are_closed_and_healthz_answers() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    // The header timeout is long: what closes connections here is the cap.
    let (_serve, base) = start(work.path(), &server, "header_timeout_secs = 300\nmax_connections = 4");
    let half = |base: &str| {
        let mut stream = connect(base);
        stream.write_all(b"GET /healthz HTT").unwrap();
        stream
    };
    let mut halves: Vec<TcpStream> = (0..4).map(|_| half(&base)).collect();
    for _ in 0..20 {
        halves.push(half(&base));
        assert_eq!(healthz(&base), "HTTP/1.1 200 OK", "serve's stderr:\n{}", stderr(work.path()));
    }
    // At most 4 of the 24 can still be open, and the oldest give way first: the first 20 are
    // closed (they never sent a whole head, so they got no answer).
    for (i, stream) in halves.iter_mut().take(20).enumerate() {
        let answer = until_closed(stream).unwrap_or_else(|| panic!("connection {i} of 24 is still open over the cap"));
        assert_eq!(answer, "", "connection {i} sent half a request line and got an answer");
    }
}

/// An open feed; dropping it closes its connection.
fn open_feed(base: &str, token: &str) -> Result<Box<dyn Read + Send + Sync>, (u16, String, Option<String>)> {
    let request = ureq::get(&format!("{base}/v1/managers/M-1/feed"))
        .timeout(Duration::from_secs(60))
        .set("Authorization", &format!("Bearer {token}"));
    match request.call() {
        Ok(response) => {
            assert_eq!(response.content_type(), "text/event-stream");
            Ok(response.into_reader())
        }
        Err(ureq::Error::Status(status, response)) => {
            let retry_after = response.header("retry-after").map(str::to_string);
            Err((status, response.into_string().unwrap_or_default(), retry_after))
        }
        Err(e) => Err((0, e.to_string(), None)),
    }
}

#[test]
fn a_token_holds_its_share_of_feeds_and_closing_one_frees_its_slot() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let (_serve, base) =
        start(work.path(), &server, "max_feeds_per_token = 2\nmax_connections = 3\nheader_timeout_secs = 300");
    let first = open_feed(&base, AUDITOR).expect("the auditor's first feed");
    let _second = open_feed(&base, AUDITOR).expect("the auditor's second feed");
    let Err((status, body, retry_after)) = open_feed(&base, AUDITOR) else {
        panic!("a third feed of one token opened")
    };
    assert_eq!((status, retry_after.as_deref()), (429, Some("5")), "{body}");
    assert!(body.contains("max_feeds_per_token"), "the 429 says which setting: {body}");
    // Another token has slots of its own.
    let _admin = open_feed(&base, ADMIN).expect("the admin's feed");

    // Three connections, each answering a feed: the cap is reached and none is idle, so a new
    // connection is refused (503), whatever it asks.
    let mut refused = connect(&base);
    let answer = until_closed(&mut refused).expect("a connection over the cap is closed at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("max_connections"), "{answer}");

    // Closing a feed gives back its connection and its slot: the auditor opens another (the
    // server sees the close when it next reads or writes the connection).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        match open_feed(&base, AUDITOR) {
            Ok(_third) => return,
            Err(refusal) => last = Some(refusal),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the auditor's closed feed never gave its slot back: last answer {last:?}; {}", stderr(work.path()));
}
