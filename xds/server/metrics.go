package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the xDS server, on the manager's metrics endpoint.
var (
	connectedProxies = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "osm_xds_connected_proxies",
		Help: "Proxies holding at least one authorized xDS stream.",
	})
	pushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "osm_xds_pushes_total",
		Help: "xDS responses sent, by resource type.",
	}, []string{"type"})
	nacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "osm_xds_nacks_total",
		Help: "xDS responses a proxy rejected, by resource type.",
	}, []string{"type"})
	denied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "osm_xds_streams_denied_total",
		Help: "xDS streams refused or ended: the certificate did not prove the node's workload, a request named another node, or the workload changed.",
	})
	ackLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "osm_xds_push_ack_seconds",
		Help:    "Time from sending an xDS response to the proxy's ACK.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
)

func init() {
	metrics.Registry.MustRegister(connectedProxies, pushes, nacks, denied, ackLatency)
}
