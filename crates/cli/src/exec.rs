//! The `exec` finish action: a command run without a shell, its arguments rendered from the
//! result (the winner's variables: `--values=./{{promote}}-values.yaml`), within a timeout,
//! the end of its output kept in the result.
//!
//! The command inherits slogate's environment (`PATH`, `HOME`, `KUBECONFIG` for helm) plus the
//! spec's `env`. It could read the GitHub token's file as any process of the pod can, so
//! every token a pull-request action uses is replaced by `[redacted]` in what it prints
//! before anything is kept; the token is never in an argument or the environment.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slogate_core::actions::{
    ActionKind, ActionRecord, ExecRecord, ExecSpec, OUTPUT_TAIL_BYTES, Outcome, OutputTail,
    PlannedAction,
};
use slogate_core::result::ExperimentResult;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::parts::{ActionFuture, ActionOutcome, FinishAction};

/// What replaces a secret in a command's output.
pub const REDACTED: &str = "[redacted]";

/// How long the output is still read after the process ended: a child it left behind may
/// hold the pipes open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Texts that must never be kept from a command's output (the GitHub tokens).
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<Vec<Vec<u8>>>);

impl Secrets {
    /// The tokens in these files; a file that cannot be read holds no token to hide.
    pub fn of(files: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut tokens: Vec<Vec<u8>> = files
            .into_iter()
            .filter_map(|file| slogate_github::Token::from_file(&file).ok())
            .map(|token| token.expose().as_bytes().to_vec())
            .collect();
        tokens.sort();
        tokens.dedup();
        Self(Arc::new(tokens))
    }

    /// Whether `bytes` hold one of the secrets.
    pub fn found_in(&self, bytes: &[u8]) -> bool {
        self.0
            .iter()
            .filter(|s| !s.is_empty())
            .any(|s| bytes.windows(s.len()).any(|w| w == s.as_slice()))
    }

    fn longest(&self) -> usize {
        self.0.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// `bytes` with every secret replaced by [`REDACTED`].
    fn redact(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for secret in self.0.iter().filter(|s| !s.is_empty()) {
            let mut next = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(secret) {
                    next.extend_from_slice(REDACTED.as_bytes());
                    i += secret.len();
                } else {
                    next.push(out[i]);
                    i += 1;
                }
            }
            out = next;
        }
        out
    }
}

/// The end of one output stream, with secrets redacted as it streams: the last
/// [`OUTPUT_TAIL_BYTES`] kept, the rest counted.
#[derive(Debug)]
struct Tail {
    secrets: Secrets,
    /// Bytes not yet kept: they may be the start of a secret the next read completes.
    pending: Vec<u8>,
    kept: VecDeque<u8>,
    written: u64,
    dropped: u64,
}

impl Tail {
    fn new(secrets: Secrets) -> Self {
        Self {
            secrets,
            pending: Vec::new(),
            kept: VecDeque::new(),
            written: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.written += bytes.len() as u64;
        self.pending.extend_from_slice(bytes);
        let redacted = self.secrets.redact(&self.pending);
        // Hold back what could still become a secret with the next read.
        let hold = self.secrets.longest().saturating_sub(1).min(redacted.len());
        let (commit, rest) = redacted.split_at(redacted.len() - hold);
        self.keep(commit);
        self.pending = rest.to_vec();
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.kept.extend(bytes);
        while self.kept.len() > OUTPUT_TAIL_BYTES {
            self.kept.pop_front();
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> OutputTail {
        let rest = std::mem::take(&mut self.pending);
        self.keep(&rest);
        let mut bytes: Vec<u8> = self.kept.into_iter().collect();
        if self.dropped > 0 {
            // The cut may have split a character: start at the next whole one.
            let skip = bytes
                .iter()
                .take(3)
                .take_while(|b| (**b & 0xC0) == 0x80)
                .count();
            bytes.drain(..skip);
            self.dropped += skip as u64;
        }
        OutputTail {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: self.written,
            cut_bytes: self.dropped,
        }
    }
}

/// Reads `stream` to its end into `tail`.
async fn read_tail(mut stream: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => tail.lock().expect("output lock").push(&buf[..n]),
        }
    }
}

/// One output stream being read.
struct Reader {
    tail: Arc<Mutex<Tail>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    fn start(stream: Option<impl AsyncRead + Unpin + Send + 'static>, secrets: &Secrets) -> Self {
        let tail = Arc::new(Mutex::new(Tail::new(secrets.clone())));
        let task = match stream {
            Some(stream) => tokio::spawn(read_tail(stream, tail.clone())),
            None => tokio::spawn(async {}),
        };
        Self { tail, task }
    }

