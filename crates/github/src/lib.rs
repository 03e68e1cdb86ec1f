//! GitHub promotion of slogate: pull request and commit status through octocrab.
