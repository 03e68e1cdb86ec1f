//! The promotion flow: find the open pull request head → base and update it, or open one;
//! add labels and reviewers; set the commit status `slogate/slo` on the head commit.
//!
//! Re-running never opens a second pull request: the open one is looked up first, and if a
//! create races with another run (GitHub answers 422 "A pull request already exists"), the
//! existing one is updated instead.

use std::path::Path;

use http::Method;
use serde_json::json;
use slogate_core::result::{CommitStatus, ExperimentResult, OverallVerdict, PromotionOutcome};
use slogate_core::spec::PromotionSpec;

use crate::STATUS_CONTEXT;
use crate::client::{Client, GitHubError, describe, segment};
use crate::decide::{Decision, should_promote};
use crate::graphql::{Graphql, tested_head};
use crate::render::{PrContent, pr_content};
use crate::retry::RetryPolicy;
use crate::token::Token;

/// GitHub refuses a commit-status description longer than this.
const MAX_STATUS_DESCRIPTION: usize = 140;

/// How to promote.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Render the pull request and make no request.
    pub dry_run: bool,
    /// Retry and wait bounds.
    pub retry: RetryPolicy,
}

/// Everything a promotion did: the outcome the result document records (commit status and
/// warnings included), and the details around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// What the result document records.
    pub outcome: PromotionOutcome,
    /// Requests sent to GitHub, retries included.
    pub requests: u32,
}

impl Promotion {
    /// The commit status, when one was attempted (see [`PromotionOutcome::commit_status`]).
    pub fn commit_status(&self) -> Option<&CommitStatus> {
        self.outcome.commit_status()
    }

    /// Steps after the pull request that failed without undoing it (labels, reviewers,
    /// commit status), in words (see [`PromotionOutcome::warnings`]).
    pub fn warnings(&self) -> &[String] {
        self.outcome.warnings()
    }

    fn only(outcome: PromotionOutcome) -> Promotion {
        Promotion {
            outcome,
            requests: 0,
        }
    }

    fn failed(reason: String) -> Promotion {
        Promotion::only(PromotionOutcome::Failed { reason })
    }
}

/// Promotes an experiment result as its spec says: decides, renders, reads the token file
/// (`token_file` overrides `spec.token_file`) once, then sends. Never panics and never
/// returns an error: every way it ends is a [`PromotionOutcome`].
pub async fn promote_result(
    spec: &PromotionSpec,
    result: &ExperimentResult,
    token_file: Option<&Path>,
    options: &Options,
) -> Promotion {
    if let Decision::Skip { reason } = should_promote(spec, result) {
        tracing::info!(%reason, "promotion skipped");
        return Promotion::only(PromotionOutcome::Skipped { reason });
    }
    let content = match pr_content(spec, result) {
        Ok(c) => c,
        Err(err) => return Promotion::failed(format!("cannot render the pull request: {err}")),
    };
    if options.dry_run {
        return Promotion::only(PromotionOutcome::DryRun {
            title: content.title,
            body: content.body,
        });
    }
    let Some(path) = token_file.or(spec.token_file.as_deref()) else {
        return Promotion::failed(
            "no GitHub token: set promotion.tokenFile in the spec or pass --token-file".to_owned(),
        );
    };
    let token = match Token::from_file(path) {
        Ok(t) => t,
        // The cause (missing, no permission) helps; no variant holds the file's content.
        Err(err) => return Promotion::failed(describe(&err)),
    };
    // should_promote only says Promote for a completed run, which has a verdict.
    let verdict = result.verdict.clone().unwrap_or(OverallVerdict {
        pass: false,
        reason: String::new(),
    });
    promote(spec, &content, &verdict, &token, &options.retry).await
}

