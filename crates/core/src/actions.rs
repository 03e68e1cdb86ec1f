//! Finish actions: what an experiment does once its verdict is final, in the order the spec
//! lists them, each when its `if` holds. The spec's side ([`ActionsSpec`], [`FinishSpec`],
//! [`Condition`], [`ExecSpec`]) with its validation, and the result's side
//! ([`ActionRecord`]): what each action did, or why it did not run.
//!
//! The v1alpha1 `promotion:` block is shorthand for one `pullRequest` action with `if: pass`
//! (`if: always` with `when: always`): [`ExperimentSpec::finish_actions`] lists both.
//!
//! Templates are handlebars; their syntax is checked where handlebars lives (the binary
//! refuses a spec whose templates do not parse), since this crate has no template engine.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::quote::quote;
use crate::result::{ExperimentResult, PromotionOutcome};
use crate::spec::{ExperimentSpec, FieldError, PromoteWhen, PromotionSpec};

/// The spec's `actions` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionsSpec {
    /// Run in order once the verdict is final (stage `Finishing` while they run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finish: Vec<FinishSpec>,
}

/// One entry of `actions.finish`: a condition and exactly one kind of action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinishSpec {
    /// When the action runs; default `pass`.
    #[serde(default, rename = "if")]
    pub condition: Condition,
    /// Open or update a pull request (the fields of the `promotion` block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PromotionSpec>,
    /// Run a command, without a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecSpec>,
}

impl FinishSpec {
    /// The action this entry describes; `None` when it names no kind or more than one (a
    /// validated spec has exactly one).
    pub fn action(&self) -> Option<Action<'_>> {
        match (&self.pull_request, &self.exec) {
            (Some(pr), None) => Some(Action::PullRequest(pr)),
            (None, Some(exec)) => Some(Action::Exec(exec)),
            _ => None,
        }
    }
}

/// The kind of one finish action, borrowed from the spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'s> {
    /// A pull request.
    PullRequest(&'s PromotionSpec),
    /// A command.
    Exec(&'s ExecSpec),
}

impl Action<'_> {
    /// Its kind, as the result records it.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::PullRequest(_) => ActionKind::PullRequest,
            Action::Exec(_) => ActionKind::Exec,
        }
    }
}

/// A command run without a shell: `cmd` looked up in `PATH` unless it is a path, each of
/// `args` and each `env` value a handlebars template rendered from the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecSpec {
    /// The program (`helm`, `/usr/local/bin/helm`).
    pub cmd: String,
    /// Its arguments, each a template (`--values=./{{promote}}-values.yaml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The longest it may run; past it the process is killed and the action fails.
    /// Default 5m.
    #[serde(
        default = "default_exec_timeout",
        with = "crate::text_duration::duration"
    )]
    pub timeout: Duration,
    /// Variables added to the inherited environment, each value a template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// The default timeout of an `exec` action, 5 minutes.
pub fn default_exec_timeout() -> Duration {
    Duration::from_secs(300)
}

/// When a finish action runs: the spec's `if`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Condition {
    /// When the overall verdict is pass (the default).
    #[default]
    Pass,
    /// When the overall verdict is fail (e.g. to promote the baseline).
    Fail,
    /// Whatever the verdict.
    Always,
    /// When the Canary winner is this version.
    Winner(String),
}

/// A written `if` that is none of `pass`, `fail`, `always`, `winner=NAME`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a condition: write pass, fail, always or winner=NAME", quote(.0))]
pub struct ConditionError(pub String);

impl std::str::FromStr for Condition {
    type Err = ConditionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "pass" => Ok(Condition::Pass),
            "fail" => Ok(Condition::Fail),
            "always" => Ok(Condition::Always),
            other => match other.strip_prefix("winner=") {
                Some(name) if !name.trim().is_empty() => {
                    Ok(Condition::Winner(name.trim().to_owned()))
                }
                _ => Err(ConditionError(text.to_owned())),
            },
        }
    }
}

impl TryFrom<String> for Condition {
    type Error = ConditionError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Condition> for String {
    fn from(c: Condition) -> String {
        c.to_string()
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Pass => f.write_str("pass"),
            Condition::Fail => f.write_str("fail"),
            Condition::Always => f.write_str("always"),
            Condition::Winner(name) => write!(f, "winner={name}"),
        }
    }
}

