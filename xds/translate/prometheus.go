package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// prometheus exposes Envoy's Prometheus stats, and nothing else of the admin
// interface, on PrometheusPort for scraping.
func (t *translator) prometheus() {
	route := singleRoute(PrometheusListener,
		&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/stats/prometheus"}},
		toCluster(AdminCluster))
	t.out.Listeners = append(t.out.Listeners, &listenerv3.Listener{
		Name:             PrometheusListener,
		Address:          socketAddress("0.0.0.0", PrometheusPort),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{
			t.httpConnectionManager(PrometheusListener, &hcmv3.HttpConnectionManager{
				RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: route},
			}, nil),
		}}},
	})
	t.out.Clusters = append(t.out.Clusters, t.localCluster(AdminCluster, AdminPort, mesh.ProtocolHTTP))
}
