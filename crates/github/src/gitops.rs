//! Promotion as ONE commit in the environment repository, through GitHub's GraphQL API.
//!
//! [`commit_files`] reads the branch's head and the blob ids at every rendered path in one
//! query, compares them with the rendered files' own git blob ids ([`blob_oid`]), and sends
//! only the files that differ in one `createCommitOnBranch` whose `expectedHeadOid` is the
//! head it read: a compare-and-swap. When another writer (CI) moved the branch between the
//! read and the commit, GitHub refuses with `STALE_DATA`; the new head is read and the same
//! files are committed onto it, at most [`CommitPlan::max_attempts`] times. Nothing is ever
//! force-pushed, so the other writer's change stays. A render that changes nothing makes no
//! commit.
//!
//! Before anything is written, the branch must still point at the commit that was tested
//! (`headSha`), or the promotion is superseded ([`tested_head`] does this check for the
//! pull-request promotion too).

use std::fmt::Write as _;

use sha1::{Digest as _, Sha1};

use slogate_core::actions::{GitopsFileRecord, GitopsRecord, GitopsSpec, Outcome};
use slogate_core::result::{ExperimentResult, OverallVerdict, PromotionOutcome};

use crate::client::{Client, describe, segment};
pub use crate::graphql::{GitopsError, Graphql, graphql_base, tested_head};
use crate::retry::RetryPolicy;
use crate::token::Token;

/// A file to commit: its path in the repository and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path in the repository (`envs/prod/values.yaml`).
    pub path: String,
    /// The bytes to write.
    pub contents: Vec<u8>,
}

/// Git's object id of a blob with these contents (SHA-1 of `blob <len>\0<contents>`), as
/// GitHub's `TreeEntry.oid` gives it for a file.
pub fn blob_oid(contents: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", contents.len()).as_bytes());
    hasher.update(contents);
    hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(40), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// What to commit where.
#[derive(Debug, Clone)]
pub struct CommitPlan<'a> {
    /// Owner of the repository.
    pub owner: &'a str,
    /// The repository.
    pub repo: &'a str,
    /// The branch committed to.
    pub branch: &'a str,
    /// The branch to create `branch` from when it does not exist.
    pub base: Option<&'a str>,
    /// The commit of `branch` that was tested: when the branch points elsewhere at the first
    /// read, nothing is committed.
    pub tested_sha: Option<&'a str>,
    /// The commit message's first line.
    pub headline: &'a str,
    /// The rest of the message (may be empty).
    pub body: &'a str,
    /// The files.
    pub files: &'a [RenderedFile],
    /// Commits tried at most (≥ 1).
    pub max_attempts: u32,
}

/// How [`commit_files`] ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// One commit with every changed file.
    Committed {
        /// The new commit.
        oid: String,
        /// Its web URL.
        url: String,
    },
    /// Every file already had the rendered content: no commit.
    Unchanged,
    /// The branch no longer points at the tested commit: nothing was committed.
    Superseded {
        /// Where it points now; `None` when the branch is gone.
        head: Option<String>,
    },
}

/// Everything [`commit_files`] did, also when it failed.
#[derive(Debug)]
pub struct CommitReport {
    /// How it ended.
    pub outcome: Result<CommitOutcome, GitopsError>,
    /// The head last read (the new commit's parent).
    pub parent: Option<String>,
    /// For each file of the plan, whether it differed from the branch at the last read.
    pub changed: Vec<bool>,
    /// Commits tried.
    pub attempts: u32,
    /// Heads other writers moved the branch to between a read and a commit, oldest first.
    pub moved_by_others: Vec<String>,
}

/// Commits the plan's files to its branch as one commit, as the module says.
pub async fn commit_files(graphql: &Graphql, plan: &CommitPlan<'_>) -> CommitReport {
    let mut report = CommitReport {
        outcome: Ok(CommitOutcome::Unchanged),
        parent: None,
        changed: vec![false; plan.files.len()],
        attempts: 0,
        moved_by_others: Vec::new(),
    };
    report.outcome = commit_loop(graphql, plan, &mut report).await;
    report
}

