package translate

import (
	"maps"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// httpRBAC enforces SMI on an HTTP port: a request is allowed when a
// TrafficTarget names the caller's identity (the SPIFFE ID of its verified
// client certificate) and one of the target's HTTP matches fits the request.
// With no TrafficTarget, nothing is allowed. Permissive meshes get no filter.
func (t *translator) httpRBAC(statPrefix string, port int32) *hcmv3.HttpFilter {
	return t.httpRBACFilter(statPrefix, t.rbacRules(port, true))
}

// httpRBACFilter is the HTTP filter enforcing rules; nil for nil rules.
func (t *translator) httpRBACFilter(statPrefix string, rules *rbacv3.RBAC) *hcmv3.HttpFilter {
	if rules == nil {
		return nil
	}
	return &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.rbac",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.any(&rbachttpv3.RBAC{Rules: rules, RulesStatPrefix: statPrefix})},
	}
}

// networkRBACFilter is the network filter enforcing rules (SMI TCPRoutes,
// an IngressBackend's sources); nil for nil rules.
//
// With access logs, the same rules also run as shadow rules: the network
// filter records in the connection's dynamic metadata the decision and
// policy of its shadow rules only, never of the rules it enforces
// (source/extensions/filters/network/rbac/rbac_filter.cc, setDynamicMetadata
// is called for the shadow engine), and the access log reads them there.
// Equal rules decide equally; the shadow decision costs an evaluation and
// counts shadow_allowed and shadow_denied beside allowed and denied.
func (t *translator) networkRBACFilter(statPrefix string, rules *rbacv3.RBAC) *listenerv3.Filter {
	if rules == nil {
		return nil
	}
	cfg := &rbacnetv3.RBAC{Rules: rules, StatPrefix: statPrefix}
	if t.obs().AccessLog {
		cfg.ShadowRules = rules
	}
	return &listenerv3.Filter{
		Name:       "envoy.filters.network.rbac",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.any(cfg)},
	}
}

// ingressRBAC are the ALLOW rules of the IngressBackends of a port, for its
// https chain (tls) or its plaintext one, or nil when none lets a caller in
// there. A caller must come from one of a policy's addresses (when it
// names any), over https present a certificate naming one of its principals
// (unless the backend skips validation) and ask for one of its server
// names (when it names any), and make a request of its matches (when it
// has any; on a TCP port, which cannot check them, none is allowed).
func ingressRBAC(rules []mesh.IngressRule, tls, http bool) *rbacv3.RBAC {
	out := &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: map[string]*rbacv3.Policy{}}
	for _, r := range rules {
		ib, tg := r.Policy, r.Target
		if tg.TLS != tls || ib.AllowsNothing(tg) || len(ib.HTTP) > 0 && !http {
			continue
		}
		var and []*rbacv3.Principal
		if !ib.AnyAddress {
			var or []*rbacv3.Principal
			for _, p := range ib.Addresses {
				or = append(or, &rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{
					AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits())),
				}}})
			}
			and = append(and, orPrincipals(or))
		}
		if tls && !tg.SkipClientCertValidation {
			var or []*rbacv3.Principal
			for _, n := range ib.Principals {
				or = append(or, &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{
					Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: exact(n)},
				}})
			}
			and = append(and, orPrincipals(or))
		}
		var perms []*rbacv3.Permission
		if tls && len(tg.SNIHosts) > 0 {
			var or []*rbacv3.Permission
			for _, h := range tg.SNIHosts {
				m := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h}, IgnoreCase: true}
				if suffix := mesh.WildcardSuffix(h); suffix != "" {
					m = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: suffix}, IgnoreCase: true}
				}
				or = append(or, &rbacv3.Permission{Rule: &rbacv3.Permission_RequestedServerName{RequestedServerName: m}})
			}
			perms = append(perms, orPermissions(or))
		}
		if len(ib.HTTP) > 0 {
			perms = append(perms, orPermissions(httpPermissions(ib.HTTP)))
		}
		// One Service named twice on the port (each backend with its own
		// server names, say) is two policies: neither replaces the other.
		key := ib.Namespace + "/" + ib.Name + "|" + tg.Service.Name
		for n := 2; out.Policies[key] != nil; n++ {
			key = ib.Namespace + "/" + ib.Name + "|" + tg.Service.Name + "#" + strconv.Itoa(n)
		}
		out.Policies[key] = &rbacv3.Policy{
			Principals:  []*rbacv3.Principal{andPrincipals(and)},
			Permissions: []*rbacv3.Permission{andPermissions(perms)},
		}
	}
	if len(out.Policies) == 0 {
		return nil
	}
	return out
}