impl Condition {
    /// Whether the action runs for this judged result: `Ok(())` when it does, else the
    /// reason it is skipped (`if: pass, but the verdict is FAIL`).
    pub fn holds(&self, result: &ExperimentResult) -> Result<(), String> {
        let Some(verdict) = &result.verdict else {
            return Err(format!("if: {self}, but the experiment has no verdict"));
        };
        let word = if verdict.pass { "PASS" } else { "FAIL" };
        match self {
            Condition::Always => Ok(()),
            Condition::Pass if verdict.pass => Ok(()),
            Condition::Fail if !verdict.pass => Ok(()),
            Condition::Pass | Condition::Fail => {
                Err(format!("if: {self}, but the verdict is {word}"))
            }
            Condition::Winner(name) => match &result.winner {
                Some(w) if w.found && w.name.as_deref() == Some(name.as_str()) => Ok(()),
                Some(w) if w.found => Err(format!(
                    "if: {self}, but the winner is {}",
                    w.name.as_deref().unwrap_or("unnamed")
                )),
                _ => Err(format!("if: {self}, but no winner was found")),
            },
        }
    }
}

/// One finish action as the run holds it: its place in the spec, its condition and kind.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAction<'s> {
    /// Where it is written, for messages (`promotion`, `actions.finish[1]`).
    pub at: String,
    /// When it runs.
    pub condition: Condition,
    /// What it does.
    pub action: Action<'s>,
    /// True for the `promotion` block: its outcome is also the result's `promotion`.
    pub shorthand: bool,
}

impl ExperimentSpec {
    /// Every finish action in the order they run: the `promotion` block first (as a
    /// `pullRequest` action with `if: pass`, or `always` when its `when` is always), then
    /// `actions.finish`. Entries without exactly one kind (refused by validation) are left out.
    pub fn finish_actions(&self) -> Vec<PlannedAction<'_>> {
        let mut planned = Vec::new();
        if let Some(pr) = &self.promotion {
            planned.push(PlannedAction {
                at: "promotion".to_owned(),
                condition: match pr.when {
                    PromoteWhen::Pass => Condition::Pass,
                    PromoteWhen::Always => Condition::Always,
                },
                action: Action::PullRequest(pr),
                shorthand: true,
            });
        }
        for (i, entry) in self.actions.iter().flat_map(|a| &a.finish).enumerate() {
            if let Some(action) = entry.action() {
                planned.push(PlannedAction {
                    at: format!("actions.finish[{i}]"),
                    condition: entry.condition.clone(),
                    action,
                    shorthand: false,
                });
            }
        }
        planned
    }
}

/// The rules of the `actions` section; problems are added to `out`.
pub(crate) fn validate(spec: &ExperimentSpec, out: &mut Vec<FieldError>) {
    let Some(actions) = &spec.actions else {
        return;
    };
    for (i, entry) in actions.finish.iter().enumerate() {
        let at = format!("actions.finish[{i}]");
        match (&entry.pull_request, &entry.exec) {
            (None, None) => add(
                out,
                at.clone(),
                "names no action: give one of pullRequest, exec".to_owned(),
            ),
            (Some(_), Some(_)) => add(
                out,
                at.clone(),
                "names two actions (pullRequest and exec): one entry is one action; give each its own entry".to_owned(),
            ),
            _ => {}
        }
        if let Condition::Winner(name) = &entry.condition
            && !spec.versions.iter().any(|v| &v.name == name)
        {
            let known: Vec<String> = spec.versions.iter().map(|v| quote(&v.name)).collect();
            add(
                out,
                format!("{at}.if"),
                format!(
                    "winner={name}: no version is named {} (versions: {})",
                    quote(name),
                    known.join(", ")
                ),
            );
        }
        if let Some(pr) = &entry.pull_request {
            let mut problems = Vec::new();
            crate::spec::check_promotion(pr, &format!("{at}.pullRequest"), &mut problems);
            out.append(&mut problems);
            if pr.when == PromoteWhen::Always {
                out.push(FieldError {
                    path: format!("{at}.pullRequest.when"),
                    reason: "an action runs when its `if` holds: write `if: always` on the entry instead".to_owned(),
                });
            }
        }
        if let Some(exec) = &entry.exec {
            let at = format!("{at}.exec");
            if exec.cmd.trim().is_empty() {
                out.push(FieldError {
                    path: format!("{at}.cmd"),
                    reason: "empty: name the program to run (e.g. helm)".to_owned(),
                });
            }
            if exec.timeout.is_zero() {
                out.push(FieldError {
                    path: format!("{at}.timeout"),
                    reason: "must be longer than 0s (e.g. 5m)".to_owned(),
                });
            }
            for key in exec.env.keys() {
                if key.is_empty() || key.contains('=') || key.contains('\0') {
                    out.push(FieldError {
                        path: format!("{at}.env"),
                        reason: format!("{} is not an environment variable name", quote(key)),
                    });
                }
            }
        }
    }
}

