//! Whether a result may be promoted at all: decided before any request is made.

use slogate_core::result::{ExperimentResult, Stage};
use slogate_core::spec::{PromoteWhen, PromotionSpec};

/// What [`should_promote`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Open or update the pull request.
    Promote,
    /// Make no request to GitHub, for this reason.
    Skip {
        /// One sentence a user reads in the result document.
        reason: String,
    },
}

/// Decides from the spec's `when` and the result's stage and verdict whether to promote.
///
/// A run that did not complete has no verdict and is never promoted, whatever `when` says:
/// a pull request claiming an SLO result that does not exist would mislead reviewers. A run
/// in stage `Finishing` (judged, promotion under way) and a `Completed` one may be promoted.
pub fn should_promote(spec: &PromotionSpec, result: &ExperimentResult) -> Decision {
    if !matches!(result.stage, Stage::Completed | Stage::Finishing) {
        let why = result
            .failure
            .as_deref()
            .map(|f| format!(": {f}"))
            .unwrap_or_default();
        return Decision::Skip {
            reason: format!(
                "the experiment did not complete (stage {:?}{why})",
                result.stage
            ),
        };
    }
    let Some(verdict) = &result.verdict else {
        return Decision::Skip {
            reason: "the experiment has no verdict".to_owned(),
        };
    };
    match (verdict.pass, spec.when) {
        (true, _) | (false, PromoteWhen::Always) => Decision::Promote,
        (false, PromoteWhen::Pass) => Decision::Skip {
            reason: format!(
                "the SLO verdict is fail ({}); promotion.when is pass",
                verdict.reason.trim_end_matches('.')
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slogate_core::result::OverallVerdict;

    fn spec(when: PromoteWhen) -> PromotionSpec {
        PromotionSpec {
            when,
            ..PromotionSpec::new("octo", "hello", "master", "staging")
        }
    }

    fn result(stage: Stage, pass: Option<bool>) -> ExperimentResult {
        let exp: slogate_core::spec::ExperimentSpec =
            slogate_core::spec::ExperimentSpec::from_yaml(
                "name: exp\nversions: [{name: v1, url: 'http://127.0.0.1:1/'}]\n",
            )
            .unwrap();
        let mut r = ExperimentResult::running(&exp, jiff::Timestamp::UNIX_EPOCH);
        r.stage = stage;
        r.verdict = pass.map(|pass| OverallVerdict {
            pass,
            reason: "http/latency-p95 is above 100 ms.".into(),
        });
        r
    }

    #[test]
    fn passing_result_is_promoted() {
        let d = should_promote(
            &spec(PromoteWhen::Pass),
            &result(Stage::Completed, Some(true)),
        );
        assert_eq!(d, Decision::Promote);
    }

    #[test]
    fn judged_run_whose_promotion_is_under_way_is_promoted() {
        let d = should_promote(
            &spec(PromoteWhen::Pass),
            &result(Stage::Finishing, Some(true)),
        );
        assert_eq!(d, Decision::Promote);
        let d = should_promote(&spec(PromoteWhen::Always), &result(Stage::Running, None));
        assert!(matches!(d, Decision::Skip { .. }), "{d:?}");
    }

    #[test]
    fn failing_result_is_skipped_with_the_verdict_reason() {
        let d = should_promote(
            &spec(PromoteWhen::Pass),
            &result(Stage::Completed, Some(false)),
        );
        let Decision::Skip { reason } = d else {
            panic!("{d:?}")
        };
        assert!(reason.contains("verdict is fail"), "{reason}");
        assert!(
            reason.contains("http/latency-p95 is above 100 ms"),
            "{reason}"
        );
    }

    #[test]
    fn failing_result_is_promoted_when_always() {
        let d = should_promote(
            &spec(PromoteWhen::Always),
            &result(Stage::Completed, Some(false)),
        );
        assert_eq!(d, Decision::Promote);
    }

    #[test]
    fn unfinished_run_is_never_promoted() {
        let mut r = result(Stage::Failed, None);
        r.failure = Some("Interrupted: SIGTERM".into());
        let d = should_promote(&spec(PromoteWhen::Always), &r);
        let Decision::Skip { reason } = d else {
            panic!("{d:?}")
        };
        assert!(reason.contains("Interrupted: SIGTERM"), "{reason}");
    }
}
