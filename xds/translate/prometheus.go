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
	l := t.listener(PrometheusListener, PrometheusPort, corev3.TrafficDirection_INBOUND)
	l.FilterChains = []*listenerv3.FilterChain{{Name: PrometheusListener, Filters: []*listenerv3.Filter{
		t.httpConnectionManager(PrometheusListener, &hcmv3.HttpConnectionManager{
			RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: route},
		}, nil),
	}}}
	t.out.Listeners = append(t.out.Listeners, l)
	t.out.Clusters = append(t.out.Clusters, t.localCluster(AdminCluster, AdminPort, mesh.ProtocolHTTP))
}
