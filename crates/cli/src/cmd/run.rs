//! `slogate run`: one experiment from a spec file, run here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use slogate_core::result::Stage;
use slogate_core::spec::ExperimentSpec;

use crate::exit::{CmdResult, Failure};
use crate::experiment::{self, FileSink, Interrupt, Settings};

/// Flags of `slogate run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment spec (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Write the result document here (updated while running); default: the spec's
    /// `result.file`, else stdout at the end.
    #[arg(long, value_name = "FILE")]
    pub result_file: Option<PathBuf>,
    /// File holding the GitHub token for promotion; overrides `promotion.tokenFile`.
    #[arg(long, value_name = "FILE", env = "SLOGATE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Also write the result to this ConfigMap (kubeconfig or in-cluster credentials);
    /// default: the spec's `result.configMap`, or the experiment's name when run in a pod.
    #[arg(long, value_name = "NAME")]
    pub configmap: Option<String>,
    /// Render the promotion pull request without sending anything to GitHub.
    #[arg(long)]
    pub dry_run: bool,
    /// Longest time between two publications of the result while the run is under way;
    /// readers call a result stale after a few of these without an update.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_interval, hide = true)]
    pub publish_every: std::time::Duration,
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than 0s".to_owned()),
        Err(err) => Err(format!("{err} (e.g. 10s, 500ms)")),
    }
}

/// Reads and validates a spec file; any problem is invalid input naming the field.
pub fn read_spec(path: &std::path::Path) -> Result<ExperimentSpec, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Failure::Invalid(anyhow!("--spec {}: {err}", path.display())))?;
    let spec = ExperimentSpec::from_yaml(&text)
        .map_err(|err| Failure::Invalid(anyhow!("{}: {err}", path.display())))?;
    crate::promote::check_templates(&spec)
        .map_err(|err| Failure::Invalid(anyhow!("{}: {err}", path.display())))?;
    Ok(spec)
}

/// Runs `slogate run`: exit 0 when the run completed, whatever the verdict; 2 when it failed.
pub async fn run(args: Args) -> CmdResult {
    // First, so that a SIGTERM while connecting to the cluster still ends in a document.
    let interrupt = Interrupt::on_signals();
    let spec = read_spec(&args.spec)?;
    let result_file = args
        .result_file
        .clone()
        .or_else(|| spec.result.as_ref().and_then(|r| r.file.clone()));
    let mut settings = Settings {
        token_file: args.token_file.clone(),
        dry_run: args.dry_run,
        publish_every: args.publish_every,
        ..Settings::default()
    };
    if let Some(path) = &result_file {
        settings.sinks.push(Box::new(FileSink::new(path)));
    }
    let env = |key: &str| std::env::var(key).ok();
    if let Some(slot) = crate::cluster::load_pod_slot(&spec, env).await? {
        if slot.index > 0 {
            // Only index 0 judges, writes the result and promotes.
            return crate::partials::run_load_pod(&spec, slot, &interrupt).await;
        }
        settings.load_pod = Some(slot);
    }
    if let Some(target) = crate::cluster::target(&spec, args.configmap.as_deref(), env) {
        let sink = crate::cluster::ConfigMapSink::connect(target, &spec).await?;
        settings.sinks.push(Box::new(sink));
    }
    let job = env("SLOGATE_JOB_NAME").filter(|j| !j.trim().is_empty());
    crate::traffic::add_parts(&spec, &mut settings, job).await?;
    let result = experiment::run(&spec, &settings, &interrupt).await?;
    if result_file.is_none() {
        println!("{}", result.to_json());
    }
    match result.stage {
        Stage::Completed => Ok(ExitCode::SUCCESS),
        _ => Err(Failure::Runtime(anyhow!(
            "experiment {} failed: {}",
            spec.name,
            result.failure.as_deref().unwrap_or("no reason given")
        ))),
    }
}
