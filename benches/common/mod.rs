//! What the benchmarks share: their set-up (`setup.rs`: runtime, `BENCH_*` knobs, engine,
//! served router, percentiles) and a minimal HTTP/1.1 load generator: keep-alive connections,
//! one request in flight per connection, fixed request bytes. Cheap enough that the server,
//! not the client, is what gets measured.

// Each benchmark compiles this module on its own and uses only part of it.
#![allow(dead_code, unused_imports)]

mod setup;

pub use setup::{
    backend, database_url, env_or, percentile, run, serve, sign_in, start_engine, SECRET,
};

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` over `connections` connections for `duration`; returns (requests, non-2xx).
pub async fn drive(
    addr: SocketAddr,
    request: Vec<u8>,
    connections: usize,
    duration: Duration,
) -> (u64, u64) {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).ok();
            let mut buf = vec![0u8; 16 * 1024];
            let (mut done, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                stream.write_all(&request).await.expect("write");
                let status = read_response(&mut stream, &mut buf).await;
                done += 1;
                if !(200..300).contains(&status) {
                    failed += 1;
                }
            }
            (done, failed)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        let (d, f) = t.await.expect("client task");
        total.0 += d;
        total.1 += f;
    }
    total
}

/// Reads one response; returns its status code.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> u16 {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await.expect("read");
        assert!(n > 0, "server closed the connection");
        filled += n;
        if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
            let status: u16 = head[9..12].parse().expect("status");
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            while filled < total {
                let n = stream.read(&mut buf[filled..]).await.expect("read body");
                assert!(n > 0, "server closed the connection");
                filled += n;
            }
            return status;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn post(path: &str, host: SocketAddr, bearer: Option<&str>, body: &str) -> Vec<u8> {
    let auth = bearer
        .map(|b| format!("authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
