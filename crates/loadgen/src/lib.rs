//! HTTP load engine of slogate: open and closed models, HdrHistogram recording.
