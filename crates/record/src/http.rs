//! The Streamable HTTP reverse proxy: `record --listen ADDR --upstream URL`.
//!
//! Every request (POST, GET, DELETE, any path) goes to the upstream's origin
//! with its own path and query; the response's status, headers and body
//! come back unchanged, streamed chunk by chunk (SSE streams stay open as
//! long as the server keeps them). Recorded: each JSON-RPC message of a
//! request body (a batch message by message), of a JSON response and of
//! each SSE event, with the exchange's method, path, status, selected
//! headers and the `Mcp-Session-Id`; exchanges without a message (a 202, a
//! GET that opens a stream, an error) as `http` records. Credentials
//! (`Authorization`, cookies, API-key headers) are recorded by name and
//! SHA-256 only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame as BodyFrame, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Map, Value};

use crate::journal::Record;
use crate::message::{frame_of, message_record, Context, Frame, LineSplitter};
use mcpf_formats::digest::sha256_hex;
use crate::recorder::Recorder;

/// Largest request body forwarded (a JSON-RPC request; larger is refused
/// with 413, recorded).
const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

/// Request headers recorded with their values.
const REQUEST_HEADERS: [&str; 8] = ["content-type", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id", "user-agent", "origin", "host"];
/// Response headers recorded with their values.
const RESPONSE_HEADERS: [&str; 4] = ["content-type", "mcp-session-id", "www-authenticate", "location"];
/// Headers that carry credentials: recorded by name and SHA-256 of the value.
const SECRET_HEADERS: [&str; 6] = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"];
/// Connection-level headers a proxy does not pass on (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate"];

type Body = BoxBody<Bytes, std::io::Error>;

/// The proxy's configuration and state.
pub struct HttpProxy {
    pub upstream: reqwest::Url,
    pub server: String,
    pub redact: bool,
    /// `--sync`: a JSON response is recorded (durably) before it is passed on.
    pub sync: bool,
    pub recorder: Recorder,
    client: reqwest::Client,
    exchanges: AtomicU64,
    /// The upstream failed the last request: said once on stderr, and again when it answers.
    upstream_down: std::sync::atomic::AtomicBool,
}

impl HttpProxy {
    pub fn new(upstream: reqwest::Url, server: String, redact: bool, sync: bool, recorder: Recorder) -> Result<HttpProxy, String> {
        // no_proxy: the recorder talks to the upstream the user named, not
        // to whatever HTTP_PROXY the environment has.
        let client = reqwest::Client::builder().no_proxy().connect_timeout(std::time::Duration::from_secs(10)).build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpProxy { upstream, server, redact, sync, recorder, client, exchanges: AtomicU64::new(0), upstream_down: Default::default() })
    }
}

