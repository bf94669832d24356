// Package webhooks holds the admission webhooks: the mutating pod injector
// (Envoy sidecar, init container, probes) and the validating webhooks of the
// mesh API and of SMI objects. They read the mesh model; they never write to the
// API server and never wait on it.
package webhooks
