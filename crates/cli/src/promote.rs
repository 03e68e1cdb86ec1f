//! Promotion after the verdict: where the pull request is opened.
//!
//! [`promote`] is called once per run when the spec has promotion settings, after the verdict
//! is known; its outcome is stored in the result document. The work is done by
//! `slogate-github`; this module reads its answer out to the user on stderr.

use std::path::Path;

use slogate_core::result::{ExperimentResult, PromotionOutcome};
use slogate_core::spec::{ExperimentSpec, PromotionSpec};

/// Promotes the head branch by pull request, as `settings` (the spec's `promotion`, or a
/// `pullRequest` finish action) say, and reports what happened. Never fails: a failure is an outcome, and the verdict stands.
///
/// `token_file` is the file holding the GitHub token (the flag `--token-file`, else the
/// spec's `promotion.tokenFile`). With `dry_run` nothing is sent.
pub async fn promote(
    settings: &PromotionSpec,
    result: &ExperimentResult,
    token_file: Option<&Path>,
    dry_run: bool,
) -> PromotionOutcome {
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
        PromotionOutcome::Superseded { reason, .. } => {
            eprintln!("slogate: promotion superseded (the SLO verdict stands): {reason}")
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

/// Checks that every template of the spec parses (the pull requests' title and body, the
/// commands' arguments and environment), so a typo is invalid input before any load is sent
/// rather than a failed action at the end. Every bad template is named at once.
pub fn check_templates(spec: &ExperimentSpec) -> anyhow::Result<()> {
    use slogate_core::actions::Action;
    let mut problems = Vec::new();
    for planned in spec.finish_actions() {
        match planned.action {
            Action::PullRequest(pr) => {
                if let Err(err) = slogate_github::check_templates(pr) {
                    // The error names the `promotion` field; an action's is under its entry.
                    let text = err.to_string();
                    problems.push(match text.strip_prefix("promotion.") {
                        Some(rest) if !planned.shorthand => {
                            format!("{}.pullRequest.{rest}", planned.at)
                        }
                        _ => text,
                    });
                }
            }
            Action::Exec(exec) => {
                for (at, template) in command_templates(exec, &format!("{}.exec", planned.at)) {
                    if let Err(err) = slogate_report::check_template(template) {
                        problems.push(format!("{at}: {err}"));
                    }
                }
            }
            Action::Gitops(gitops) => {
                let at = format!("{}.gitops", planned.at);
                let mut templates: Vec<(String, &String)> = Vec::new();
                for (i, file) in gitops.files.iter().enumerate() {
                    let at = format!("{at}.files[{i}]");
                    if let Some(t) = &file.template {
                        templates.push((format!("{at}.template"), t));
                    }
                    if let Some(command) = &file.command {
                        templates.extend(command_templates(command, &format!("{at}.command")));
                    }
                }
                for (field, t) in [
                    ("message", &gitops.message),
                    ("title", &gitops.title),
                    ("body", &gitops.body),
                ] {
                    if let Some(t) = t {
                        templates.push((format!("{at}.{field}"), t));
                    }
                }
                for (at, template) in templates {
                    if let Err(err) = slogate_report::check_template(template) {
                        problems.push(format!("{at}: {err}"));
                    }
                }
            }
        }
    }
    match problems.as_slice() {
        [] => Ok(()),
        [one] => anyhow::bail!("{one}"),
        many => anyhow::bail!(
            "{} templates do not parse:\n{}",
            many.len(),
            many.iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// A command's templates (its arguments, its environment values), each with its path.
fn command_templates<'s>(
    exec: &'s slogate_core::actions::ExecSpec,
    at: &str,
) -> Vec<(String, &'s String)> {
    let args = exec
        .args
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{at}.args[{i}]"), t));
    let env = exec.env.iter().map(|(k, t)| (format!("{at}.env.{k}"), t));
    args.chain(env).collect()
}
