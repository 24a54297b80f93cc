//! The HTTP client for Streamable HTTP upstreams.
//!
//! `http://` upstreams (a server on the same host or in the same pod: the common case, and
//! the one where the gateway's own cost shows) use hyper's connection API directly. Each
//! pooled HTTP/1.1 connection is driven by the task that is using it, so a call hands
//! nothing between tasks or threads: reqwest's pool drives every connection from a task of
//! its own, which cost about 0.05 ms more per hop on the 2-core development machine
//! (`bench/gateway/RESULTS.md`). `https://` upstreams go through reqwest (rustls with ring),
//! where the network dominates.
//!
//! A request that never reached the wire on a reused connection (the upstream closed it
//! while idle) is retried once on a fresh connection; nothing that was written is ever
//! sent twice, because a `tools/call` may not be repeatable. A connection goes back to the
//! pool only after its response was read to the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections kept per upstream.
const MAX_IDLE: usize = 64;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One request: headers (besides host and content-length) and a JSON body.
pub struct Outgoing {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

/// A client for one upstream URL.
pub struct HttpClient {
    url: String,
    kind: ClientKind,
}

enum ClientKind {
    Plain(Arc<Pool>),
    Other(reqwest::Client),
}

impl HttpClient {
    pub fn new(url: &str, connect_timeout: Duration) -> HttpClient {
        let kind = match plain_target(url) {
            Some((authority, path)) => ClientKind::Plain(Arc::new(Pool {
                authority,
                path,
                connect_timeout,
                idle: Mutex::new(Vec::new()),
            })),
            None => {
                crate::upstream::install_crypto_provider();
                ClientKind::Other(
                    reqwest::Client::builder()
                        .connect_timeout(connect_timeout)
                        .pool_max_idle_per_host(MAX_IDLE)
                        .tcp_nodelay(true)
                        .build()
                        .unwrap_or_else(|_| reqwest::Client::new()),
                )
            }
        };
        HttpClient {
            url: url.to_string(),
            kind,
        }
    }

    /// POSTs `out` to the upstream URL. Err is a message naming what failed.
    pub async fn post(&self, out: Outgoing) -> Result<Response, String> {
        match &self.kind {
            ClientKind::Plain(pool) => pool.post(out).await,
            ClientKind::Other(client) => {
                let mut rb = client.post(&self.url);
                for (k, v) in out.headers {
                    rb = rb.header(k, v);
                }
                let resp = rb.body(out.body).send().await.map_err(|e| e.to_string())?;
                Ok(Response {
                    status: hyper::StatusCode::from_u16(resp.status().as_u16())
                        .unwrap_or(hyper::StatusCode::BAD_GATEWAY),
                    headers: resp.headers().clone(),
                    body: Body::Other(resp),
                })
            }
        }
    }
}

/// (authority, path and query) of an `http://` URL; None for anything else.
fn plain_target(url: &str) -> Option<(String, String)> {
    let uri: hyper::Uri = url.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        // Credentials in the URL: reqwest turns them into basic auth.
        return None;
    }
    let authority = match authority.port_u16() {
        Some(_) => authority.as_str().to_string(),
        None => format!("{}:80", authority.as_str()),
    };
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    Some((authority, path))
}

/// An upstream's answer: status, headers, and a body read in chunks.
pub struct Response {
    pub status: hyper::StatusCode,
    pub headers: HeaderMap,
    body: Body,
}

enum Body {
    Plain(Box<PlainBody>),
    Other(reqwest::Response),
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Done with this answer without reading its body (an acknowledged notification): the
    /// connection is reused when nothing of the body is left, closed otherwise.
    pub fn discard(self) {
        if let Body::Plain(mut b) = self.body
            && hyper::body::Body::is_end_stream(&b.incoming)
            && let Some(c) = b.conn.take()
            && c.driver.is_some()
        {
            b.pool.put(c);
        }
    }

    /// The next piece of the body; None at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match &mut self.body {
            Body::Plain(b) => b.chunk().await,
            Body::Other(r) => r.chunk().await.map_err(|e| e.to_string()),
        }
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Vec<u8>, String> {
        let mut all = Vec::new();
        while let Some(c) = self.chunk().await? {
            all.extend_from_slice(&c);
        }
        Ok(all)
    }
}

