// Package envoyrules checks a proxy's resources the way Envoy does when it
// loads them. Envoy's proto validation (ValidateAll) checks each field on its
// own; Envoy then refuses, or loads and runs wrongly, configs that pass it: a
// listener with no filter chain, two chains with the same match, a route to a
// cluster that does not exist, TLS whose minimum version is above Envoy's
// default maximum. Each rule here ports one such check, names the Envoy source
// it comes from and says what Envoy does.
//
// Some rules refuse what Envoy accepts but runs wrongly (mutual TLS that is
// silently not enforced, a chain that can never match): for a mesh those are
// as bad as a NACK, and worse for being silent. A few hold the mesh's own
// form (lowercase header names); their Envoy text says that Envoy loads it.
package envoyrules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Resources are what one proxy loads: the resources of its snapshot and, when
// known, the static resources of its bootstrap.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Secrets   []*tlsv3.Secret

	// StaticListeners and StaticClusters are the bootstrap's.
	StaticListeners []*listenerv3.Listener
	StaticClusters  []*clusterv3.Cluster
}

// Options are the facts of the proxies that the rules depend on.
type Options struct {
	// MaxRegexProgramSize is the RE2 program size above which the proxies
	// refuse a regex: the re2.max_program_size.error_level of their runtime
	// (Envoy's default is 100).
	MaxRegexProgramSize int
	// Blackholes are clusters meant to have no endpoint: a TCP proxy to one
	// closes the connection. Any other STATIC cluster must have endpoints.
	Blackholes []string
	// Unserved are clusters no proxy is served, that routes name on
	// purpose with a cluster_not_found_response_code of their own: through
	// RDS (validate_clusters false), Envoy answers their requests with it.
	Unserved []string
	// Unpack, when set, returns the message an Any was packed from, so that
	// what the translator made need not be decoded again; the checker
	// decodes the Anys it does not know.
	Unpack func(*anypb.Any) (proto.Message, bool)
	// SecretsPending says that the resources hold no secrets yet because the
	// identity is not issued: the listeners and clusters that name them wait
	// (warm) until they are served, as Envoy does.
	SecretsPending bool
}

// Violation is one rule a resource breaks.
type Violation struct {
	// Kind and Name say which resource: "listener", "outbound".
	Kind, Name string
	// Rule is what Envoy requires, and Envoy what Envoy does about it and
	// where its source says so (for a rule of CheckGRPC, what grpc-go does).
	Rule, Envoy string
	// GRPC says that the rule is grpc-go's, not Envoy's.
	GRPC bool
}

func (v *Violation) Error() string {
	who := "Envoy"
	if v.GRPC {
		who = "grpc-go"
	}
	return fmt.Sprintf("%s %q: %s (%s: %s)", v.Kind, v.Name, v.Rule, who, v.Envoy)
}

// Violations are every violation a check found.
type Violations []*Violation

func (vs Violations) Error() string {
	msgs := make([]string, len(vs))
	grpc := true
	for i, v := range vs {
		msgs[i] = v.Error()
		grpc = grpc && v.GRPC
	}
	if grpc && len(vs) > 0 {
		return "proxyless gRPC clients would refuse or mis-run this config: " + strings.Join(msgs, "; ")
	}
	return "Envoy would refuse or mis-run this config: " + strings.Join(msgs, "; ")
}

// IsViolation says whether err holds rule violations.
func IsViolation(err error) bool {
	var vs Violations
	return errors.As(err, &vs)
}

// Checker checks resource sets. It remembers what it found in each filter
// chain, route configuration and cluster it saw, by identity, so that the
// resources that groups share are decoded and checked once; a Checker belongs
// to one set of translations (as translate.Shared does) and is safe for
// concurrent use. Resources must not change once checked.
type Checker struct {
	opts Options
	mu   sync.Mutex
	seen map[proto.Message]*facts
}

// NewChecker returns a Checker for proxies described by opts.
func NewChecker(opts Options) *Checker {
	return &Checker{opts: opts, seen: map[proto.Message]*facts{}}
}