/// Sends a rendered pull request: update the open one head → base or open one, then labels,
/// reviewers and the commit status.
pub async fn promote(
    spec: &PromotionSpec,
    content: &PrContent,
    verdict: &OverallVerdict,
    token: &Token,
    policy: &RetryPolicy,
) -> Promotion {
    let client = match Client::new(&spec.api_url, token, policy.clone()) {
        Ok(c) => c,
        // With its cause: "cannot set up the GitHub client" alone does not say what to fix.
        Err(err) => return Promotion::failed(describe(&err)),
    };
    let (check, checked_with) = superseded(spec, token, policy).await;
    if let Some(outcome) = check {
        tracing::warn!(?outcome, "not promoted");
        let mut promotion = Promotion::only(outcome);
        promotion.requests = checked_with;
        return promotion;
    }
    let repo = format!("/repos/{}/{}", segment(&spec.owner), segment(&spec.repo));
    let mut promotion = match open_or_update(&client, &repo, spec, content).await {
        Ok((pr, opened)) => {
            let (number, url) = (pr.number, pr.html_url.clone());
            tracing::info!(number, %url, opened, "pull request {}", if opened { "opened" } else { "updated" });
            let (commit_status, warnings) = after_pr(&client, &repo, spec, verdict, &pr).await;
            Promotion::only(if opened {
                PromotionOutcome::Opened {
                    number,
                    url,
                    commit_status,
                    warnings,
                }
            } else {
                PromotionOutcome::Updated {
                    number,
                    url,
                    commit_status,
                    warnings,
                }
            })
        }
        Err(err) => {
            tracing::warn!(error = %err, "promotion failed");
            Promotion::failed(err.to_string())
        }
    };
    promotion.requests = client.requests_sent() + checked_with;
    promotion
}

