//! The `gitops` finish action: render the files from the result (handlebars templates, or
//! the standard output of a command such as `helm template`), then commit them as one
//! commit and open or update the pull request, as `slogate_github::gitops` does.
//!
//! Everything is rendered before anything is sent: a template that does not render or a
//! command that fails ends the action with nothing written. A rendered file holding a
//! GitHub token is refused, so a token cannot reach the repository through a command's
//! output.

use std::path::PathBuf;

use slogate_core::actions::{
    ActionKind, ActionRecord, GitopsRecord, GitopsSpec, Outcome, PlannedAction,
};
use slogate_core::result::ExperimentResult;
use slogate_github::gitops::{Message, RenderedFile};

use crate::exec::Secrets;
use crate::parts::{ActionFuture, ActionOutcome, FinishAction};

/// A `gitops` entry of `actions.finish` as a finish action.
pub struct GitopsAction<'s> {
    planned: PlannedAction<'s>,
    spec: &'s GitopsSpec,
    token_file: Option<PathBuf>,
    secrets: Secrets,
    dry_run: bool,
}

impl<'s> GitopsAction<'s> {
    /// The action `planned` describes, sending with the token in `token_file`; no rendered
    /// file may hold one of `secrets`.
    pub fn new(
        planned: PlannedAction<'s>,
        spec: &'s GitopsSpec,
        token_file: Option<PathBuf>,
        secrets: Secrets,
        dry_run: bool,
    ) -> Self {
        Self {
            planned,
            spec,
            token_file,
            secrets,
            dry_run,
        }
    }

    fn record(&self, outcome: Outcome, detail: String, gitops: GitopsRecord) -> ActionOutcome {
        eprintln!("slogate: {}: {outcome}: {detail}", self.planned.at);
        ActionOutcome(ActionRecord {
            kind: ActionKind::Gitops,
            condition: self.planned.condition.clone(),
            at: self.planned.at.clone(),
            outcome,
            detail,
            exec: None,
            pull_request: None,
            gitops: Some(gitops),
        })
    }

    fn empty_record(&self) -> GitopsRecord {
        slogate_github::gitops::record_of(self.spec, &[])
    }

    /// Every file, rendered, and the commit message.
    async fn render(
        &self,
        judged: &ExperimentResult,
    ) -> Result<(Vec<RenderedFile>, Message), String> {
        let ctx = crate::exec::template_context(judged);
        let at = format!("{}.gitops", self.planned.at);
        let mut files = Vec::with_capacity(self.spec.files.len());
        for (i, file) in self.spec.files.iter().enumerate() {
            let at = format!("{at}.files[{i}]");
            let contents = match (&file.template, &file.command) {
                (Some(template), _) => slogate_report::render_template(template, &ctx)
                    .map_err(|e| format!("{at}.template: {e}"))?
                    .into_bytes(),
                (None, Some(command)) => {
                    let rendered =
                        crate::exec::render_command(command, &ctx, &format!("{at}.command"))?;
                    eprintln!(
                        "slogate: {}: rendering {} with {}",
                        self.planned.at, file.path, command.cmd
                    );
                    crate::exec::capture(command, rendered, &self.secrets)
                        .await
                        .map_err(|e| format!("{at}.command: {e}"))?
                }
                (None, None) => return Err(format!("{at}: no template and no command")),
            };
            if self.secrets.found_in(&contents) {
                return Err(format!(
                    "{at}: the rendered {} holds a GitHub token; it is not committed",
                    file.path
                ));
            }
            files.push(RenderedFile {
                path: file.path.clone(),
                contents,
            });
        }
        let message = match &self.spec.message {
            Some(template) => slogate_report::render_template(template, &ctx)
                .map_err(|e| format!("{at}.message: {e}"))?,
            None => default_message(self.spec, judged),
        };
        Ok((files, Message::parse(&message)))
    }

    async fn execute(&self, judged: &ExperimentResult) -> ActionOutcome {
        let (files, message) = match self.render(judged).await {
            Ok(rendered) => rendered,
            Err(reason) => {
                return self.record(
                    Outcome::Failed,
                    format!("nothing committed: {reason}"),
                    self.empty_record(),
                );
            }
        };
        if self.dry_run {
            let record = slogate_github::gitops::record_of(self.spec, &files);
            let detail = format!(
                "dry run: nothing sent; would commit {} to {}/{} {} as {:?}",
                files
                    .iter()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.spec.owner,
                self.spec.repo,
                self.spec.branch,
                message.headline
            );
            return self.record(Outcome::Skipped, detail, record);
        }
        let Some(path) = self.token_file.as_deref() else {
            return self.record(
                Outcome::Failed,
                format!(
                    "no GitHub token: set {}.gitops.tokenFile in the spec or pass --token-file",
                    self.planned.at
                ),
                self.empty_record(),
            );
        };
        let token = match slogate_github::Token::from_file(path) {
            Ok(t) => t,
            Err(err) => {
                return self.record(
                    Outcome::Failed,
                    format!("{:#}", anyhow::Error::from(err)),
                    self.empty_record(),
                );
            }
        };
        let done = slogate_github::gitops::promote_gitops(
            self.spec,
            &files,
            &message,
            judged,
            &token,
            &slogate_github::RetryPolicy::default(),
        )
        .await;
        let mut outcome = self.record(done.outcome, done.detail, done.record);
        outcome.0.pull_request = done.pull_request;
        outcome
    }
}

/// The commit message when the spec gives none: the winner (or the verdict) and the
/// experiment, then the verdict's reason and the tested commit.
fn default_message(spec: &GitopsSpec, judged: &ExperimentResult) -> String {
    let what = judged
        .winner
        .as_ref()
        .filter(|w| w.found)
        .and_then(|w| w.name.clone())
        .unwrap_or_else(|| "the tested version".to_owned());
    let mut text = format!("slogate: promote {what} (experiment {})", judged.name);
    if let Some(verdict) = &judged.verdict {
        text.push_str(&format!(
            "\n\nSLOs {}: {}",
            if verdict.pass { "PASS" } else { "FAIL" },
            verdict.reason
        ));
    }
    if let Some(sha) = &spec.head_sha {
        text.push_str(&format!("\nTested commit: {sha}"));
    }
    text
}

impl FinishAction for GitopsAction<'_> {
    fn describe(&self) -> String {
        format!(
            "gitops commit to {}/{} {} ({})",
            self.spec.owner, self.spec.repo, self.spec.branch, self.planned.at
        )
    }

    fn run<'a>(&'a self, judged: &'a ExperimentResult) -> ActionFuture<'a> {
        Box::pin(self.execute(judged))
    }

    fn interrupted(&self, reason: String) -> ActionOutcome {
        self.record(
            Outcome::Interrupted,
            format!(
                "{reason}: the commit may or may not have been made; re-running finds it and makes no second one"
            ),
            self.empty_record(),
        )
    }
}
