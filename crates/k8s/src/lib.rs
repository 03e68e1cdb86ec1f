//! Kubernetes adapter of slogate: result ConfigMap and cluster reads.
