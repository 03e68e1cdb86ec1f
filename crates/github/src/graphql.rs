//! GitHub's GraphQL API, as the gitops promotion and the `headSha` check use it: one query
//! reading a branch's head, the blob ids at some paths and the repository id; `createRef`;
//! and `createCommitOnBranch` with `expectedHeadOid`. Answers that carry GraphQL errors are
//! [`GitopsError::Graphql`], with GitHub's error types (`STALE_DATA`) kept.

use std::fmt::Write as _;

use base64::Engine as _;
use http::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::client::{Client, GitHubError};
use crate::retry::RetryPolicy;
use crate::token::Token;

/// Why a GraphQL exchange or a commit did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// The HTTP exchange failed (status, retries, rate limits).
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    /// GitHub answered with GraphQL errors.
    #[error("GraphQL {operation}: {messages}")]
    Graphql {
        /// The operation's name (`SlogateCommit`).
        operation: &'static str,
        /// Every error's message, joined.
        messages: String,
        /// The errors' `type`s (`STALE_DATA`, `NOT_FOUND`), where given.
        types: Vec<String>,
    },
    /// The answer carried neither data nor errors.
    #[error("GraphQL {operation}: GitHub's answer has no data")]
    NoData {
        /// The operation's name.
        operation: &'static str,
    },
    /// The repository does not exist, or the token cannot see it.
    #[error("repository {repository} does not exist, or the token cannot see it")]
    NoRepository {
        /// `owner/repo`.
        repository: String,
    },
    /// The branch does not exist and there is no base to create it from.
    #[error(
        "branch {branch} does not exist in {repository}, and there is no base to create it from"
    )]
    NoBranch {
        /// `owner/repo`.
        repository: String,
        /// The branch.
        branch: String,
    },
    /// The base branch to create the branch from does not exist.
    #[error("branch {branch} does not exist in {repository}, nor does its base {base}")]
    NoBase {
        /// `owner/repo`.
        repository: String,
        /// The branch.
        branch: String,
        /// The base.
        base: String,
    },
    /// Another writer moved the branch before every one of the commits allowed.
    #[error(
        "{attempts} commits onto {branch} were refused: each time another writer had moved it first (its head is now {head}); nothing was committed"
    )]
    KeptMoving {
        /// The branch.
        branch: String,
        /// Commits tried.
        attempts: u32,
        /// Its head at the last read.
        head: String,
    },
}

impl GitopsError {
    /// Whether GitHub refused a commit because the branch was not where it was expected.
    pub(crate) fn is_stale(&self) -> bool {
        matches!(self, GitopsError::Graphql { types, messages, .. }
            if types.iter().any(|t| t == "STALE_DATA")
                || messages.contains("Expected branch to point to"))
    }
}

/// GitHub's GraphQL API for one token.
#[derive(Debug)]
pub struct Graphql {
    client: Client,
}

/// The URL GraphQL is served under for a REST API URL: `https://api.github.com` itself, and
/// `https://HOST/api` for GitHub Enterprise's `https://HOST/api/v3`.
pub fn graphql_base(api_url: &str) -> String {
    let trimmed = api_url.trim_end_matches('/');
    trimmed
        .strip_suffix("/api/v3")
        .map(|host| format!("{host}/api"))
        .unwrap_or_else(|| trimmed.to_owned())
}

#[derive(Debug, Deserialize)]
struct Answer<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<AnswerError>,
}

#[derive(Debug, Deserialize)]
struct AnswerError {
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

impl Graphql {
    /// A client for the GraphQL API beside the REST API at `api_url`.
    pub fn new(api_url: &str, token: &Token, policy: RetryPolicy) -> Result<Graphql, GitHubError> {
        Ok(Graphql {
            client: Client::new(&graphql_base(api_url), token, policy)?,
        })
    }

    /// Requests sent so far, retries included.
    pub fn requests_sent(&self) -> u32 {
        self.client.requests_sent()
    }

    /// Sends one operation and returns its `data`; GraphQL errors are [`GitopsError::Graphql`].
    async fn run<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        query: &str,
        variables: Value,
    ) -> Result<T, GitopsError> {
        let body = json!({ "query": query, "variables": variables, "operationName": operation });
        let answer: Answer<T> = self
            .client
            .call(Method::POST, "/graphql", &[], Some(&body))
            .await?;
        if !answer.errors.is_empty() {
            return Err(GitopsError::Graphql {
                operation,
                messages: answer
                    .errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                types: answer.errors.into_iter().filter_map(|e| e.kind).collect(),
            });
        }
        answer.data.ok_or(GitopsError::NoData { operation })
    }

    /// The branch's head, the blob ids at `paths` there, the repository's node id, and the
    /// head of `base` when one is asked for.
    pub(crate) async fn read(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        base: Option<&str>,
        paths: &[&str],
    ) -> Result<BranchState, GitopsError> {
        let query = head_query(paths.len(), base.is_some());
        let mut variables = json!({
            "owner": owner,
            "name": repo,
            "ref": format!("refs/heads/{branch}"),
        });
        if let Some(base) = base {
            variables["base"] = json!(format!("refs/heads/{base}"));
        }
        for (i, path) in paths.iter().enumerate() {
            variables[format!("p{i}")] = json!(path);
        }
        let data: HeadData = self.run("SlogateHead", &query, variables).await?;
        let repository = data.repository.ok_or_else(|| GitopsError::NoRepository {
            repository: format!("{owner}/{repo}"),
        })?;
        let head = repository.head.and_then(|r| r.target);
        let blobs = (0..paths.len())
            .map(|i| {
                head.as_ref()
                    .and_then(|t| t.files.get(&format!("f{i}")).cloned().flatten())
                    .map(|e| e.oid)
            })
            .collect();
        Ok(BranchState {
            repository_id: repository.id,
            head: head.map(|t| t.oid),
            base: repository.base.and_then(|r| r.target).map(|t| t.oid),
            blobs,
        })
    }

