package envoyrules

import (
	"fmt"
	"net/netip"
	"slices"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// RegexLimitKey is the runtime key of the RE2 program size above which Envoy
// refuses a regex.
const RegexLimitKey = "re2.max_program_size.error_level"

// EnvoyRegexLimit is the limit when no runtime layer sets RegexLimitKey.
const EnvoyRegexLimit = 100

// MeshRegexLimit is the limit the mesh's bootstraps set, and so the largest
// regex the mesh accepts in a policy. Envoy's default of 100 refuses
// ordinary patterns (a versioned path with a UUID is about 150); the cost of
// an RE2 match grows with the program, so the limit stays bounded.
const MeshRegexLimit = 1000

// RegexLimit is the RE2 program size limit a bootstrap gives its proxy: the
// last static runtime layer that sets RegexLimitKey, as Envoy layers them.
func RegexLimit(b *bootstrapv3.Bootstrap) int {
	limit := EnvoyRegexLimit
	for _, l := range b.GetLayeredRuntime().GetLayers() {
		if v, ok := l.GetStaticLayer().GetFields()[RegexLimitKey]; ok {
			limit = int(v.GetNumberValue())
		}
	}
	return limit
}

// CheckBootstrap checks a bootstrap, with dynamic the resources its proxy
// is then sent (nil when not known): its static resources obey the same
// rules as dynamic ones, its dynamic resources come over ADS from a static
// cluster, and its admin interface binds an address no listener has.
func CheckBootstrap(b *bootstrapv3.Bootstrap, dynamic *Resources, opts Options) error {
	r := &Resources{}
	if dynamic != nil {
		*r = *dynamic
	}
	r.StaticListeners = b.GetStaticResources().GetListeners()
	r.StaticClusters = b.GetStaticResources().GetClusters()
	f := &facts{}
	static := map[string]*clusterv3.Cluster{}
	for _, c := range r.StaticClusters {
		static[c.GetName()] = c
	}
	name := b.GetNode().GetId()
	statsConfig(name, b.GetStatsConfig(), f)
	dr := b.GetDynamicResources()
	ads := dr.GetAdsConfig()
	if dr != nil {
		for _, gs := range ads.GetGrpcServices() {
			cn := gs.GetEnvoyGrpc().GetClusterName()
			c := static[cn]
			switch {
			case c == nil:
				f.fail("bootstrap", name, "the ADS server's cluster is a static cluster", fmt.Sprintf("\"Unknown gRPC client cluster '%s'\" (source/common/upstream/cluster_manager_impl.cc)", cn))
			case c.GetType() == clusterv3.Cluster_EDS:
				f.fail("bootstrap", name, "the ADS server's cluster is not an EDS cluster", fmt.Sprintf("\"gRPC client cluster '%s' is not static\"", cn))
			}
		}
		if len(ads.GetGrpcServices()) == 0 {
			f.fail("bootstrap", name, "ADS has a gRPC service", "\"API configs must have either a gRPC service or a cluster name defined\" (source/common/config/utility.cc)")
		}
		for what, cs := range map[string]bool{"LDS": dr.GetLdsConfig().GetAds() != nil, "CDS": dr.GetCdsConfig().GetAds() != nil} {
			if !cs {
				f.fail("bootstrap", name, what+" comes over ADS", "the mesh serves nothing else")
			}
		}
	}
	if sa := b.GetAdmin().GetAddress().GetSocketAddress(); sa != nil {
		ip, err := netip.ParseAddr(sa.GetAddress())
		switch {
		case err != nil:
			f.fail("bootstrap", name, "the admin address is an IP address", "\"malformed IP address: "+sa.GetAddress()+"\"")
		case !ip.IsLoopback():
			f.fail("bootstrap", name, "the admin interface listens on loopback only", "anyone who reaches it can read the proxy's keys and stop it")
		}
		for _, l := range append(slices.Clip(r.StaticListeners), r.Listeners...) {
			for _, a := range bound(l) {
				la := a.GetSocketAddress()
				lip, err := netip.ParseAddr(la.GetAddress())
				sameFamily := err == nil && lip.Is4() == ip.Is4()
				if sameFamily && la.GetPortValue() == sa.GetPortValue() && (lip == ip || lip.IsUnspecified()) {
					f.fail("listener", l.GetName(), "no listener binds the admin interface's port", fmt.Sprintf("\"cannot bind '%s': Address already in use\" (source/common/network/listen_socket_impl.cc)", addressList(l)))
				}
			}
		}
	}
	if opts.MaxRegexProgramSize == 0 {
		opts.MaxRegexProgramSize = RegexLimit(b)
	}
	err := NewChecker(opts).Check(r)
	if vs, ok := err.(Violations); ok {
		f.errs = append(f.errs, vs...)
	}
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs
}
