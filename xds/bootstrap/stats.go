package bootstrap

import (
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
)

// Identity labels. With the mesh's metrics.identityLabels, the translator
// ends the stat names of some resources with the identity they concern
// (translate.StatSourceTag, StatDestinationTag): a listener's stat prefix,
// an HTTP connection manager's or TCP proxy's, a cluster's alt_stat_name,
// "<name>~src=<namespace>/<serviceaccount>" or "~dst=". These tag
// extractors make Prometheus labels of them:
//
//   - osm_source and osm_destination take the identity;
//   - envoy.cluster_name, envoy.http_conn_manager_prefix, envoy.tcp_prefix
//     and envoy.listener_address take the name before the "~", in place of
//     Envoy's default extractors of those names, which would take the whole
//     token.
//
// How Envoy applies them (source/common/stats/tag_producer_impl.cc): every
// extractor reads the whole stat name; those whose regex has no literal
// prefix ("^name\." — the "(?:...)" below hides it) run before the others;
// of extractors of one name, the first that extracts wins and the others
// are skipped; the first capture group is cut from the name and the second
// is the value (tag_extractor_impl.cc, std::regex ECMAScript search). So a
// name without "~" is left to Envoy's defaults, and metric names are the
// same with and without identity labels. Custom extractors are added after
// the defaults, which stay (use_all_default_tags unset).
const (
	SourceTag      = "osm_source"
	DestinationTag = "osm_destination"
)

// statsTags are the bootstrap's tag extractors, in order.
var statsTags = []struct{ name, regex string }{
	{SourceTag, `(~src=([^.~]+))`},
	{DestinationTag, `(~dst=([^.~]+))`},
	{"envoy.cluster_name", `^(?:cluster)\.(([^.~]+)~[^.]*\.)`},
	{"envoy.http_conn_manager_prefix", `^(?:http)\.(([^.~]+)~[^.]*\.)`},
	{"envoy.http_conn_manager_prefix", `^(?:listener)\.[^.]+\.http\.(([^.~]+)~[^.]*\.)`},
	{"envoy.tcp_prefix", `^(?:tcp)\.(([^.~]+)~[^.]*\.)`},
	{"envoy.listener_address", `^(?:listener)\.(([^.~]+)~[^.]*\.)`},
}

// StatsConfig is the stats configuration of the mesh's proxies: Envoy's
// default tag extractors, and those of the identity labels.
func StatsConfig() *metricsv3.StatsConfig {
	c := &metricsv3.StatsConfig{}
	for _, t := range statsTags {
		c.StatsTags = append(c.StatsTags, &metricsv3.TagSpecifier{TagName: t.name, TagValue: &metricsv3.TagSpecifier_Regex{Regex: t.regex}})
	}
	return c
}
