//! `http`: sends one request, fails unless the response's status is expected, and picks
//! outputs from the JSON response body.
//!
//! Values are data here as they are in shell commands: each `${...}` value in `url` is
//! percent-encoded (so `q=x&admin=1` cannot add a query parameter), and a map or list
//! `body` is sent as the JSON of its values, never as JSON text spliced together. The
//! request is made from the plan at launch ([`HttpPlan::render`]); what the kind says back
//! (errors, the log line) names the URL with every value holding a secret masked, and the
//! engine masks the rest before anything is stored or shown.

use super::{
    missing, FailureClass, Field, FieldProblem, Outputs, StepContext, StepFuture, StepKind,
    StepOutcome,
};
use crate::expr::{Piece, Scope, Template, ValueTemplate};
use crate::model::{StepDef, MASK};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::sync::OnceLock;

/// The most of a response body read for outputs; a larger body fails the step.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// How much of an unexpected response's body its error shows.
const ERROR_BODY: usize = 512;
/// The methods an `http` step sends.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// What a `${...}` value keeps unencoded in a URL: the unreserved characters (RFC 3986).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// The output every `http` step has: the response's status code.
const STATUS: &str = "status";

/// The `http` step kind.
#[derive(Default)]
pub struct Http {
    /// Made at the first request. No connection is kept between requests: a step's
    /// requests are few and far apart, and a pooled connection would be bound to the
    /// runtime that opened it.
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Http {
    fn client(&self) -> Result<&reqwest::Client, &str> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .use_rustls_tls()
                    .pool_max_idle_per_host(0)
                    .build()
                    .map_err(|e| format!("cannot set up the HTTP client: {}", chain(&e)))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

impl StepKind for Http {
    fn fields(&self) -> &'static [Field] {
        &[Field::Method, Field::Url, Field::Headers, Field::Body, Field::Expect, Field::Outputs]
    }

    fn works_outside(&self) -> bool {
        true
    }

    /// Values reach the request through `url`, `headers` and `body`, made at launch.
    fn reads_names(&self) -> bool {
        false
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let http = step.http();
        let mut problems = Vec::new();
        match &http.url {
            None => problems.push(missing(Field::Url, "http", "\"https://api.example.com/items\"")),
            Some(url) => {
                if let Some(message) = plain_url_problem(url) {
                    problems.push(FieldProblem { field: "url".into(), message });
                }
            }
        }
        let mut problem = |field: String, message: String| {
            problems.push(FieldProblem { field, message });
        };
        let method = match &http.method {
            None => Some(Method::GET),
            Some(m) => {
                let parsed = parse_method(m);
                if parsed.is_none() {
                    problem(
                        "method".into(),
                        format!(
                            "`{m}` is not a method an http step sends; use {}",
                            METHODS.join(", ")
                        ),
                    );
                }
                parsed
            }
        };
        if let (Some(method), Some(_)) = (&method, &http.body) {
            if *method == Method::GET || *method == Method::HEAD {
                problem(
                    "body".into(),
                    format!("a {method} request sends no body; use POST, PUT or PATCH"),
                );
            }
        }
        for name in http.headers.keys() {
            match HeaderName::from_bytes(name.as_bytes()) {
                Err(_) => problem(
                    format!("headers.{name}"),
                    format!("`{name}` is not a header name (letters, digits and `-`)"),
                ),
                Ok(h) if h == reqwest::header::CONTENT_LENGTH || h == reqwest::header::HOST => {
                    problem(
                        format!("headers.{name}"),
                        format!("`{name}` is set by the step itself, from `url` and `body`"),
                    )
                }
                Ok(_) => {}
            }
        }
        for (n, &code) in http.expect.iter().enumerate() {
            if !(100..=599).contains(&code) {
                problem(format!("expect.{n}"), format!("`{code}` is not a status code (100-599)"));
            }
        }
        for (name, path) in &http.outputs {
            let field = format!("outputs.{name}");
            if name == STATUS {
                problem(field, "`status` is always an output: the response's status code".into());
            } else if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problem(
                    field,
                    format!("`{name}` is not a valid output name (letters, digits, `_` and `-`)"),
                );
            } else if let Err(message) = JsonPath::parse(path) {
                problem(field, message);
            }
        }
        problems
    }

    fn run(&self, ctx: StepContext) -> StepFuture {
        let client = self.client().cloned().map_err(str::to_owned);
        Box::pin(async move {
            match client {
                Ok(client) => run(client, ctx).await,
                Err(message) => StepOutcome::failure(message),
            }
        })
    }
}