fn add(out: &mut Vec<FieldError>, path: String, reason: String) {
    out.push(FieldError { path, reason });
}

/// What kind of action a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    /// A pull request.
    PullRequest,
    /// A command.
    Exec,
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionKind::PullRequest => "pullRequest",
            ActionKind::Exec => "exec",
        })
    }
}

/// How a finish action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Not started yet: an action before it is under way (only while the run is `Finishing`).
    Pending,
    /// Under way (only while the run is `Finishing`).
    Running,
    /// It ran and did what it was for.
    Done,
    /// It did not run (its `if` did not hold, a dry run, nothing to do).
    Skipped,
    /// It ran and failed; the SLO verdict stands.
    Failed,
    /// The run was stopped while it was under way.
    Interrupted,
    /// What was tested is no longer what would be promoted (the head moved on).
    Superseded,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pending => "pending",
            Outcome::Running => "running",
            Outcome::Done => "done",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Superseded => "superseded",
        })
    }
}

/// What one finish action did, in the result's `actions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// Its kind.
    pub kind: ActionKind,
    /// Its condition, as written (`pass`, `winner=candidate`).
    #[serde(rename = "if")]
    pub condition: Condition,
    /// Where it is in the spec (`promotion`, `actions.finish[0]`).
    pub at: String,
    /// How it ended.
    pub outcome: Outcome,
    /// One line saying what happened or why it was skipped.
    pub detail: String,
    /// The command's run, for `exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecRecord>,
    /// The pull request's outcome, for `pullRequest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PromotionOutcome>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRecord {
    /// The program and its rendered arguments, as run.
    pub command: Vec<String>,
    /// The exit status; absent when it did not exit by itself (killed, never started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// How long it ran, in seconds.
    pub duration_seconds: f64,
    /// The end of its standard output.
    pub stdout: OutputTail,
    /// The end of its standard error.
    pub stderr: OutputTail,
}

/// The end of an output stream, bounded: what was written last, and how much before it was cut.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputTail {
    /// The last bytes written (lossy UTF-8), at most [`OUTPUT_TAIL_BYTES`].
    pub text: String,
    /// Bytes written in all.
    pub bytes: u64,
    /// Bytes cut from the start; 0 when `text` is all of it.
    pub cut_bytes: u64,
}

/// How much of each output stream of a command the result keeps.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// A record for an action that has not ended: `Pending` (not started) or `Running`.
pub fn unfinished(planned: &PlannedAction<'_>, outcome: Outcome) -> ActionRecord {
    let detail = match outcome {
        Outcome::Running => "under way",
        _ => "waiting for the actions before it",
    };
    ActionRecord {
        outcome,
        ..skipped(planned, detail)
    }
}

/// A record for an action that did not run.
pub fn skipped(planned: &PlannedAction<'_>, reason: impl Into<String>) -> ActionRecord {
    ActionRecord {
        kind: planned.action.kind(),
        condition: planned.condition.clone(),
        at: planned.at.clone(),
        outcome: Outcome::Skipped,
        detail: reason.into(),
        exec: None,
        pull_request: None,
    }
}

/// A pull request's outcome as an action record.
pub fn pull_request_record(planned: &PlannedAction<'_>, outcome: PromotionOutcome) -> ActionRecord {
    let (kind, detail) = match &outcome {
        PromotionOutcome::Opened { number, url, .. } => (
            Outcome::Done,
            format!("opened pull request #{number} {url}"),
        ),
        PromotionOutcome::Updated { number, url, .. } => (
            Outcome::Done,
            format!("updated pull request #{number} {url}"),
        ),
        PromotionOutcome::Skipped { reason } => (Outcome::Skipped, reason.clone()),
        PromotionOutcome::DryRun { title, .. } => (
            Outcome::Skipped,
            format!(
                "dry run: nothing sent; the pull request would be {}",
                quote(title)
            ),
        ),
        PromotionOutcome::Failed { reason } => (Outcome::Failed, reason.clone()),
        PromotionOutcome::Interrupted { reason } => (Outcome::Interrupted, reason.clone()),
    };
    ActionRecord {
        kind: ActionKind::PullRequest,
        condition: planned.condition.clone(),
        at: planned.at.clone(),
        outcome: kind,
        detail,
        exec: None,
        pull_request: Some(outcome),
    }
}
