package mesh

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// ProxyKindAnnotation on a pod selects its proxy kind: "envoy" (the default,
// an injected sidecar) or "grpc" (a proxyless gRPC application).
const ProxyKindAnnotation = "openservicemesh.io/proxy"

// Build builds the model of in.Mesh from the objects in in. It is a pure
// function: the same inputs give the same model, whatever their order.
func Build(in Inputs) (*Mesh, []Problem) {
	b := &builder{in: in}
	return b.build()
}

type builder struct {
	in       Inputs
	problems []Problem
	m        *Mesh
	// members maps a member namespace to the selector of its member pods
	// (labels.Everything() when the whole namespace is a member).
	members map[string]labels.Selector
	// elsewhere maps a namespace that another mesh holds to that mesh.
	elsewhere map[string]string
	// pods are the pods of member namespaces, by namespace/name; meshed
	// says which of them are the mesh's workloads (meshedPod).
	pods map[string]*corev1.Pod
	// allPods are the pods of every namespace by namespace/name, made
	// when an IngressBackend's Service source needs them (sourcePod).
	allPods map[string]*corev1.Pod
	meshed  map[string]bool
	vms     map[string]*meshv1alpha1.MeshVM
	// vmNamespaces are the namespaces holding the mesh's VMs.
	vmNamespaces map[string]bool
	// routeGroups are the checked HTTPRouteGroups, by namespace/name.
	routeGroups map[string]*routeGroup
	// splitObjs are the TrafficSplits of the model's splits, by root.
	splitObjs map[ServiceKey]*splitv1alpha4.TrafficSplit
	// podIPs are the IPs of every pod of the cluster, made when the first
	// VM endpoint is checked (see podAddresses).
	podIPs PodIPs
}

func (b *builder) problem(kind string, obj metav1.Object, format string, args ...any) {
	name := obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	b.problems = append(b.problems, Problem{Object: kind + " " + name, Err: fmt.Errorf(format, args...), Source: obj})
}

func (b *builder) build() (*Mesh, []Problem) {
	mi := b.in.Mesh
	b.m = &Mesh{
		Name:          mi.Name,
		TrustDomain:   mi.EffectiveTrustDomain(),
		ClusterDomain: cmp.Or(b.in.ClusterDomain, DefaultClusterDomain),
		Mode:          ModeSMI,
		EgressAllowed: mi.Spec.Egress.Mode == meshv1alpha1.EgressAllow,
		Splits:        map[ServiceKey]*Split{},
		spec:          mi.Spec,
		memberInbound: map[string]meshv1alpha1.MemberInbound{},
		outbound:      map[string][]ServicePattern{},
	}
	if r := mi.Spec.Resilience; r != nil && r.Fault != nil {
		// Faults are a policy's, never the mesh's (the API server refuses
		// them there; an older CRD may not).
		rc := *r
		rc.Fault = nil
		b.m.spec.Resilience = &rc
	}
	if mi.Spec.TrafficPolicy.Mode == meshv1alpha1.TrafficPolicyPermissive {
		b.m.Mode = ModePermissive
	}
	b.collectMembers()
	b.m.members = make(map[string]bool, len(b.members))
	for ns := range b.members {
		b.m.members[ns] = true
	}
	b.collectObservability()
	b.collectWorkloads()
	b.collectServices()
	b.collectPolicies()
	b.collectSplits()
	b.collectRoutes()
	b.collectResilience()
	b.collectRetries()
	b.collectEgresses()
	b.collectIngressBackends()
	b.collectIngressTargets()
	b.index()
	b.scopeOutbound()
	slices.SortFunc(b.problems, func(a, c Problem) int {
		return cmp.Or(cmp.Compare(a.Object, c.Object), cmp.Compare(a.Err.Error(), c.Err.Error()))
	})
	return b.m, b.problems
}

