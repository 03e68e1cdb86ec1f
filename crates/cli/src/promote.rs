//! Promotion after the verdict: where the pull request is opened.
//!
//! [`promote`] is called once per run when the spec has promotion settings, after the verdict
//! is known; its outcome is stored in the result document. The work is done by
//! `slogate-github`; this module reads its answer out to the user on stderr.

use std::path::Path;

use slogate_core::result::{ExperimentResult, PromotionOutcome};
use slogate_core::spec::ExperimentSpec;

/// Promotes the head branch by pull request, as the spec's `promotion` settings say, and
/// reports what happened. Never fails: a failure is an outcome, and the verdict stands.
///
/// `token_file` is the file holding the GitHub token (the flag `--token-file`, else the
/// spec's `promotion.tokenFile`). With `dry_run` nothing is sent.
pub async fn promote(
    spec: &ExperimentSpec,
    result: &ExperimentResult,
    token_file: Option<&Path>,
    dry_run: bool,
) -> PromotionOutcome {
    let Some(settings) = &spec.promotion else {
        return PromotionOutcome::Skipped {
            reason: "the spec has no promotion settings".to_owned(),
        };
    };
    let options = slogate_github::Options {
        dry_run,
        ..slogate_github::Options::default()
    };
    let promotion = slogate_github::promote_result(settings, result, token_file, &options).await;
    for warning in promotion.warnings() {
        eprintln!("slogate: warning: promotion: {warning}");
    }
    match &promotion.outcome {
        PromotionOutcome::Opened { number, url, .. } => {
            eprintln!("slogate: opened pull request #{number}: {url}")
        }
        PromotionOutcome::Updated { number, url, .. } => {
            eprintln!("slogate: updated pull request #{number}: {url}")
        }
        PromotionOutcome::Skipped { reason } => eprintln!("slogate: promotion skipped: {reason}"),
        PromotionOutcome::DryRun { title, body } => eprintln!(
            "slogate: dry run: the pull request {}:{} → {} that would be opened:\n\n# {title}\n\n{body}",
            settings.owner, settings.head, settings.base
        ),
        PromotionOutcome::Failed { reason } => {
            eprintln!("slogate: promotion failed (the SLO verdict stands): {reason}")
        }
        PromotionOutcome::Interrupted { reason } => {
            eprintln!("slogate: promotion interrupted (the SLO verdict stands): {reason}")
        }
    }
    if let Some(status) = promotion.commit_status() {
        match &status.error {
            None => eprintln!(
                "slogate: commit status {}: {} on {}",
                status.context, status.state, status.sha
            ),
            // The reason is already printed as a warning above.
            Some(_) => eprintln!(
                "slogate: commit status {}: {} on {} was not set",
                status.context, status.state, status.sha
            ),
        }
    }
    promotion.outcome
}

/// Checks that the promotion templates parse, so a typo is invalid input before any load is
/// sent rather than a failed promotion at the end.
pub fn check_templates(spec: &ExperimentSpec) -> anyhow::Result<()> {
    match &spec.promotion {
        Some(p) => slogate_github::check_templates(p).map_err(anyhow::Error::new),
        None => Ok(()),
    }
}
