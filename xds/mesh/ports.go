package mesh

// Ports of the proxy's own, in one place: the translator binds its
// listeners to them, the bootstrap its admin interface, and the injector's
// (and a VM's) redirection rules send traffic to them and let them through.
const (
	// AdminPort is Envoy's admin interface, on 127.0.0.1 only.
	AdminPort = 15000
	// OutboundListenerPort takes the workload's outbound TCP, redirected.
	OutboundListenerPort = 15001
	// InboundListenerPort takes the connections to the workload's ports,
	// redirected: mutual TLS and the mesh's policy.
	InboundListenerPort = 15003
	// PrometheusPort serves the proxy's metrics.
	PrometheusPort = 15010
	// HealthPort serves the sidecar's own readiness, /healthz/ready.
	HealthPort = 15021
	// ProbePort serves the pod's HTTP probes rewritten through the proxy;
	// gRPC probes get GRPCProbePort and up, one per port probed.
	ProbePort     = 15901
	GRPCProbePort = 15904
	// FirstProxyPort and LastProxyPort bound the ports of the proxy's own
	// listeners: no probe may be forwarded to one of them.
	FirstProxyPort = 15000
	LastProxyPort  = 15999
)
