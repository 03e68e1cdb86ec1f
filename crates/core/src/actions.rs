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
    /// Commit rendered files to a branch as one commit, then open or update its pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitopsSpec>,
}

impl FinishSpec {
    /// The action this entry describes; `None` when it names no kind or more than one (a
    /// validated spec has exactly one).
    pub fn action(&self) -> Option<Action<'_>> {
        match (&self.pull_request, &self.exec, &self.gitops) {
            (Some(pr), None, None) => Some(Action::PullRequest(pr)),
            (None, Some(exec), None) => Some(Action::Exec(exec)),
            (None, None, Some(gitops)) => Some(Action::Gitops(gitops)),
            _ => None,
        }
    }

    /// The kinds this entry names, in the spec's words.
    fn kinds(&self) -> Vec<&'static str> {
        [
            self.pull_request.as_ref().map(|_| "pullRequest"),
            self.exec.as_ref().map(|_| "exec"),
            self.gitops.as_ref().map(|_| "gitops"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The kind of one finish action, borrowed from the spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'s> {
    /// A pull request.
    PullRequest(&'s PromotionSpec),
    /// A command.
    Exec(&'s ExecSpec),
    /// One commit of rendered files, then a pull request.
    Gitops(&'s GitopsSpec),
}

impl Action<'_> {
    /// Its kind, as the result records it.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::PullRequest(_) => ActionKind::PullRequest,
            Action::Exec(_) => ActionKind::Exec,
            Action::Gitops(_) => ActionKind::Gitops,
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

/// A `gitops` action: files rendered from the result, committed to `branch` of `owner/repo`
/// as ONE commit through GitHub's GraphQL `createCommitOnBranch` with `expectedHeadOid`
/// (compare-and-swap; never a force-push), then the pull request `branch` → `base`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitopsSpec {
    /// Owner of the environment repository.
    pub owner: String,
    /// The environment repository.
    pub repo: String,
    /// The branch the commit goes to (the pull request's head). Created from `base` when it
    /// does not exist.
    pub branch: String,
    /// The branch the pull request merges into; without it the commit is the promotion and
    /// no pull request is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The commit of `branch` that was deployed and tested: if `branch` moved past it before
    /// the promotion starts, the action is `superseded` and nothing is committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// The files to write, each rendered from the result.
    pub files: Vec<GitopsFile>,
    /// Handlebars template of the commit message (first line the headline). Default:
    /// `slogate: promote WINNER (experiment NAME)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Commits tried at most when another writer moves the branch between read and commit
    /// (each retry re-reads the new head). Default 4: the first and 3 retries.
    #[serde(default = "default_gitops_attempts")]
    pub max_attempts: u32,
    /// File holding the token (the mounted Secret's key `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<std::path::PathBuf>,
    /// GitHub API base URL (REST); GraphQL is beside it (`/graphql`, or `/api/graphql` on
    /// GitHub Enterprise's `/api/v3`).
    #[serde(default = "crate::spec::default_api_url")]
    pub api_url: String,
    /// Labels to add to the pull request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// GitHub logins asked to review the pull request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviewers: Vec<String>,
    /// Handlebars template of the pull request title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Handlebars template of the pull request body; default: the markdown report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Set the commit status `slogate/slo` on the tested commit (`headSha`) and on the
    /// commit made, when nothing untested came between them. Default true.
    #[serde(default = "default_true")]
    pub commit_status: bool,
}

impl GitopsSpec {
    /// The pull request `branch` → `base` this action opens, when it has a base. Its commit
    /// status is the action's own, so the pull request sets none.
    pub fn pull_request(&self) -> Option<PromotionSpec> {
        let base = self.base.as_ref()?;
        Some(PromotionSpec {
            token_file: self.token_file.clone(),
            api_url: self.api_url.clone(),
            labels: self.labels.clone(),
            reviewers: self.reviewers.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            commit_status: false,
            ..PromotionSpec::new(&self.owner, &self.repo, base, &self.branch)
        })
    }
}

/// One file of a `gitops` action: its path in the repository and where its content comes
/// from, exactly one of `template` and `command`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitopsFile {
    /// Path in the repository (`envs/prod/values.yaml`), relative, without `..`.
    pub path: String,
    /// A handlebars template rendered from the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A command whose standard output is the content (`helm template ...`), run without a
    /// shell, its arguments rendered as an `exec` action's are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<ExecSpec>,
}

/// The default number of commit attempts of a `gitops` action.
pub fn default_gitops_attempts() -> u32 {
    4
}

fn default_true() -> bool {
    true
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
        match entry.kinds().as_slice() {
            [] => add(
                out,
                at.clone(),
                "names no action: give one of pullRequest, exec, gitops".to_owned(),
            ),
            [_] => {}
            many => add(
                out,
                at.clone(),
                format!(
                    "names {} actions ({}): one entry is one action; give each its own entry",
                    if many.len() == 2 { "two" } else { "three" },
                    many.join(" and ")
                ),
            ),
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
            check_exec(exec, &format!("{at}.exec"), out);
        }
        if let Some(gitops) = &entry.gitops {
            check_gitops(gitops, &format!("{at}.gitops"), out);
        }
    }
}

/// The rules of a command (an `exec` action, a `gitops` file's `command`).
fn check_exec(exec: &ExecSpec, at: &str, out: &mut Vec<FieldError>) {
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

/// The rules of a `gitops` action.
fn check_gitops(g: &GitopsSpec, at: &str, out: &mut Vec<FieldError>) {
    for (field, value) in [
        ("owner", &g.owner),
        ("repo", &g.repo),
        ("branch", &g.branch),
    ] {
        if value.trim().is_empty() {
            add(out, format!("{at}.{field}"), "must not be empty".to_owned());
        }
    }
    if let Some(base) = &g.base {
        if base.trim().is_empty() {
            add(
                out,
                format!("{at}.base"),
                "must not be empty; leave it out to commit without a pull request".to_owned(),
            );
        } else if *base == g.branch {
            add(
                out,
                format!("{at}.base"),
                format!(
                    "{} is also the branch committed to: a pull request needs two branches",
                    quote(base)
                ),
            );
        }
    }
    if let Some(pr) = g.pull_request() {
        // The pull request's own rules (apiUrl, tokenFile, labels, title...), at this path.
        let mut problems = Vec::new();
        crate::spec::check_promotion(&pr, at, &mut problems);
        let mut seen: Vec<String> = out.iter().map(|p| p.path.clone()).collect();
        for p in problems {
            // `head` is this action's `branch`, checked above.
            let path = p
                .path
                .replace(&format!("{at}.head"), &format!("{at}.branch"));
            if !seen.contains(&path) {
                seen.push(path.clone());
                out.push(FieldError { path, ..p });
            }
        }
    } else {
        let pr = PromotionSpec {
            api_url: g.api_url.clone(),
            token_file: g.token_file.clone(),
            ..PromotionSpec::new("o", "r", "b", "h")
        };
        crate::spec::check_promotion(&pr, at, out);
    }
    if let Some(sha) = &g.head_sha {
        crate::spec::check_commit_sha(&format!("{at}.headSha"), sha, out);
    }
    if g.max_attempts == 0 || g.max_attempts > 10 {
        add(
            out,
            format!("{at}.maxAttempts"),
            format!("{} is outside 1..=10", g.max_attempts),
        );
    }
    if g.message.as_ref().is_some_and(|m| m.trim().is_empty()) {
        add(
            out,
            format!("{at}.message"),
            "must not be empty; leave it out for the default".to_owned(),
        );
    }
    if g.files.is_empty() {
        add(
            out,
            format!("{at}.files"),
            "at least one file is required: give path and template (or command)".to_owned(),
        );
    }
    let mut paths = std::collections::HashSet::new();
    for (i, file) in g.files.iter().enumerate() {
        let at = format!("{at}.files[{i}]");
        if let Some(reason) = repository_path_problem(&file.path) {
            add(out, format!("{at}.path"), reason);
        } else if !paths.insert(file.path.as_str()) {
            add(
                out,
                format!("{at}.path"),
                format!(
                    "{} is written by an earlier file; each path once",
                    quote(&file.path)
                ),
            );
        }
        match (&file.template, &file.command) {
            (None, None) => add(
                out,
                at.clone(),
                "gives no content: give template or command".to_owned(),
            ),
            (Some(_), Some(_)) => add(
                out,
                at.clone(),
                "gives both template and command: give one".to_owned(),
            ),
            (_, Some(command)) => check_exec(command, &format!("{at}.command"), out),
            _ => {}
        }
    }
}

/// Why `path` cannot name a file in a repository, if it cannot.
fn repository_path_problem(path: &str) -> Option<String> {
    if path.trim().is_empty() {
        return Some("must not be empty".to_owned());
    }
    if path.starts_with('/') {
        return Some(format!(
            "{} is absolute: give the path inside the repository (envs/prod/values.yaml)",
            quote(path)
        ));
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == ".." || part == ".git")
    {
        return Some(format!(
            "{} has an empty, `.`, `..` or `.git` part: give a plain path inside the repository",
            quote(path)
        ));
    }
    if path.contains('\0') {
        return Some("must not contain a NUL byte".to_owned());
    }
    None
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
    /// A commit of rendered files, then a pull request.
    Gitops,
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionKind::PullRequest => "pullRequest",
            ActionKind::Exec => "exec",
            ActionKind::Gitops => "gitops",
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
    /// The pull request's outcome, for `pullRequest` (and `gitops` with a base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PromotionOutcome>,
    /// The commit, for `gitops`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitopsRecord>,
}

/// What a `gitops` action did in the repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitopsRecord {
    /// `owner/repo`.
    pub repository: String,
    /// The branch committed to.
    pub branch: String,
    /// The tested commit the spec named (`headSha`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tested_sha: Option<String>,
    /// The head the branch pointed at when it was last read (the new commit's parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The commit made; absent when none was (unchanged, superseded, failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Its web URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Every rendered file, with its size and whether the commit changed it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<GitopsFileRecord>,
    /// Commits tried (a retry follows another writer's move of the branch).
    pub attempts: u32,
    /// Heads other writers moved the branch to between a read and a commit, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved_by_others: Vec<String>,
    /// The commit statuses set (on the tested commit, on the commit made).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commit_statuses: Vec<crate::result::CommitStatus>,
}

/// One rendered file of a `gitops` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitopsFileRecord {
    /// Path in the repository.
    pub path: String,
    /// Bytes rendered.
    pub bytes: u64,
    /// Whether its content differs from the branch's (false: already as rendered).
    pub changed: bool,
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
        gitops: None,
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
        PromotionOutcome::Superseded { reason, .. } => (Outcome::Superseded, reason.clone()),
    };
    ActionRecord {
        kind: ActionKind::PullRequest,
        condition: planned.condition.clone(),
        at: planned.at.clone(),
        outcome: kind,
        detail,
        exec: None,
        pull_request: Some(outcome),
        gitops: None,
    }
}