    /// What was read, waiting at most [`DRAIN_GRACE`] for the end of the stream.
    async fn drain(mut self) -> OutputTail {
        let ended = tokio::time::timeout(DRAIN_GRACE, &mut self.task)
            .await
            .is_ok();
        self.task.abort();
        let tail = std::mem::replace(
            &mut *self.tail.lock().expect("output lock"),
            Tail::new(Secrets::default()),
        );
        let mut out = tail.finish();
        if !ended {
            // The note fits within the bound: the oldest output makes room for it.
            let room = OUTPUT_TAIL_BYTES - STILL_OPEN.len();
            let mut cut = out.text.len().saturating_sub(room);
            while !out.text.is_char_boundary(cut) {
                cut += 1;
            }
            out.text.drain(..cut);
            out.cut_bytes += cut as u64;
            out.text.push_str(STILL_OPEN);
        }
        out
    }
}

/// Added to an output a process the command started still held open when the command ended.
const STILL_OPEN: &str =
    "\n[slogate: the output was still open when the command ended: a process it started holds it]";

/// A command's arguments and environment variables, rendered.
pub type Rendered = (Vec<String>, Vec<(String, String)>);

/// What a finish action's templates see: the result's context (`slogate_report::template_context`)
/// with `{{report}}`, the markdown report, as a pull request body's template sees it.
pub fn template_context(judged: &ExperimentResult) -> serde_json::Value {
    let report = slogate_report::render(judged, slogate_report::Format::Markdown).ok();
    slogate_report::template_context(judged, report.as_deref(), serde_json::Map::new())
}

/// A command's arguments and environment, rendered from `ctx`; `at` is where the command is
/// in the spec (`actions.finish[0].exec`), for messages.
pub fn render_command(
    spec: &ExecSpec,
    ctx: &serde_json::Value,
    at: &str,
) -> Result<Rendered, String> {
    let args = spec
        .args
        .iter()
        .enumerate()
        .map(|(i, t)| {
            slogate_report::render_template(t, ctx).map_err(|e| format!("{at}.args[{i}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, t)| {
            slogate_report::render_template(t, ctx)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("{at}.env.{k}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((args, env))
}

/// Starts a command without a shell, its output piped, in a process group of its own.
fn spawn(
    cmd: &str,
    args: &[String],
    env: Vec<(String, String)>,
) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new(cmd)
        .args(args)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // An interrupted run drops the future holding it: the process goes with it.
        .kill_on_drop(true)
        // Its own process group, so that a timeout or an interrupted run also ends the
        // processes it started (helm's plugins, a shell's background jobs).
        .process_group(0)
        .spawn()
}

/// The most a command whose output is a file may write: more is refused, not cut.
pub const MAX_CAPTURE_BYTES: usize = 16 << 20;

/// Runs a rendered command as [`ExecAction`] does (no shell, its own process group, the
/// spec's timeout) and returns all of its standard output, at most [`MAX_CAPTURE_BYTES`].
/// The error says why in one line: it could not start, it timed out, it exited with a
/// status other than 0 (with the last line of its error output, secrets redacted), or it
/// wrote too much.
pub async fn capture(
    spec: &ExecSpec,
    (args, env): Rendered,
    secrets: &Secrets,
) -> Result<Vec<u8>, String> {
    let mut command = vec![spec.cmd.clone()];
    command.extend(args.iter().cloned());
    let shown = show_command(&command);
    let mut child =
        spawn(&spec.cmd, &args, env).map_err(|err| format!("cannot start {}: {err}", spec.cmd))?;
    let mut group = Group(child.id());
    let stderr = Reader::start(child.stderr.take(), secrets);
    let mut stdout = child.stdout.take();
    let read_all = async {
        let mut out = Vec::new();
        if let Some(stream) = stdout.as_mut() {
            let mut limited = stream.take(MAX_CAPTURE_BYTES as u64 + 1);
            limited
                .read_to_end(&mut out)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(out)
    };
    let run = async { tokio::join!(read_all, child.wait()) };
    let (out, status) = match tokio::time::timeout(spec.timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            group.kill();
            return Err(format!(
                "{shown} timed out after {}: killed",
                humantime::format_duration(spec.timeout)
            ));
        }
    };
    group.0 = None;
    let err_tail = stderr.drain().await;
    let last_line = err_tail
        .text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    let out = out.map_err(|e| format!("{shown}: cannot read its output: {e}"))?;
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            let how = s
                .code()
                .map(|c| format!("exit {c}"))
                .unwrap_or_else(|| format!("{s}"));
            return Err(format!("{shown} → {how}{last_line}"));
        }
        Err(err) => return Err(format!("{shown}: cannot wait for it: {err}")),
    }
    if out.len() > MAX_CAPTURE_BYTES {
        return Err(format!(
            "{shown} wrote more than {} MiB: too much for one file",
            MAX_CAPTURE_BYTES >> 20
        ));
    }
    Ok(out)
}

/// A command as a finish action.
pub struct ExecAction<'s> {
    planned: PlannedAction<'s>,
    spec: &'s ExecSpec,
    secrets: Secrets,
}

impl<'s> ExecAction<'s> {
    /// The action `planned` describes; `secrets` are redacted from what it prints.
    pub fn new(planned: PlannedAction<'s>, spec: &'s ExecSpec, secrets: Secrets) -> Self {
        Self {
            planned,
            spec,
            secrets,
        }
    }

    fn record(&self, outcome: Outcome, detail: String, exec: Option<ExecRecord>) -> ActionOutcome {
        ActionOutcome(ActionRecord {
            kind: ActionKind::Exec,
            condition: self.planned.condition.clone(),
            at: self.planned.at.clone(),
            outcome,
            detail,
            exec,
            pull_request: None,
            gitops: None,
        })
    }

    /// The arguments and environment, rendered from the judged result.
    fn render(&self, judged: &ExperimentResult) -> Result<Rendered, String> {
        render_command(
            self.spec,
            &template_context(judged),
            &format!("{}.exec", self.planned.at),
        )
    }

    async fn execute(&self, judged: &ExperimentResult) -> ActionOutcome {
        let (args, env) = match self.render(judged) {
            Ok(rendered) => rendered,
            Err(reason) => return self.record(Outcome::Failed, reason, None),
        };
        let mut command = vec![self.spec.cmd.clone()];
        command.extend(args.iter().cloned());
        let shown = show_command(&command);
        let started = Instant::now();
        let mut child = match spawn(&self.spec.cmd, &args, env) {
            Ok(child) => child,
            Err(err) => {
                return self.record(
                    Outcome::Failed,
                    format!("cannot start {}: {err}", self.spec.cmd),
                    Some(ExecRecord {
                        command,
                        exit_code: None,
                        signal: None,
                        duration_seconds: 0.0,
                        stdout: OutputTail::default(),
                        stderr: OutputTail::default(),
                    }),
                );
            }
        };
        let mut group = Group(child.id());
        eprintln!("slogate: {}: running {shown}", self.planned.at);
        let stdout = Reader::start(child.stdout.take(), &self.secrets);
        let stderr = Reader::start(child.stderr.take(), &self.secrets);
        let timeout = self.spec.timeout;
        let (status, timed_out) = tokio::select! {
            status = child.wait() => (status, false),
            _ = tokio::time::sleep(timeout) => {
                group.kill();
                let _ = child.start_kill();
                (child.wait().await, true)
            }
        };
        // Ended by itself: what it left running on purpose is not slogate's to end.
        group.0 = None;
        let duration_seconds = started.elapsed().as_secs_f64();
        let stdout = stdout.drain().await;
        let stderr = stderr.drain().await;
        use std::os::unix::process::ExitStatusExt as _;
        let (exit_code, signal) = match &status {
            Ok(s) => (s.code(), s.signal()),
            Err(_) => (None, None),
        };
        let (outcome, detail) = match (&status, timed_out) {
            (_, true) => (
                Outcome::Failed,
                format!(
                    "{shown} timed out after {}: killed",
                    humantime::format_duration(timeout)
                ),
            ),
            (Err(err), false) => (
                Outcome::Failed,
                format!("{shown}: cannot wait for it: {err}"),
            ),
            (Ok(s), false) if s.success() => (Outcome::Done, format!("{shown} → exit 0")),
            (Ok(_), false) => match (exit_code, signal) {
                (Some(code), _) => (Outcome::Failed, format!("{shown} → exit {code}")),
                (None, Some(sig)) => (Outcome::Failed, format!("{shown} → killed by signal {sig}")),
                (None, None) => (Outcome::Failed, format!("{shown} → ended without a status")),
            },
        };
        eprintln!("slogate: {}: {outcome}: {detail}", self.planned.at);
        self.record(
            outcome,
            detail,
            Some(ExecRecord {
                command,
                exit_code,
                signal,
                duration_seconds,
                stdout,
                stderr,
            }),
        )
    }
}

/// The command as one line for messages, cut when long.
fn show_command(command: &[String]) -> String {
    const MAX: usize = 160;
    let line = command.join(" ");
    if line.chars().count() <= MAX {
        line
    } else {
        let mut cut: String = line.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}

impl FinishAction for ExecAction<'_> {
    fn describe(&self) -> String {
        format!("exec {} ({})", self.spec.cmd, self.planned.at)
    }

    fn run<'a>(&'a self, judged: &'a ExperimentResult) -> ActionFuture<'a> {
        Box::pin(self.execute(judged))
    }

    fn interrupted(&self, reason: String) -> ActionOutcome {
        self.record(
            Outcome::Interrupted,
            format!("{reason}: the command was killed"),
            None,
        )
    }
}

/// The process group of a running command, killed (SIGKILL) when dropped while it is set: a
/// run interrupted while the command runs ends everything the command started.
struct Group(Option<u32>);

impl Group {
    /// Kills every process in the group.
    fn kill(&mut self) {
        if let Some(id) = self.0.take().and_then(|id| i32::try_from(id).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(id),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(tokens: &[&str]) -> Secrets {
        Secrets(Arc::new(
            tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
        ))
    }

    #[test]
    fn a_secret_split_across_reads_is_redacted() {
        let mut tail = Tail::new(secrets(&["ghp_SECRET123"]));
        for chunk in ["token: ghp_SE", "CRET", "123 and ghp_SECRET123", "\n"] {
            tail.push(chunk.as_bytes());
        }
        let out = tail.finish();
        assert_eq!(out.text, "token: [redacted] and [redacted]\n");
        assert_eq!(out.cut_bytes, 0);
        assert_eq!(out.bytes, 39);
    }

    #[test]
    fn only_the_end_is_kept_and_the_cut_is_counted() {
        let mut tail = Tail::new(Secrets::default());
        for _ in 0..3 {
            tail.push(&[b'x'; 4000]);
        }
        tail.push(b"END");
        let out = tail.finish();
        assert_eq!(out.bytes, 12_003);
        assert_eq!(out.text.len(), OUTPUT_TAIL_BYTES);
        assert_eq!(out.cut_bytes, 12_003 - OUTPUT_TAIL_BYTES as u64);
        assert!(out.text.ends_with("xEND"));
    }

    fn command(cmd: &str, args: &[&str], timeout: Duration) -> ExecSpec {
        ExecSpec {
            cmd: cmd.to_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
            timeout,
            env: Default::default(),
        }
    }

    fn rendered(spec: &ExecSpec) -> Rendered {
        (spec.args.clone(), Vec::new())
    }

    #[tokio::test]
    async fn a_files_command_gives_all_of_its_output_or_says_why_not() {
        let long = Duration::from_secs(20);
        let big = "x".repeat(10_000);
        let ok = command("/bin/sh", &["-c", &format!("printf '{big}'")], long);
        let out = capture(&ok, rendered(&ok), &Secrets::default()).await;
        assert_eq!(
            out.map(|o| o.len()),
            Ok(10_000),
            "more than a tail: all of it"
        );

        let fails = command(
            "/bin/sh",
            &["-c", "echo partial; echo 'no chart here' >&2; exit 3"],
            long,
        );
        let err = capture(&fails, rendered(&fails), &Secrets::default())
            .await
            .unwrap_err();
        assert!(err.ends_with("→ exit 3: no chart here"), "{err}");

        let slow = command("/bin/sleep", &["30"], Duration::from_millis(200));
        let err = capture(&slow, rendered(&slow), &Secrets::default())
            .await
            .unwrap_err();
        assert!(err.contains("timed out after 200ms"), "{err}");

        let missing = command("/nonexistent/helm", &[], long);
        let err = capture(&missing, rendered(&missing), &Secrets::default())
            .await
            .unwrap_err();
        assert!(err.starts_with("cannot start /nonexistent/helm"), "{err}");
    }
}
