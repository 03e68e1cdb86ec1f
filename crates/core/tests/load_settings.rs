//! The load section is checked by one set of rules, whether it comes from a spec file or
//! from `slogate load`'s flags, into the typed settings the load engine takes.

use std::time::Duration;

use slogate_core::spec::{
    BodySource, DEFAULT_MAX_CONNECTIONS, DEFAULT_NUM_REQUESTS, ExperimentSpec, LoadSpec,
    StatusRange, StopAfter, Warmup,
};

fn paths(load: LoadSpec) -> Vec<String> {
    load.settings()
        .unwrap_err()
        .into_iter()
        .map(|p| p.path)
        .collect()
}

#[test]
fn spec_and_engine_share_one_status_range_rule() {
    // 600..=999 used to pass the engine's check while the spec refused it.
    for (from, to) in [(600, 999), (99, 200), (500, 400)] {
        let load = LoadSpec {
            error_ranges: vec![StatusRange { from, to }],
            ..LoadSpec::default()
        };
        assert!(load.settings().is_err(), "{from}..{to} accepted");
        let spec = ExperimentSpec {
            load,
            ..ExperimentSpec::from_yaml("name: x\nversions: [{name: v, url: 'http://a/'}]").unwrap()
        };
        assert!(
            spec.validate().is_err(),
            "{from}..{to} accepted by the spec"
        );
    }
    let ok = LoadSpec {
        error_ranges: vec![StatusRange { from: 500, to: 599 }],
        ..LoadSpec::default()
    };
    assert_eq!(
        ok.settings().unwrap().error_ranges(),
        [StatusRange { from: 500, to: 599 }]
    );
}

#[test]
fn every_load_problem_is_reported_with_its_path() {
    let load = LoadSpec {
        connections: 0,
        qps: Some(-1.0),
        num_requests: Some(5),
        duration: Some(Duration::from_secs(1)),
        timeout: Duration::ZERO,
        method: Some("GE T".into()),
        content_type: Some("text/é".into()),
        error_ranges: vec![StatusRange { from: 600, to: 700 }],
        ..LoadSpec::default()
    };
    let found = paths(load);
    for want in [
        "connections",
        "qps",
        "duration",
        "timeout",
        "method",
        "contentType",
        "errorRanges[0].from",
        "errorRanges[0].to",
    ] {
        assert!(
            found.iter().any(|p| p == want),
            "{want} missing from {found:?}"
        );
    }
}

#[test]
fn max_connections_defaults_to_64_and_may_not_be_below_connections() {
    let settings = LoadSpec::default().settings().unwrap();
    assert_eq!(settings.connections(), 8);
    assert_eq!(settings.max_connections(), DEFAULT_MAX_CONNECTIONS);
    let many = LoadSpec {
        connections: 100,
        ..LoadSpec::default()
    };
    assert_eq!(many.settings().unwrap().max_connections(), 100);
    let below = LoadSpec {
        connections: 8,
        max_connections: Some(4),
        ..LoadSpec::default()
    };
    assert_eq!(paths(below), ["maxConnections"]);
    let spec = ExperimentSpec::from_yaml(
        "name: x\nversions: [{name: v, url: 'http://a/'}]\nload: {connections: 8, maxConnections: 4}",
    )
    .unwrap_err();
    assert!(
        spec.to_string()
            .contains("load.maxConnections: 4 is fewer than connections (8)"),
        "{spec}"
    );
}

#[test]
fn settings_resolve_defaults_and_exclusive_fields() {
    let s = LoadSpec::default().settings().unwrap();
    assert_eq!(s.stop_after(), StopAfter::Requests(DEFAULT_NUM_REQUESTS));
    assert_eq!(s.warmup(), Warmup::None);
    assert_eq!(s.body(), &BodySource::None);
    let s = LoadSpec {
        duration: Some(Duration::from_secs(3)),
        warmup: Some(Duration::from_secs(1)),
        body_file: Some("body.json".into()),
        ..LoadSpec::default()
    }
    .settings()
    .unwrap();
    assert_eq!(s.stop_after(), StopAfter::Duration(Duration::from_secs(3)));
    assert_eq!(s.warmup(), Warmup::Duration(Duration::from_secs(1)));
    assert_eq!(s.body(), &BodySource::File("body.json".into()));
}

#[test]
fn versions_loaded_together_share_connections_and_rate() {
    use slogate_core::spec::LoadSpec;
    let load = LoadSpec {
        connections: 9,
        qps: Some(300.0),
        max_connections: Some(64),
        ..LoadSpec::default()
    }
    .settings()
    .unwrap();
    let shares: Vec<_> = (0..2).map(|i| load.share(2, i)).collect();
    assert_eq!(shares[0].connections() + shares[1].connections(), 9);
    assert_eq!((shares[0].connections(), shares[1].connections()), (5, 4));
    assert_eq!(shares[0].qps(), Some(150.0));
    assert_eq!(
        shares[0].max_connections() + shares[1].max_connections(),
        64
    );
    assert_eq!(
        shares[1].stop_after(),
        load.stop_after(),
        "numRequests is per version"
    );
    // One connection in all still gives each version one.
    let one = LoadSpec {
        connections: 1,
        ..LoadSpec::default()
    }
    .settings()
    .unwrap();
    assert_eq!(one.share(2, 1).connections(), 1);
}

#[test]
fn pod_shares_add_up_exactly_to_the_load() {
    let load = LoadSpec {
        connections: 17,
        max_connections: Some(70),
        qps: Some(1000.0),
        num_requests: Some(1003),
        warmup_requests: Some(10),
        ..LoadSpec::default()
    }
    .settings()
    .unwrap();
    for pods in [1u32, 2, 3, 7, 16] {
        let shares: Vec<_> = (0..pods).map(|i| load.for_pod(pods, i)).collect();
        let sum = |f: &dyn Fn(&slogate_core::spec::LoadSettings) -> u64| -> u64 {
            shares.iter().map(f).sum()
        };
        assert_eq!(sum(&|s| u64::from(s.connections())), 17, "{pods} pods");
        assert_eq!(sum(&|s| u64::from(s.max_connections())), 70, "{pods} pods");
        assert_eq!(
            sum(&|s| match s.stop_after() {
                StopAfter::Requests(n) => n,
                StopAfter::Duration(_) => 0,
            }),
            1003,
            "{pods} pods"
        );
        assert_eq!(
            sum(&|s| match s.warmup() {
                Warmup::Requests(n) => n,
                _ => 0,
            }),
            10,
            "{pods} pods"
        );
        let rate: f64 = shares.iter().map(|s| s.qps().unwrap()).sum();
        assert!((rate - 1000.0).abs() < 1e-9, "{pods} pods: {rate}");
        // The shares differ by at most one: no pod is left with much more than another.
        let conns: Vec<u32> = shares.iter().map(|s| s.connections()).collect();
        assert!(conns.iter().max().unwrap() - conns.iter().min().unwrap() <= 1);
    }
    // A duration is one time window for every pod.
    let timed = LoadSpec {
        duration: Some(Duration::from_secs(30)),
        ..LoadSpec::default()
    }
    .settings()
    .unwrap();
    assert_eq!(
        timed.for_pod(3, 2).stop_after(),
        StopAfter::Duration(Duration::from_secs(30))
    );
}
