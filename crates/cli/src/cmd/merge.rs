//! `slogate merge FILE...` (hidden, for `make bench`): the evidence files of several
//! `slogate load --evidence-out` runs merged exactly, as index 0 merges its load pods'
//! partials, checked against one histogram fed every sample of every file, and the size of
//! the result document such a run of that many pods writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use slogate_core::measure::{Measurement, MeasurementData, new_latency_histogram};
use slogate_core::parallel::{PodReport, merge_reports};
use slogate_core::result::ExperimentResult;
use slogate_core::spec::ExperimentSpec;

use crate::exit::{CmdResult, Failure};

/// Flags of `slogate merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Evidence files written by `slogate load --evidence-out`, one per load process.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Runs `slogate merge`: prints one JSON object.
pub async fn run(args: Args) -> CmdResult {
    let mut reports = BTreeMap::new();
    let mut partial_bytes = 0;
    for (i, path) in args.files.iter().enumerate() {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Failure::Invalid(anyhow!("{}: {err}", path.display())))?;
        let data: MeasurementData = serde_json::from_str(&text).map_err(|err| {
            Failure::Invalid(anyhow!("{} is not an evidence file: {err}", path.display()))
        })?;
        let m = Measurement::from_data(&data)
            .map_err(|err| Failure::Invalid(anyhow!("{}: {err}", path.display())))?;
        let report =
            PodReport::ready(i as u32, format!("load-{i}"), None).done(&[("target".to_owned(), m)]);
        partial_bytes = partial_bytes.max(serde_json::to_string(&report).unwrap_or_default().len());
        reports.insert(i as u32, report);
    }
    let pods = reports.len() as u32;
    let names = ["target".to_owned()];

    // The merge step as index 0 runs it: decode every partial, add the histograms. It takes
    // well under a clock tick, so it is repeated for at least a quarter of a second.
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let mut rounds = 0u32;
    let merged = loop {
        let merged = merge_reports(pods, &names, &reports, &BTreeMap::new())
            .map_err(|err| Failure::Runtime(anyhow!(err)))?;
        rounds += 1;
        if started.elapsed().as_secs_f64() >= 0.25 {
            break merged;
        }
    };
    let merge_cpu = (cpu_seconds() - cpu_started) / f64::from(rounds);
    let merge_wall = started.elapsed().as_secs_f64() / f64::from(rounds);
    let m = &merged.measurements[0].1;

    // The reference: one histogram fed every sample of every file, one at a time.
    let mut one = new_latency_histogram();
    for report in reports.values() {
        for (_, part) in report
            .measurements()
            .map_err(|e| Failure::Runtime(anyhow!(e)))?
        {
            for v in part.latency.iter_recorded() {
                one.record_n(v.value_iterated_to(), v.count_at_value())
                    .map_err(|e| Failure::Runtime(anyhow!(e)))?;
            }
        }
    }
    let quantiles = [0.5, 0.9, 0.95, 0.99, 0.999, 1.0];
    let equal = m.latency == one
        && quantiles
            .iter()
            .all(|q| m.latency.value_at_quantile(*q) == one.value_at_quantile(*q));

    // The result document of a run of that many pods (one version, every pod's row).
    let spec = ExperimentSpec::from_yaml(&format!(
        "name: bench-merge\nversions: [{{name: target, url: 'http://127.0.0.1/'}}]\nload: {{connections: {}, numRequests: {}}}\nparallelism: {{pods: {pods}}}\nslos: [{{metric: http/latency-p99, upperLimit: 100}}, {{metric: http/error-rate, upperLimit: 0}}]\n",
        pods.max(1),
        m.requests.max(u64::from(pods)),
    ))
    .map_err(|err| Failure::Runtime(anyhow!(err)))?;
    let mut result = ExperimentResult::running(&spec, jiff::Timestamp::now());
    let judged = slogate_core::verdict::judge_experiment(&spec, std::slice::from_ref(m));
    result.complete(
        &spec,
        std::slice::from_ref(m),
        judged,
        jiff::Timestamp::now(),
    );
    result.load_pods = merged.pods.clone();
    let result_bytes = serde_json::to_string(&result).map(|s| s.len()).unwrap_or(0);

    let ms = |q: f64| m.latency.value_at_quantile(q) as f64 / 1000.0;
    let requests = m.requests.max(1) as f64;
    let out = serde_json::json!({
        "pods": pods,
        "requests": m.requests,
        "errors": m.errors,
        "achievedRate": if m.elapsed.as_secs_f64() > 0.0 { m.requests as f64 / m.elapsed.as_secs_f64() } else { 0.0 },
        "podRates": merged.pods.iter().map(|p| p.achieved_rate).collect::<Vec<_>>(),
        "p50Ms": ms(0.5), "p95Ms": ms(0.95), "p99Ms": ms(0.99), "p999Ms": ms(0.999), "maxMs": ms(1.0),
        "equalToOneHistogram": equal,
        "mergeCpuSeconds": merge_cpu,
        "mergeWallSeconds": merge_wall,
        "mergeCpuNsPerRequest": merge_cpu * 1e9 / requests,
        "mergeRounds": rounds,
        "largestPartialBytes": partial_bytes,
        "resultBytes": result_bytes,
    });
    println!("{out}");
    if equal {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::Runtime(anyhow!(
            "the merged histogram differs from one histogram of every sample"
        )))
    }
}

/// CPU time this process has used, user and system, in seconds (Linux: /proc/self/stat).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}
