//! A local GitHub double: a hyper server on 127.0.0.1:0 that checks every request against
//! GitHub's official OpenAPI description (the trimmed fixture) and answers with bodies valid
//! under it, built from the description's own examples.
//!
//! It keeps the state a promotion changes (pull requests, labels, reviewers, commit statuses),
//! answers 401 to a wrong token and 404 to another repository, and can be told to fail the
//! next calls of an operation (5xx, rate limits) or to have no commits between the branches.
// Each test binary that includes the double uses a different part of it.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

#[path = "graphql.rs"]
mod graphql;
#[allow(unused_imports)]
pub use graphql::{GIT_IDENTITY, GraphqlOp, LoggedCommit, object_id};

/// The trimmed API description, with OpenAPI 3.0's `nullable` turned into JSON Schema.
pub struct OpenApi {
    doc: Value,
    ops: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// One operation of the description.
pub struct Operation {
    /// e.g. `pulls/create`.
    pub id: String,
    method: Method,
    template: String,
    segments: Vec<String>,
}

impl OpenApi {
    /// Loads `tests/fixtures/github-openapi.json`.
    pub fn load() -> OpenApi {
        // Relative to this file, so other crates' tests can include the double too.
        let text = include_str!("../fixtures/github-openapi.json");
        let mut doc: Value = serde_json::from_str(text).expect("the OpenAPI fixture is JSON");
        nullable_to_json_schema(&mut doc);
        let mut ops = Vec::new();
        for (template, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops.push(Operation {
                    id: op["operationId"].as_str().unwrap().to_owned(),
                    method: method.to_uppercase().parse().unwrap(),
                    template: template.clone(),
                    segments: template.split('/').map(str::to_owned).collect(),
                });
            }
        }
        OpenApi {
            doc,
            ops,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The operation for a method and a concrete path, with its path parameters.
    pub fn find(
        &self,
        method: &Method,
        path: &str,
    ) -> Option<(&Operation, HashMap<String, String>)> {
        let parts: Vec<&str> = path.split('/').collect();
        'ops: for op in &self.ops {
            if op.method != method || op.segments.len() != parts.len() {
                continue;
            }
            let mut params = HashMap::new();
            for (seg, part) in op.segments.iter().zip(&parts) {
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    params.insert(name.to_owned(), percent_decode(part));
                } else if seg != part {
                    continue 'ops;
                }
            }
            return Some((op, params));
        }
        None
    }

