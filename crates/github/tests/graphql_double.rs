//! The GitHub double's GraphQL endpoint: it must refuse what GitHub's schema refuses, give
//! the ids real git gives, and answer the gitops promotion's documents as GitHub documents.

mod support;

use std::process::Command;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use support::{GIT_IDENTITY, GitHubDouble, object_id};

const HEAD: &str = "query SlogateHead($owner: String!, $name: String!, $ref: String!, $base: String!, $p0: String!, $p1: String!) {
  repository(owner: $owner, name: $name) {
    id
    head: ref(qualifiedName: $ref) { name target { oid ... on Commit { f0: file(path: $p0) { oid } f1: file(path: $p1) { oid } } } }
    base: ref(qualifiedName: $base) { target { oid } }
  }
}";
const HEAD_NO_FILES: &str = "query SlogateHead($owner: String!, $name: String!, $ref: String!) {
  repository(owner: $owner, name: $name) {
    id
    head: ref(qualifiedName: $ref) { name target { oid ... on Commit { } } }
  }
}";
const CREATE_REF: &str = "mutation SlogateCreateRef($input: CreateRefInput!) { createRef(input: $input) { ref { name target { oid } } } }";
const COMMIT: &str = "mutation SlogateCommit($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid url } } }";

/// POSTs a GraphQL request to the double at `path`; returns status and JSON body.
async fn post(double: &GitHubDouble, path: &str, token: &str, body: Value) -> (u16, Value) {
    send(double, http::Method::POST, path, token, Some(body)).await
}