// facts are what a resource refers to, and the violations found within it.
type facts struct {
	routes   []string // RDS names
	clusters []string // clusters named by routes and TCP proxies
	secrets  []string // SDS names
	eds      []string // EDS service names
	// needCA are SDS names of validation contexts that must hold a trusted
	// CA (they are combined with SAN matchers).
	needCA []string
	errs   Violations
	// Of a filter chain: its match as Envoy compares two, the leaves of
	// Envoy's filter chain tree it takes, and the listener filters its match
	// needs.
	match    string
	leaves   []string
	needTLS  bool // server names or a transport protocol: a TLS inspector
	needALPN bool // application protocols: a TLS or HTTP inspector
	nested   []*facts
	// tracers are the clusters tracers export spans to.
	tracers []string
}

// add makes o part of f: nested facts are shared with other resources, so
// they are referred to, not copied.
func (f *facts) add(o *facts) { f.nested = append(f.nested, o) }

// walk visits f and every facts it holds.
func (f *facts) walk(visit func(*facts)) {
	visit(f)
	for _, n := range f.nested {
		n.walk(visit)
	}
}

func (f *facts) fail(kind, name, rule, envoy string) {
	f.errs = append(f.errs, &Violation{Kind: kind, Name: name, Rule: rule, Envoy: envoy})
}

// unpack returns the message a typed config holds.
func (c *Checker) unpack(a *anypb.Any) (proto.Message, error) {
	if c.opts.Unpack != nil {
		if m, ok := c.opts.Unpack(a); ok {
			return m, nil
		}
	}
	return anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
}

// cached returns the facts of m, computing them once.
func (c *Checker) cached(m proto.Message, compute func(*facts)) *facts {
	c.mu.Lock()
	f, ok := c.seen[m]
	c.mu.Unlock()
	if ok {
		return f
	}
	f = &facts{}
	compute(f)
	c.mu.Lock()
	c.seen[m] = f
	c.mu.Unlock()
	return f
}

// Check checks r with a Checker of its own.
func Check(r *Resources, opts Options) error {
	return NewChecker(opts).Check(r)
}