    fn op_pointer(&self, op: &Operation) -> String {
        format!(
            "/paths/{}/{}",
            op.template.replace('~', "~0").replace('/', "~1"),
            op.method.as_str().to_lowercase()
        )
    }

    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => self.resolve(
                self.doc
                    .pointer(r.trim_start_matches('#'))
                    .expect("ref resolves"),
            ),
            None => node,
        }
    }

    /// Validates `instance` against the schema at `pointer` (a JSON pointer into the
    /// description); returns every problem.
    pub fn check(&self, pointer: &str, instance: &Value) -> Vec<String> {
        let validator = {
            let mut cache = self.validators.lock().unwrap();
            cache
                .entry(pointer.to_owned())
                .or_insert_with(|| {
                    // The whole description is the schema document, so `#/components/...`
                    // references resolve; the root `$ref` selects the schema to apply.
                    let mut root = self.doc.clone();
                    root.as_object_mut().unwrap().insert(
                        "$ref".into(),
                        Value::String(format!(
                            "#{}",
                            pointer.replace('{', "%7B").replace('}', "%7D")
                        )),
                    );
                    Arc::new(
                        jsonschema::draft4::new(&root)
                            .unwrap_or_else(|e| panic!("schema at {pointer} compiles: {e}")),
                    )
                })
                .clone()
        };
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Problems with a request: parameters and body against the operation's description.
    pub fn check_request(
        &self,
        op: &Operation,
        path_params: &HashMap<String, String>,
        query: &[(String, String)],
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let op_ptr = self.op_pointer(op);
        let op_node = self.doc.pointer(&op_ptr).unwrap();
        let params: Vec<&Value> = op_node["parameters"]
            .as_array()
            .map(|a| a.iter().map(|p| self.resolve(p)).collect())
            .unwrap_or_default();
        for p in &params {
            let name = p["name"].as_str().unwrap();
            let given: Option<&str> = match p["in"].as_str().unwrap() {
                "path" => path_params.get(name).map(String::as_str),
                "query" => query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str()),
                _ => continue,
            };
            match given {
                None if p["required"] == json!(true) => {
                    problems.push(format!("required parameter {name} is missing"))
                }
                None => {}
                Some(text) => {
                    let value = coerce(text, &p["schema"]);
                    for e in self.check_value(&p["schema"], &value) {
                        problems.push(format!("parameter {name}={text}: {e}"));
                    }
                }
            }
        }
        for (k, _) in query {
            let known = params
                .iter()
                .any(|p| p["in"] == "query" && p["name"] == k.as_str());
            if !known {
                problems.push(format!("query parameter {k} is not in the description"));
            }
        }
        let request_body = op_node.get("requestBody").map(|b| self.resolve(b));
        match (request_body, body) {
            (Some(_), Some(body)) => {
                if !content_type.is_some_and(|c| c.starts_with("application/json")) {
                    problems.push(format!(
                        "content-type {content_type:?} is not application/json"
                    ));
                }
                let ptr = format!("{op_ptr}/requestBody/content/application~1json/schema");
                problems.extend(
                    self.check(&ptr, body)
                        .into_iter()
                        .map(|e| format!("body: {e}")),
                );
            }
            (Some(rb), None) if rb["required"] == json!(true) => {
                problems.push("the request body is required".into())
            }
            (None, Some(_)) => problems.push("this operation takes no body".into()),
            _ => {}
        }
        problems
    }

    fn check_value(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut root = schema.clone();
        if let Some(obj) = root.as_object_mut() {
            obj.insert("components".into(), self.doc["components"].clone());
        }
        match jsonschema::draft4::new(&root) {
            Ok(v) => v.iter_errors(value).map(|e| e.to_string()).collect(),
            Err(e) => vec![format!("parameter schema does not compile: {e}")],
        }
    }

    /// The pointer of a response schema of an operation, following `$ref` to a shared
    /// response.
    pub fn response_pointer(&self, op_id: &str, status: u16) -> String {
        let op = self.ops.iter().find(|o| o.id == op_id).expect("operation");
        let ptr = format!("{}/responses/{status}", self.op_pointer(op));
        let node = self
            .doc
            .pointer(&ptr)
            .unwrap_or_else(|| panic!("{op_id} documents {status}"));
        let base = match node.get("$ref").and_then(Value::as_str) {
            Some(r) => r.trim_start_matches('#').to_owned(),
            None => ptr,
        };
        format!("{base}/content/application~1json/schema")
    }

    /// The example body of a response, from `components/examples`.
    pub fn example(&self, name: &str) -> Value {
        self.doc["components"]["examples"][name]["value"].clone()
    }
}

