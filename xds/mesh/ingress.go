package mesh

import (
	"cmp"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// IngressBackend is an OSM IngressBackend of a member namespace, resolved:
// which callers outside the mesh may reach which of its Services' ports.
type IngressBackend struct {
	Namespace, Name string
	// Targets are the backends, sorted by service and port. A Service that
	// does not exist (yet) is a target all the same: its port takes the
	// policy once the Service has endpoints.
	Targets []IngressTarget
	// AnyAddress says that the policy has no Service or IPRange source:
	// the callers' addresses are not checked.
	AnyAddress bool
	// Addresses are the prefixes callers may come from: the IPRange sources
	// and the endpoint addresses of the Service sources, sorted.
	Addresses []netip.Prefix
	// Principals are the subject alternative names an https caller's
	// client certificate may carry (AuthenticatedPrincipal sources), sorted.
	Principals []string
	// SourceServices are the Service sources, resolved or not, in the
	// spec's order: their endpoints are in Addresses, so a change of
	// their endpoints changes the backends' config.
	SourceServices []ServiceKey
	// HTTP narrows the requests allowed; empty allows every request.
	HTTP []HTTPMatch
	// Backends and Sources say, in the order of the spec's lists, how each
	// resolved, for the IngressBackend's status. A Service that does not
	// exist yet is no Problem (nothing is wrong as written), but it allows
	// nothing until it does, and its part says so.
	Backends, Sources []PartState
}

// PartState says how one part of a policy (a backend, a source) resolved.
type PartState struct {
	// Name is the part as the user wrote it: a backend's Service, a
	// source's name (namespace/name for a Service source).
	Name string
	// Resolved says that it takes effect as written; Message says what it
	// resolved to, or why it did not.
	Resolved bool
	Message  string
}

// IngressTarget is one backend of an IngressBackend: a Service's pods'
// port, over http or https.
type IngressTarget struct {
	Service ServiceKey
	// Port is the pods' port (the Service's target port).
	Port int32
	// TLS says the callers speak https: the proxy terminates TLS with the
	// backend's mesh certificate.
	TLS bool
	// SkipClientCertValidation accepts an https caller with any certificate
	// or none; Principals are then not checked.
	SkipClientCertValidation bool
	// SNIHosts are the server names an https caller may ask for; empty
	// accepts any. A "*.example.com" matches one label or more before
	// ".example.com".
	SNIHosts []string
}

// AllowsNothing says whether the target lets no caller in: it is
// misconfigured, or its address sources have no address (yet). Either way
// the target still takes its port.
func (ib *IngressBackend) AllowsNothing(t IngressTarget) bool {
	return ib.misconfigured(t) != "" || !ib.AnyAddress && len(ib.Addresses) == 0
}

// misconfigured says why a target can let no caller in as written, or "":
// a plaintext caller has no certificate for an AuthenticatedPrincipal to
// check, and an https target that validates certificates needs principals
// to accept.
func (ib *IngressBackend) misconfigured(t IngressTarget) string {
	switch {
	case !t.TLS && ib.AnyAddress:
		return "an http backend checks callers by address only, and no Service or IPRange source names any"
	case t.TLS && !t.SkipClientCertValidation && len(ib.Principals) == 0:
		return "an https backend that validates client certificates needs an AuthenticatedPrincipal source"
	case t.TLS && t.SkipClientCertValidation && ib.AnyAddress:
		return "an https backend that skips client certificate validation cannot check AuthenticatedPrincipal sources, " +
			"and with no Service or IPRange source every caller would get in: add one"
	}
	for _, h := range t.SNIHosts {
		if !sniHost.MatchString(h) {
			return fmt.Sprintf("SNI host %q is neither a DNS name nor a wildcard of whole labels such as *.example.com", h)
		}
	}
	return ""
}

// sniHost is what an SNI host of an IngressBackend may be: a DNS name, or
// "*." and a DNS name. The CRD's rule on tls.sniHosts is the same; the
// model checks again for objects stored before it.
var sniHost = regexp.MustCompile(`^([*][.])?[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$`)

// PlaintextFromOutsideMesh says whether the workloads of namespace accept
// plaintext from callers outside the mesh on their port (the API's
// EffectivePlaintextFromOutsideMesh, with the namespace's MeshMember; a
// MeshVM follows its namespace's). An IngressBackend naming the port
// decides instead (View.IngressTo).
func (m *Mesh) PlaintextFromOutsideMesh(namespace string, port int32) bool {
	return meshv1alpha1.EffectivePlaintextFromOutsideMesh(m.spec, m.memberInbound[namespace], port) == meshv1alpha1.PlaintextAccept
}

// collectIngressBackends resolves the IngressBackends of member namespaces.
// Sources are read from the whole cluster: an ingress controller's Service
// is seldom in the mesh.
func (b *builder) collectIngressBackends() {
	for _, ib := range b.in.IngressBackends {
		if _, ok := b.members[ib.Namespace]; !ok || ib.DeletionTimestamp != nil {
			continue
		}
		b.m.IngressBackends = append(b.m.IngressBackends, b.ingressBackend(ib))
	}
	slices.SortFunc(b.m.IngressBackends, func(a, c *IngressBackend) int {
		return cmp.Compare(a.Namespace+"/"+a.Name, c.Namespace+"/"+c.Name)
	})
}

func (b *builder) ingressBackend(ib *policyv1alpha1.IngressBackend) *IngressBackend {
	const kind = "IngressBackend"
	out := &IngressBackend{Namespace: ib.Namespace, Name: ib.Name, AnyAddress: true}
	checksPrincipals := false
	for _, t := range ib.Spec.Backends {
		key := ServiceKey{ib.Namespace, t.Name}
		it := IngressTarget{Service: key, Port: t.Port.Number, TLS: t.Port.Protocol.Canonical() == policyv1alpha1.BackendProtocolHTTPS}
		if it.TLS && t.TLS != nil {
			it.SkipClientCertValidation = t.TLS.SkipClientCertValidation
			it.SNIHosts = slices.Sorted(slices.Values(t.TLS.SNIHosts))
		}
		checksPrincipals = checksPrincipals || it.TLS && !it.SkipClientCertValidation
		out.Targets = append(out.Targets, it)
	}
	for i, s := range ib.Spec.Sources {
		field := fmt.Sprintf("spec.sources[%d]", i)
		st := PartState{Name: s.Name, Resolved: true}
		switch s.Kind {
		case policyv1alpha1.IngressSourceIPRange:
			out.AnyAddress = false
			p, err := netip.ParsePrefix(s.Name)
			if err != nil {
				b.report(kind, ib, []FieldError{fieldError(field, "%q is not a CIDR", s.Name)}, sourceOut)
				st = PartState{Name: s.Name, Message: "not a CIDR"}
				break
			}
			out.Addresses = append(out.Addresses, unmapPrefix(p))
			st.Message = "address range " + unmapPrefix(p).String()
		case policyv1alpha1.IngressSourceService:
			out.AnyAddress = false
			key := ServiceKey{s.Namespace, s.Name}
			st.Name = key.String()
			out.SourceServices = append(out.SourceServices, key)
			addrs, leftOut, ok := b.serviceAddresses(key)
			switch {
			case !ok:
				st.Resolved, st.Message = false, "Service "+key.String()+" does not exist (yet): it lets no caller in until it does"
			case len(addrs) == 0:
				st.Resolved, st.Message = false, "Service "+key.String()+" has no endpoint addresses of its pods (yet): it lets no caller in until it has"
			default:
				st.Message = fmt.Sprintf("%d endpoint addresses", len(addrs))
			}
			if leftOut > 0 {
				st.Message += fmt.Sprintf("; %d left out, not an IP of a pod of namespace %s that the endpoint names", leftOut, key.Namespace)
			}
			out.Addresses = append(out.Addresses, addrs...)
		case policyv1alpha1.IngressSourceAuthenticatedPrincipal:
			out.Principals = append(out.Principals, s.Name)
			st.Message = "checked on the https backends that validate client certificates"
			if !checksPrincipals {
				st.Resolved, st.Message = false, "no https backend validates client certificates: nothing checks this principal"
			}
		default:
			b.report(kind, ib, []FieldError{fieldError(field+".kind", "unknown kind %q", s.Kind)}, sourceOut)
			st = PartState{Name: s.Name, Message: fmt.Sprintf("unknown kind %q", s.Kind)}
		}
		out.Sources = append(out.Sources, st)
	}
	slices.SortFunc(out.Addresses, netip.Prefix.Compare)
	out.Addresses = slices.Compact(out.Addresses)
	slices.Sort(out.Principals)
	out.Principals = slices.Compact(out.Principals)
	for _, t := range out.Targets {
		st := PartState{Name: t.Service.Name, Resolved: true, Message: fmt.Sprintf("port %d", t.Port)}
		if why := out.misconfigured(t); why != "" {
			b.report(kind, ib, []FieldError{fieldError("spec.backends", "%s port %d: %s", t.Service.Name, t.Port, why)},
				"the port lets no caller outside the mesh in")
			st.Resolved, st.Message = false, why
		} else if why := b.unserved(t); why != "" {
			st.Resolved, st.Message = false, why
		}
		out.Backends = append(out.Backends, st)
	}
	slices.SortFunc(out.Targets, func(a, c IngressTarget) int {
		return cmp.Or(compareServiceKey(a.Service, c.Service), cmp.Compare(a.Port, c.Port))
	})
	for i, r := range ib.Spec.Matches {
		field := fmt.Sprintf("spec.matches[%d]", i)
		g := b.routeGroups[ib.Namespace+"/"+r.Name]
		if !r.IsHTTPRouteGroup() || g == nil {
			// A narrowing that cannot be read must not widen: nothing.
			b.report(kind, ib, []FieldError{fieldError(field, "HTTPRouteGroup %s/%s not found", ib.Namespace, r.Name)}, matchVoid)
			out.HTTP = append(out.HTTP, HTTPMatch{Name: "none", PathRegex: denyAllPath})
			continue
		}
		out.HTTP = append(out.HTTP, g.matches...)
		if len(g.matches) == 0 {
			out.HTTP = append(out.HTTP, HTTPMatch{Name: "none", PathRegex: denyAllPath})
		}
	}
	return out
}

// unserved says why no pod of the target's Service serves its port yet, or
// "": the Service does not exist, or none of its endpoints with a proxy
// (where the policy is enforced) has the number (a pods' port, the
// Service's targetPort). Either way the policy
// takes the port once one does; nothing is wrong as written.
func (b *builder) unserved(t IngressTarget) string {
	s := b.m.Service(t.Service)
	if s == nil {
		return "Service " + t.Service.String() + " does not exist (yet): it lets no caller in until it does"
	}
	for _, e := range s.Endpoints {
		for _, p := range e.Ports {
			if p == t.Port && !e.NoProxy {
				return ""
			}
		}
	}
	return fmt.Sprintf("no endpoint with a proxy of Service %s serves port %d (yet); the number is the pods' port, the Service's targetPort", t.Service, t.Port)
}

// denyAllPath is a path regex no request path matches (a path starts with
// "/"), for a narrowing that allows nothing.
const denyAllPath = "[^/].*"

// serviceAddresses are the endpoint addresses of a Service of any
// namespace, as single-address prefixes, and how many endpoint addresses
// were left out; ok is false when no such Service exists. An address
// counts only as the Service's pod has it: the endpoint names a pod of the
// slice's namespace (targetRef) that exists, has not finished, and has the
// address among its IPs. Whoever may write EndpointSlices in the source's
// namespace could otherwise let any address in: another namespace's pods,
// the nodes.
func (b *builder) serviceAddresses(k ServiceKey) (out []netip.Prefix, leftOut int, ok bool) {
	exists := false
	for _, s := range b.in.Services {
		if s.Namespace == k.Namespace && s.Name == k.Name && s.DeletionTimestamp == nil {
			exists = true
			break
		}
	}
	if !exists {
		return nil, 0, false
	}
	for _, es := range b.in.EndpointSlices {
		if es.Namespace != k.Namespace || es.Labels[discoveryv1.LabelServiceName] != k.Name {
			continue
		}
		for _, ep := range es.Endpoints {
			pod := b.sourcePod(es.Namespace, ep.TargetRef)
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || pod == nil || !slices.ContainsFunc(podIPs(pod), sameAddr(ip)) {
					leftOut++
					continue
				}
				ip = ip.Unmap()
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
	return out, leftOut, true
}

// sourcePod is the running or pending pod of namespace ns that an endpoint
// of an IngressBackend's Service source names, or nil. Sources are seldom
// in the mesh, so pods of every namespace are looked up.
func (b *builder) sourcePod(ns string, ref *corev1.ObjectReference) *corev1.Pod {
	if ref == nil || ref.Kind != "Pod" || ref.Namespace != "" && ref.Namespace != ns {
		return nil
	}
	if b.allPods == nil {
		b.allPods = make(map[string]*corev1.Pod, len(b.in.Pods))
		for _, p := range b.in.Pods {
			b.allPods[p.Namespace+"/"+p.Name] = p
		}
	}
	p := b.allPods[ns+"/"+ref.Name]
	if p == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	return p
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// IngressRule is a backend of an IngressBackend at a port of the group.
type IngressRule struct {
	Policy *IngressBackend
	Target IngressTarget
}

// IngressTo are the IngressBackend backends at the group's port: Services
// the group backs, sorted by policy then service. None means the port's
// plaintext setting decides (Mesh.PlaintextFromOutsideMesh).
func (v *View) IngressTo(port int32) []IngressRule {
	var out []IngressRule
	for _, ib := range v.Mesh.IngressBackends {
		for _, t := range ib.Targets {
			if t.Port == port && slices.ContainsFunc(v.Inbound, func(s *Service) bool { return s.Key == t.Service }) {
				out = append(out, IngressRule{Policy: ib, Target: t})
			}
		}
	}
	return out
}

// IngressSources are the Service sources of the IngressBackends with a
// backend the group backs, sorted: the callers from outside the mesh its
// inbound config lets in by their endpoint addresses.
func (v *View) IngressSources() []ServiceKey {
	var out []ServiceKey
	for _, ib := range v.Mesh.IngressBackends {
		if len(ib.SourceServices) > 0 && slices.ContainsFunc(ib.Targets, func(t IngressTarget) bool {
			return slices.ContainsFunc(v.Inbound, func(s *Service) bool { return s.Key == t.Service })
		}) {
			out = append(out, ib.SourceServices...)
		}
	}
	slices.SortFunc(out, compareServiceKey)
	return slices.Compact(out)
}

// AcceptsPlaintext says whether the group's port accepts plaintext from
// any caller outside the mesh: its setting accepts it and no
// IngressBackend names the port.
func (v *View) AcceptsPlaintext(port int32) bool {
	return len(v.IngressTo(port)) == 0 && v.Mesh.PlaintextFromOutsideMesh(v.Group.Identity.Namespace, port)
}

// WildcardSuffix is the suffix a "*.example.com" SNI host matches
// (".example.com"), or "" for a name without a whole-label wildcard.
func WildcardSuffix(host string) string {
	if s, ok := strings.CutPrefix(host, "*."); ok && s != "" {
		return "." + s
	}
	return ""
}