// collectMembers finds the member namespaces: labelled with the mesh's name,
// or holding a MeshMember of the mesh. A MeshMember of another mesh takes
// its namespace there, label or not: the operator relabels it.
func (b *builder) collectMembers() {
	b.members = map[string]labels.Selector{}
	b.elsewhere = map[string]string{}
	for _, mm := range b.in.Members {
		if mm.Spec.Mesh != b.m.Name && mm.DeletionTimestamp == nil {
			b.elsewhere[mm.Namespace] = mm.Spec.Mesh
		}
	}
	for _, ns := range b.in.Namespaces {
		if ns.DeletionTimestamp != nil {
			continue
		}
		_, moving := b.elsewhere[ns.Name]
		switch m := ns.Labels[meshv1alpha1.MonitorLabel]; {
		case m == b.m.Name && !moving:
			b.members[ns.Name] = labels.Everything()
		case m != "" && m != b.m.Name && !moving:
			b.elsewhere[ns.Name] = m
		}
	}
	allOutbound := map[string]bool{} // namespaces a MeshMember gives every service
	for _, mm := range b.in.Members {
		if mm.Spec.Mesh != b.m.Name || mm.DeletionTimestamp != nil {
			continue
		}
		b.m.memberInbound[mm.Namespace] = mm.Spec.Inbound
		b.collectOutbound(mm, allOutbound)
		sel := labels.Everything()
		if mm.Spec.Selector != nil {
			s, err := metav1.LabelSelectorAsSelector(mm.Spec.Selector)
			if err != nil {
				b.problem("MeshMember", mm, "invalid selector: %w", err)
				continue
			}
			sel = s
		}
		if _, labelled := b.members[mm.Namespace]; labelled {
			continue // the label makes every pod a member
		}
		b.members[mm.Namespace] = sel
		delete(b.elsewhere, mm.Namespace) // the operator labels it for this mesh
	}
}

// collectWorkloads finds the pods of member namespaces and the VMs, and
// from the meshed ones the proxy groups.
func (b *builder) collectWorkloads() {
	groups := map[Group]bool{}
	b.pods = map[string]*corev1.Pod{}
	b.meshed = map[string]bool{}
	for _, p := range b.in.Pods {
		sel, ok := b.members[p.Namespace]
		if !ok {
			continue
		}
		key := p.Namespace + "/" + p.Name
		b.pods[key] = p
		if !meshedPod(p, sel) {
			continue
		}
		b.meshed[key] = true
		if p.DeletionTimestamp == nil {
			groups[PodGroup(p)] = true
		}
	}
	b.vms = map[string]*meshv1alpha1.MeshVM{}
	b.vmNamespaces = map[string]bool{}
	// The first MeshVM of each namespace, of any mesh (FirstVM).
	byNamespace := map[string][]*meshv1alpha1.MeshVM{}
	for _, vm := range b.in.VMs {
		byNamespace[vm.Namespace] = append(byNamespace[vm.Namespace], vm)
	}
	first := make(map[string]*meshv1alpha1.MeshVM, len(byNamespace))
	for ns, vms := range byNamespace {
		first[ns] = FirstVM(slices.Values(vms))
	}
	for _, vm := range b.in.VMs {
		if vm.Spec.Mesh != b.m.Name || vm.DeletionTimestamp != nil {
			continue
		}
		namespaceMesh := b.elsewhere[vm.Namespace]
		if _, member := b.members[vm.Namespace]; member {
			namespaceMesh = b.m.Name
		}
		if why := VMMeshConflict(vm, namespaceMesh, first[vm.Namespace]); why != "" {
			b.problem("MeshVM", vm, "%s", why)
			continue
		}
		b.vms[vm.Namespace+"/"+vm.Name] = vm
		b.vmNamespaces[vm.Namespace] = true
		groups[VMGroup(vm)] = true
	}
	for g := range groups {
		b.m.Groups = append(b.m.Groups, g)
	}
	slices.SortFunc(b.m.Groups, func(a, c Group) int { return cmp.Compare(a.String(), c.String()) })
}

// meshedPod says whether p, a pod of a member namespace whose member pods
// sel selects, is a workload of the mesh: a member pod, not on the host's
// network, that has a proxy (HasProxy: its spec, not its annotations,
// decides). The injector leaves pods without one (a namespace or a
// MeshMember with injection disabled, a pod that opted out, a pod created
// before its namespace joined); they are no proxy group, and their
// endpoints are reached in plaintext (Endpoint.NoProxy).
func meshedPod(p *corev1.Pod, sel labels.Selector) bool {
	return sel.Matches(labels.Set(p.Labels)) && !p.Spec.HostNetwork && HasProxy(p)
}