/// Serve until `shutdown` resolves.
pub async fn serve(listen: SocketAddr, proxy: Arc<HttpProxy>, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("mcp-forensics record: listening on http://{}, forwarding to {} (origin {})", listener.local_addr()?, proxy.upstream, proxy.upstream.origin().ascii_serialization());
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("mcp-forensics record: accept: {e}");
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        // Headers and a streamed body go out in separate writes: without
        // TCP_NODELAY the body waits for the client's delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(proxy.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// What a record of this exchange says about HTTP.
#[derive(Clone)]
struct Exchange {
    n: u64,
    method: String,
    path: String,
    session: Option<String>,
}

impl Exchange {
    fn http(&self, more: Map<String, Value>) -> Value {
        let mut m = Map::new();
        m.insert("exchange".into(), self.n.into());
        m.insert("method".into(), self.method.clone().into());
        m.insert("path".into(), self.path.clone().into());
        m.extend(more);
        Value::Object(m)
    }
}

/// Headers as recorded: the listed ones' values, credentials by name and
/// hash, and every header's name.
fn headers_json(h: &HeaderMap, listed: &[&str]) -> Map<String, Value> {
    let mut values = Map::new();
    let mut secrets = Vec::new();
    for name in listed {
        if let Some(v) = h.get(*name) {
            values.insert(name.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned().into());
        }
    }
    for name in SECRET_HEADERS {
        for v in h.get_all(name) {
            let scheme = (name.ends_with("authorization")).then(|| String::from_utf8_lossy(v.as_bytes()).split(' ').next().unwrap_or("").to_string()).filter(|s| !s.is_empty() && s.len() < 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            secrets.push(json!({"name": name, "scheme": scheme, "sha256": sha256_hex(v.as_bytes())}));
        }
    }
    let mut names: Vec<String> = h.keys().map(|k| k.as_str().to_string()).collect();
    names.dedup();
    let mut m = Map::new();
    m.insert("headers".into(), Value::Object(values));
    if !secrets.is_empty() {
        m.insert("credentials".into(), Value::Array(secrets));
    }
    m.insert("header_names".into(), names.into());
    m
}

/// The `Mcp-Session-Id` of a request or response.
fn session_of(h: &HeaderMap) -> Option<String> {
    h.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A body of bytes in hand.
fn full_body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// `out` with `body`, or a 502 saying why the response could not be built.
fn respond(out: hyper::http::response::Builder, body: Body) -> Response<Body> {
    out.body(body).unwrap_or_else(|e| text_response(StatusCode::BAD_GATEWAY, format!("mcp-forensics record: relaying the response: {e}\n")))
}

fn text_response(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(full_body(text));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn handle(proxy: Arc<HttpProxy>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let ex = Exchange {
        n: proxy.exchanges.fetch_add(1, Ordering::Relaxed) + 1,
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into()),
        session: session_of(&parts.headers),
    };
    let request_http = ex.http(headers_json(&parts.headers, &REQUEST_HEADERS));
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_large = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            let why = if too_large { format!("request body over {MAX_REQUEST_BODY} bytes: refused (413)") } else { format!("reading the request body: {e}") };
            record_event(&proxy, &ex, request_http, Some(why.clone()));
            let status = if too_large { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
            return Ok(text_response(status, format!("mcp-forensics record: {why}\n")));
        }
    };
    // An initialize without a session learns its session id from the
    // response: its request is recorded once the response's headers are in
    // (before the response is passed on), so both halves name the session.
    let defer = ex.session.is_none() && is_initialize(&body);
    if !defer {
        record_body(&proxy, &ex, "client_to_server", request_http.clone(), &body);
    }
    if !proxy.recorder.may_forward() {
        return Ok(text_response(StatusCode::SERVICE_UNAVAILABLE, "mcp-forensics record: a record could not be written; not forwarding (--fail-closed)\n".into()));
    }
    let mut url = proxy.upstream.clone();
    url.set_path(parts.uri.path());
    url.set_query(parts.uri.query());
    let mut upstream_req = proxy.client.request(parts.method.clone(), url).body(body.clone());
    for (name, value) in parts.headers.iter() {
        // Hop-by-hop headers stay on this hop; Host is the upstream's; the
        // body is forwarded without Accept-Encoding so what is recorded is
        // readable (the client receives identity bytes, which it accepts).
        if HOP_BY_HOP.contains(&name.as_str()) || name == "host" || name == "content-length" || name == "accept-encoding" {
            continue;
        }
        upstream_req = upstream_req.header(name, value);
    }
    let resp = match upstream_req.send().await {
        Ok(r) => {
            if proxy.upstream_down.swap(false, Ordering::Relaxed) {
                eprintln!("mcp-forensics record: the upstream answers again");
            }
            if defer {
                let mut ex = ex.clone();
                ex.session = session_of(r.headers());
                record_body(&proxy, &ex, "client_to_server", request_http, &body);
            }
            r
        }
        Err(e) => {
            if defer {
                record_body(&proxy, &ex, "client_to_server", request_http, &body);
            }
            let why = format!("upstream {} did not answer: {}", proxy.upstream.origin().ascii_serialization(), error_chain(&e));
            if !proxy.upstream_down.swap(true, Ordering::Relaxed) {
                eprintln!("mcp-forensics record: {why}; answering 502 until it does (recorded)");
            }
            let mut m = Map::new();
            m.insert("status".into(), 502.into());
            record_event(&proxy, &ex, ex.http(m), Some(why.clone()));
            return Ok(text_response(StatusCode::BAD_GATEWAY, format!("mcp-forensics record: {why}\n")));
        }
    };
    Ok(relay_response(&proxy, ex, resp).await)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The upstream's response, streamed to the client through a tap that
/// records its messages.
async fn relay_response(proxy: &Arc<HttpProxy>, mut ex: Exchange, resp: reqwest::Response) -> Response<Body> {
    let status = resp.status();
    let mut response_http = headers_json(resp.headers(), &RESPONSE_HEADERS);
    response_http.insert("status".into(), status.as_u16().into());
    if let Some(s) = session_of(resp.headers()) {
        ex.session = Some(s);
    }
    let sse = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
    let mut out = Response::builder().status(status);
    for (name, value) in resp.headers().iter() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let mut tap = Tap { proxy: proxy.clone(), http: ex.http(response_http), ex, sse, body: LineSplitter::default(), sse_lines: LineSplitter::default(), event: SseEvent::default(), recorded: 0 };
    let mut resp = resp;
    let mut head: Vec<Bytes> = Vec::new();
    if proxy.sync && !sse {
        // Durable before forwarding: a JSON body is read whole (up to
        // MAX_REQUEST_BODY; past that it streams, recorded at its end).
        let mut total = 0;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    total += c.len();
                    head.push(c);
                    if total > MAX_REQUEST_BODY {
                        break;
                    }
                }
                Ok(None) => {
                    for c in &head {
                        tap.feed(c);
                    }
                    drop(tap);
                    return respond(out, full_body(head.concat()));
                }
                Err(e) => {
                    tap.fail(&e);
                    drop(tap);
                    return text_response(StatusCode::BAD_GATEWAY, format!("mcp-forensics record: reading the upstream's response: {}\n", error_chain(&e)));
                }
            }
        }
    }
    let buffered = futures::stream::iter(head.into_iter().map(Ok::<Bytes, reqwest::Error>));
    let stream = buffered.chain(resp.bytes_stream()).map(move |chunk| match chunk {
        Ok(bytes) => {
            tap.feed(&bytes);
            Ok(BodyFrame::data(bytes))
        }
        Err(e) => {
            tap.fail(&e);
            Err(std::io::Error::other(e))
        }
    });
    respond(out, BodyExt::boxed(StreamBody::new(stream)))
}

