//! The GitHub double itself: it must refuse what GitHub's description refuses, or the
//! promotion tests would prove nothing, and its own answers must be valid.

mod support;

use http::Method;
use serde_json::json;
use support::OpenApi;

fn check(
    api: &OpenApi,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> Vec<String> {
    let (op, params) = api.find(&method, path).expect("operation exists");
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    api.check_request(op, &params, &query, Some("application/json"), body.as_ref())
}

#[test]
fn requests_slogate_sends_conform() {
    let api = OpenApi::load();
    let ok = [
        check(
            &api,
            Method::GET,
            "/repos/o/r/pulls",
            &[("state", "open"), ("head", "o:staging"), ("base", "master")],
            None,
        ),
        check(
            &api,
            Method::POST,
            "/repos/o/r/pulls",
            &[],
            Some(json!({"title": "t", "head": "staging", "base": "master", "body": "b"})),
        ),
        check(
            &api,
            Method::PATCH,
            "/repos/o/r/pulls/3",
            &[],
            Some(json!({"title": "t", "body": "b"})),
        ),
        check(
            &api,
            Method::POST,
            "/repos/o/r/issues/3/labels",
            &[],
            Some(json!({"labels": ["a"]})),
        ),
        check(
            &api,
            Method::POST,
            "/repos/o/r/pulls/3/requested_reviewers",
            &[],
            Some(json!({"reviewers": ["alice"]})),
        ),
        check(
            &api,
            Method::POST,
            "/repos/o/r/statuses/abc123",
            &[],
            Some(
                json!({"state": "success", "context": "slogate/slo", "description": "d", "target_url": "https://github.com/o/r/pull/3"}),
            ),
        ),
    ];
    for problems in ok {
        assert!(problems.is_empty(), "{problems:?}");
    }
}

#[test]
fn requests_github_would_refuse_are_caught() {
    let api = OpenApi::load();
    let bad = [
        (
            "state=merged",
            check(
                &api,
                Method::GET,
                "/repos/o/r/pulls",
                &[("state", "merged")],
                None,
            ),
        ),
        (
            "unknown query",
            check(
                &api,
                Method::GET,
                "/repos/o/r/pulls",
                &[("headref", "x")],
                None,
            ),
        ),
        (
            "create without head",
            check(
                &api,
                Method::POST,
                "/repos/o/r/pulls",
                &[],
                Some(json!({"title": "t", "base": "master"})),
            ),
        ),
        (
            "non-numeric PR",
            check(
                &api,
                Method::PATCH,
                "/repos/o/r/pulls/abc",
                &[],
                Some(json!({"body": "b"})),
            ),
        ),
        (
            "labels as string",
            check(
                &api,
                Method::POST,
                "/repos/o/r/issues/3/labels",
                &[],
                Some(json!({"labels": "a"})),
            ),
        ),
        (
            "unknown status state",
            check(
                &api,
                Method::POST,
                "/repos/o/r/statuses/abc",
                &[],
                Some(json!({"state": "passed"})),
            ),
        ),
        (
            "list with a body",
            check(&api, Method::GET, "/repos/o/r/pulls", &[], Some(json!({}))),
        ),
    ];
    for (what, problems) in bad {
        assert!(!problems.is_empty(), "{what} was accepted");
    }
    assert!(api.find(&Method::DELETE, "/repos/o/r/pulls").is_none());
    assert!(
        api.find(&Method::GET, "/repos/o/r/branches/main").is_none(),
        "not in the trimmed description"
    );
}

#[test]
fn githubs_examples_and_error_shapes_validate() {
    let api = OpenApi::load();
    for (op, status, example) in [
        ("issues/add-labels", 200, "label-items"),
        ("repos/create-commit-status", 201, "status"),
    ] {
        let problems = api.check(&api.response_pointer(op, status), &api.example(example));
        assert!(problems.is_empty(), "{op}: {problems:?}");
    }
    // A pull request as the double answers it.
    let mut pr = api.example("pull-request");
    pr["requested_teams"] = json!([]);
    let problems = api.check(&api.response_pointer("pulls/create", 201), &pr);
    assert!(problems.is_empty(), "{problems:?}");
    // And a broken one is refused.
    pr["number"] = json!("one");
    assert!(
        !api.check(&api.response_pointer("pulls/create", 201), &pr)
            .is_empty()
    );

    let no_commits = json!({
        "message": "Validation Failed",
        "errors": [{"resource": "PullRequest", "code": "custom", "message": "No commits between master and staging"}],
        "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
        "status": "422"
    });
    assert!(
        api.check("/components/schemas/validation-error", &no_commits)
            .is_empty()
    );
    let bad_credentials = json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"});
    assert!(
        api.check("/components/schemas/basic-error", &bad_credentials)
            .is_empty()
    );
}
