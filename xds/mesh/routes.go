package mesh

import (
	"cmp"
	"slices"
	"strings"
	"time"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// The model of Gateway API routes for mesh traffic (GAMMA): HTTPRoutes and
// GRPCRoutes whose parentRefs name a Service. A route in the Service's own
// namespace is a producer route, for every caller; one in another namespace
// is a consumer route, for that namespace's callers only, who then see no
// producer route of the Service (GEP-1294). Both kinds become one table of
// routes per service port and caller scope, in the order a proxy tries them.

// RouteKind is the kind of a Gateway API route.
type RouteKind string

const (
	KindHTTPRoute RouteKind = "HTTPRoute"
	KindGRPCRoute RouteKind = "GRPCRoute"
)

// RouteRef names a route object and one of its rules.
type RouteRef struct {
	Kind            RouteKind
	Namespace, Name string
	// Rule is the rule's index; RuleName its name, when it has one.
	Rule     int
	RuleName string
}

// Object is "Kind namespace/name", as problems name objects.
func (r RouteRef) Object() string { return string(r.Kind) + " " + r.Namespace + "/" + r.Name }

// RouteTableKey names a route table: a service port, for the callers of
// one namespace (Consumer) or for every caller (Consumer "").
type RouteTableKey struct {
	Service  ServiceKey
	Port     int32
	Consumer string
}

// RouteTable is how requests for a service port are routed, for the callers
// of its key: its entries in the order a proxy tries them; a request that
// matches none is answered 404.
type RouteTable struct {
	Key     RouteTableKey
	Entries []*RouteEntry
	// Routes are the route objects the table merges, as "Kind ns/name", sorted.
	Routes []string
}

// RouteEntry is one match of a route rule, with the rule's action.
type RouteEntry struct {
	Ref    RouteRef
	Match  RouteMatch
	Action *RouteAction
}

// PathMatchKind is how a route matches the request's path.
type PathMatchKind string

const (
	PathExact  PathMatchKind = "Exact"
	PathPrefix PathMatchKind = "PathPrefix"
	PathRegex  PathMatchKind = "RegularExpression"
)

// RouteMatch is what a request must carry to take a route entry. Every part
// must match.
type RouteMatch struct {
	PathKind PathMatchKind
	// Path is the exact path, the prefix (path elements: "/a" matches "/a"
	// and "/a/b", not "/ab"; never with a trailing "/" but the root's) or
	// the RE2 regex of the whole path.
	Path string
	// Method is the HTTP method, "" for any.
	Method  string
	Headers []ValueMatch
	Query   []ValueMatch
}

// ValueMatch matches a header or query parameter by name: its value equals
// Value, or matches it as an RE2 regex.
type ValueMatch struct {
	Name, Value string
	Regex       bool
}

// RouteAction is what a route rule does with the requests it matches: send
// them to its backends, or redirect them.
type RouteAction struct {
	// Backends share the requests by weight; none (or none of weight > 0)
	// answers 500.
	Backends        []RouteBackend
	RequestHeaders  HeaderModifier
	ResponseHeaders HeaderModifier
	// Redirect answers with a redirect instead of sending the request on.
	Redirect *Redirect
	Rewrite  *Rewrite
	Mirrors  []Mirror
	// Timeout bounds the whole request, retries included; BackendTimeout
	// each try. Zero is no timeout.
	Timeout, BackendTimeout time.Duration
	Retry                   *Retry
	// Fault is the fault of the ResiliencePolicy an ExtensionRef filter of
	// the rule names, injected into the requests the rule matches.
	Fault *meshv1alpha1.Fault
}

// RouteBackend is a service port a rule sends a share of its requests to.
type RouteBackend struct {
	Service ServiceKey
	Port    int32
	Weight  uint32
	// RequestHeaders modifies the requests sent to this backend only.
	RequestHeaders HeaderModifier
	// Invalid says that the reference does not resolve (its status says
	// why): the backend's share of requests is answered 500.
	Invalid bool
}

// HeaderModifier sets, adds and removes headers; names are lower case.
type HeaderModifier struct {
	Set, Add []Header
	Remove   []string
}

// Empty says whether the modifier changes nothing.
func (h HeaderModifier) Empty() bool { return len(h.Set)+len(h.Add)+len(h.Remove) == 0 }

// Header is a header name and value.
type Header struct{ Name, Value string }

// Redirect answers a request with a redirect to where it is rewritten: the
// parts left empty keep the request's.
type Redirect struct {
	Scheme, Host string
	// Port is the port of the new location, 0 to keep the request's (or
	// drop it, when the scheme changes to one whose default port it is).
	Port int32
	Path PathRewrite
	// StatusCode is 301, 302, 303, 307 or 308.
	StatusCode int
}

// Rewrite changes the request before it is sent to the backends.
type Rewrite struct {
	Host string
	Path PathRewrite
}

// PathRewrite replaces the whole path (Full), or the prefix the entry
// matched (Prefix, for a PathPrefix match). Neither set leaves the path.
type PathRewrite struct {
	Full, Prefix *string
}

// Set says whether the rewrite changes the path.
func (p PathRewrite) Set() bool { return p.Full != nil || p.Prefix != nil }

// Mirror copies a share of the requests to a service port, whose answers
// are dropped: Numerator out of Denominator requests.
type Mirror struct {
	Service                ServiceKey
	Port                   int32
	Numerator, Denominator uint32
}

// Retry retries requests that fail: connection failures, and the answers
// with one of Codes. Attempts are the retries after the first try; Backoff
// the least wait between tries (zero for the proxy's default).
type Retry struct {
	Codes    []int
	Attempts int
	Backoff  time.Duration
}

// RouteTable returns the table that routes requests to port of s for the
// callers in namespace: the namespace's consumer routes of the port, else
// the producer routes, else nil (the service's own routing).
func (m *Mesh) RouteTable(namespace string, s ServiceKey, port int32) *RouteTable {
	if t := m.Routes[RouteTableKey{s, port, namespace}]; t != nil {
		return t
	}
	return m.Routes[RouteTableKey{s, port, ""}]
}

// RoutesInjectFaults says whether a rule of a route table of port of s,
// for any callers, injects a fault of its own.
func (m *Mesh) RoutesInjectFaults(s ServiceKey, port int32) bool {
	return m.faultyPorts[PortKey{s, port}]
}

// RouteConsumers are the namespaces with consumer routes of port of s, sorted.
func (m *Mesh) RouteConsumers(s ServiceKey, port int32) []string {
	return m.routeConsumers[RouteTableKey{Service: s, Port: port}]
}

// routeBackends are the services a table sends requests to or mirrors them
// to: a caller that sees the table's service must see them too.
func (t *RouteTable) backends() []ServiceKey {
	var out []ServiceKey
	for _, e := range t.Entries {
		for _, be := range e.Action.Backends {
			if !be.Invalid {
				out = append(out, be.Service)
			}
		}
		for _, mr := range e.Action.Mirrors {
			out = append(out, mr.Service)
		}
	}
	slices.SortFunc(out, compareServiceKey)
	return slices.Compact(out)
}

// routeOrder is the precedence of route entries Gateway API defines, first
// first: an exact path, then a regex path (the spec leaves its place to
// us), then the longest prefix; then a method match, more header matches,
// more query matches; then the older route, the route first by
// namespace/name, the rule and match written first.
func routeOrder(a, b *orderedEntry) int {
	return cmp.Or(
		cmp.Compare(pathRank(a.Match.PathKind), pathRank(b.Match.PathKind)),
		-cmp.Compare(len(a.Match.Path), len(b.Match.Path)),
		-cmp.Compare(boolRank(a.Match.Method != ""), boolRank(b.Match.Method != "")),
		-cmp.Compare(len(a.Match.Headers), len(b.Match.Headers)),
		-cmp.Compare(len(a.Match.Query), len(b.Match.Query)),
		a.created.Compare(b.created),
		strings.Compare(a.Ref.Namespace+"/"+a.Ref.Name, b.Ref.Namespace+"/"+b.Ref.Name),
		cmp.Compare(kindRank(a.Ref.Kind), kindRank(b.Ref.Kind)),
		cmp.Compare(a.Ref.Rule, b.Ref.Rule),
		cmp.Compare(a.match, b.match),
	)
}

// orderedEntry is an entry with what orders it beyond its match.
type orderedEntry struct {
	*RouteEntry
	created time.Time
	match   int
}

func pathRank(k PathMatchKind) int {
	switch k {
	case PathExact:
		return 0
	case PathRegex:
		return 1
	}
	return 2
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// kindRank puts a GRPCRoute's entries before an HTTPRoute's of the same
// precedence: Gateway API prefers the GRPCRoute when both match.
func kindRank(k RouteKind) int {
	if k == KindGRPCRoute {
		return 0
	}
	return 1
}