/// Sends a request to the double; returns status and JSON body.
async fn send(
    double: &GitHubDouble,
    method: http::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let addr = double.url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "slogate-test")
        .header("content-type", "application/json")
        .body(Full::new(
            body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        ))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn gql(double: &GitHubDouble, query: &str, variables: Value) -> Value {
    let (status, body) = post(
        double,
        "/graphql",
        "tok",
        json!({"query": query, "variables": variables}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn commit_input(branch: &str, expected: &str, adds: &[(&str, &str)], dels: &[&str]) -> Value {
    json!({"input": {
        "branch": {"repositoryNameWithOwner": "o/r", "branchName": branch},
        "expectedHeadOid": expected,
        "message": {"headline": "promote", "body": "slogate promotion"},
        "fileChanges": {
            "additions": adds.iter().map(|(p, c)| json!({"path": p, "contents": b64(c)})).collect::<Vec<_>>(),
            "deletions": dels.iter().map(|p| json!({"path": p})).collect::<Vec<_>>(),
        }
    }})
}

async fn start() -> GitHubDouble {
    GitHubDouble::start("o", "r", "tok").await
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let (name, rest) = GIT_IDENTITY.split_once(" <").unwrap();
    let (email, date) = rest.split_once("> ").unwrap();
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", name)
        .env("GIT_AUTHOR_EMAIL", email)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_NAME", name)
        .env("GIT_COMMITTER_EMAIL", email)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn object_ids_are_the_ones_git_computes() {
    // `printf 'hello\n' | git hash-object --stdin`
    assert_eq!(
        object_id("blob", b"hello\n"),
        "ce013625030ba8dba906f756967f9e9ca394464a"
    );

    // Names chosen so that git's order (a directory sorts as `name/`) differs from plain
    // byte order: `a.txt` < `a/` < `a0`.
    let files = [
        ("a.txt", "one\n"),
        ("a/b/c.yaml", "replicas: 2\n"),
        ("a/d", "deep\n"),
        ("a0", "zero\n"),
        ("README.md", "hello\n"),
    ];
    let double = start().await;
    let oid = double.seed_branch("o", "r", "main", &files);

    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(dir.path(), &["add", "."]);
    let tree = git(dir.path(), &["write-tree"]);
    assert_eq!(double.tree_of(&oid).as_deref(), Some(tree.as_str()));
    let commit = git(dir.path(), &["commit-tree", &tree, "-m", "seed"]);
    assert_eq!(oid, commit, "the seed commit is the one git writes");

    // A commit with a parent, through the GraphQL mutation, is the one git writes too.
    let answer = gql(
        &double,
        COMMIT,
        commit_input("main", &oid, &[("a/b/c.yaml", "replicas: 3\n")], &["a0"]),
    )
    .await;
    let new = answer["data"]["createCommitOnBranch"]["commit"]["oid"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(dir.path().join("a/b/c.yaml"), "replicas: 3\n").unwrap();
    std::fs::remove_file(dir.path().join("a0")).unwrap();
    git(dir.path(), &["add", "-A"]);
    let tree2 = git(dir.path(), &["write-tree"]);
    let commit2 = git(
        dir.path(),
        &[
            "commit-tree",
            &tree2,
            "-p",
            &commit,
            "-m",
            "promote",
            "-m",
            "slogate promotion",
        ],
    );
    assert_eq!(new, commit2);
}

#[tokio::test]
async fn the_head_query_reads_tips_blobs_and_nulls() {
    let double = start().await;
    let staging = double.seed_branch(
        "o",
        "r",
        "staging",
        &[("deploy/app.yaml", "image: v1\n"), ("README.md", "hello\n")],
    );
    let main = double.seed_branch("o", "r", "main", &[("README.md", "main\n")]);
    let answer = gql(
        &double,
        HEAD,
        json!({"owner": "o", "name": "r", "ref": "refs/heads/staging", "base": "refs/heads/main",
               "p0": "deploy/app.yaml", "p1": "deploy/missing.yaml"}),
    )
    .await;
    assert_eq!(
        answer,
        json!({"data": {"repository": {
            "id": double.repository_id("o", "r"),
            "head": {"name": "staging", "target": {
                "oid": staging,
                "f0": {"oid": object_id("blob", b"image: v1\n")},
                "f1": null,
            }},
            "base": {"target": {"oid": main}},
        }}})
    );
    assert!(double.repository_id("o", "r").starts_with("R_kgDO"));

    // A missing ref is null; a document without files or base is fine.
    let answer = gql(
        &double,
        HEAD_NO_FILES.replace("... on Commit { }", "").as_str(),
        json!({"owner": "o", "name": "r", "ref": "refs/heads/nope"}),
    )
    .await;
    assert_eq!(
        answer["data"]["repository"]["head"],
        Value::Null,
        "{answer}"
    );
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(double.graphql_refused(), Vec::<String>::new());
    let ops = double.graphql_ops();
    assert_eq!(ops[0].name.as_deref(), Some("SlogateHead"));
    assert_eq!(ops[0].variables["p0"], "deploy/app.yaml");
}

#[tokio::test]
async fn a_commit_moves_the_branch_and_changes_only_the_given_files() {
    let double = start().await;
    let tip = double.seed_branch(
        "o",
        "r",
        "staging",
        &[
            ("deploy/app.yaml", "image: v1\n"),
            ("deploy/old.yaml", "x\n"),
            ("README.md", "hello\n"),
        ],
    );
    let answer = gql(
        &double,
        COMMIT,
        commit_input(
            "staging",
            &tip,
            &[
                ("deploy/app.yaml", "image: v2\n"),
                ("deploy/new/extra.yaml", "y\n"),
            ],
            &["deploy/old.yaml"],
        ),
    )
    .await;
    let oid = answer["data"]["createCommitOnBranch"]["commit"]["oid"]
        .as_str()
        .unwrap();
    assert_eq!(
        answer["data"]["createCommitOnBranch"]["commit"]["url"],
        format!("https://github.com/o/r/commit/{oid}")
    );
    assert_eq!(double.branch_tip("o", "r", "staging").as_deref(), Some(oid));
    let files = double.files_at("o", "r", "staging");
    assert_eq!(
        files.into_iter().collect::<Vec<_>>(),
        vec![
            ("README.md".to_owned(), "hello\n".to_owned()),
            ("deploy/app.yaml".to_owned(), "image: v2\n".to_owned()),
            ("deploy/new/extra.yaml".to_owned(), "y\n".to_owned()),
        ]
    );
    assert_eq!(double.file_at("o", "r", "staging", "deploy/old.yaml"), None);
    let log = double.branch_log("o", "r", "staging");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].headline, "promote");
    assert_eq!(log[0].parents, vec![tip.clone()]);
    assert_eq!(
        log[0].paths,
        vec![
            "deploy/app.yaml",
            "deploy/new/extra.yaml",
            "deploy/old.yaml"
        ]
    );
    assert_eq!((double.commit_calls(), double.commit_successes()), (1, 1));

    // Deleting a missing path, invalid base64 and a missing branch are errors; nothing moves.
    let new_tip = oid.to_owned();
    let answer = gql(
        &double,
        COMMIT,
        commit_input("staging", &new_tip, &[], &["nope.yaml"]),
    )
    .await;
    assert_eq!(
        answer["data"]["createCommitOnBranch"],
        Value::Null,
        "{answer}"
    );
    let mut bad = commit_input("staging", &new_tip, &[("a", "b")], &[]);
    bad["input"]["fileChanges"]["additions"][0]["contents"] = json!("!!not base64!!");
    let answer = gql(&double, COMMIT, bad).await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("base64"),
        "{answer}"
    );
    let answer = gql(&double, COMMIT, commit_input("gone", &new_tip, &[], &[])).await;
    assert_eq!(answer["errors"][0]["type"], "NOT_FOUND", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("refs/heads/gone")
    );
    assert_eq!(double.branch_tip("o", "r", "staging"), Some(new_tip));
    assert_eq!((double.commit_calls(), double.commit_successes()), (4, 1));
}

#[tokio::test]
async fn a_stale_expected_head_gets_githubs_stale_data_answer() {
    let double = start().await;
    let old = double.seed_branch("o", "r", "staging", &[("a", "1\n")]);
    let tip = double.commit_files("o", "r", "staging", "ci push", &[("a", "2\n")]);
    let answer = gql(
        &double,
        COMMIT,
        commit_input("staging", &old, &[("a", "3\n")], &[]),
    )
    .await;
    assert_eq!(
        answer,
        json!({
            "data": {"createCommitOnBranch": null},
            "errors": [{
                "type": "STALE_DATA",
                "path": ["createCommitOnBranch"],
                "locations": [{"line": 1, "column": 62}],
                "message": format!("Expected branch to point to \"{old}\" but it did not.  Pull and try again."),
            }]
        })
    );
    assert_eq!(double.branch_tip("o", "r", "staging"), Some(tip));
}

#[tokio::test]
async fn another_writer_moves_the_branch_once_before_the_next_commit() {
    let double = start().await;
    let tip = double.seed_branch("o", "r", "staging", &[("deploy/app.yaml", "v1\n")]);
    double.move_branch_before_next_commit("o", "r", "staging", &[("ci/other.txt", "theirs\n")]);
    let answer = gql(
        &double,
        COMMIT,
        commit_input("staging", &tip, &[("deploy/app.yaml", "v2\n")], &[]),
    )
    .await;
    assert_eq!(answer["errors"][0]["type"], "STALE_DATA", "{answer}");
    let moved = double.branch_tip("o", "r", "staging").unwrap();
    assert_ne!(moved, tip);

    // Read the tip again, as the product would, and commit on it: the hook does not fire again.
    let head = gql(
        &double,
        HEAD_NO_FILES.replace("... on Commit { }", "").as_str(),
        json!({"owner": "o", "name": "r", "ref": "refs/heads/staging"}),
    )
    .await;
    assert_eq!(
        head["data"]["repository"]["head"]["target"]["oid"],
        moved.as_str()
    );
    let answer = gql(
        &double,
        COMMIT,
        commit_input("staging", &moved, &[("deploy/app.yaml", "v2\n")], &[]),
    )
    .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(
        double
            .file_at("o", "r", "staging", "deploy/app.yaml")
            .as_deref(),
        Some("v2\n")
    );
    assert_eq!(
        double
            .file_at("o", "r", "staging", "ci/other.txt")
            .as_deref(),
        Some("theirs\n")
    );
    let log = double.branch_log("o", "r", "staging");
    let heads: Vec<&str> = log.iter().map(|c| c.headline.as_str()).collect();
    assert_eq!(heads, ["promote", "a concurrent push", "seed"]);
    assert_eq!((double.commit_calls(), double.commit_successes()), (2, 1));
}

#[tokio::test]
async fn documents_and_variables_the_schema_refuses_are_refused_and_recorded() {
    let double = start().await;
    let tip = double.seed_branch("o", "r", "staging", &[("a", "1\n")]);

    let answer = gql(
        &double,
        "query Bad($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { nope } }",
        json!({"owner": "o", "name": "r"}),
    )
    .await;
    assert!(answer.get("data").is_none(), "{answer}");
    let errors = answer["errors"].as_array().unwrap();
    let e = errors
        .iter()
        .find(|e| e["message"].as_str().unwrap().contains("nope"))
        .expect("an error names the unknown field");
    assert_eq!(e["locations"][0]["line"], 1);

    // expectedHeadOid missing: a non-null input field.
    let mut missing = commit_input("staging", &tip, &[], &[]);
    missing["input"]
        .as_object_mut()
        .unwrap()
        .remove("expectedHeadOid");
    let answer = gql(&double, COMMIT, missing).await;
    assert!(answer.get("data").is_none(), "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expectedHeadOid"),
        "{answer}"
    );

    // A field CreateCommitOnBranchInput does not have.
    let mut unknown = commit_input("staging", &tip, &[], &[]);
    unknown["input"]["force"] = json!(true);
    let answer = gql(&double, COMMIT, unknown).await;
    assert!(answer.get("data").is_none(), "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("force"),
        "{answer}"
    );

    // A number where the schema wants a String.
    let mut wrong = commit_input("staging", &tip, &[], &[]);
    wrong["input"]["message"]["headline"] = json!(7);
    let answer = gql(&double, COMMIT, wrong).await;
    assert!(answer.get("data").is_none(), "{answer}");

    assert_eq!(
        double.graphql_refused().len(),
        4,
        "{:?}",
        double.graphql_refused()
    );
    assert_eq!(
        double.commit_calls(),
        0,
        "refused documents are not executed"
    );
    assert_eq!(double.branch_tip("o", "r", "staging"), Some(tip));
}

#[tokio::test]
async fn create_ref_makes_a_branch_and_refuses_duplicates_and_unknowns() {
    let double = start().await;
    let tip = double.seed_branch("o", "r", "staging", &[("a", "1\n")]);
    let id = double.repository_id("o", "r");
    let input = |name: &str, oid: &str, id: &str| json!({"input": {"repositoryId": id, "name": name, "oid": oid}});
    let answer = gql(
        &double,
        CREATE_REF,
        input("refs/heads/slogate/promote", &tip, &id),
    )
    .await;
    assert_eq!(
        answer,
        json!({"data": {"createRef": {"ref": {"name": "slogate/promote", "target": {"oid": tip}}}}})
    );
    assert_eq!(
        double.branch_tip("o", "r", "slogate/promote").as_deref(),
        Some(tip.as_str())
    );

    let dup = gql(
        &double,
        CREATE_REF,
        input("refs/heads/slogate/promote", &tip, &id),
    )
    .await;
    assert_eq!(dup["data"]["createRef"], Value::Null, "{dup}");
    assert!(
        dup["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    let wrong_repo = gql(
        &double,
        CREATE_REF,
        input("refs/heads/x", &tip, "R_kgDOnope"),
    )
    .await;
    assert_eq!(wrong_repo["errors"][0]["type"], "NOT_FOUND", "{wrong_repo}");
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let bad_oid = gql(&double, CREATE_REF, input("refs/heads/x", unknown, &id)).await;
    assert_eq!(bad_oid["data"]["createRef"], Value::Null, "{bad_oid}");
    assert_eq!(double.branch_tip("o", "r", "x"), None);
    assert!(double.graphql_refused().is_empty());
}

#[tokio::test]
async fn the_endpoint_checks_the_token_and_serves_the_enterprise_path() {
    let double = start().await;
    double.seed_branch("o", "r", "main", &[("a", "1\n")]);
    let body = json!({"query": HEAD_NO_FILES.replace("... on Commit { }", ""),
                      "variables": {"owner": "o", "name": "r", "ref": "main"}});
    let (status, answer) = post(&double, "/graphql", "wrong", body.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(answer["message"], "Bad credentials");
    let (status, answer) = post(&double, "/api/graphql", "tok", body).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["data"]["repository"]["head"]["name"], "main",
        "{answer}"
    );
    double.assert_conforming();
}

#[tokio::test]
async fn a_pull_request_head_sha_is_the_branch_tip() {
    let double = start().await;
    let tip = double.seed_branch("o", "r", "staging", &[("a", "1\n")]);
    double.seed_pr(4, "staging", "main");
    double.seed_pr(5, "other", "main");
    let (status, prs) = send(
        &double,
        http::Method::GET,
        "/repos/o/r/pulls?state=open",
        "tok",
        None,
    )
    .await;
    assert_eq!(status, 200, "{prs}");
    // A head branch the git model holds has its tip; another keeps the double's fixed sha.
    assert_eq!(prs[0]["head"]["sha"], tip.as_str());
    assert_eq!(prs[1]["head"]["sha"], support::HEAD_SHA);
    double.assert_conforming();
}