/// One HTTP/1.1 connection: where requests go in, and the driver that does its I/O when
/// polled (by whoever is using the connection).
struct Conn {
    tx: SendRequest<Full<Bytes>>,
    /// None once the connection ended: dropping the driver fails whatever it still held.
    driver: Option<Connection<TokioIo<TcpStream>, Full<Bytes>>>,
}

/// Does the connection's I/O until it ends, then drops it; pending while there is none.
async fn drive(driver: &mut Option<Connection<TokioIo<TcpStream>, Full<Bytes>>>) {
    match driver {
        Some(d) => {
            let _ = d.await;
            *driver = None;
        }
        None => std::future::pending().await,
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

struct Pool {
    /// host:port
    authority: String,
    path: String,
    connect_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    fn take(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap();
        while let Some(i) = idle.pop() {
            if i.since.elapsed() < IDLE_TIMEOUT {
                return Some(i.conn);
            }
        }
        None
    }

    fn put(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.authority))
            .await
            .map_err(|_| format!("connecting to {} timed out", self.authority))?
            .map_err(|e| format!("cannot connect to {}: {e}", self.authority))?;
        let _ = tcp.set_nodelay(true);
        let (tx, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            tx,
            driver: Some(driver),
        })
    }

    async fn post(self: &Arc<Self>, out: Outgoing) -> Result<Response, String> {
        let body = Bytes::from(out.body);
        for attempt in 0..2 {
            let (mut conn, reused) = match self.take() {
                Some(c) if attempt == 0 => (c, true),
                _ => (self.connect().await?, false),
            };
            // Ready for a request, unless the upstream closed the idle connection meanwhile.
            let ready = tokio::select! {
                biased;
                _ = drive(&mut conn.driver) => false,
                r = conn.tx.ready() => r.is_ok(),
            };
            if !ready {
                if reused {
                    continue;
                }
                return Err(format!("{} closed the connection", self.authority));
            }
            let mut req = hyper::Request::post(self.path.as_str())
                .header(hyper::header::HOST, self.authority.as_str());
            for (k, v) in &out.headers {
                req = req.header(k, v);
            }
            let req = req
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())?;
            let sent = conn.tx.send_request(req);
            tokio::pin!(sent);
            let answer = loop {
                tokio::select! {
                    biased;
                    r = &mut sent => break r,
                    // Ended: `sent` now fails (or has the answer the connection delivered).
                    _ = drive(&mut conn.driver) => {}
                }
            };
            match answer {
                Ok(resp) => {
                    let (parts, incoming) = resp.into_parts();
                    return Ok(Response {
                        status: parts.status,
                        headers: parts.headers,
                        body: Body::Plain(Box::new(PlainBody {
                            incoming,
                            conn: Some(conn),
                            pool: self.clone(),
                        })),
                    });
                }
                // Never written: the connection was gone before the request left.
                Err(e) if reused && e.is_canceled() => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!("{} closed the connection", self.authority))
    }
}

struct PlainBody {
    incoming: Incoming,
    /// The connection, driven while the body is read; back to the pool at the body's end
    /// unless it ended.
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl PlainBody {
    async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            let frame = match &mut self.conn {
                Some(c) if c.driver.is_some() => {
                    tokio::select! {
                        biased;
                        f = self.incoming.frame() => f,
                        // Ended: what it delivered stays readable, then the body ends.
                        _ = drive(&mut c.driver) => continue,
                    }
                }
                _ => self.incoming.frame().await,
            };
            match frame {
                None => {
                    if let Some(c) = self.conn.take()
                        && c.driver.is_some()
                    {
                        self.pool.put(c);
                    }
                    return Ok(None);
                }
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        return Ok(Some(data));
                    }
                    // Trailers: nothing to relay.
                }
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_targets_are_http_urls_only() {
        assert_eq!(
            plain_target("http://127.0.0.1:8080/mcp"),
            Some(("127.0.0.1:8080".into(), "/mcp".into()))
        );
        assert_eq!(
            plain_target("http://localhost/mcp?x=1"),
            Some(("localhost:80".into(), "/mcp?x=1".into()))
        );
        assert_eq!(
            plain_target("http://example.com"),
            Some(("example.com:80".into(), "/".into()))
        );
        assert_eq!(plain_target("https://example.com/mcp"), None);
        assert_eq!(plain_target("http://user:secret@example.com/mcp"), None);
        assert_eq!(plain_target("not a url"), None);
    }

    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// How a test server treats each connection after reading one request.
    #[derive(Clone)]
    enum Then {
        /// Answers, then closes the connection when told to (while the client holds it
        /// idle) and says when it has.
        AnswerThenClose {
            close: Arc<tokio::sync::Notify>,
            closed: Arc<tokio::sync::Notify>,
        },
        /// Answers and keeps the connection.
        AnswerAndKeep,
        /// Closes without answering.
        Drop,
    }