async fn commit_loop(
    graphql: &Graphql,
    plan: &CommitPlan<'_>,
    report: &mut CommitReport,
) -> Result<CommitOutcome, GitopsError> {
    let repository = format!("{}/{}", plan.owner, plan.repo);
    let paths: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
    let wanted: Vec<String> = plan.files.iter().map(|f| blob_oid(&f.contents)).collect();
    let mut created = false;
    let mut create_error = None;
    loop {
        let state = graphql
            .read(plan.owner, plan.repo, plan.branch, plan.base, &paths)
            .await?;
        let first_read = report.attempts == 0 && report.parent.is_none();
        let head = match (state.head, plan.tested_sha) {
            (None, Some(_)) if first_read => {
                return Ok(CommitOutcome::Superseded { head: None });
            }
            (Some(head), Some(tested)) if first_read && !head.eq_ignore_ascii_case(tested) => {
                return Ok(CommitOutcome::Superseded { head: Some(head) });
            }
            (Some(head), _) => head,
            (None, _) => {
                let Some(base) = plan.base else {
                    return Err(GitopsError::NoBranch {
                        repository,
                        branch: plan.branch.to_owned(),
                    });
                };
                let Some(base_oid) = state.base else {
                    return Err(GitopsError::NoBase {
                        repository,
                        branch: plan.branch.to_owned(),
                        base: base.to_owned(),
                    });
                };
                if created {
                    // Created, yet not there: do not loop on it.
                    return Err(create_error.take().unwrap_or(GitopsError::NoBranch {
                        repository,
                        branch: plan.branch.to_owned(),
                    }));
                }
                tracing::info!(
                    branch = plan.branch,
                    base,
                    "creating the branch from its base"
                );
                match graphql
                    .create_branch(&state.repository_id, plan.branch, &base_oid)
                    .await
                {
                    Ok(()) => {}
                    // Perhaps another writer created it meanwhile: the next read tells.
                    Err(err @ GitopsError::Graphql { .. }) => create_error = Some(err),
                    Err(err) => return Err(err),
                }
                created = true;
                continue;
            }
        };
        if report.parent.as_deref().is_some_and(|p| p != head) {
            report.moved_by_others.push(head.clone());
        }
        report.parent = Some(head.clone());
        report.changed = state
            .blobs
            .iter()
            .zip(&wanted)
            .map(|(have, want)| have.as_deref() != Some(want.as_str()))
            .collect();
        let changed: Vec<(&str, &[u8])> = plan
            .files
            .iter()
            .zip(&report.changed)
            .filter(|(_, c)| **c)
            .map(|(f, _)| (f.path.as_str(), f.contents.as_slice()))
            .collect();
        if changed.is_empty() {
            return Ok(CommitOutcome::Unchanged);
        }
        if report.attempts >= plan.max_attempts {
            return Err(GitopsError::KeptMoving {
                branch: plan.branch.to_owned(),
                attempts: report.attempts,
                head,
            });
        }
        report.attempts += 1;
        match graphql
            .commit(
                &repository,
                plan.branch,
                &head,
                (plan.headline, plan.body),
                &changed,
            )
            .await
        {
            Ok((oid, url)) => return Ok(CommitOutcome::Committed { oid, url }),
            Err(err) if err.is_stale() => {
                tracing::warn!(
                    branch = plan.branch,
                    expected = %head,
                    attempt = report.attempts,
                    "another writer moved the branch; reading its new head"
                );
            }
            Err(err) => return Err(err),
        }
    }
}

/// Everything a `gitops` promotion did: what the result's action record holds.
#[derive(Debug, Clone, PartialEq)]
pub struct GitopsPromotion {
    /// How the action ended.
    pub outcome: Outcome,
    /// One line saying what happened.
    pub detail: String,
    /// The commit side.
    pub record: GitopsRecord,
    /// The pull request's outcome, when the spec has a base.
    pub pull_request: Option<PromotionOutcome>,
}

/// The commit message, already rendered: the first line and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The first line.
    pub headline: String,
    /// The rest (may be empty).
    pub body: String,
}

impl Message {
    /// Splits a rendered message at its first line break.
    pub fn parse(text: &str) -> Message {
        let text = text.trim();
        let (headline, body) = text.split_once('\n').unwrap_or((text, ""));
        Message {
            headline: headline.trim().to_owned(),
            body: body.trim().to_owned(),
        }
    }
}

/// The record of a `gitops` action before anything is sent: where it commits, what was
/// tested, and each rendered file's size (none changed yet).
pub fn record_of(spec: &GitopsSpec, files: &[RenderedFile]) -> GitopsRecord {
    GitopsRecord {
        repository: format!("{}/{}", spec.owner, spec.repo),
        branch: spec.branch.clone(),
        tested_sha: spec.head_sha.clone(),
        files: files
            .iter()
            .map(|f| GitopsFileRecord {
                path: f.path.clone(),
                bytes: f.contents.len() as u64,
                changed: false,
            })
            .collect(),
        ..GitopsRecord::default()
    }
}

