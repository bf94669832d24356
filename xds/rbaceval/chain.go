package rbaceval

import (
	"fmt"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs of the filter configurations FilterChainRules reads.
const (
	networkRBACType = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
	httpRBACType    = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	hcmType         = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)

// Filter is an RBAC filter of a filter chain.
type Filter struct {
	// Name is the filter's name (envoy.filters.network.rbac,
	// envoy.filters.http.rbac).
	Name string
	// HTTP says that it is an HTTP filter of the chain's connection
	// manager, which checks each request; else a network filter, which
	// checks the connection.
	HTTP bool
	// Rules are the rules it enforces; nil when it has none, and so no
	// engine (it allows everything). Shadow rules decide nothing and are
	// left out.
	Rules *rbacv3.RBAC
}

// FilterChainRules are the RBAC filters of fc in the order Envoy runs
// them: its network filters in order, and where the HTTP connection
// manager is, its HTTP filters in order. The filters' configurations are
// unpacked from their typed configs, Envoy picking a filter by its type
// URL. What rbaceval cannot see or evaluate is an error: a filter
// configured by ECDS or by a TypedStruct, an RBAC filter's matcher tree, a
// disabled HTTP RBAC filter (the routes that enable it are not read), and
// HTTP RBAC on a connection manager whose routes could override it per
// route (typed_per_filter_config naming the filter, or routes by RDS or
// scoped RDS, which are not at hand).
func FilterChainRules(fc *listenerv3.FilterChain) ([]Filter, error) {
	var out []Filter
	for i, f := range fc.GetFilters() {
		where := fmt.Sprintf("filter chain %q: filter %d (%s)", fc.GetName(), i, f.GetName())
		tc := f.GetTypedConfig()
		if tc == nil {
			return nil, fmt.Errorf("rbaceval: %s has no typed config (ECDS is not read)", where)
		}
		switch tc.GetTypeUrl() {
		case networkRBACType:
			cfg := &rbacnetv3.RBAC{}
			if err := tc.UnmarshalTo(cfg); err != nil {
				return nil, fmt.Errorf("rbaceval: %s: %w", where, err)
			}
			if cfg.GetMatcher() != nil {
				return nil, fmt.Errorf("rbaceval: %s: matcher: RBAC matcher trees are not evaluated", where)
			}
			out = append(out, Filter{Name: f.GetName(), Rules: cfg.GetRules()})
		case hcmType:
			hcm := &hcmv3.HttpConnectionManager{}
			if err := tc.UnmarshalTo(hcm); err != nil {
				return nil, fmt.Errorf("rbaceval: %s: %w", where, err)
			}
			hf, err := httpFilters(hcm, where)
			if err != nil {
				return nil, err
			}
			out = append(out, hf...)
		default:
			if isTypedStruct(tc) {
				return nil, fmt.Errorf("rbaceval: %s: a TypedStruct config is not read", where)
			}
		}
	}
	return out, nil
}

// httpFilters are the RBAC filters of a connection manager.
func httpFilters(hcm *hcmv3.HttpConnectionManager, where string) ([]Filter, error) {
	var out []Filter
	for i, hf := range hcm.GetHttpFilters() {
		at := fmt.Sprintf("%s: HTTP filter %d (%s)", where, i, hf.GetName())
		tc := hf.GetTypedConfig()
		if tc == nil {
			return nil, fmt.Errorf("rbaceval: %s has no typed config (ECDS is not read)", at)
		}
		if isTypedStruct(tc) {
			return nil, fmt.Errorf("rbaceval: %s: a TypedStruct config is not read", at)
		}
		if tc.GetTypeUrl() != httpRBACType {
			continue
		}
		cfg := &rbachttpv3.RBAC{}
		if err := tc.UnmarshalTo(cfg); err != nil {
			return nil, fmt.Errorf("rbaceval: %s: %w", at, err)
		}
		switch {
		case cfg.GetMatcher() != nil:
			return nil, fmt.Errorf("rbaceval: %s: matcher: RBAC matcher trees are not evaluated", at)
		case hf.GetDisabled():
			return nil, fmt.Errorf("rbaceval: %s is disabled: the routes that would enable it are not read", at)
		}
		if err := perRouteFree(hcm, hf.GetName()); err != nil {
			return nil, fmt.Errorf("rbaceval: %s: %w", at, err)
		}
		out = append(out, Filter{Name: hf.GetName(), HTTP: true, Rules: cfg.GetRules()})
	}
	return out, nil
}

// perRouteFree checks that no route of hcm overrides the filter name
// (RBACPerRoute, which Envoy takes from the most specific level:
// RoleBasedAccessControlFilterConfig::engine in
// source/extensions/filters/http/rbac/rbac_filter.cc).
func perRouteFree(hcm *hcmv3.HttpConnectionManager, name string) error {
	rc := hcm.GetRouteConfig()
	if rc == nil {
		return fmt.Errorf("its connection manager's routes are not inline (RDS, scoped RDS): per-route RBAC overrides cannot be seen")
	}
	overrides := func(level string, m map[string]*anypb.Any) error {
		if _, ok := m[name]; ok {
			return fmt.Errorf("%s overrides it per route (typed_per_filter_config), which is not evaluated", level)
		}
		return nil
	}
	if err := overrides(fmt.Sprintf("route configuration %q", rc.GetName()), rc.GetTypedPerFilterConfig()); err != nil {
		return err
	}
	for _, vh := range rc.GetVirtualHosts() {
		if err := overrides(fmt.Sprintf("virtual host %q", vh.GetName()), vh.GetTypedPerFilterConfig()); err != nil {
			return err
		}
		for i, r := range vh.GetRoutes() {
			level := fmt.Sprintf("virtual host %q route %d", vh.GetName(), i)
			if err := overrides(level, r.GetTypedPerFilterConfig()); err != nil {
				return err
			}
			for _, wc := range r.GetRoute().GetWeightedClusters().GetClusters() {
				if err := overrides(level+" cluster "+wc.GetName(), wc.GetTypedPerFilterConfig()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// isTypedStruct says whether a typed config is a TypedStruct, which
// carries its real type inside.
func isTypedStruct(a *anypb.Any) bool {
	return strings.HasSuffix(a.GetTypeUrl(), "/udpa.type.v1.TypedStruct") || strings.HasSuffix(a.GetTypeUrl(), "/xds.type.v3.TypedStruct")
}

// EvaluateChain is the verdict of the RBAC filters of fc on req, as Envoy
// runs them: first the network filters, on the connection (one denying
// closes it before any HTTP request is read: onData in
// source/extensions/filters/network/rbac/rbac_filter.cc, which checks at
// the connection's first bytes), then on an HTTP chain the HTTP filters, on
// each request (one denying answers 403: decodeHeaders in
// source/extensions/filters/http/rbac/rbac_filter.cc). The first filter
// that denies decides; when all allow, the decision is that of the last
// filter with rules (its policy is the one that let the request in last),
// and Reason tells every filter's verdict in order. A chain without
// RBAC filters allows everything. An HTTP chain needs req.HTTP; network
// filters see no headers whatever req says.
//
// Only RBAC is evaluated: the other filters (rate limits, the router's
// routes) may refuse what RBAC allows.
func EvaluateChain(fc *listenerv3.FilterChain, req Request) (Decision, error) {
	filters, err := FilterChainRules(fc)
	if err != nil {
		return Decision{}, err
	}
	if len(filters) == 0 {
		return Decision{Allowed: true, Reason: fmt.Sprintf("allowed: filter chain %q has no RBAC filter", fc.GetName())}, nil
	}
	var d Decision
	var steps []string
	for i, f := range filters {
		r := req
		kind := "network"
		if f.HTTP {
			kind = "HTTP"
			if !req.HTTP {
				return Decision{}, fmt.Errorf("rbaceval: filter chain %q checks HTTP requests (%s): the request must be HTTP", fc.GetName(), f.Name)
			}
		} else {
			r.HTTP, r.Headers = false, nil
		}
		fd, err := Evaluate(f.Rules, r)
		if err != nil {
			return Decision{}, fmt.Errorf("filter chain %q: %s filter %s: %w", fc.GetName(), kind, f.Name, err)
		}
		fd.Filter = f.Name
		steps = append(steps, fmt.Sprintf("%s filter %s: %s", kind, f.Name, fd.Reason))
		// A filter without rules decides nothing: the decision stays the
		// last one of rules.
		if f.Rules != nil || i == 0 {
			d = fd
		}
		if !fd.Allowed {
			switch {
			case f.HTTP:
				steps[len(steps)-1] += " (Envoy answers 403)"
			case hasHTTP(filters):
				steps[len(steps)-1] += " (Envoy closes the connection before any HTTP request)"
			default:
				steps[len(steps)-1] += " (Envoy closes the connection)"
			}
			break
		}
	}
	d.Reason = strings.Join(steps, "; then ")
	return d, nil
}

// hasHTTP says whether some filter is an HTTP one.
func hasHTTP(fs []Filter) bool {
	for _, f := range fs {
		if f.HTTP {
			return true
		}
	}
	return false
}