    pub(crate) async fn create_branch(
        &self,
        repository_id: &str,
        branch: &str,
        oid: &str,
    ) -> Result<(), GitopsError> {
        let input = json!({
            "repositoryId": repository_id,
            "name": format!("refs/heads/{branch}"),
            "oid": oid,
        });
        let _: Value = self
            .run("SlogateCreateRef", CREATE_REF, json!({ "input": input }))
            .await?;
        Ok(())
    }

    pub(crate) async fn commit(
        &self,
        repository: &str,
        branch: &str,
        expected_head: &str,
        message: (&str, &str),
        files: &[(&str, &[u8])],
    ) -> Result<(String, String), GitopsError> {
        let additions: Vec<Value> = files
            .iter()
            .map(|(path, contents)| {
                json!({
                    "path": path,
                    "contents": base64::engine::general_purpose::STANDARD.encode(contents),
                })
            })
            .collect();
        let mut headline = json!({ "headline": message.0 });
        if !message.1.is_empty() {
            headline["body"] = json!(message.1);
        }
        let input = json!({
            "branch": { "repositoryNameWithOwner": repository, "branchName": branch },
            "expectedHeadOid": expected_head,
            "message": headline,
            "fileChanges": { "additions": additions },
        });
        let data: CommitData = self
            .run("SlogateCommit", COMMIT, json!({ "input": input }))
            .await?;
        let commit =
            data.create_commit_on_branch
                .and_then(|c| c.commit)
                .ok_or(GitopsError::NoData {
                    operation: "SlogateCommit",
                })?;
        Ok((commit.oid, commit.url))
    }
}

/// Query A: the branch head, blob ids at `$p0..`, the repository id, optionally `$base`.
fn head_query(paths: usize, base: bool) -> String {
    let mut vars = String::from("$owner: String!, $name: String!, $ref: String!");
    if base {
        vars.push_str(", $base: String!");
    }
    let mut files = String::new();
    for i in 0..paths {
        let _ = write!(vars, ", $p{i}: String!");
        let _ = write!(files, " f{i}: file(path: $p{i}) {{ oid }}");
    }
    let on_commit = if paths == 0 {
        String::new()
    } else {
        format!(" ... on Commit {{{files} }}")
    };
    let base_field = if base {
        " base: ref(qualifiedName: $base) { target { oid } }"
    } else {
        ""
    };
    format!(
        "query SlogateHead({vars}) {{ repository(owner: $owner, name: $name) {{ id head: ref(qualifiedName: $ref) {{ target {{ oid{on_commit} }} }}{base_field} }} }}"
    )
}

const CREATE_REF: &str = "mutation SlogateCreateRef($input: CreateRefInput!) { createRef(input: $input) { ref { name target { oid } } } }";
const COMMIT: &str = "mutation SlogateCommit($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid url } } }";

#[derive(Debug, Deserialize)]
struct HeadData {
    repository: Option<RepositoryData>,
}

#[derive(Debug, Deserialize)]
struct RepositoryData {
    id: String,
    head: Option<RefData>,
    #[serde(default)]
    base: Option<RefData>,
}

#[derive(Debug, Deserialize)]
struct RefData {
    target: Option<TargetData>,
}

#[derive(Debug, Deserialize)]
struct TargetData {
    oid: String,
    #[serde(flatten)]
    files: std::collections::HashMap<String, Option<EntryData>>,
}

#[derive(Debug, Clone, Deserialize)]
struct EntryData {
    oid: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitData {
    create_commit_on_branch: Option<CommitPayload>,
}

#[derive(Debug, Deserialize)]
struct CommitPayload {
    commit: Option<CommitObject>,
}

#[derive(Debug, Deserialize)]
struct CommitObject {
    oid: String,
    url: String,
}

/// What one read of the branch saw.
#[derive(Debug)]
pub(crate) struct BranchState {
    pub(crate) repository_id: String,
    pub(crate) head: Option<String>,
    pub(crate) base: Option<String>,
    /// Blob id at each path, `None` where the path does not exist.
    pub(crate) blobs: Vec<Option<String>>,
}

/// Where `branch` of `owner/repo` points now, for the superseded check of a pull-request
/// promotion: `None` when the branch does not exist.
pub async fn tested_head(
    graphql: &Graphql,
    owner: &str,
    repo: &str,
    branch: &str,
) -> Result<Option<String>, GitopsError> {
    Ok(graphql.read(owner, repo, branch, None, &[]).await?.head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_sits_beside_the_rest_api() {
        assert_eq!(
            graphql_base("https://api.github.com"),
            "https://api.github.com"
        );
        assert_eq!(
            graphql_base("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/api"
        );
        assert_eq!(graphql_base("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn the_head_query_asks_for_every_path() {
        let q = head_query(2, true);
        assert!(q.contains("$p0: String!, $p1: String!"), "{q}");
        assert!(q.contains("f0: file(path: $p0) { oid }"), "{q}");
        assert!(q.contains("f1: file(path: $p1) { oid }"), "{q}");
        assert!(q.contains("base: ref(qualifiedName: $base)"), "{q}");
        let q = head_query(0, false);
        assert!(!q.contains("Commit") && !q.contains("$base"), "{q}");
    }
}
