package rbaceval

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"

	"github.com/open-service-mesh/osm-operator/xds/routesim"
)

// Request is what Envoy's RBAC matchers see of a connection and, on HTTP,
// of one of its requests. The field names follow the matchers that read
// them.
type Request struct {
	// TLS says that the connection is TLS (Envoy's connection.ssl() is
	// set), which a peer certificate implies: only then can an
	// authenticated principal match.
	TLS bool
	// PeerURISANs, PeerDNSSANs and PeerSubject describe the peer
	// certificate that the TLS handshake accepted, in the certificate's
	// order; all are empty when the client presented none. PeerSubject is
	// printed as Envoy prints it (RFC 2253: "CN=bookbuyer,O=example").
	PeerURISANs []string
	PeerDNSSANs []string
	PeerSubject string

	// DirectRemoteIP is the address of the physical peer
	// (direct_remote_ip).
	DirectRemoteIP netip.Addr
	// SourceIP is the connection's remote address, which a PROXY protocol
	// listener filter replaces (source_ip); when not valid, it is
	// DirectRemoteIP.
	SourceIP netip.Addr
	// RemoteIP is the downstream remote address, which the HTTP connection
	// manager may also infer from x-forwarded-for (remote_ip); when not
	// valid, it is SourceIP, except that an HTTP request with an
	// x-forwarded-for header needs it set (Evaluate fails).
	RemoteIP netip.Addr
	// DestinationIP and DestinationPort are the connection's local
	// address, the original destination when the listener has
	// original_dst (destination_ip, destination_port).
	DestinationIP   netip.Addr
	DestinationPort uint32
	// ServerName is the requested server name (TLS SNI) as the listener's
	// TLS inspector found it; empty when none ran.
	ServerName string

	// HTTP says that the rules are evaluated as the HTTP RBAC filter does,
	// for the request of Headers; when false, as the network RBAC filter
	// does, with no headers (header and url_path never match, save a
	// matcher of a header's absence).
	HTTP bool
	// Headers are the request's headers as the HTTP filters see them in
	// Envoy's header map: lower-case names, pseudo-headers :method, :path
	// (with its query) and :authority (HTTP/1's Host), a repeated name
	// once per value.
	Headers routesim.Headers
}

// Decision is a verdict of RBAC rules.
type Decision struct {
	// Allowed says whether the connection or request goes on.
	Allowed bool
	// Policy is the policy that decided, Envoy's effective policy id (the
	// first policy in name order that matches); "" when none matched.
	Policy string
	// Reason says why, in a sentence.
	Reason string
	// Filter is the name of the RBAC filter that decided, from
	// EvaluateChain; "" from Evaluate.
	Filter string
}

// Evaluate is the verdict of rules on req, as Envoy's RBAC engine gives it
// (RoleBasedAccessControlEngineImpl in
// source/extensions/filters/common/rbac/engine_impl.cc): the policies are
// tried in the lexicographic (byte) order of their names, each matching when
// one of its permissions and then one of its principals match, and the
// first that matches is the effective policy. Action ALLOW allows exactly
// what a policy matches (no policy: nothing), DENY what none matches (no
// policy: everything), LOG everything (a match only sets the
// access_log_hint metadata). Nil rules are a filter without rules, which
// has no engine and allows everything (createEngine in
// source/extensions/filters/common/rbac/utility.h).
//
// Rules Envoy refuses (its proto validation, a bad regex or CIDR) and rules
// with a matcher rbaceval does not evaluate are an error, whatever the
// request; so is a request without what a matcher it reaches needs.
func Evaluate(rules *rbacv3.RBAC, req Request) (Decision, error) {
	if rules == nil {
		return Decision{Allowed: true, Reason: "allowed: no RBAC rules apply (Envoy runs no RBAC engine)"}, nil
	}
	e, err := compile(rules)
	if err != nil {
		return Decision{}, err
	}
	if err := req.check(); err != nil {
		return Decision{}, err
	}
	return e.evaluate(&req)
}

// check refuses a request that no connection can be.
func (r *Request) check() error {
	if r.DestinationPort > 65535 {
		return fmt.Errorf("rbaceval: destination port %d is not a port", r.DestinationPort)
	}
	return nil
}

// tls says whether the connection is TLS.
func (r *Request) tls() bool {
	return r.TLS || len(r.PeerURISANs) > 0 || len(r.PeerDNSSANs) > 0 || r.PeerSubject != ""
}