fn parse_method(text: &str) -> Option<Method> {
    let upper = text.to_ascii_uppercase();
    METHODS.contains(&upper.as_str()).then(|| Method::from_bytes(upper.as_bytes()).ok())?
}

/// A problem with a URL that has no `${...}` or starts with text: it must be an http(s) URL.
fn plain_url_problem(url: &str) -> Option<String> {
    let template = Template::parse(url).ok()?;
    if template.is_plain() {
        return match Url::parse(url) {
            Err(e) => Some(format!("`{url}` is not a valid URL: {e}")),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                Some(format!("`{url}` is not an http or https URL"))
            }
            Ok(_) => None,
        };
    }
    // `${raw(base)}/items` starts with a value; anything else starts with its scheme.
    let lower = url.to_ascii_lowercase();
    (!url.starts_with("${") && !lower.starts_with("http://") && !lower.starts_with("https://"))
        .then(|| format!("`{url}` is not an http or https URL (it starts with neither `http://` nor `https://` nor a `${{raw(...)}}` base)"))
}

/// Where an output is in the JSON response body: keys and list indices, or the whole body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonPath(Vec<String>);

impl JsonPath {
    /// `.` is the whole body; otherwise names joined by `.`, a number indexing a list.
    fn parse(text: &str) -> Result<JsonPath, String> {
        if text == "." {
            return Ok(JsonPath(Vec::new()));
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "`{text}` is not a path in the response: write names and list indices joined by `.` (`data.items.0.name`), or `.` for the whole body"
            ));
        }
        Ok(JsonPath(segments))
    }

    fn pick<'a>(&self, body: &'a Value) -> Result<&'a Value, String> {
        let mut at = body;
        for (n, segment) in self.0.iter().enumerate() {
            let next = match at {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            at = next.ok_or_else(|| {
                let found = match at {
                    Value::Object(_) => "an object without it".to_owned(),
                    Value::Array(items) => format!("a list of {} items", items.len()),
                    other => crate::expr::kind_of(other).to_owned(),
                };
                format!("the response has no `{}` (found {found})", self.0[..=n].join("."))
            })?;
        }
        Ok(at)
    }
}

/// An `http` step's fields, parsed at validation.
#[derive(Debug)]
pub(crate) struct HttpPlan {
    method: Method,
    url: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Option<BodyPlan>,
    expect: Vec<u16>,
    outputs: Vec<(String, JsonPath)>,
}

#[derive(Debug)]
enum BodyPlan {
    /// Sent as text.
    Text(Template),
    /// Sent as the JSON of the value.
    Json(ValueTemplate),
}

impl HttpPlan {
    /// The plan of `step`'s `http` fields, or `None` if one is invalid (validation reports
    /// it) or the step sets none.
    pub(crate) fn compile(step: &StepDef) -> Option<HttpPlan> {
        let http = step.http();
        let method = match &http.method {
            None => Method::GET,
            Some(m) => parse_method(m)?,
        };
        let headers = http
            .headers
            .iter()
            .map(|(k, v)| {
                Some((HeaderName::from_bytes(k.as_bytes()).ok()?, Template::parse(v).ok()?))
            })
            .collect::<Option<_>>()?;
        let body = match &http.body {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(BodyPlan::Text(Template::parse(text).ok()?)),
            Some(value) => Some(BodyPlan::Json(ValueTemplate::parse(value).ok()?)),
        };
        let outputs = http
            .outputs
            .iter()
            .map(|(k, p)| Some((k.clone(), JsonPath::parse(p).ok()?)))
            .collect::<Option<_>>()?;
        Some(HttpPlan {
            method,
            url: Template::parse(http.url.as_deref()?).ok()?,
            headers,
            body,
            expect: http.expect.clone(),
            outputs,
        })
    }