func podIdentity(p *corev1.Pod) Identity {
	return Identity{Namespace: p.Namespace, ServiceAccount: ServiceAccountOf(p.Spec.ServiceAccountName)}
}

// PodGroup is the proxy group of a pod: its identity and its proxy kind.
// It is the one rule, for the model, the xDS server and the controllers.
func PodGroup(p *corev1.Pod) Group {
	g := Group{Kind: ProxyEnvoy, Identity: podIdentity(p)}
	if p.Annotations[ProxyKindAnnotation] == string(ProxyGRPC) {
		g.Kind = ProxyGRPC
	}
	return g
}

// VMIdentity is the identity a MeshVM runs as: its service account, in its
// namespace. It is the one rule, for its proxy group and its endpoints.
func VMIdentity(vm *meshv1alpha1.MeshVM) Identity {
	return Identity{Namespace: vm.Namespace, ServiceAccount: vm.Spec.ServiceAccountName}
}

// VMGroup is the proxy group of a MeshVM: its identity and the proxy it
// runs.
func VMGroup(vm *meshv1alpha1.MeshVM) Group {
	g := Group{Kind: ProxyEnvoy, Identity: VMIdentity(vm)}
	if vm.Proxyless() {
		g.Kind = ProxyGRPC
	}
	return g
}

// collectServices finds the services of member namespaces and their endpoints.
func (b *builder) collectServices() {
	byKey := map[ServiceKey]*Service{}
	for _, s := range b.in.Services {
		if _, ok := b.members[s.Namespace]; !ok || s.DeletionTimestamp != nil || s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		svc := &Service{Key: ServiceKey{s.Namespace, s.Name}}
		for _, ip := range s.Spec.ClusterIPs {
			if _, err := netip.ParseAddr(ip); err == nil {
				svc.ClusterIPs = append(svc.ClusterIPs, ip)
			}
		}
		if len(svc.ClusterIPs) == 0 && s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
			if _, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil {
				svc.ClusterIPs = []string{s.Spec.ClusterIP}
			}
		}
		seen := map[int32]bool{}
		for _, p := range s.Spec.Ports {
			if !proxied(p) {
				continue // the proxies carry TCP only; UDP and SCTP pass by
			}
			if p.Port < 1 || p.Port > 65535 || seen[p.Port] {
				b.problem("Service", s, "port %d is out of range or repeated; it is left out", p.Port)
				continue
			}
			seen[p.Port] = true
			svc.Ports = append(svc.Ports, Port{Name: p.Name, Port: p.Port, Protocol: portProtocol(p)})
		}
		slices.SortFunc(svc.Ports, func(a, c Port) int { return cmp.Compare(a.Port, c.Port) })
		byKey[svc.Key] = svc
	}
	for _, es := range b.in.EndpointSlices {
		name := es.Labels[discoveryv1.LabelServiceName]
		svc := byKey[ServiceKey{es.Namespace, name}]
		if svc == nil || (es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6) {
			continue
		}
		b.addEndpoints(svc, es)
	}
	for _, svc := range byKey {
		slices.SortStableFunc(svc.Endpoints, func(a, c Endpoint) int { return cmp.Compare(a.Address, c.Address) })
		// An address in two slices (as during a slice split) is one endpoint.
		svc.Endpoints = slices.CompactFunc(svc.Endpoints, func(a, c Endpoint) bool { return a.Address == c.Address })
		svc.Identities = identities(svc.Endpoints, func(Endpoint) bool { return true })
		svc.PeerIdentities = identities(svc.Endpoints, func(e Endpoint) bool { return !e.NoProxy })
		if len(svc.PeerIdentities) == 0 {
			svc.PeerIdentities = svc.Identities
		}
		b.m.Services = append(b.m.Services, svc)
	}
	slices.SortFunc(b.m.Services, func(a, c *Service) int { return compareServiceKey(a.Key, c.Key) })
	b.m.IPv6 = slices.ContainsFunc(b.m.Services, (*Service).hasIPv6)
}

