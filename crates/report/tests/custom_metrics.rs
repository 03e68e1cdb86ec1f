//! Custom metrics (from Prometheus) in every format: each version's value and the queries as
//! they were sent, so a reader can re-run a query by hand.

mod fixtures;

use std::collections::BTreeMap;

use slogate_core::custom::{
    CumulativeBucket, CustomMetricResult, CustomValue, MetricKind, Provider,
};
use slogate_core::result::ExperimentResult;
use slogate_report::{Format, render};

const QUERY: &str =
    r#"sum(increase(revision_app_request_latencies_bucket{revision_name="v2"}[37s])) by (le)"#;

fn with_custom_metrics() -> ExperimentResult {
    let mut result = fixtures::passing();
    result.versions[0].custom_metrics = vec![
        CustomMetricResult {
            name: "knative/p95".into(),
            provider: Provider::Prometheus,
            kind: MetricKind::HistogramQuantile,
            unit: Some("ms".into()),
            queries: BTreeMap::from([("query".to_owned(), QUERY.to_owned())]),
            value: Some(37.5),
            evidence: CustomValue::HistogramQuantile {
                buckets: vec![
                    CumulativeBucket {
                        le: 25.0,
                        count: 900.0,
                    },
                    CumulativeBucket {
                        le: f64::INFINITY,
                        count: 1000.0,
                    },
                ],
            },
        },
        CustomMetricResult {
            name: "app/memory".into(),
            provider: Provider::Prometheus,
            kind: MetricKind::Value,
            unit: None,
            queries: BTreeMap::from([("query".to_owned(), "max(app_memory_bytes)".to_owned())]),
            value: None,
            evidence: CustomValue::NoData {
                reason: "the query gave an empty result".into(),
            },
        },
    ];
    result
}

#[test]
fn every_format_shows_the_queries_sent_and_the_values() {
    let result = with_custom_metrics();
    let text = render(&result, Format::Text).unwrap();
    assert!(text.contains("Custom metrics"), "{text}");
    assert!(text.contains(QUERY), "{text}");
    assert!(
        text.contains("knative/p95 (histogramQuantile): 37.500 ms"),
        "{text}"
    );
    assert!(
        text.contains("no data: the query gave an empty result"),
        "{text}"
    );

    let md = render(&result, Format::Markdown).unwrap();
    assert!(md.contains(&format!("```promql\n{QUERY}\n```")), "{md}");

    let html = render(&result, Format::Html).unwrap();
    assert!(html.contains("revision_name&#x3D;&quot;v2&quot;"), "{html}");

    let json = render(&result, Format::Json).unwrap();
    let back: ExperimentResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back, result);
    assert!(json.contains(r#""le": "+Inf""#), "{json}");
}