    /// The request, with every `${...}` evaluated in `scope`; `secret` says whether a
    /// value holds a secret (the URL shown in messages masks it).
    pub(crate) fn render(
        &self,
        scope: &dyn Scope,
        secret: &dyn Fn(&str) -> bool,
    ) -> Result<Request, String> {
        let mut url = String::new();
        let mut shown = String::new();
        for piece in self.url.render_pieces(scope).map_err(|e| format!("url: {e}"))? {
            let (sent, hidden) = match piece {
                Piece::Text(text) => (text.to_owned(), false),
                Piece::Value(value) => {
                    (utf8_percent_encode(&value, VALUE).to_string(), secret(&value))
                }
                // `${raw(base)}`: the value is part of the URL, as written.
                Piece::Code(value) => {
                    let hidden = secret(&value);
                    (value, hidden)
                }
            };
            shown.push_str(if hidden { MASK } else { &sent });
            url.push_str(&sent);
        }
        let url = match Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(_) => return Err(format!("url: `{shown}` is not an http or https URL")),
            Err(e) => return Err(format!("url: `{shown}` is not a valid URL: {e}")),
        };
        let mut headers = HeaderMap::new();
        for (name, template) in &self.headers {
            let text = template.render(scope).map_err(|e| format!("headers.{name}: {e}"))?;
            // The message never holds the value: it may be a secret.
            let mut value = HeaderValue::from_str(&text).map_err(|_| {
                format!("headers.{name}: the value holds a line break or another character a header cannot hold")
            })?;
            value.set_sensitive(secret(&text));
            headers.append(name.clone(), value);
        }
        let body = match &self.body {
            None => None,
            Some(BodyPlan::Text(t)) => Some((
                t.render(scope).map_err(|e| format!("body: {e}"))?.into_bytes(),
                "text/plain; charset=utf-8",
            )),
            Some(BodyPlan::Json(t)) => {
                let value = t.evaluate(scope).map_err(|e| format!("body: {e}"))?;
                let bytes = serde_json::to_vec(&value).map_err(|e| format!("body: {e}"))?;
                Some((bytes, "application/json"))
            }
        };
        let body = body.map(|(bytes, content_type)| {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            bytes
        });
        Ok(Request {
            method: self.method.clone(),
            url,
            shown_url: shown,
            headers,
            body,
            expect: self.expect.clone(),
            outputs: self.outputs.clone(),
        })
    }
}

/// The request of one attempt of an `http` step, made by [`HttpPlan::render`].
pub(crate) struct Request {
    method: Method,
    url: Url,
    /// The URL with values holding a secret masked: what messages show.
    shown_url: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    expect: Vec<u16>,
    outputs: Vec<(String, JsonPath)>,
}

impl std::fmt::Debug for Request {
    // Never the headers or the body: they may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request({} {})", self.method, self.shown_url)
    }
}

impl Request {
    /// What the request sends, as JSON: a part of a cached step's key (see
    /// `engine/cache.rs`). Headers in the order given; a body that is not text in hex.
    pub(crate) fn key_value(&self) -> serde_json::Value {
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = self.body.as_ref().map(|b| match std::str::from_utf8(b) {
            Ok(text) => text.to_owned(),
            Err(_) => b.iter().map(|x| format!("{x:02x}")).collect(),
        });
        serde_json::json!({
            "method": self.method.as_str(),
            "url": self.url.as_str(),
            "headers": headers,
            "body": body,
        })
    }

    fn expects(&self, status: StatusCode) -> bool {
        if self.expect.is_empty() {
            status.is_success()
        } else {
            self.expect.contains(&status.as_u16())
        }
    }

    fn expected(&self) -> String {
        match self.expect.as_slice() {
            [] => "2xx".into(),
            codes => codes.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
        }
    }
}