// identities are the identities of the endpoints that keep selects, sorted.
func identities(eps []Endpoint, keep func(Endpoint) bool) []Identity {
	ids := map[Identity]bool{}
	for _, e := range eps {
		if keep(e) {
			ids[e.Identity] = true
		}
	}
	var out []Identity
	for id := range ids {
		out = append(out, id)
	}
	slices.SortFunc(out, compareIdentity)
	return out
}

func (s *Service) hasIPv6() bool {
	return slices.ContainsFunc(s.ClusterIPs, isIPv6) || slices.ContainsFunc(s.Endpoints, func(e Endpoint) bool {
		return !strings.HasPrefix(e.Workload, "MeshVM/") && isIPv6(e.Address)
	})
}

func isIPv6(a string) bool {
	ip, err := netip.ParseAddr(a)
	return err == nil && ip.Is6() && !ip.Is4In6()
}

// addEndpoints adds the endpoints of an EndpointSlice that target pods of
// the namespace or MeshVMs. Those of pods without a proxy are marked
// NoProxy: they cannot speak mutual TLS.
//
// Whoever may write EndpointSlices in a namespace may write any address and
// target there, but the endpoint's target decides the identity callers
// accept at its address. So an endpoint is believed only as far as its
// target confirms it: a target in another namespace than the slice's is
// left out (it would lend that namespace's identity to this one's Service,
// CVE-2021-25740 in mesh form); a pod's address must be one of the pod's own
// IPs, once the pod has any (always, for a pod without a proxy), and a
// MeshVM's one of its spec.addresses; and
// neither takes an address of no single host (CheckVMAddress's classes).
func (b *builder) addEndpoints(svc *Service, es *discoveryv1.EndpointSlice) {
	ports := map[string]int32{}
	for _, p := range es.Ports {
		if p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		ports[name] = *p.Port
	}
	for _, ep := range es.Endpoints {
		if ep.TargetRef == nil {
			continue
		}
		kind := ep.TargetRef.Kind
		if kind != "Pod" && kind != "MeshVM" {
			continue
		}
		if ns := ep.TargetRef.Namespace; ns != "" && ns != es.Namespace {
			b.problem("EndpointSlice", es, "endpoint %v targets %s %s/%s, in another namespace than the slice's; it is left out",
				ep.Addresses, kind, ns, ep.TargetRef.Name)
			continue
		}
		ref := es.Namespace + "/" + ep.TargetRef.Name
		var id Identity
		var pod *corev1.Pod
		var vm *meshv1alpha1.MeshVM
		noProxy := false // a MeshVM runs its proxy
		switch kind {
		case "Pod":
			pod = b.pods[ref]
			if pod == nil {
				continue
			}
			id = podIdentity(pod)
			noProxy = !b.meshed[ref]
		case "MeshVM":
			vm = b.vms[ref]
			if vm == nil {
				continue
			}
			id = VMIdentity(vm)
		}
		c := ep.Conditions
		ready := c.Ready == nil || *c.Ready
		serving := c.Serving == nil && ready || c.Serving != nil && *c.Serving
		terminating := c.Terminating != nil && *c.Terminating
		for _, addr := range ep.Addresses {
			ip, err := netip.ParseAddr(addr)
			if err != nil {
				b.problem("EndpointSlice", es, "address %q is not an IP address; it is left out", addr)
				continue
			}
			if pod != nil && !b.podEndpointOK(es, pod, noProxy || svc.Headless(), addr, ip) {
				continue
			}
			// Whoever wrote the slice, a VM endpoint never takes an
			// address the VM may not have: a pod's, one of no host, or
			// one the VM does not declare.
			if vm != nil {
				if err := CheckVMAddress(addr, b.podAddresses()); err != nil {
					b.problem("MeshVM", vm, "endpoint of EndpointSlice %s/%s: %w; it is left out", es.Namespace, es.Name, err)
					continue
				}
				if !slices.ContainsFunc(vm.Spec.Addresses, sameAddr(ip)) {
					b.problem("MeshVM", vm, "endpoint of EndpointSlice %s/%s: %s is not one of the VM's spec.addresses; it is left out", es.Namespace, es.Name, addr)
					continue
				}
			}
			svc.Endpoints = append(svc.Endpoints, Endpoint{
				Address: addr, Ports: ports, Ready: ready, Serving: serving, Terminating: terminating,
				Identity: id, Workload: kind + "/" + ref, Zone: ptr.Deref(ep.Zone, ""), NoProxy: noProxy,
			})
		}
	}
}

