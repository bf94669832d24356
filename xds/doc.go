// Package xds is the operator's xDS control plane. Data flows one way through
// its subpackages: mesh (the model built from the informer cache) → translate
// (pure functions from the model to Envoy v3 resources per proxy group) → cache
// (go-control-plane snapshots keyed by proxy group) → server (ADS over gRPC
// with mutual TLS). runner drives the flow from the cluster's changes, and
// controlplane wires runner, cache, server and the census of one replica.
package xds
