//! A webhook receiver for the notification tests: a plain HTTP/1.1 listener that answers 200 and
//! hands every request (line, headers, JSON body) to the test through a channel.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// One HTTP request as the receiver got it.
#[derive(Debug)]
pub struct Request {
    pub line: String,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// A receiver on an ephemeral loopback port.
pub fn receiver() -> (u16, mpsc::Receiver<Request>) {
    receiver_on("127.0.0.1")
}

/// A receiver on an ephemeral port of `addr` (the fleet bridge's address, for senders in a
/// host's network namespace).
pub fn receiver_on(addr: &str) -> (u16, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind((addr, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = BTreeMap::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
            let len: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            // Into the channel before the answer: once the sender has its 200 (and the command
            // that sent it has exited), a test that drains the channel has seen this request.
            let _ = tx.send(Request {
                line: line.trim_end().to_string(),
                headers,
                body: serde_json::from_slice(&body).unwrap(),
            });
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
        }
    });
    (port, rx)
}

/// The next request, within a minute.
pub fn next(rx: &mpsc::Receiver<Request>) -> Request {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the receiver got a notification")
}
