package translate

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// prometheus exposes Envoy's Prometheus stats, and nothing else of the admin
// interface, on mesh.PrometheusPort for scraping. Listener and cluster are the
// same in every group: they are built once.
func (t *translator) prometheus() {
	kind := "prometheus-listener"
	if t.view.IPv6 {
		kind += "-ipv6"
	}
	t.out.Listeners = append(t.out.Listeners, sharedResource(t, kind, nil, mesh.Port{}, func(t *translator) *listenerv3.Listener {
		route := singleRoute(PrometheusListener,
			&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/stats/prometheus"}},
			toCluster(AdminCluster))
		l := t.listener(PrometheusListener, mesh.PrometheusPort, corev3.TrafficDirection_INBOUND)
		l.FilterChains = []*listenerv3.FilterChain{{Name: PrometheusListener, Filters: []*listenerv3.Filter{
			t.httpConnectionManager(PrometheusListener, &hcmv3.HttpConnectionManager{
				RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: route},
			}, nil),
		}}}
		return l
	}))
	t.out.Clusters = append(t.out.Clusters, sharedResource(t, "admin-cluster", nil, mesh.Port{}, func(t *translator) *clusterv3.Cluster {
		return t.localCluster(AdminCluster, mesh.AdminPort, mesh.ProtocolHTTP)
	}))
}