// engine is compiled rules.
type engine struct {
	action   rbacv3.RBAC_Action
	names    []string // policy names, sorted
	policies map[string]compiledPolicy
}

// compiledPolicy is a policy's permissions and principals, each list
// matching when one of its matchers does (PolicyMatcher in
// source/extensions/filters/common/rbac/matchers.h).
type compiledPolicy struct {
	permissions, principals []matcher
}

// compile builds the engine of rules as Envoy loads them: validated, then
// every policy's matchers (a config Envoy refuses, or one rbaceval cannot
// evaluate, is an error before any request).
func compile(rules *rbacv3.RBAC) (*engine, error) {
	if err := rules.Validate(); err != nil {
		return nil, fmt.Errorf("rbaceval: Envoy refuses the RBAC rules: %w", err)
	}
	e := &engine{action: rules.GetAction(), names: slices.Sorted(maps.Keys(rules.GetPolicies())), policies: map[string]compiledPolicy{}}
	for _, name := range e.names {
		p := rules.GetPolicies()[name]
		field := fmt.Sprintf("policies[%q]", name)
		if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
			return nil, fmt.Errorf("rbaceval: %s.condition: CEL conditions are not evaluated", field)
		}
		var cp compiledPolicy
		for i, perm := range p.GetPermissions() {
			m, err := compilePermission(perm, fmt.Sprintf("%s.permissions[%d]", field, i))
			if err != nil {
				return nil, err
			}
			cp.permissions = append(cp.permissions, m)
		}
		for i, pr := range p.GetPrincipals() {
			m, err := compilePrincipal(pr, fmt.Sprintf("%s.principals[%d]", field, i))
			if err != nil {
				return nil, err
			}
			cp.principals = append(cp.principals, m)
		}
		e.policies[name] = cp
	}
	return e, nil
}

// evaluate is RoleBasedAccessControlEngineImpl::handleAction and
// checkPolicyMatch: the first policy in name order that matches, then the
// action.
func (e *engine) evaluate(req *Request) (Decision, error) {
	in := &input{req: req}
	if req.HTTP {
		in.headers = req.Headers
	}
	matched := ""
	var misses []string
	for _, name := range e.names {
		p := e.policies[name]
		ok, err := anyOf(p.permissions, in)
		if err != nil {
			return Decision{}, fmt.Errorf("rbaceval: policy %q: %w", name, err)
		}
		if !ok {
			misses = append(misses, fmt.Sprintf("%q: no permission matches", name))
			continue
		}
		if ok, err = anyOf(p.principals, in); err != nil {
			return Decision{}, fmt.Errorf("rbaceval: policy %q: %w", name, err)
		}
		if !ok {
			misses = append(misses, fmt.Sprintf("%q: a permission matches, no principal does", name))
			continue
		}
		matched = name
		break
	}
	none := "there is no policy"
	if len(misses) > 0 {
		none = "no policy matches (" + strings.Join(misses, "; ") + ")"
	}
	switch e.action {
	case rbacv3.RBAC_ALLOW:
		if matched != "" {
			return Decision{Allowed: true, Policy: matched, Reason: fmt.Sprintf("allowed by policy %q (action ALLOW)", matched)}, nil
		}
		return Decision{Reason: "denied: action ALLOW allows only what a policy matches, and " + none}, nil
	case rbacv3.RBAC_DENY:
		if matched != "" {
			return Decision{Policy: matched, Reason: fmt.Sprintf("denied by policy %q (action DENY)", matched)}, nil
		}
		return Decision{Allowed: true, Reason: "allowed: action DENY denies only what a policy matches, and " + none}, nil
	case rbacv3.RBAC_LOG:
		if matched != "" {
			return Decision{Allowed: true, Policy: matched, Reason: fmt.Sprintf("allowed: action LOG allows everything; policy %q matches, so access_log_hint is true", matched)}, nil
		}
		return Decision{Allowed: true, Reason: "allowed: action LOG allows everything; " + none + ", so access_log_hint is false"}, nil
	}
	return Decision{}, fmt.Errorf("rbaceval: action %v is not evaluated", e.action)
}

// anyOf says whether one of ms matches, trying them in order (OrMatcher).
func anyOf(ms []matcher, in *input) (bool, error) {
	for _, m := range ms {
		ok, err := m(in)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// allOf says whether every one of ms matches, in order (AndMatcher).
func allOf(ms []matcher, in *input) (bool, error) {
	for _, m := range ms {
		ok, err := m(in)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}