/// OpenAPI 3.0 writes `nullable: true`; JSON Schema needs null allowed explicitly.
fn nullable_to_json_schema(node: &mut Value) {
    match node {
        Value::Object(obj) => {
            for v in obj.values_mut() {
                nullable_to_json_schema(v);
            }
            if obj.get("nullable") == Some(&Value::Bool(true)) {
                obj.remove("nullable");
                let inner = Value::Object(std::mem::take(obj));
                obj.insert("anyOf".into(), json!([inner, {"type": "null"}]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

fn coerce(text: &str, schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("integer") => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::from(text)),
        Some("boolean") => text
            .parse::<bool>()
            .map(Value::from)
            .unwrap_or(Value::from(text)),
        _ => Value::from(text),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer the double gives instead of the normal one.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// JSON body (GitHub's basic-error shape).
    pub body: Value,
}

impl Fault {
    /// A 502 Bad Gateway as GitHub's front end sends it.
    pub fn bad_gateway() -> Fault {
        Fault {
            status: 502,
            headers: vec![],
            body: json!({"message": "Server Error", "documentation_url": "https://docs.github.com/rest"}),
        }
    }

    /// A primary rate limit: 403 with `x-ratelimit-remaining: 0` and the reset time.
    pub fn primary_rate_limit(reset_in_secs: u64) -> Fault {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Fault {
            status: 403,
            headers: vec![
                ("x-ratelimit-limit".into(), "5000".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-used".into(), "5000".into()),
                (
                    "x-ratelimit-reset".into(),
                    (now + reset_in_secs).to_string(),
                ),
            ],
            body: json!({
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                "status": "403"
            }),
        }
    }

    /// A secondary rate limit as GitHub documents it for content creation: 403, a message
    /// naming the secondary rate limit, quota left, and no `Retry-After` ("wait at least one
    /// minute").
    pub fn secondary_rate_limit_without_retry_after() -> Fault {
        Fault {
            status: 403,
            headers: vec![
                ("x-ratelimit-limit".into(), "5000".into()),
                ("x-ratelimit-remaining".into(), "4990".into()),
                ("x-ratelimit-used".into(), "10".into()),
            ],
            body: json!({
                "message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": "403"
            }),
        }
    }

    /// A secondary rate limit: 429 with `Retry-After`.
    pub fn secondary_rate_limit(retry_after_secs: u64) -> Fault {
        Fault {
            status: 429,
            headers: vec![("retry-after".into(), retry_after_secs.to_string())],
            body: json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": "429"
            }),
        }
    }
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Operation id, or `?` when no operation matched.
    pub op: String,
    /// Method.
    pub method: Method,
    /// Path and query as sent.
    pub uri: String,
    /// Every header, values as text.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Value>,
    /// Status answered.
    pub status: u16,
}

/// A pull request the double holds.
#[derive(Debug, Clone)]
pub struct Pr {
    /// Number.
    pub number: u64,
    /// Head branch.
    pub head: String,
    /// Owner of the head branch's repository (a fork's owner for a pull request from a
    /// fork).
    pub head_owner: String,
    /// Base branch.
    pub base: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Labels added.
    pub labels: Vec<String>,
    /// Reviewers requested.
    pub reviewers: Vec<String>,
    /// The next list calls that do not show it yet: GitHub's list can lag behind a pull
    /// request opened a moment ago, so a create answers "already exists" for a pull
    /// request no list shows yet.
    pub unlisted_for: u32,
}

/// Everything the double saw and holds.
#[derive(Debug, Default)]
pub struct State {
    /// Requests in arrival order.
    pub received: Vec<Received>,
    /// Requests or answers that do not match the description: must stay empty.
    pub violations: Vec<String>,
    /// Open pull requests.
    pub prs: Vec<Pr>,
    /// Commit statuses set: (sha, request body).
    pub statuses: Vec<(String, Value)>,
    /// Faults to answer, per operation id, in order.
    pub faults: HashMap<String, VecDeque<Fault>>,
    /// Answer 422 "No commits between …" to pulls/create.
    pub no_commits: bool,
    /// Answer pulls/list without applying its `head` and `base` filters, as GitHub does for
    /// a `head` that is not in the documented `owner:branch` form.
    pub ignore_list_filters: bool,
    /// The git model behind the GraphQL endpoint, and what that endpoint received.
    pub git: graphql::Git,
}

/// The running double.
pub struct GitHubDouble {
    /// `http://ADDRESS:PORT`.
    pub url: String,
    /// The repository it serves.
    pub owner: String,
    /// The repository it serves.
    pub repo: String,
    /// The token it accepts.
    pub token: String,
    state: Arc<Mutex<State>>,
    api: Arc<OpenApi>,
}

/// The SHA of every head branch in the double.
pub const HEAD_SHA: &str = "0d1e5a7c3f9b2e4d6a8c0b1f3e5d7a9c2b4f6e81";

impl GitHubDouble {
    /// Starts a double serving `owner/repo` that accepts `token`.
    pub async fn start(owner: &str, repo: &str, token: &str) -> GitHubDouble {
        Self::start_on("127.0.0.1:0", owner, repo, token).await
    }

    /// Like [`GitHubDouble::start`], listening on `addr` (e.g. the test node's bridge address,
    /// where pods reach it).
    pub async fn start_on(addr: &str, owner: &str, repo: &str, token: &str) -> GitHubDouble {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let double = GitHubDouble {
            url,
            owner: owner.into(),
            repo: repo.into(),
            token: token.into(),
            state: Arc::new(Mutex::new(State::default())),
            api: Arc::new(OpenApi::load()),
        };
        let ctx = Arc::new(Ctx {
            owner: owner.into(),
            repo: repo.into(),
            token: token.into(),
            state: double.state.clone(),
            api: double.api.clone(),
        });
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, Infallible>(ctx.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        double
    }

    /// Locks the state to read or change it.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Answers the next call of `op` with `fault` (queued after earlier ones).
    pub fn inject(&self, op: &str, fault: Fault) {
        self.state()
            .faults
            .entry(op.into())
            .or_default()
            .push_back(fault);
    }

    /// Adds an open pull request, as if opened earlier.
    pub fn seed_pr(&self, number: u64, head: &str, base: &str) {
        let owner = self.owner.clone();
        self.seed_fork_pr(number, &owner, head, base);
    }

    /// Adds an open pull request from `head_owner`'s repository (a fork when it is not the
    /// served owner), as if opened earlier.
    pub fn seed_fork_pr(&self, number: u64, head_owner: &str, head: &str, base: &str) {
        self.state().prs.push(Pr {
            number,
            head: head.into(),
            head_owner: head_owner.into(),
            base: base.into(),
            title: "earlier title".into(),
            body: "earlier body".into(),
            labels: vec![],
            reviewers: vec![],
            unlisted_for: 0,
        });
    }

    /// Adds an open pull request head → base that the next `list_calls` list calls do not
    /// show yet (opened a moment ago by another run).
    pub fn seed_unlisted_pr(&self, number: u64, head: &str, base: &str, list_calls: u32) {
        self.seed_pr(number, head, base);
        self.state().prs.last_mut().unwrap().unlisted_for = list_calls;
    }

    /// Operation ids of the requests received, in order.
    pub fn ops(&self) -> Vec<String> {
        self.state().received.iter().map(|r| r.op.clone()).collect()
    }

    /// Panics if any request or answer did not match GitHub's description.
    pub fn assert_conforming(&self) {
        let v = &self.state().violations;
        assert!(
            v.is_empty(),
            "requests not conforming to GitHub's OpenAPI description:\n{}",
            v.join("\n")
        );
    }

    /// The API description the double checks against.
    pub fn api(&self) -> &OpenApi {
        &self.api
    }
}

struct Ctx {
    owner: String,
    repo: String,
    token: String,
    state: Arc<Mutex<State>>,
    api: Arc<OpenApi>,
}

type Answer = (u16, Vec<(String, String)>, Value, Option<String>);

impl Ctx {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path().to_owned();
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
            .collect();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let mut violations = Vec::new();
        let body: Option<Value> = if bytes.is_empty() {
            None
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => Some(v),
                Err(e) => {
                    violations.push(format!("{} {path}: body is not JSON: {e}", parts.method));
                    None
                }
            }
        };
        if header("user-agent").is_none() {
            violations.push(format!(
                "{} {path}: no User-Agent (GitHub refuses such requests)",
                parts.method
            ));
        }
        if parts.method == Method::POST && (path == "/graphql" || path == "/api/graphql") {
            let (status, answer) = if header("authorization")
                != Some(&format!("Bearer {}", self.token))
            {
                (
                    401,
                    json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/graphql", "status": "401"}),
                )
            } else {
                (
                    200,
                    graphql::answer(&mut self.state.lock().unwrap().git, body.as_ref()),
                )
            };
            let mut st = self.state.lock().unwrap();
            st.violations.extend(violations);
            st.received.push(Received {
                op: "graphql".into(),
                method: parts.method.clone(),
                uri: parts.uri.to_string(),
                headers,
                body,
                status,
            });
            return Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", "application/json; charset=utf-8")
                .body(Full::new(Bytes::from(answer.to_string())))
                .unwrap();
        }
        let found = self.api.find(&parts.method, &path);
        let (op_id, answer) = match found {
            None => {
                violations.push(format!(
                    "{} {path}: no such operation in GitHub's description",
                    parts.method
                ));
                ("?".to_owned(), not_found())
            }
            Some((op, params)) => {
                for p in self.api.check_request(
                    op,
                    &params,
                    &query,
                    header("content-type"),
                    body.as_ref(),
                ) {
                    violations.push(format!("{} {} ({}): {p}", parts.method, parts.uri, op.id));
                }
                let answer = if header("authorization") != Some(&format!("Bearer {}", self.token)) {
                    (
                        401,
                        vec![],
                        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
                        Some("/components/schemas/basic-error".to_owned()),
                    )
                } else if params.get("owner") != Some(&self.owner)
                    || params.get("repo") != Some(&self.repo)
                {
                    not_found()
                } else if let Some(f) = self.take_fault(&op.id) {
                    let schema = match f.status {
                        200..=299 => self.api.response_pointer(&op.id, f.status),
                        422 => "/components/schemas/validation-error".to_owned(),
                        _ => "/components/schemas/basic-error".to_owned(),
                    };
                    (f.status, f.headers, f.body, Some(schema))
                } else {
                    self.answer(&op.id, &params, &query, body.as_ref())
                };
                (op.id.clone(), answer)
            }
        };
        let (status, extra_headers, answer_body, schema) = answer;
        if let Some(ptr) = schema {
            for e in self.api.check(&ptr, &answer_body) {
                violations.push(format!(
                    "answer {status} to {path} does not match {ptr}: {e}"
                ));
            }
        }
        {
            let mut st = self.state.lock().unwrap();
            st.violations.extend(violations);
            st.received.push(Received {
                op: op_id,
                method: parts.method.clone(),
                uri: parts.uri.to_string(),
                headers,
                body,
                status,
            });
        }
        let mut resp = Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", "application/json; charset=utf-8");
        for (k, v) in extra_headers {
            resp = resp.header(k, v);
        }
        resp.body(Full::new(Bytes::from(answer_body.to_string())))
            .unwrap()
    }

    fn take_fault(&self, op: &str) -> Option<Fault> {
        self.state.lock().unwrap().faults.get_mut(op)?.pop_front()
    }

    fn answer(
        &self,
        op: &str,
        params: &HashMap<String, String>,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Answer {
        let mut guard = self.state.lock().unwrap();
        let st = &mut *guard;
        let q = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let number: Option<u64> = params
            .get("pull_number")
            .or(params.get("issue_number"))
            .and_then(|n| n.parse().ok());
        let text = |field: &str| body.and_then(|b| b[field].as_str()).map(str::to_owned);
        match op {
            "pulls/list" => {
                // The description: `head` filters "in the format of user:ref-name"; GitHub
                // ignores one without the owner part.
                let head = q("head").filter(|h| h.contains(':') && !st.ignore_list_filters);
                let base = q("base").filter(|_| !st.ignore_list_filters);
                let mut items = Vec::new();
                for pr in st.prs.iter_mut() {
                    if pr.unlisted_for > 0 {
                        pr.unlisted_for -= 1;
                        continue;
                    }
                    let head_ok = head
                        .as_ref()
                        .is_none_or(|h| *h == format!("{}:{}", pr.head_owner, pr.head));
                    if head_ok && base.as_ref().is_none_or(|b| *b == pr.base) {
                        items.push(pr.number);
                    }
                }
                let items: Vec<Value> = st
                    .prs
                    .iter()
                    .filter(|pr| items.contains(&pr.number))
                    .map(|pr| self.pr_json("pull-request-simple-items", pr, &st.git))
                    .collect();
                ok(
                    200,
                    Value::Array(items),
                    &self.api.response_pointer(op, 200),
                )
            }
            "pulls/create" => {
                let (head, base) = (
                    text("head").unwrap_or_default(),
                    text("base").unwrap_or_default(),
                );
                if st.no_commits {
                    return validation_failed(format!("No commits between {base} and {head}"));
                }
                // `head` is `branch` for this repository or `owner:branch` for a fork.
                let (head_owner, head) = match head.split_once(':') {
                    Some((o, h)) => (o.to_owned(), h.to_owned()),
                    None => (self.owner.clone(), head.clone()),
                };
                if st
                    .prs
                    .iter()
                    .any(|p| p.head == head && p.head_owner == head_owner && p.base == base)
                {
                    return validation_failed(format!(
                        "A pull request already exists for {}:{head}.",
                        self.owner
                    ));
                }
                let number = st.prs.iter().map(|p| p.number).max().unwrap_or(0) + 1;
                let pr = Pr {
                    number,
                    head,
                    head_owner,
                    base,
                    title: text("title").unwrap_or_default(),
                    body: text("body").unwrap_or_default(),
                    labels: vec![],
                    reviewers: vec![],
                    unlisted_for: 0,
                };
                let json = self.pr_json("pull-request", &pr, &st.git);
                st.prs.push(pr);
                ok(201, json, &self.api.response_pointer(op, 201))
            }
            "pulls/update" => {
                let Some(pr) = st.prs.iter_mut().find(|p| Some(p.number) == number) else {
                    return not_found();
                };
                if let Some(t) = text("title") {
                    pr.title = t;
                }
                if let Some(b) = text("body") {
                    pr.body = b;
                }
                let json = self.pr_json("pull-request", pr, &st.git);
                ok(200, json, &self.api.response_pointer(op, 200))
            }
            "issues/add-labels" => {
                let Some(pr) = st.prs.iter_mut().find(|p| Some(p.number) == number) else {
                    return not_found();
                };
                for l in body
                    .and_then(|b| b["labels"].as_array())
                    .into_iter()
                    .flatten()
                {
                    let name = l.as_str().unwrap_or_default().to_owned();
                    if !pr.labels.contains(&name) {
                        pr.labels.push(name);
                    }
                }
                let template = self.api.example("label-items")[0].clone();
                let items: Vec<Value> = pr
                    .labels
                    .iter()
                    .map(|name| {
                        let mut l = template.clone();
                        l["name"] = json!(name);
                        l
                    })
                    .collect();
                ok(
                    200,
                    Value::Array(items),
                    &self.api.response_pointer(op, 200),
                )
            }
            "pulls/request-reviewers" => {
                let Some(pr) = st.prs.iter_mut().find(|p| Some(p.number) == number) else {
                    return not_found();
                };
                for r in body
                    .and_then(|b| b["reviewers"].as_array())
                    .into_iter()
                    .flatten()
                {
                    pr.reviewers.push(r.as_str().unwrap_or_default().to_owned());
                }
                let json = self.pr_json("pull-request-review-request", pr, &st.git);
                ok(201, json, &self.api.response_pointer(op, 201))
            }
            "repos/create-commit-status" => {
                let sha = params.get("sha").cloned().unwrap_or_default();
                st.statuses
                    .push((sha, body.cloned().unwrap_or(Value::Null)));
                let mut json = self.api.example("status");
                if let Some(b) = body {
                    json["state"] = b["state"].clone();
                    json["description"] = b["description"].clone();
                    json["context"] = b["context"].clone();
                    json["target_url"] = b["target_url"].clone();
                }
                ok(201, json, &self.api.response_pointer(op, 201))
            }
            _ => not_found(),
        }
    }

    /// A pull-request object from the description's example, with this PR's fields.
    /// The head's sha is the head branch's tip when the git model holds that branch, else
    /// [`HEAD_SHA`].
    fn pr_json(&self, example: &str, pr: &Pr, git: &graphql::Git) -> Value {
        let mut v = self.api.example(example);
        if let Value::Array(items) = v {
            v = items.into_iter().next().unwrap();
        }
        let html = format!(
            "https://github.com/{}/{}/pull/{}",
            self.owner, self.repo, pr.number
        );
        v["number"] = json!(pr.number);
        v["html_url"] = json!(html);
        v["title"] = json!(pr.title);
        v["body"] = json!(pr.body);
        v["state"] = json!("open");
        v["head"]["ref"] = json!(pr.head);
        v["head"]["label"] = json!(format!("{}:{}", pr.head_owner, pr.head));
        let head_sha = git
            .tip(&format!("{}/{}", pr.head_owner, self.repo), &pr.head)
            .unwrap_or_else(|| HEAD_SHA.to_owned());
        v["head"]["sha"] = json!(head_sha);
        v["head"]["user"]["login"] = json!(pr.head_owner);
        v["head"]["repo"]["owner"]["login"] = json!(pr.head_owner);
        v["head"]["repo"]["name"] = json!(self.repo);
        v["head"]["repo"]["full_name"] = json!(format!("{}/{}", pr.head_owner, self.repo));
        v["base"]["ref"] = json!(pr.base);
        v["base"]["label"] = json!(format!("{}:{}", self.owner, pr.base));
        v["base"]["repo"]["owner"]["login"] = json!(self.owner);
        // GitHub's example lists a team without the `type` its own schema requires; the
        // double's PRs have no team reviewers.
        v["requested_teams"] = json!([]);
        v
    }
}

fn ok(status: u16, body: Value, schema: &str) -> Answer {
    (status, vec![], body, Some(schema.to_owned()))
}

fn not_found() -> Answer {
    (
        404,
        vec![],
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
        Some("/components/schemas/basic-error".to_owned()),
    )
}

fn validation_failed(message: String) -> Answer {
    (
        422,
        vec![],
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "code": "custom", "message": message}],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            "status": "422"
        }),
        Some("/components/schemas/validation-error".to_owned()),
    )
}