/// An SSE event being read (WHATWG HTML "event stream interpretation").
#[derive(Default)]
struct SseEvent {
    data: LineSplitter,
    has_data: bool,
    id: Option<String>,
    event: Option<String>,
}

/// Records the messages of a response body as it streams past.
struct Tap {
    proxy: Arc<HttpProxy>,
    ex: Exchange,
    http: Value,
    sse: bool,
    body: LineSplitter,
    sse_lines: LineSplitter,
    event: SseEvent,
    recorded: u64,
}

impl Tap {
    fn feed(&mut self, bytes: &[u8]) {
        if !self.sse {
            self.body.push(bytes);
            return;
        }
        let mut lines = std::mem::take(&mut self.sse_lines);
        lines.feed(bytes, &mut |line| self.sse_line(line));
        self.sse_lines = lines;
    }

    fn sse_line(&mut self, line: Frame) {
        let text = line.bytes.strip_suffix(b"\n").unwrap_or(&line.bytes);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            self.dispatch();
            return;
        }
        let (field, value) = match text.iter().position(|b| *b == b':') {
            Some(0) => return, // a comment
            Some(i) => (&text[..i], text[i + 1..].strip_prefix(b" ").unwrap_or(&text[i + 1..])),
            None => (text, &b""[..]),
        };
        match field {
            b"data" => {
                if self.event.has_data {
                    self.event.data.push(b"\n");
                }
                self.event.data.push(value);
                self.event.has_data = true;
            }
            b"id" => self.event.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"event" => self.event.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let mut ev = std::mem::take(&mut self.event);
        let Some(frame) = ev.data.pending().filter(|_| ev.has_data) else { return };
        if frame.bytes.iter().all(u8::is_ascii_whitespace) {
            return; // a priming event (an id, no message)
        }
        let mut http = self.http.clone();
        http["sse"] = json!({"id": ev.id, "event": ev.event});
        self.record(&frame, http);
    }

