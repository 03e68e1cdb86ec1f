//! GitHub promotion of slogate: the pull request head → base, its labels and reviewers, and a
//! commit status `slogate/slo` on the head commit, sent through octocrab.
//!
//! The crate is split the way the flow reads:
//!
//! - [`decide`] and [`render`] are pure: whether a result may be promoted at all
//!   ([`should_promote`]) and the pull request's title and body ([`pr_title`], [`pr_body`],
//!   from handlebars templates or the markdown report). No I/O, unit tested.
//! - [`token`] reads the token file once and keeps the token out of every log, error and
//!   `Debug` output.
//! - [`retry`] classifies GitHub's answers (transient, rate limited, final) and computes the
//!   backoff; pure.
//! - [`gitops`] is promotion as one commit through GraphQL (`createCommitOnBranch` with
//!   `expectedHeadOid`), retried onto a head another writer moved, and the check that the
//!   branch still points at the tested commit; [`graphql`] sends its three GraphQL documents.
//! - [`client`] sends requests with octocrab and applies the retry policy; [`mod@promote`] is the
//!   flow: find an open pull request head → base, update it or open one, add labels and
//!   reviewers, set the commit status.
//!
//! A promotion never changes the SLO verdict: every way it can end is a
//! [`PromotionOutcome`](slogate_core::result::PromotionOutcome) recorded in the result.

pub mod client;
pub mod decide;
pub mod gitops;
pub mod graphql;
pub mod promote;
pub mod render;
pub mod retry;
pub mod token;

pub use client::GitHubError;
pub use decide::{Decision, should_promote};
pub use promote::{Options, Promotion, promote, promote_result};
pub use render::{PrContent, RenderError, check_templates, pr_body, pr_content, pr_title};
pub use retry::RetryPolicy;
/// The commit status a promotion records, re-exported from the result document.
pub use slogate_core::result::CommitStatus;
pub use token::{Token, TokenError};

/// The commit-status context slogate sets on the head commit.
pub const STATUS_CONTEXT: &str = "slogate/slo";
