//! The double's GraphQL endpoint (`POST /graphql`, `POST /api/graphql`) and the git object
//! model behind it.
//!
//! Every document is validated against GitHub's published schema (the trimmed fixture
//! `github-schema.graphql`), its variables are coerced against the operation's variable types,
//! and the operations slogate's gitops promotion sends (a branch read, `createRef`,
//! `createCommitOnBranch`) run against blobs, trees, commits and refs whose ids are real git
//! SHA-1 ids.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use apollo_compiler::Schema;
use apollo_compiler::executable::ExecutableDocument;
use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use base64::Engine as _;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::GitHubDouble;

/// The author and committer of every commit the double writes.
pub const GIT_IDENTITY: &str = "slogate-double <double@example.invalid> 1700000000 +0000";

/// Separates a GitHub error `type` from its message inside a field error.
const TYPE_MARK: char = '\u{1f}';

fn schema() -> &'static Valid<Schema> {
    static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::parse_and_validate(
            include_str!("../fixtures/github-schema.graphql"),
            "github-schema.graphql",
        )
        .expect("the GraphQL schema fixture is valid")
    })
}

/// A git object.
#[derive(Debug, Clone)]
pub enum Object {
    /// File content.
    Blob(Vec<u8>),
    /// Entries: (mode, name, oid), in git's order.
    Tree(Vec<(String, String, String)>),
    /// A commit.
    Commit(CommitObject),
}

/// A commit object.
#[derive(Debug, Clone)]
pub struct CommitObject {
    /// Tree oid.
    pub tree: String,
    /// Parent oids.
    pub parents: Vec<String>,
    /// Full message.
    pub message: String,
}

/// One commit of a branch's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCommit {
    /// Commit oid.
    pub oid: String,
    /// First line of the message.
    pub headline: String,
    /// Parent oids.
    pub parents: Vec<String>,
    /// Paths added, changed or removed against the first parent (all paths for a root commit).
    pub paths: Vec<String>,
}

/// One GraphQL request the double received.
#[derive(Debug, Clone)]
pub struct GraphqlOp {
    /// `operationName`, or the document's operation name.
    pub name: Option<String>,
    /// The `variables` sent (`null` when none).
    pub variables: Value,
    /// The whole answer.
    pub answer: Value,
}

/// Files to commit: (path, content).
type Files = Vec<(String, Vec<u8>)>;

/// The git model: objects and, per `owner/repo`, refs.
#[derive(Debug, Default)]
pub struct Git {
    objects: HashMap<String, Object>,
    /// `owner/repo` → full ref name → oid.
    repos: BTreeMap<String, BTreeMap<String, String>>,
    /// `owner/repo`, branch → files another writer commits just before the next
    /// `createCommitOnBranch` on that branch.
    moves: HashMap<(String, String), Files>,
    /// GraphQL requests received.
    pub ops: Vec<GraphqlOp>,
    /// Documents or variables the schema refused: per request, the errors' messages joined
    /// with `; `.
    pub refused: Vec<String>,
    /// `createCommitOnBranch` executions.
    pub commit_calls: u32,
    /// `createCommitOnBranch` executions that moved the branch.
    pub commit_successes: u32,
}

/// The hex SHA-1 git gives an object of `kind` with `body`.
pub fn object_id(kind: &str, body: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("{kind} {}\0", body.len()).as_bytes());
    h.update(body);
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn raw(oid: &str) -> Vec<u8> {
    (0..oid.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&oid[i..i + 2], 16).unwrap())
        .collect()
}