/// The parts of GitHub's pull-request object slogate reads.
#[derive(Debug, Clone, serde::Deserialize)]
struct PullRequest {
    number: u64,
    html_url: String,
    head: Head,
    base: Base,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Head {
    sha: String,
    #[serde(rename = "ref")]
    branch: String,
    /// `owner:branch`.
    #[serde(default)]
    label: Option<String>,
    /// The repository the head branch lives in; null when it was deleted.
    #[serde(default)]
    repo: Option<Repo>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Repo {
    owner: Owner,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Owner {
    login: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Base {
    #[serde(rename = "ref")]
    branch: String,
}

impl PullRequest {
    /// The head owner as GitHub names it: the head repository's owner, else the label's.
    fn head_owner(&self) -> Option<&str> {
        match &self.head.repo {
            Some(repo) => Some(&repo.owner.login),
            None => self.head.label.as_deref()?.split_once(':').map(|(o, _)| o),
        }
    }

    /// Whether this is a pull request `owner:head` → `base`. GitHub's list call is asked
    /// for exactly these, but a filter it does not apply (a malformed `head`, a proxy that
    /// drops the query) would otherwise let another pull request be rewritten and its
    /// commit marked.
    fn is_promotion_of(&self, spec: &PromotionSpec) -> bool {
        self.head.branch == spec.head
            && self.base.branch == spec.base
            // GitHub logins are case-insensitive.
            && self
                .head_owner()
                .is_some_and(|o| o.eq_ignore_ascii_case(&spec.owner))
    }

    fn describe(&self) -> String {
        format!(
            "#{} ({}:{} → {})",
            self.number,
            self.head_owner().unwrap_or("?"),
            self.head.branch,
            self.base.branch
        )
    }
}

/// Lookups after GitHub said "already exists" but the list did not show it yet.
const RELOOKUPS: u32 = 4;

/// Returns the pull request and whether it was opened (true) or updated (false).
async fn open_or_update(
    client: &Client,
    repo: &str,
    spec: &PromotionSpec,
    content: &PrContent,
) -> Result<(PullRequest, bool), String> {
    if let Some(existing) = find_open(client, repo, spec).await? {
        return update(client, repo, existing.number, content)
            .await
            .map(|pr| (pr, false));
    }
    let create = json!({
        "title": content.title,
        "head": spec.head,
        "base": spec.base,
        "body": content.body,
    });
    match client
        .call::<PullRequest>(Method::POST, &format!("{repo}/pulls"), &[], Some(&create))
        .await
    {
        Ok(pr) => Ok((pr, true)),
        // Another run (or a create whose answer was lost to a 5xx) opened it meanwhile.
        Err(err)
            if err.status().map(|s| s.as_u16()) == Some(422)
                && err.message().is_some_and(|m| m.contains("already exists")) =>
        {
            // GitHub's list can lag behind a pull request opened a moment ago: look again
            // a few times, with backoff, before giving up.
            let mut lookups = 0;
            let existing = loop {
                let delay = client.policy().backoff(lookups + 1, rand::random::<f64>());
                tokio::time::sleep(delay).await;
                lookups += 1;
                if let Some(pr) = find_open(client, repo, spec).await? {
                    break pr;
                }
                if lookups >= RELOOKUPS {
                    return Err(format!(
                        "opening the pull request failed: {err}; but {lookups} lookups after it found no open pull request {}:{} → {}",
                        spec.owner, spec.head, spec.base
                    ));
                }
                tracing::info!(
                    lookups,
                    "GitHub says the pull request exists but does not list it yet; looking again"
                );
            };
            update(client, repo, existing.number, content)
                .await
                .map(|pr| (pr, false))
        }
        Err(err) => Err(format!("opening the pull request failed: {err}")),
    }
}

async fn find_open(
    client: &Client,
    repo: &str,
    spec: &PromotionSpec,
) -> Result<Option<PullRequest>, String> {
    let head = format!("{}:{}", spec.owner, spec.head);
    let list: Vec<PullRequest> = client
        .call(
            Method::GET,
            &format!("{repo}/pulls"),
            &[("state", "open"), ("head", &head), ("base", &spec.base)],
            None,
        )
        .await
        .map_err(|e| format!("looking for an open pull request failed: {e}"))?;
    let (ours, others): (Vec<PullRequest>, Vec<PullRequest>) =
        list.into_iter().partition(|pr| pr.is_promotion_of(spec));
    if !others.is_empty() {
        let named: Vec<String> = others.iter().map(PullRequest::describe).collect();
        tracing::warn!(
            ignored = %named.join(", "),
            "GitHub listed pull requests that are not {head} → {}; they are left alone",
            spec.base
        );
    }
    Ok(ours.into_iter().min_by_key(|pr| pr.number))
}

async fn update(
    client: &Client,
    repo: &str,
    number: u64,
    content: &PrContent,
) -> Result<PullRequest, String> {
    let patch = json!({ "title": content.title, "body": content.body });
    client
        .call(
            Method::PATCH,
            &format!("{repo}/pulls/{number}"),
            &[],
            Some(&patch),
        )
        .await
        .map_err(|e: GitHubError| format!("updating pull request #{number} failed: {e}"))
}

/// Labels, reviewers and the commit status: a failure here is a warning, the pull request
/// stands. Returns the commit status (when the spec asks for one) and the warnings.
async fn after_pr(
    client: &Client,
    repo: &str,
    spec: &PromotionSpec,
    verdict: &OverallVerdict,
    pr: &PullRequest,
) -> (Option<CommitStatus>, Vec<String>) {
    let number = pr.number;
    let mut warnings = Vec::new();
    let mut commit_status = None;
    if !spec.labels.is_empty() {
        let body = json!({ "labels": spec.labels });
        if let Err(err) = client
            .send(
                Method::POST,
                &format!("{repo}/issues/{number}/labels"),
                &[],
                Some(&body),
            )
            .await
        {
            warnings.push(format!("adding labels failed: {err}"));
        }
    }
    if !spec.reviewers.is_empty() {
        let body = json!({ "reviewers": spec.reviewers });
        if let Err(err) = client
            .send(
                Method::POST,
                &format!("{repo}/pulls/{number}/requested_reviewers"),
                &[],
                Some(&body),
            )
            .await
        {
            warnings.push(format!("requesting reviewers failed: {err}"));
        }
    }
    if spec.commit_status {
        // The commit that was tested, when the spec names it: the pull request's head is
        // the same commit unless it moved after the check.
        let sha = spec.head_sha.as_deref().unwrap_or(&pr.head.sha);
        let status = set_commit_status(client, repo, sha, verdict, &pr.html_url).await;
        if let Some(e) = &status.error {
            warnings.push(e.clone());
        }
        commit_status = Some(status);
    }
    for w in &warnings {
        tracing::warn!(warning = %w, "promotion step failed");
    }
    (commit_status, warnings)
}

/// Sets the commit status `slogate/slo` on `sha` of `repo` (`/repos/OWNER/REPO`); a failure
/// is kept in the returned status's `error`.
pub(crate) async fn set_commit_status(
    client: &Client,
    repo: &str,
    sha: &str,
    verdict: &OverallVerdict,
    target_url: &str,
) -> CommitStatus {
    let state = if verdict.pass { "success" } else { "failure" };
    let body = json!({
        "state": state,
        "context": STATUS_CONTEXT,
        "description": status_description(verdict),
        "target_url": target_url,
    });
    let error = client
        .send(
            Method::POST,
            &format!("{repo}/statuses/{}", segment(sha)),
            &[],
            Some(&body),
        )
        .await
        .err()
        .map(|err| format!("setting the commit status failed: {err}"));
    CommitStatus {
        state: state.to_owned(),
        sha: sha.to_owned(),
        context: STATUS_CONTEXT.to_owned(),
        error,
    }
}

/// Whether `spec.head` still points at the tested commit `spec.headSha`: `None` when it
/// does (or the spec names none), else the outcome that ends the promotion; and the
/// requests the check sent.
async fn superseded(
    spec: &PromotionSpec,
    token: &Token,
    policy: &RetryPolicy,
) -> (Option<PromotionOutcome>, u32) {
    let Some(tested) = spec.head_sha.as_deref() else {
        return (None, 0);
    };
    let (head, sent) = match Graphql::new(&spec.api_url, token, policy.clone()) {
        Ok(graphql) => (
            tested_head(&graphql, &spec.owner, &spec.repo, &spec.head).await,
            graphql.requests_sent(),
        ),
        Err(err) => (Err(err.into()), 0),
    };
    let outcome = match head {
        Ok(Some(head)) if head.eq_ignore_ascii_case(tested) => None,
        Ok(head) => Some(superseded_outcome(&spec.head, tested, head)),
        Err(err) => Some(PromotionOutcome::Failed {
            reason: format!(
                "cannot check that {} still points at the tested commit {tested}: {err}",
                spec.head
            ),
        }),
    };
    (outcome, sent)
}

/// The outcome of a promotion whose branch moved past the tested commit.
pub(crate) fn superseded_outcome(
    branch: &str,
    tested: &str,
    head: Option<String>,
) -> PromotionOutcome {
    let now = match &head {
        Some(head) => format!("it points at {head} now"),
        None => "it no longer exists".to_owned(),
    };
    PromotionOutcome::Superseded {
        reason: format!(
            "{branch} moved past the tested commit {tested} ({now}): nothing was promoted; the newer commit needs an experiment of its own"
        ),
        tested: tested.to_owned(),
        head,
    }
}

/// One line for GitHub's checks list: the verdict and its reason, cut to GitHub's limit.
fn status_description(verdict: &OverallVerdict) -> String {
    let text = format!(
        "SLOs {}: {}",
        if verdict.pass {
            "satisfied"
        } else {
            "not satisfied"
        },
        verdict.reason
    );
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= MAX_STATUS_DESCRIPTION {
        text
    } else {
        let mut cut: String = text.chars().take(MAX_STATUS_DESCRIPTION - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_description_fits_githubs_limit() {
        let v = OverallVerdict {
            pass: false,
            reason: "x ".repeat(200),
        };
        let d = status_description(&v);
        assert_eq!(d.chars().count(), MAX_STATUS_DESCRIPTION);
        assert!(d.starts_with("SLOs not satisfied: x x"));
        let v = OverallVerdict {
            pass: true,
            reason: "every SLO is satisfied.".into(),
        };
        assert_eq!(
            status_description(&v),
            "SLOs satisfied: every SLO is satisfied."
        );
    }
}