async fn run(client: reqwest::Client, ctx: StepContext) -> StepOutcome {
    let Some(request) = ctx.request else {
        return StepOutcome::failure(
            "the step has no request to send (an `http` step needs `url`)",
        );
    };
    let what = format!("{} {}", request.method, request.shown_url);
    let mut builder = client.request(request.method.clone(), request.url.clone());
    builder = builder.headers(request.headers.clone());
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let stopped = || {
        let how = if ctx.kill.is_cancelled() { "killed" } else { "stopped" };
        StepOutcome::failure(format!("{what}: {how} while waiting for the response"))
    };
    let response = tokio::select! {
        sent = builder.send() => sent,
        _ = ctx.cancel.cancelled() => return stopped(),
    };
    let mut response = match response {
        Ok(r) => r,
        Err(e) => return StepOutcome::failure(format!("{what}: {}", describe(e))),
    };
    let status = response.status();
    tracing::debug!(step = %ctx.step_id, method = %request.method, status = status.as_u16(), "http response");
    let log_tail = Some(format!("{what}: {status}"));
    if !request.expects(status) {
        let head = tokio::select! {
            read = read_body(&mut response, ERROR_BODY, false) => read,
            _ = ctx.cancel.cancelled() => return stopped(),
        };
        let head = match head {
            Ok(bytes) if bytes.is_empty() => "the response body is empty".to_owned(),
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let more = if bytes.len() >= ERROR_BODY { "..." } else { "" };
                format!("the response body begins: {}{more}", text.trim_end())
            }
            Err(e) => format!("the response body could not be read: {e}"),
        };
        // A client error other than a timeout or a rate limit is the request's own fault:
        // sending it again would get the same answer.
        let final_ = status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS;
        return StepOutcome {
            result: Err(format!(
                "{what}: unexpected status {status} (expected {}); {head}",
                request.expected()
            )),
            log_tail,
            class: if final_ { FailureClass::Final } else { FailureClass::Retryable },
        };
    }
    let mut outputs = Outputs::new();
    outputs.insert(STATUS.into(), Value::from(status.as_u16()));
    if !request.outputs.is_empty() {
        let body = tokio::select! {
            read = read_body(&mut response, MAX_BODY, true) => read,
            _ = ctx.cancel.cancelled() => return stopped(),
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                return StepOutcome { log_tail, ..StepOutcome::failure(format!("{what}: {e}")) }
            }
        };
        let json = serde_json::from_slice::<Value>(&body);
        for (name, path) in &request.outputs {
            let picked = match (&json, path.0.is_empty()) {
                (Ok(json), _) => path.pick(json).cloned(),
                // The whole body of a response that is not JSON: its text.
                (Err(_), true) => Ok(Value::String(String::from_utf8_lossy(&body).into_owned())),
                (Err(e), false) => Err(format!("the response body is not JSON ({e})")),
            };
            match picked {
                Ok(value) => {
                    outputs.insert(name.clone(), value);
                }
                Err(e) => {
                    let failure = StepOutcome::failure(format!("{what}: outputs.{name}: {e}"));
                    return StepOutcome { log_tail, ..failure };
                }
            }
        }
    }
    StepOutcome { log_tail, ..StepOutcome::success(outputs) }
}

/// Reads at most `limit` bytes of the body; with `whole`, a longer body is an error, else
/// what is past the limit is left unread.
async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
    whole: bool,
) -> Result<Vec<u8>, String> {
    let too_large = || {
        format!("the response body is larger than {limit} bytes, the most an http step reads for its outputs")
    };
    if whole && response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > limit {
            if whole {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk[..limit - body.len()]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What went wrong with a request, without its URL (the caller names it, masked).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        return format!("timed out ({})", chain(&e));
    }
    if e.is_connect() {
        return format!("cannot connect: {}", chain(&e));
    }
    chain(&e)
}

/// An error and its sources, without the generic links (`error sending request`,
/// `client error (Connect)`).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = at {
        let text = err.to_string();
        let generic = text.starts_with("error sending request")
            || text.starts_with("client error (")
            || text.is_empty();
        if !generic && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        at = err.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_pick_keys_and_indices() {
        let body = json!({"id": 7, "data": {"items": [{"name": "a"}, {"name": "b"}]}});
        let pick = |p: &str| JsonPath::parse(p).unwrap().pick(&body).cloned();
        assert_eq!(pick("id"), Ok(json!(7)));
        assert_eq!(pick("data.items.1.name"), Ok(json!("b")));
        assert_eq!(pick(".").unwrap(), body);
        assert_eq!(
            pick("data.items.2.name").unwrap_err(),
            "the response has no `data.items.2` (found a list of 2 items)"
        );
        assert!(pick("id.x").unwrap_err().starts_with("the response has no `id.x` (found "));
        assert!(JsonPath::parse("a..b").is_err() && JsonPath::parse("").is_err());
    }

    #[test]
    fn methods_and_plain_urls_are_checked() {
        assert_eq!(parse_method("post"), Some(Method::POST));
        assert_eq!(parse_method("FETCH"), None);
        assert!(plain_url_problem("https://api.example.com/x").is_none());
        assert!(plain_url_problem("ftp://x/y").unwrap().contains("not an http or https URL"));
        assert!(plain_url_problem("not a url").unwrap().contains("not a valid URL"));
        assert!(plain_url_problem("${raw(base)}/items").is_none());
        assert!(plain_url_problem("http://h/${id}").is_none());
        assert!(plain_url_problem("h/${id}").is_some());
    }
}