    fn record(&mut self, frame: &Frame, http: Value) {
        let mut extra = Map::new();
        extra.insert("http".into(), http);
        let ctx = Context { direction: "server_to_client", server: &self.proxy.server, session: self.ex.session.as_deref(), pid: None, redact: false, extra };
        self.proxy.recorder.record(message_record(frame, ctx));
        self.recorded += 1;
    }

    fn fail(&mut self, e: &reqwest::Error) {
        self.http["error"] = format!("the response body broke off: {}", error_chain(e)).into();
    }

    /// The body ended (or the client went away): record what is left, and
    /// the exchange itself when it carried no message.
    fn finish(&mut self) {
        if self.sse {
            if let Some(rest) = self.sse_lines.finish() {
                self.sse_line(rest);
            }
            self.dispatch();
        } else if let Some(body) = self.body.finish() {
            if !body.bytes.iter().all(u8::is_ascii_whitespace) {
                let http = self.http.clone();
                record_messages(&body, &http, &mut |f, http| self.record(f, http));
            }
        }
        if self.recorded == 0 {
            let http = self.http.clone();
            record_event(&self.proxy, &self.ex, http, None);
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Call `each` for every message of a body with its `http` member: a JSON
/// array (a batch) element by element (`http.batch: {index, of}`),
/// anything else whole.
fn record_messages(body: &Frame, http: &Value, each: &mut dyn FnMut(&Frame, Value)) {
    if body.sha256.is_none() && body.bytes.trim_ascii_start().starts_with(b"[") {
        if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body.bytes) {
            let n = items.len();
            for (i, item) in items.iter().enumerate() {
                let mut http = http.clone();
                http["batch"] = json!({"index": i, "of": n});
                each(&frame_of(serde_json::to_vec(item).unwrap_or_default()), http);
            }
            return;
        }
    }
    each(body, http.clone());
}

/// Whether a body is an `initialize` request (alone or in a batch).
fn is_initialize(body: &[u8]) -> bool {
    let method = |v: &Value| v.get("method").and_then(Value::as_str) == Some("initialize");
    memchr_find(body, b"\"initialize\"")
        && match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items.iter().any(method),
            Ok(v) => method(&v),
            Err(_) => false,
        }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Record a request body's messages (an empty body: the exchange itself).
fn record_body(proxy: &HttpProxy, ex: &Exchange, direction: &'static str, http: Value, body: &Bytes) {
    if body.iter().all(u8::is_ascii_whitespace) {
        record_event(proxy, ex, http, None);
        return;
    }
    record_messages(&frame_of(body.to_vec()), &http, &mut |f, http| {
        let mut extra = Map::new();
        extra.insert("http".into(), http);
        let ctx = Context { direction, server: &proxy.server, session: ex.session.as_deref(), pid: None, redact: proxy.redact, extra };
        proxy.recorder.record(message_record(f, ctx));
    });
}

/// An exchange (or half of one) that carried no JSON-RPC message.
fn record_event(proxy: &HttpProxy, ex: &Exchange, http: Value, error: Option<String>) {
    let mut r = Record::now();
    r.set("event", "http").set("server", proxy.server.as_str());
    if let Some(s) = &ex.session {
        r.set("session", s.as_str());
    }
    r.set("http", http);
    if let Some(e) = error {
        r.set("error", e);
    }
    proxy.recorder.record(r);
}
