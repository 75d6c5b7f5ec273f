//! `http` steps against a throwaway server on 127.0.0.1: outputs picked from JSON, values
//! kept data in the URL and the body, unexpected statuses, secrets, timeouts.

use baton_core::model::{Format, Source};
use baton_core::{Engine, RunStatus, StepStatus};
use indexmap::IndexMap;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod support;
use support::*;

/// A request the server received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    /// The request target as sent: `/items?q=...`, still percent-encoded.
    target: String,
    /// The header lines, as sent.
    head: String,
    body: String,
}

/// What the server answers: a status and a body, or nothing at all (`None`).
type Answer = Option<(u16, String)>;

/// A server answering each request on a loopback port with `answer`, keeping what it got.
struct Server {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    async fn start(answer: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let (answer, seen) = (Arc::new(answer), got.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (answer, seen) = (answer.clone(), seen.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else { return };
                    seen.lock().unwrap().push(request.clone());
                    let Some((status, body)) = answer(&request) else {
                        // Holds the connection open without a word.
                        std::future::pending::<()>().await;
                        return;
                    };
                    let response = format!(
                        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Server { base, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Reads one request (at most 64 KiB), with its body as `Content-Length` says.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length.min(64 << 10) {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next()?.split(' ');
    Some(Received {
        method: first.next()?.to_owned(),
        target: first.next()?.to_owned(),
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find_map(|(k, v)| k.eq_ignore_ascii_case(name).then_some(v.trim()))
}

fn params(pairs: &[(&str, Value)]) -> IndexMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Runs `yaml` (with `{base}` replaced by the server's URL) to its end on virtual time.
async fn run(
    server: &Server,
    yaml: &str,
    given: IndexMap<String, Value>,
) -> (Setup, String, baton_core::RunRecord) {
    let s = engine_with(None, None);
    let wf = workflow(&s.engine, &yaml.replace("{base}", &server.base));
    let id = s.engine.start(wf, given).await.unwrap();
    let record = finish(&s, &id).await;
    (s, id, record)
}

fn step(s: &Setup, id: &str, step: &str) -> baton_core::StepRecord {
    let d = s.engine.details(id).unwrap();
    d.steps.into_iter().find(|x| x.id == step).unwrap().record
}

#[tokio::test]
async fn a_get_gives_its_status_and_values_picked_from_the_json_body() {
    let server = Server::start(|r| {
        Some((
            200,
            json!({"id": 42, "data": {"items": [{"name": "first"}]}, "path": r.target}).to_string(),
        ))
    })
    .await;
    let yaml = r#"
id: h
steps:
  - id: fetch
    type: http
    url: "{base}/items/7"
    outputs: {id: id, name: data.items.0.name, whole: .}
  - {id: use, type: shell, depends_on: [fetch], command: 'test "${fetch.name}" = first && test ${fetch.id} = 42'}
"#;
    let (s, id, run) = run(&server, yaml, IndexMap::new()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", step(&s, &id, "fetch"));
    let fetch = step(&s, &id, "fetch");
    assert_eq!(fetch.outputs["status"], json!(200));
    assert_eq!(fetch.outputs["id"], json!(42));
    assert_eq!(fetch.outputs["name"], json!("first"));
    assert_eq!(fetch.outputs["whole"]["path"], json!("/items/7"));
    assert_eq!(fetch.log_tail.as_deref(), Some(&*format!("GET {}/items/7: 200 OK", server.base)));
    assert_eq!(server.received()[0].method, "GET");
}

#[tokio::test]
async fn values_in_the_url_are_percent_encoded_and_cannot_add_a_query_parameter() {
    let server = Server::start(|_| Some((200, "{}".into()))).await;
    let yaml = r#"
id: h
params: {q: x, base: "{base}"}
steps:
  - {id: search, type: http, url: "${raw(base)}/search/${q}?q=${q}&page=${1 + 1}"}
"#;
    let hostile = "x&admin=1#/../ é";
    let (s, id, run) = run(&server, yaml, params(&[("q", json!(hostile))])).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", step(&s, &id, "search"));
    let target = server.received()[0].target.clone();
    assert_eq!(
        target,
        "/search/x%26admin%3D1%23%2F..%2F%20%C3%A9?q=x%26admin%3D1%23%2F..%2F%20%C3%A9&page=2"
    );
}

#[tokio::test]
async fn a_map_body_is_sent_as_the_json_of_its_values() {
    let server = Server::start(|r| Some((201, r.body.clone()))).await;
    let yaml = r#"
id: h
params: {name: x, count: 1}
steps:
  - id: create
    type: http
    method: post
    url: "{base}/items"
    headers: {X-Request-Id: "req-${count}"}
    body: {name: "${name}", count: "${count}", tags: ["a", "${name}"], note: "n=${count}"}
    expect: [201]
    outputs: {sent: name}
"#;
    let hostile = r#"a", "admin": true, "x": ""#;
    let given = params(&[("name", json!(hostile)), ("count", json!(3))]);
    let (s, id, run) = run(&server, yaml, given).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", step(&s, &id, "create"));
    let got = &server.received()[0];
    assert_eq!(got.method, "POST");
    assert_eq!(header(got, "content-type"), Some("application/json"));
    assert_eq!(header(got, "x-request-id"), Some("req-3"));
    let sent: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(sent, json!({"name": hostile, "count": 3, "tags": ["a", hostile], "note": "n=3"}));
    assert_eq!(step(&s, &id, "create").outputs["sent"], json!(hostile));
}

#[tokio::test]
async fn an_unexpected_status_fails_naming_the_request_and_a_4xx_is_not_retried() {
    let server = Server::start(|r| {
        if r.target.starts_with("/missing") {
            Some((404, r#"{"error": "no such item"}"#.into()))
        } else {
            Some((503, "busy".into()))
        }
    })
    .await;
    let yaml = r#"
id: h
steps:
  - {id: missing, type: http, url: "{base}/missing", retry: {max_attempts: 3, delay: 1s}, failure_mode: ignore_failure}
  - {id: busy, type: http, url: "{base}/busy", retry: {max_attempts: 2, delay: 1s}, failure_mode: ignore_failure}
  - {id: refused, type: http, method: DELETE, url: "http://127.0.0.1:1/x", failure_mode: ignore_failure}
"#;
    let (s, id, _) = run(&server, yaml, IndexMap::new()).await;
    let missing = step(&s, &id, "missing");
    assert_eq!((missing.status, missing.attempt), (StepStatus::Failed, 1));
    assert_eq!(
        missing.error.as_deref().unwrap(),
        format!("GET {}/missing: unexpected status 404 Not Found (expected 2xx); the response body begins: {{\"error\": \"no such item\"}}; not retried: the step said no retry can mend it", server.base)
    );
    let busy = step(&s, &id, "busy");
    assert_eq!((busy.status, busy.attempt), (StepStatus::Failed, 2), "a 5xx is retried");
    assert!(busy
        .error
        .as_deref()
        .unwrap()
        .ends_with("503 Service Unavailable (expected 2xx); the response body begins: busy"));
    let refused = step(&s, &id, "refused");
    let error = refused.error.unwrap();
    assert!(error.starts_with("DELETE http://127.0.0.1:1/x: cannot connect: "), "{error}");
}

#[tokio::test]
async fn a_secret_reaches_the_server_but_nothing_stored_or_shown() {
    const TOKEN: &str = "tok/9f8e&7d";
    let server = Server::start(|r| {
        let auth = header(r, "authorization").unwrap_or_default().to_owned();
        if r.target.starts_with("/ok") {
            Some((200, json!({"auth": auth, "body": r.body}).to_string()))
        } else {
            Some((401, format!("refused {auth}")))
        }
    })
    .await;
    let yaml = r#"
id: h
secrets: [token]
steps:
  - id: ok
    type: http
    method: POST
    url: "{base}/ok"
    headers: {Authorization: "Bearer ${token}"}
    body: {token: "${token}"}
    outputs: {auth: auth, echoed: body}
  - id: refused
    type: http
    url: "{base}/no?key=${token}"
    headers: {Authorization: "Bearer ${token}"}
    failure_mode: ignore_failure
"#;
    let dir = tempfile::tempdir().unwrap();
    let s = Setup::open(Engine::builder().store_dir(dir.path()));
    let wf = workflow(&s.engine, &yaml.replace("{base}", &server.base));
    let id = s.engine.start(wf, params(&[("token", json!(TOKEN))])).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", statuses(&s.engine, &id));

    // The server got it, in the header and in the body.
    let got = server.received();
    assert!(got.iter().all(|r| header(r, "authorization") == Some(&*format!("Bearer {TOKEN}"))));
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body, json!({"token": TOKEN}));
    // The URL held it percent-encoded: the error names the URL with the value masked.
    assert_eq!(got[1].target, "/no?key=tok%2F9f8e%267d");
    let refused = step(&s, &id, "refused");
    assert_eq!(
        refused.error.as_deref().unwrap(),
        format!("GET {}/no?key=***: unexpected status 401 Unauthorized (expected 2xx); the response body begins: refused Bearer ***", server.base)
    );
    let ok = step(&s, &id, "ok");
    assert_eq!(ok.outputs["auth"], json!("Bearer ***"));
    assert_eq!(ok.outputs["echoed"], json!("{\"token\":\"***\"}"));

    // Nothing the engine shows or stores holds it, in clear or encoded.
    let shown = format!("{:?}", s.engine.details(&id).unwrap());
    let encoded = "tok%2F9f8e%267d";
    assert!(!shown.contains(TOKEN) && !shown.contains(encoded), "{shown}");
    drop(s);
    for (path, bytes) in files_under(dir.path()) {
        for needle in [TOKEN, encoded] {
            let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "{} holds the secret", path.display());
        }
    }
}

#[tokio::test]
async fn outputs_read_at_most_a_mebibyte_of_json() {
    let server = Server::start(|r| match r.target.as_str() {
        "/big" => Some((200, format!("{{\"x\": \"{}\"}}", "a".repeat(2 << 20)))),
        _ => Some((200, "plain text".into())),
    })
    .await;
    let yaml = r#"
id: h
steps:
  - {id: big, type: http, url: "{base}/big", outputs: {x: x}, failure_mode: ignore_failure}
  - {id: big_unread, type: http, url: "{base}/big"}
  - {id: text, type: http, url: "{base}/text", outputs: {x: x}, failure_mode: ignore_failure}
  - {id: whole_text, type: http, url: "{base}/text", outputs: {all: .}}
"#;
    let (s, id, run) = run(&server, yaml, IndexMap::new()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", statuses(&s.engine, &id));
    let big = step(&s, &id, "big").error.unwrap();
    assert!(big.ends_with(": the response body is larger than 1048576 bytes, the most an http step reads for its outputs"), "{big}");
    assert_eq!(step(&s, &id, "big_unread").status, StepStatus::Succeeded, "no outputs, no read");
    let text = step(&s, &id, "text").error.unwrap();
    assert!(text.contains("/text: outputs.x: the response body is not JSON ("), "{text}");
    assert_eq!(step(&s, &id, "whole_text").outputs["all"], json!("plain text"));
}

/// Every byte of every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn the_step_timeout_ends_a_request_that_gets_no_answer() {
    let server = Server::start(|_| None).await;
    // The engine's real clock: the request works outside the engine, so virtual time
    // would not move while it waits.
    let engine = Engine::builder().open().unwrap();
    let yaml = "id: h\nsteps:\n  - {id: slow, type: http, url: '{base}/slow', timeout: 300ms}\n";
    let source = Source::new("h.yaml", yaml.replace("{base}", &server.base), Format::Yaml);
    let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    let run = tokio::time::timeout(LIMIT, engine.wait(&id)).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let d = engine.details(&id).unwrap();
    assert_eq!(d.steps[0].record.error.as_deref(), Some("timed out after 300ms"));
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn definitions_are_checked() {
    let s = engine_with(None, None);
    let yaml = r#"
id: h
params: {p: 1}
secrets: [token]
steps:
  - {id: no_url, type: http}
  - {id: bad, type: http, method: FETCH, url: "ftp://x/${p}", expect: [42], outputs: {status: id, "a b": x, c: "a..b"}}
  - {id: get_body, type: http, url: "http://x/", body: "text", headers: {"bad header": x, Content-Length: "1"}}
  - {id: raw_header, type: http, url: "http://x/", headers: {A: "${raw(p)}"}}
  - {id: shell, type: shell, command: echo, url: "http://x/"}
  - {id: loop, type: foreach, over: "${[1]}", steps: [{id: in, type: http, url: "http://x/${item}/${token}"}]}
"#;
    let source = Source::new("h.yaml", yaml, Format::Yaml);
    let err = s.engine.compile(source.parse().unwrap()).map_err(|e| source.locate(e)).unwrap_err();
    let all = err.to_string();
    for expected in [
        "step `no_url`: url: `http` steps need `url`",
        "step `bad`: url: `ftp://x/${p}` is not an http or https URL",
        "step `bad`: method: `FETCH` is not a method an http step sends",
        "step `bad`: expect.0: `42` is not a status code (100-599)",
        "step `bad`: outputs.status: `status` is always an output",
        "step `bad`: outputs.a b: `a b` is not a valid output name",
        "step `bad`: outputs.c: `a..b` is not a path in the response",
        "step `get_body`: body: a GET request sends no body",
        "step `get_body`: headers.bad header: `bad header` is not a header name",
        "step `get_body`: headers.Content-Length: `Content-Length` is set by the step itself",
        "step `raw_header`: headers.A: column 3: raw(...) marks shell code",
        "step `shell`: url: `url` is not used by `shell` steps",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert!(!all.contains("step `loop"), "a secret may reach a url: {all}");
}