func orPrincipals(or []*rbacv3.Principal) *rbacv3.Principal {
	if len(or) == 1 {
		return or[0]
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: or}}}
}

// andPrincipals is any principal for an empty and.
func andPrincipals(and []*rbacv3.Principal) *rbacv3.Principal {
	switch len(and) {
	case 0:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
	case 1:
		return and[0]
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: and}}}
}

// andPermissions is any permission for an empty and.
func andPermissions(and []*rbacv3.Permission) *rbacv3.Permission {
	switch len(and) {
	case 0:
		return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}}
	case 1:
		return and[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: and}}}
}

// rbacRules are the ALLOW rules of the group's policies for a port, or nil in
// a permissive mesh.
func (t *translator) rbacRules(port int32, http bool) *rbacv3.RBAC {
	if t.view.Mesh.Mode == mesh.ModePermissive {
		return nil
	}
	rules := &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: map[string]*rbacv3.Policy{}}
	names := t.portNames(port)
	for _, p := range t.view.Policies {
		perms := permissions(p, names, http)
		if len(perms) == 0 {
			continue
		}
		var principals []*rbacv3.Principal
		for _, src := range p.Sources {
			principals = append(principals, &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{
				Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: exact(src.SPIFFE(t.view.Mesh.TrustDomain))},
			}})
		}
		rules.Policies[p.Namespace+"/"+p.Name] = &rbacv3.Policy{Permissions: perms, Principals: principals}
	}
	return rules
}

// portNames are the numbers a TCPRoute may name a target port by: the port
// itself, and each service port served there (a user reads those off
// `kubectl get svc`; a headless StatefulSet's 3306 is often 13306 in the pod).
func (t *translator) portNames(target int32) []int32 {
	out := []int32{target}
	for _, s := range t.view.Inbound {
		for _, ip := range t.view.InboundPorts(s) {
			if ip.TargetPort == target && !slices.Contains(out, ip.Port.Port) {
				out = append(out, ip.Port.Port)
			}
		}
	}
	return out
}

// permissions are what a policy allows at a port known by ports: everything
// when a TCPRoute covers the port, else (on HTTP ports) the requests its HTTP
// matches describe.
func permissions(p *mesh.Policy, ports []int32, http bool) []*rbacv3.Permission {
	if p.AllowAllTCP || slices.ContainsFunc(ports, func(n int32) bool { return slices.Contains(p.TCPPorts, n) }) {
		return []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}}
	}
	if !http {
		return nil
	}
	return httpPermissions(p.HTTP)
}

// httpPermissions are the requests HTTP matches describe, one permission
// each.
func httpPermissions(matches []mesh.HTTPMatch) []*rbacv3.Permission {
	var out []*rbacv3.Permission
	for _, m := range matches {
		var and []*rbacv3.Permission
		if m.PathRegex != "" {
			and = append(and, &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
				Rule: &matcherv3.PathMatcher_Path{Path: regex(m.PathRegex)},
			}}})
		}
		if len(m.Methods) > 0 {
			var or []*rbacv3.Permission
			for _, meth := range m.Methods {
				or = append(or, headerPermission(":method", exact(meth)))
			}
			and = append(and, orPermissions(or))
		}
		for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
			and = append(and, headerPermission(name, regex(m.Headers[name])))
		}
		out = append(out, andPermissions(and))
	}
	return out
}

func orPermissions(or []*rbacv3.Permission) *rbacv3.Permission {
	if len(or) == 1 {
		return or[0]
	}
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: or}}}
}

func headerPermission(name string, m *matcherv3.StringMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
		Name:                 name,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: m},
	}}}
}

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

func regex(r string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: r}}}
}