    /// A raw HTTP/1.1 server on 127.0.0.1: counts the requests it read and the connections
    /// it accepted.
    async fn server(then: Then) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (r, c) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                let then = then.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // One request: headers, then a body of Content-Length bytes.
                        let mut chunk = [0u8; 4096];
                        let head_end = loop {
                            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break p + 4;
                            }
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = buf[head_end..head_end + len].to_vec();
                        buf.drain(..head_end + len);
                        r.fetch_add(1, Ordering::SeqCst);
                        if matches!(then, Then::Drop) {
                            return;
                        }
                        let then = then.clone();
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(answer.as_bytes()).await;
                        let _ = sock.write_all(&body).await;
                        if let Then::AnswerThenClose { close, closed } = then {
                            close.notified().await;
                            drop(sock);
                            closed.notify_one();
                            return;
                        }
                    }
                });
            }
        });
        (url, requests, connections)
    }

    fn json(body: &str) -> Outgoing {
        Outgoing {
            headers: vec![(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn answers_come_back_and_the_connection_is_reused() {
        let (url, requests, connections) = server(Then::AnswerAndKeep).await;
        let client = HttpClient::new(&url, Duration::from_secs(5));
        for i in 0..3 {
            let body = format!("{{\"n\":{i}}}");
            let resp = client.post(json(&body)).await.unwrap();
            assert_eq!(resp.status, hyper::StatusCode::OK);
            assert_eq!(resp.header("content-type"), Some("application/json"));
            assert_eq!(resp.bytes().await.unwrap(), body.as_bytes());
        }
        assert_eq!(requests.load(Ordering::SeqCst), 3);
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1,
            "one pooled connection"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_the_upstream_closed_is_replaced() {
        let close = Arc::new(tokio::sync::Notify::new());
        let closed = Arc::new(tokio::sync::Notify::new());
        let (url, requests, connections) = server(Then::AnswerThenClose {
            close: close.clone(),
            closed: closed.clone(),
        })
        .await;
        let client = HttpClient::new(&url, Duration::from_secs(5));
        let first = client.post(json("{\"n\":1}")).await.unwrap();
        assert_eq!(first.bytes().await.unwrap(), b"{\"n\":1}");
        let ClientKind::Plain(pool) = &client.kind else {
            panic!("an http:// URL uses the pool")
        };
        assert_eq!(pool.idle.lock().unwrap().len(), 1, "back in the pool");
        // The server closes the pooled connection; the next call still goes through, once.
        close.notify_one();
        closed.notified().await;
        let second = client.post(json("{\"n\":2}")).await.unwrap();
        assert_eq!(second.bytes().await.unwrap(), b"{\"n\":2}");
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_that_was_written_is_never_sent_twice() {
        let (url, requests, _) = server(Then::Drop).await;
        let client = HttpClient::new(&url, Duration::from_secs(5));
        let err = client
            .post(json("{\"n\":1}"))
            .await
            .err()
            .expect("no answer");
        assert!(!err.is_empty());
        // The server counts a request before it closes, and every attempt ends with that
        // close: when `post` gives up, each attempt is counted. A tools/call may not be
        // repeatable: the upstream read it once, and only once.
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = HttpClient::new(&format!("http://{addr}/mcp"), Duration::from_secs(5));
        let err = client.post(json("{}")).await.err().expect("refused");
        assert!(err.contains(&addr.to_string()), "{err}");
    }
}