// Check returns the Violations of r, or nil.
func (c *Checker) Check(r *Resources) error {
	all := &facts{}
	names := map[string]string{} // listener name → "static" or "dynamic"
	addrs := map[string]string{} // address → listener
	listeners := func(ls []*listenerv3.Listener, origin string) {
		for _, l := range ls {
			if prev, dup := names[l.GetName()]; dup {
				all.fail("listener", l.GetName(), "listener names are unique among a proxy's listeners, static and dynamic",
					fmt.Sprintf("a dynamic listener named as a %s one is silently skipped, a repeated one in an LDS response is refused with \"duplicate listener %s found\" (source/common/listener_manager/lds_api.cc)", prev, l.GetName()))
			}
			names[l.GetName()] = origin
			all.add(c.cached(l, func(f *facts) { f.add(c.listener(l)) }))
			c.addresses(l, addrs, all)
		}
	}
	listeners(r.StaticListeners, "static")
	listeners(r.Listeners, "dynamic")

	// Lookups by name. A group has a resource per service it may call:
	// indexes over the (usually already sorted) lists cost no map per group.
	static := newIndex(r.StaticClusters, (*clusterv3.Cluster).GetName)
	dynamic := newIndex(r.Clusters, (*clusterv3.Cluster).GetName)
	dupCluster := func(n string) {
		all.fail("cluster", n, "cluster names are unique among a proxy's clusters",
			"\"cluster manager: duplicate cluster '"+n+"'\" or \"duplicate cluster "+n+" found\" (source/common/upstream/cluster_manager_impl.cc, cds_api_helper.cc)")
	}
	for _, n := range append(static.dups(), dynamic.dups()...) {
		dupCluster(n)
	}
	all.nested = slices.Grow(all.nested, len(r.StaticClusters)+len(r.Clusters)+len(r.Routes)+len(r.Secrets))
	for _, cl := range r.StaticClusters {
		if _, dup := dynamic.get(cl.GetName()); dup {
			dupCluster(cl.GetName())
		}
		all.add(c.cluster(cl))
	}
	for _, cl := range r.Clusters {
		all.add(c.cluster(cl))
	}
	hasCluster := func(n string) bool {
		_, ok := dynamic.get(n)
		if !ok {
			_, ok = static.get(n)
		}
		return ok
	}
	routes := newIndex(r.Routes, (*routev3.RouteConfiguration).GetName)
	for _, rc := range r.Routes {
		all.add(c.route(rc))
	}
	eds := newIndex(r.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	secrets := newIndex(r.Secrets, (*tlsv3.Secret).GetName)
	for _, s := range r.Secrets {
		all.add(c.secret(s))
	}

	var errs Violations
	reported := map[string]bool{}
	fail := func(kind, name, rule, envoy string) {
		if key := kind + "/" + name + "/" + rule; !reported[key] {
			reported[key] = true
			errs = append(errs, &Violation{Kind: kind, Name: name, Rule: rule, Envoy: envoy})
		}
	}
	all.walk(func(f *facts) {
		errs = append(errs, f.errs...)
		for _, n := range f.routes {
			if _, ok := routes.get(n); !ok {
				fail("route", n, "every route configuration a connection manager loads by RDS is served",
					"the listener warms until its initial_fetch_timeout (15 s by default), then serves no route: every request gets 404 (source/common/rds/rds_route_config_subscription.cc)")
			}
		}
		for _, n := range f.clusters {
			if !hasCluster(n) {
				fail("cluster", n, "every cluster a route or TCP proxy names exists",
					"an inline route table is refused with \"route: unknown cluster '"+n+"'\" (validate_clusters defaults to true for it, source/common/router/config_impl.cc); through RDS, or from a TCP proxy, every request or connection fails")
			}
		}
		for _, n := range f.tracers {
			cl, ok := dynamic.get(n)
			if !ok {
				cl, _ = static.get(n)
			}
			tracerCluster(n, cl, fail)
		}
		for _, n := range f.eds {
			if _, ok := eds.get(n); !ok {
				fail("endpoints", n, "every EDS cluster's ClusterLoadAssignment is served",
					"the cluster warms until its initial_fetch_timeout (15 s by default), then has no host (source/common/upstream/eds.cc)")
			}
		}
		if c.opts.SecretsPending {
			return
		}
		for _, n := range f.secrets {
			if _, ok := secrets.get(n); !ok {
				fail("secret", n, "every secret a TLS context loads by SDS is served",
					"the listener or cluster warms until its initial_fetch_timeout, then every handshake fails with \"TLS error: Secret is not supplied by SDS\" (source/common/tls/context_config_impl.cc)")
			}
		}
		for _, n := range f.needCA {
			if s, _ := secrets.get(n); s != nil && len(s.GetValidationContext().GetTrustedCa().GetInlineBytes())+len(s.GetValidationContext().GetTrustedCa().GetFilename()) == 0 {
				fail("secret", n, "a validation context combined with SAN matchers holds a trusted CA",
					"\"SAN-based verification of peer certificates without trusted CA is insecure and not allowed\" (source/common/ssl/certificate_validation_context_config_impl.cc)")
			}
		}
	})
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// index finds the resources of a list by name: by binary search when the
// list is sorted by name, as translated resources are, else through a map.
type index[T any] struct {
	items  []T
	name   func(T) string
	byName map[string]T
}

func newIndex[T any](items []T, name func(T) string) *index[T] {
	ix := &index[T]{items: items, name: name}
	if !slices.IsSortedFunc(items, func(a, b T) int { return strings.Compare(name(a), name(b)) }) {
		ix.byName = make(map[string]T, len(items))
		for _, it := range items {
			ix.byName[name(it)] = it
		}
	}
	return ix
}

func (ix *index[T]) get(n string) (T, bool) {
	if ix.byName != nil {
		it, ok := ix.byName[n]
		return it, ok
	}
	i, ok := slices.BinarySearchFunc(ix.items, n, func(it T, n string) int { return strings.Compare(ix.name(it), n) })
	if !ok {
		var zero T
		return zero, false
	}
	return ix.items[i], true
}

// dups are the names the list holds more than once.
func (ix *index[T]) dups() []string {
	seen := map[string]int{}
	if ix.byName == nil { // sorted: neighbours
		var out []string
		for i := 1; i < len(ix.items); i++ {
			if n := ix.name(ix.items[i]); n == ix.name(ix.items[i-1]) && (len(out) == 0 || out[len(out)-1] != n) {
				out = append(out, n)
			}
		}
		return out
	}
	var out []string
	for _, it := range ix.items {
		if seen[ix.name(it)]++; seen[ix.name(it)] == 2 {
			out = append(out, ix.name(it))
		}
	}
	return out
}