/// Runs a `gitops` action whose files are rendered: one commit ([`commit_files`]), the
/// commit statuses, then the pull request `branch` → `base` as the pull-request promotion
/// opens or updates it. Never fails: every way it ends is a [`GitopsPromotion`].
pub async fn promote_gitops(
    spec: &GitopsSpec,
    files: &[RenderedFile],
    message: &Message,
    result: &ExperimentResult,
    token: &Token,
    policy: &RetryPolicy,
) -> GitopsPromotion {
    let mut record = record_of(spec, files);
    let failed = |record: GitopsRecord, detail: String| GitopsPromotion {
        outcome: Outcome::Failed,
        detail,
        record,
        pull_request: None,
    };
    let graphql = match Graphql::new(&spec.api_url, token, policy.clone()) {
        Ok(g) => g,
        Err(err) => return failed(record, describe(&err)),
    };
    let plan = CommitPlan {
        owner: &spec.owner,
        repo: &spec.repo,
        branch: &spec.branch,
        base: spec.base.as_deref(),
        tested_sha: spec.head_sha.as_deref(),
        headline: &message.headline,
        body: &message.body,
        files,
        max_attempts: spec.max_attempts.max(1),
    };
    let report = commit_files(&graphql, &plan).await;
    record.parent = report.parent.clone();
    record.attempts = report.attempts;
    record.moved_by_others = report.moved_by_others.clone();
    for (file, changed) in record.files.iter_mut().zip(&report.changed) {
        file.changed = *changed;
    }
    let changed: Vec<&str> = record
        .files
        .iter()
        .filter(|f| f.changed)
        .map(|f| f.path.as_str())
        .collect();
    let (outcome, mut detail, target_url) = match report.outcome {
        Err(err) => return failed(record, format!("nothing committed: {}", describe(&err))),
        Ok(CommitOutcome::Superseded { head }) => {
            let tested = spec.head_sha.clone().unwrap_or_default();
            let pr = crate::promote::superseded_outcome(&spec.branch, &tested, head);
            let PromotionOutcome::Superseded { reason, .. } = &pr else {
                unreachable!("superseded_outcome makes a Superseded outcome");
            };
            return GitopsPromotion {
                outcome: Outcome::Superseded,
                detail: reason.clone(),
                record,
                pull_request: None,
            };
        }
        Ok(CommitOutcome::Unchanged) => (
            Outcome::Skipped,
            format!(
                "no commit: {} already has every rendered file as rendered ({})",
                spec.branch,
                record
                    .files
                    .iter()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        ),
        Ok(CommitOutcome::Committed { oid, url }) => {
            let onto = match record.moved_by_others.len() {
                0 => String::new(),
                n => format!(
                    ", after {n} retr{} onto a head another writer moved",
                    if n == 1 { "y" } else { "ies" }
                ),
            };
            let detail = format!(
                "committed {} to {} as {oid} ({} of {} files changed{onto})",
                changed.join(", "),
                spec.branch,
                changed.len(),
                record.files.len()
            );
            record.commit = Some(oid);
            record.url = Some(url.clone());
            (Outcome::Done, detail, Some(url))
        }
    };
    tracing::info!(%detail, "gitops");
    let verdict = result.verdict.clone().unwrap_or(OverallVerdict {
        pass: false,
        reason: "the experiment has no verdict".to_owned(),
    });
    let rest = match Client::new(&spec.api_url, token, policy.clone()) {
        Ok(c) => Some(c),
        Err(err) => {
            detail.push_str(&format!("; no commit status: {}", describe(&err)));
            None
        }
    };
    if spec.commit_status
        && let Some(rest) = &rest
    {
        let repo = format!("/repos/{}/{}", segment(&spec.owner), segment(&spec.repo));
        let url = target_url.clone().unwrap_or_default();
        let mut shas: Vec<&str> = spec.head_sha.as_deref().into_iter().collect();
        // The commit made carries the verdict only when nothing untested came between the
        // tested commit and it: else branch protection keeps its pull request waiting.
        let clean = record.moved_by_others.is_empty()
            && match (&spec.head_sha, &record.parent) {
                (Some(tested), Some(parent)) => tested.eq_ignore_ascii_case(parent),
                _ => true,
            };
        if let Some(commit) = record.commit.as_deref()
            && clean
        {
            shas.push(commit);
        }
        for sha in shas {
            let status = crate::promote::set_commit_status(rest, &repo, sha, &verdict, &url).await;
            if let Some(err) = &status.error {
                detail.push_str(&format!("; {err}"));
            }
            record.commit_statuses.push(status);
        }
    }
    let Some(pr_spec) = spec.pull_request() else {
        return GitopsPromotion {
            outcome,
            detail,
            record,
            pull_request: None,
        };
    };
    let content = match crate::render::pr_content(&pr_spec, result) {
        Ok(c) => c,
        Err(err) => {
            let reason = format!("cannot render the pull request: {err}");
            return GitopsPromotion {
                outcome: Outcome::Failed,
                detail: format!("{detail}; {reason}"),
                record,
                pull_request: Some(PromotionOutcome::Failed { reason }),
            };
        }
    };
    let promotion = crate::promote::promote(&pr_spec, &content, &verdict, token, policy).await;
    let outcome = match &promotion.outcome {
        PromotionOutcome::Opened { number, url, .. } => {
            detail.push_str(&format!("; opened pull request #{number} {url}"));
            outcome
        }
        PromotionOutcome::Updated { number, url, .. } => {
            detail.push_str(&format!("; updated pull request #{number} {url}"));
            outcome
        }
        PromotionOutcome::Failed { reason } => {
            detail.push_str(&format!("; the pull request failed: {reason}"));
            Outcome::Failed
        }
        other => {
            detail.push_str(&format!("; pull request: {other:?}"));
            outcome
        }
    };
    GitopsPromotion {
        outcome,
        detail,
        record,
        pull_request: Some(promotion.outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            blob_oid(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        // `git hash-object /dev/null`
        assert_eq!(blob_oid(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }
}