fn is_oid(text: &str) -> bool {
    text.len() == 40
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The opaque node id of a repository, stable per `owner/repo`.
pub fn repository_id(full_name: &str) -> String {
    format!(
        "R_kgDO{}",
        &object_id("repository", full_name.as_bytes())[..10].to_uppercase()
    )
}

fn branch_ref(branch: &str) -> String {
    if branch.starts_with("refs/") {
        branch.to_owned()
    } else {
        format!("refs/heads/{branch}")
    }
}

impl Git {
    fn put(&mut self, object: Object) -> String {
        let (kind, body) = match &object {
            Object::Blob(b) => ("blob", b.clone()),
            Object::Tree(entries) => {
                let mut body = Vec::new();
                for (mode, name, oid) in entries {
                    body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
                    body.extend_from_slice(&raw(oid));
                }
                ("tree", body)
            }
            Object::Commit(c) => {
                let mut text = format!("tree {}\n", c.tree);
                for p in &c.parents {
                    text.push_str(&format!("parent {p}\n"));
                }
                text.push_str(&format!(
                    "author {GIT_IDENTITY}\ncommitter {GIT_IDENTITY}\n\n{}",
                    c.message
                ));
                ("commit", text.into_bytes())
            }
        };
        let oid = object_id(kind, &body);
        self.objects.insert(oid.clone(), object);
        oid
    }

    /// Writes the tree of `files` (path → blob oid), nested directories included.
    fn put_tree(&mut self, files: &BTreeMap<String, String>) -> String {
        let mut blobs: Vec<(String, String)> = Vec::new();
        let mut dirs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (path, oid) in files {
            match path.split_once('/') {
                Some((dir, rest)) => {
                    dirs.entry(dir.to_owned())
                        .or_default()
                        .insert(rest.to_owned(), oid.clone());
                }
                None => blobs.push((path.clone(), oid.clone())),
            }
        }
        let mut entries: Vec<(String, String, String)> = blobs
            .into_iter()
            .map(|(name, oid)| ("100644".to_owned(), name, oid))
            .collect();
        for (name, sub) in dirs {
            let oid = self.put_tree(&sub);
            entries.push(("40000".to_owned(), name, oid));
        }
        // Git sorts a directory as if its name ended in `/`.
        entries.sort_by(|a, b| {
            let key = |e: &(String, String, String)| {
                let mut k = e.1.as_bytes().to_vec();
                if e.0 == "40000" {
                    k.push(b'/');
                }
                k
            };
            key(a).cmp(&key(b))
        });
        self.put(Object::Tree(entries))
    }

    fn commit_object(&self, oid: &str) -> Option<&CommitObject> {
        match self.objects.get(oid)? {
            Object::Commit(c) => Some(c),
            _ => None,
        }
    }

    /// Every file of a commit: path → blob oid.
    fn files(&self, commit: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(c) = self.commit_object(commit) {
            self.walk(&c.tree.clone(), "", &mut out);
        }
        out
    }

    fn walk(&self, tree: &str, prefix: &str, out: &mut BTreeMap<String, String>) {
        if let Some(Object::Tree(entries)) = self.objects.get(tree) {
            for (mode, name, oid) in entries {
                let path = format!("{prefix}{name}");
                if mode == "40000" {
                    self.walk(oid, &format!("{path}/"), out);
                } else {
                    out.insert(path, oid.clone());
                }
            }
        }
    }

    /// The oid of the tree entry at `path` in a commit (a blob or a subtree).
    fn entry(&self, commit: &str, path: &str) -> Option<String> {
        let mut oid = self.commit_object(commit)?.tree.clone();
        for part in path.trim_end_matches('/').split('/') {
            let Some(Object::Tree(entries)) = self.objects.get(&oid) else {
                return None;
            };
            oid = entries.iter().find(|e| e.1 == part)?.2.clone();
        }
        Some(oid)
    }

    fn refs(&mut self, full_name: &str) -> &mut BTreeMap<String, String> {
        self.repos.entry(full_name.to_owned()).or_default()
    }

    /// The tip of a branch.
    pub fn tip(&self, full_name: &str, branch: &str) -> Option<String> {
        self.repos.get(full_name)?.get(&branch_ref(branch)).cloned()
    }

    /// Writes a commit of `parent`'s files with `additions` and `deletions` applied; does
    /// not move any ref.
    fn write_commit(
        &mut self,
        parent: Option<&str>,
        additions: &[(String, Vec<u8>)],
        deletions: &[String],
        message: String,
    ) -> Result<String, String> {
        let mut files = parent.map(|p| self.files(p)).unwrap_or_default();
        for path in deletions {
            if files.remove(path).is_none() {
                return Err(format!(
                    "A path was requested for deletion which does not exist as of commit oid `{}`",
                    parent.unwrap_or_default()
                ));
            }
        }
        for (path, content) in additions {
            if path.is_empty() || path.starts_with('/') || path.split('/').any(str::is_empty) {
                return Err(format!("The path `{path}` is not a valid file path"));
            }
            let oid = self.put(Object::Blob(content.clone()));
            files.insert(path.clone(), oid);
        }
        let tree = self.put_tree(&files);
        Ok(self.put(Object::Commit(CommitObject {
            tree,
            parents: parent.map(str::to_owned).into_iter().collect(),
            message,
        })))
    }

    /// Commits `files` onto `branch` (created when missing) and moves it.
    fn push(
        &mut self,
        full_name: &str,
        branch: &str,
        headline: &str,
        files: &[(String, Vec<u8>)],
    ) -> String {
        let parent = self.tip(full_name, branch);
        let oid = self
            .write_commit(parent.as_deref(), files, &[], format!("{headline}\n"))
            .expect("valid paths");
        self.refs(full_name).insert(branch_ref(branch), oid.clone());
        oid
    }

    fn log(&self, full_name: &str, branch: &str) -> Vec<LoggedCommit> {
        let mut out = Vec::new();
        let mut next = self.tip(full_name, branch);
        while let Some(oid) = next {
            let Some(c) = self.commit_object(&oid) else {
                break;
            };
            let now = self.files(&oid);
            let before = c.parents.first().map(|p| self.files(p)).unwrap_or_default();
            let mut paths: Vec<String> = now
                .iter()
                .filter(|(p, o)| before.get(*p) != Some(o))
                .map(|(p, _)| p.clone())
                .chain(before.keys().filter(|p| !now.contains_key(*p)).cloned())
                .collect();
            paths.sort();
            out.push(LoggedCommit {
                oid: oid.clone(),
                headline: c.message.lines().next().unwrap_or_default().to_owned(),
                parents: c.parents.clone(),
                paths,
            });
            next = c.parents.first().cloned();
        }
        out
    }
}

fn files_owned(files: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
        .collect()
}

/// The objects the resolvers hand out.
enum Obj<'g> {
    Query(&'g RefCell<Git>),
    Mutation(&'g RefCell<Git>),
    Repository(&'g RefCell<Git>, String),
    Ref(&'g RefCell<Git>, String, String, String),
    Commit(&'g RefCell<Git>, String, String),
    TreeEntry(String),
    CreateRefPayload(&'g RefCell<Git>, String, String, String),
    CreateCommitPayload(&'g RefCell<Git>, String, String),
}

fn typed(kind: &str, message: String) -> FieldError {
    FieldError {
        message: format!("{kind}{TYPE_MARK}{message}"),
    }
}

fn args(info: &ResolveInfo<'_>) -> Value {
    serde_json::to_value(info.arguments()).unwrap_or(Value::Null)
}

impl ObjectValue for Obj<'_> {
    fn type_name(&self) -> &str {
        match self {
            Obj::Query(_) => "Query",
            Obj::Mutation(_) => "Mutation",
            Obj::Repository(..) => "Repository",
            Obj::Ref(..) => "Ref",
            Obj::Commit(..) => "Commit",
            Obj::TreeEntry(_) => "TreeEntry",
            Obj::CreateRefPayload(..) => "CreateRefPayload",
            Obj::CreateCommitPayload(..) => "CreateCommitOnBranchPayload",
        }
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let a = args(info);
        match (self, info.field_name()) {
            (Obj::Query(g), "repository") => {
                let full = format!(
                    "{}/{}",
                    a["owner"].as_str().unwrap_or_default(),
                    a["name"].as_str().unwrap_or_default()
                );
                if !g.borrow().repos.contains_key(&full) {
                    return Err(typed(
                        "NOT_FOUND",
                        format!("Could not resolve to a Repository with the name '{full}'."),
                    ));
                }
                Ok(ResolvedValue::object(Obj::Repository(g, full)))
            }
            (Obj::Repository(_, full), "id") => Ok(ResolvedValue::leaf(repository_id(full))),
            (Obj::Repository(g, full), "ref") => {
                let name = a["qualifiedName"].as_str().unwrap_or_default();
                let git = g.borrow();
                let refs = git.repos.get(full);
                let found = [
                    name.to_owned(),
                    format!("refs/{name}"),
                    format!("refs/heads/{name}"),
                    format!("refs/tags/{name}"),
                ]
                .into_iter()
                .find_map(|n| refs?.get(&n).map(|oid| (n, oid.clone())));
                Ok(ResolvedValue::nullable_object(
                    found.map(|(n, oid)| Obj::Ref(g, full.clone(), n, oid)),
                ))
            }
            (Obj::Ref(_, _, name, _), "name") => Ok(ResolvedValue::leaf(
                name.trim_start_matches("refs/heads/")
                    .trim_start_matches("refs/tags/")
                    .to_owned(),
            )),
            (Obj::Ref(g, full, _, oid), "target") => Ok(ResolvedValue::object(Obj::Commit(
                g,
                full.clone(),
                oid.clone(),
            ))),
            (Obj::Commit(_, _, oid), "oid") => Ok(ResolvedValue::leaf(oid.clone())),
            (Obj::Commit(_, full, oid), "url") => Ok(ResolvedValue::leaf(format!(
                "https://github.com/{full}/commit/{oid}"
            ))),
            (Obj::Commit(g, _, oid), "file") => {
                let path = a["path"].as_str().unwrap_or_default();
                let entry = g.borrow().entry(oid, path);
                Ok(ResolvedValue::nullable_object(entry.map(Obj::TreeEntry)))
            }
            (Obj::TreeEntry(oid), "oid") => Ok(ResolvedValue::leaf(oid.clone())),
            (Obj::Mutation(g), "createRef") => create_ref(g, &a["input"]),
            (Obj::Mutation(g), "createCommitOnBranch") => create_commit(g, &a["input"]),
            (Obj::CreateRefPayload(g, full, name, oid), "ref") => Ok(ResolvedValue::object(
                Obj::Ref(g, full.clone(), name.clone(), oid.clone()),
            )),
            (Obj::CreateCommitPayload(g, full, oid), "commit") => Ok(ResolvedValue::object(
                Obj::Commit(g, full.clone(), oid.clone()),
            )),
            (Obj::CreateRefPayload(..) | Obj::CreateCommitPayload(..), "clientMutationId") => {
                Ok(ResolvedValue::null())
            }
            _ => Err(self.unknown_field_error(info)),
        }
    }
}

fn create_ref<'a>(g: &'a RefCell<Git>, input: &Value) -> Result<ResolvedValue<'a>, FieldError> {
    let id = input["repositoryId"].as_str().unwrap_or_default();
    let name = input["name"].as_str().unwrap_or_default().to_owned();
    let oid = input["oid"].as_str().unwrap_or_default().to_owned();
    let mut git = g.borrow_mut();
    let Some(full) = git.repos.keys().find(|k| repository_id(k) == id).cloned() else {
        return Err(typed(
            "NOT_FOUND",
            format!("Could not resolve to a node with the global id of '{id}'"),
        ));
    };
    if !name.starts_with("refs/") || name.split('/').count() < 3 {
        return Err(typed(
            "UNPROCESSABLE",
            format!("Reference name must be fully qualified (start with refs/): {name}"),
        ));
    }
    if git.commit_object(&oid).is_none() {
        return Err(typed(
            "UNPROCESSABLE",
            format!("Object does not exist: {oid}"),
        ));
    }
    if git.refs(&full).contains_key(&name) {
        return Err(typed(
            "UNPROCESSABLE",
            format!("A ref named \"{name}\" already exists in the repository."),
        ));
    }
    git.refs(&full).insert(name.clone(), oid.clone());
    Ok(ResolvedValue::object(Obj::CreateRefPayload(
        g, full, name, oid,
    )))
}

fn create_commit<'a>(g: &'a RefCell<Git>, input: &Value) -> Result<ResolvedValue<'a>, FieldError> {
    let mut git = g.borrow_mut();
    git.commit_calls += 1;
    let branch = &input["branch"];
    let full = branch["repositoryNameWithOwner"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let Some(name) = branch["branchName"].as_str() else {
        return Err(typed(
            "UNPROCESSABLE",
            "The branch must be given by id or by repositoryNameWithOwner and branchName".into(),
        ));
    };
    let name = name.trim_start_matches("refs/heads/").to_owned();
    let Some(tip) = git.tip(&full, &name) else {
        return Err(typed(
            "NOT_FOUND",
            format!("Could not resolve to a Ref named \"refs/heads/{name}\" in {full}."),
        ));
    };
    // Another writer's push, just before this commit runs.
    let tip = match git.moves.remove(&(full.clone(), name.clone())) {
        Some(files) => git.push(&full, &name, "a concurrent push", &files),
        None => tip,
    };
    let expected = input["expectedHeadOid"].as_str().unwrap_or_default();
    if !is_oid(expected) {
        return Err(typed(
            "UNPROCESSABLE",
            format!("expectedHeadOid is not a git object id: {expected}"),
        ));
    }
    if expected != tip {
        return Err(typed(
            "STALE_DATA",
            format!(
                "Expected branch to point to \"{expected}\" but it did not.  Pull and try again."
            ),
        ));
    }
    let changes = &input["fileChanges"];
    let mut additions = Vec::new();
    for add in changes["additions"].as_array().into_iter().flatten() {
        let path = add["path"].as_str().unwrap_or_default().to_owned();
        let text = add["contents"].as_str().unwrap_or_default();
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) else {
            return Err(typed(
                "UNPROCESSABLE",
                format!("The contents of `{path}` are not valid base64"),
            ));
        };
        additions.push((path, bytes));
    }
    let deletions: Vec<String> = changes["deletions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["path"].as_str().unwrap_or_default().to_owned())
        .collect();
    let headline = input["message"]["headline"].as_str().unwrap_or_default();
    let message = match input["message"]["body"].as_str() {
        Some(body) if !body.is_empty() => format!("{headline}\n\n{body}\n"),
        _ => format!("{headline}\n"),
    };
    let oid = git
        .write_commit(Some(&tip), &additions, &deletions, message)
        .map_err(|m| typed("UNPROCESSABLE", m))?;
    git.refs(&full).insert(branch_ref(&name), oid.clone());
    git.commit_successes += 1;
    Ok(ResolvedValue::object(Obj::CreateCommitPayload(
        g, full, oid,
    )))
}

/// Answers one GraphQL request body; the HTTP status is always 200.
pub fn answer(git: &mut Git, body: Option<&Value>) -> Value {
    let body = body.cloned().unwrap_or(Value::Null);
    let query = body["query"].as_str().unwrap_or_default();
    let op_name = body["operationName"].as_str().map(str::to_owned);
    let variables = body["variables"].clone();
    let refuse = |git: &mut Git, errors: Vec<Value>| {
        let messages: Vec<&str> = errors
            .iter()
            .map(|e| e["message"].as_str().unwrap_or_default())
            .collect();
        git.refused.push(messages.join("; "));
        json!({ "errors": errors })
    };
    let answer = match ExecutableDocument::parse_and_validate(schema(), query, "query.graphql") {
        Err(with) => {
            let errors = with
                .errors
                .iter()
                .map(|d| serde_json::to_value(d.to_json()).unwrap())
                .collect();
            refuse(git, errors)
        }
        Ok(doc) => {
            let vars: Result<JsonMap, _> = match &variables {
                Value::Null => Ok(JsonMap::new()),
                v => serde_json::from_value(v.clone()),
            };
            let Ok(vars) = vars else {
                let answer = refuse(git, vec![json!({"message": "Variables are invalid JSON."})]);
                git.ops.push(GraphqlOp {
                    name: op_name,
                    variables,
                    answer: answer.clone(),
                });
                return answer;
            };
            let name = op_name.clone();
            let prepared = Execution::new(schema(), &doc)
                .operation_name(name.as_deref())
                .map(|e| {
                    (
                        e.raw_variable_values(&vars),
                        doc.operations.get(name.as_deref()),
                    )
                });
            match prepared {
                Err(e) => refuse(
                    git,
                    vec![serde_json::to_value(e.to_graphql_error(&doc.sources)).unwrap()],
                ),
                Ok((execution, operation)) => {
                    let operation = operation.expect("found above");
                    if let Err(e) =
                        apollo_compiler::request::coerce_variable_values(schema(), operation, &vars)
                    {
                        refuse(
                            git,
                            vec![serde_json::to_value(e.to_graphql_error(&doc.sources)).unwrap()],
                        )
                    } else {
                        let cell = RefCell::new(std::mem::take(git));
                        let root = match operation.operation_type {
                            apollo_compiler::executable::OperationType::Mutation => {
                                Obj::Mutation(&cell)
                            }
                            _ => Obj::Query(&cell),
                        };
                        let result = execution.execute_sync(&root);
                        drop(root);
                        *git = cell.into_inner();
                        match result {
                            Err(e) => refuse(
                                git,
                                vec![
                                    serde_json::to_value(e.to_graphql_error(&doc.sources)).unwrap(),
                                ],
                            ),
                            Ok(response) => github_errors(serde_json::to_value(response).unwrap()),
                        }
                    }
                }
            }
        }
    };
    git.ops.push(GraphqlOp {
        name: op_name.or_else(|| operation_name_of(query)),
        variables,
        answer: answer.clone(),
    });
    answer
}

/// Moves the error `type` marked in field errors' messages to GitHub's `type` member.
fn github_errors(mut response: Value) -> Value {
    if let Some(errors) = response.get_mut("errors").and_then(Value::as_array_mut) {
        for e in errors {
            let message = e["message"].as_str().unwrap_or_default().to_owned();
            if let Some((kind, text)) = message.split_once(TYPE_MARK) {
                e["type"] = json!(kind.trim_start_matches("resolver error: "));
                e["message"] = json!(text);
            }
        }
    }
    response
}

fn operation_name_of(query: &str) -> Option<String> {
    let doc = apollo_compiler::ast::Document::parse(query, "query.graphql").ok()?;
    doc.definitions.iter().find_map(|d| match d {
        apollo_compiler::ast::Definition::OperationDefinition(op) => {
            op.name.as_ref().map(|n| n.to_string())
        }
        _ => None,
    })
}

impl GitHubDouble {
    /// Seeds `owner/repo` with `branch` pointing at a new root commit holding exactly
    /// `files` (path, content); returns the commit oid. The repository exists afterwards.
    pub fn seed_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
    ) -> String {
        let full = format!("{owner}/{repo}");
        let mut st = self.state();
        let git = &mut st.git;
        let oid = git
            .write_commit(None, &files_owned(files), &[], "seed\n".into())
            .expect("valid paths");
        git.refs(&full).insert(branch_ref(branch), oid.clone());
        oid
    }

    /// Creates (or moves) `branch` of `owner/repo` at commit `oid`.
    pub fn create_branch(&self, owner: &str, repo: &str, branch: &str, oid: &str) {
        let full = format!("{owner}/{repo}");
        self.state()
            .git
            .refs(&full)
            .insert(branch_ref(branch), oid.to_owned());
    }

    /// Commits `files` onto `branch` directly, as a push from CI would, with message
    /// `headline`; returns the new tip.
    pub fn commit_files(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        headline: &str,
        files: &[(&str, &str)],
    ) -> String {
        let full = format!("{owner}/{repo}");
        self.state()
            .git
            .push(&full, branch, headline, &files_owned(files))
    }

    /// Just before the next `createCommitOnBranch` on `branch` runs, another writer commits
    /// `files` onto it (once), so that commit's `expectedHeadOid` is stale.
    pub fn move_branch_before_next_commit(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
    ) {
        let key = (
            format!("{owner}/{repo}"),
            branch.trim_start_matches("refs/heads/").to_owned(),
        );
        self.state().git.moves.insert(key, files_owned(files));
    }

    /// The tip of `branch`, if it exists.
    pub fn branch_tip(&self, owner: &str, repo: &str, branch: &str) -> Option<String> {
        self.state().git.tip(&format!("{owner}/{repo}"), branch)
    }

    /// The content of `path` at the tip of `branch` (lossy UTF-8), `None` when absent.
    pub fn file_at(&self, owner: &str, repo: &str, branch: &str, path: &str) -> Option<String> {
        let st = self.state();
        let tip = st.git.tip(&format!("{owner}/{repo}"), branch)?;
        let oid = st.git.files(&tip).get(path)?.clone();
        match st.git.objects.get(&oid)? {
            Object::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// Every file at the tip of `branch`: path → content (lossy UTF-8).
    pub fn files_at(&self, owner: &str, repo: &str, branch: &str) -> BTreeMap<String, String> {
        let st = self.state();
        let Some(tip) = st.git.tip(&format!("{owner}/{repo}"), branch) else {
            return BTreeMap::new();
        };
        st.git
            .files(&tip)
            .into_iter()
            .filter_map(|(p, oid)| match st.git.objects.get(&oid) {
                Some(Object::Blob(b)) => Some((p, String::from_utf8_lossy(b).into_owned())),
                _ => None,
            })
            .collect()
    }

    /// The commits of `branch`, tip first, following first parents.
    pub fn branch_log(&self, owner: &str, repo: &str, branch: &str) -> Vec<LoggedCommit> {
        self.state().git.log(&format!("{owner}/{repo}"), branch)
    }

    /// The tree oid of a commit.
    pub fn tree_of(&self, commit: &str) -> Option<String> {
        self.state()
            .git
            .commit_object(commit)
            .map(|c| c.tree.clone())
    }

    /// `createCommitOnBranch` executions (valid documents only).
    pub fn commit_calls(&self) -> u32 {
        self.state().git.commit_calls
    }

    /// `createCommitOnBranch` executions that moved the branch.
    pub fn commit_successes(&self) -> u32 {
        self.state().git.commit_successes
    }

    /// Every GraphQL request received, in order.
    pub fn graphql_ops(&self) -> Vec<GraphqlOp> {
        self.state().git.ops.clone()
    }

    /// The messages of every error for a document or variables the schema refused.
    pub fn graphql_refused(&self) -> Vec<String> {
        self.state().git.refused.clone()
    }

    /// The node id the double gives `owner/repo`.
    pub fn repository_id(&self, owner: &str, repo: &str) -> String {
        repository_id(&format!("{owner}/{repo}"))
    }
}