// podEndpointOK says whether addr, an address of an endpoint of es targeting
// pod, may be published as the pod's, and reports it when not: it must be of
// a class a host may have (CheckVMAddress's without the pods: the pod's own
// IP is what it must be), and one of the pod's IPs, of a pod that has not
// finished. A finished pod's status keeps its IP, which the node may give
// another pod, of another namespace. A pod whose status has no IP yet (as
// the slice may be seen before the pod's update) confirms no address. Then
// a meshed pod of a service with a virtual IP refuses none: its identity
// stays its own either way, and mutual TLS checks it at whatever address
// answers. Any other takes none, unreported (the pod's update comes): a
// pod without a proxy would get plaintext sent to any address, and a
// headless service's chains match the addresses themselves, so a slice
// written by hand would take another pod's address from every caller.
func (b *builder) podEndpointOK(es *discoveryv1.EndpointSlice, pod *corev1.Pod, needsIP bool, addr string, ip netip.Addr) bool {
	if err := CheckVMAddress(addr, nil); err != nil {
		b.problem("EndpointSlice", es, "endpoint of pod %s/%s: %w; it is left out", pod.Namespace, pod.Name, err)
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		b.problem("EndpointSlice", es, "endpoint of pod %s/%s: the pod has finished (%s); it is left out", pod.Namespace, pod.Name, pod.Status.Phase)
		return false
	}
	ips := podIPs(pod)
	if len(ips) == 0 && needsIP {
		return false
	}
	if len(ips) > 0 && !slices.ContainsFunc(ips, sameAddr(ip)) {
		b.problem("EndpointSlice", es, "endpoint of pod %s/%s: %s is not an IP of the pod (status.podIPs %v); it is left out",
			pod.Namespace, pod.Name, addr, ips)
		return false
	}
	return true
}

// podIPs are the pod's IPs as its status writes them.
func podIPs(pod *corev1.Pod) []string {
	var ips []string
	for _, p := range pod.Status.PodIPs {
		ips = append(ips, p.IP)
	}
	if p := pod.Status.PodIP; p != "" && !slices.Contains(ips, p) {
		ips = append(ips, p)
	}
	return ips
}

// sameAddr matches an address written as ip is, IPv4-mapped or not.
func sameAddr(ip netip.Addr) func(string) bool {
	ip = ip.Unmap()
	return func(s string) bool {
		o, err := netip.ParseAddr(s)
		return err == nil && o.Unmap() == ip
	}
}

// podAddresses are the IPs of the cluster's pods, whatever their mesh: a
// VM's endpoint may take none of them.
func (b *builder) podAddresses() PodIPs {
	if b.podIPs == nil {
		b.podIPs = PodIPs{}
		for _, p := range b.in.Pods {
			b.podIPs.Add(p)
		}
	}
	return b.podIPs
}

// index builds the model's lookup tables.
func (b *builder) index() {
	m := b.m
	m.byIdentity = map[Identity][]*Service{}
	for _, s := range m.Services {
		for _, id := range s.Identities {
			m.byIdentity[id] = append(m.byIdentity[id], s)
		}
	}
	m.destinations = map[Identity][]Identity{}
	m.policiesTo = map[Identity][]*Policy{}
	for _, p := range m.Policies {
		m.policiesTo[p.Destination] = append(m.policiesTo[p.Destination], p)
		for _, src := range p.Sources {
			m.destinations[src] = append(m.destinations[src], p.Destination)
		}
	}
}
