package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The sample's ways in and out of the mesh (config/samples/bookstore/04-ingress-egress.yaml).
const (
	ingressNamespace = "ingress-nginx"
	ingressService   = "ingress-nginx-controller"
	egressHost       = "httpbin.org"
)

// showPaths prints the ingress and egress paths as the proxies' config has
// them, and fails when a path is missing or reaches a proxy it should not:
// the bookstore's inbound listener admits the un-meshed ingress controller's
// addresses over plaintext, and only the bookbuyer, which the Egress names,
// has a way to the external host.
func showPaths(ctx context.Context, k client.Client, ps proxies, out io.Writer) error {
	addrs, err := serviceAddresses(ctx, k, ingressNamespace, ingressService)
	if err != nil {
		return err
	}
	store, buyer := ps[1], ps[0]
	// Quoted, as JSON holds them: 10.244.0.7 is not 10.244.0.70.
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = strconv.Quote(a)
	}
	chains := store.chainsMentioning(quoted...)
	if len(chains) == 0 {
		return fmt.Errorf("the bookstore's proxy admits the ingress controller (%s) on no filter chain", strings.Join(addrs, ", "))
	}
	fmt.Fprintf(out, "Ingress: %s/%s (not in the mesh, %s) → bookstore: admitted by the IngressBackend on chain %s of %s\n",
		ingressNamespace, ingressService, strings.Join(addrs, ", "), strings.Join(chains, ", "), store.nodeID)
	via := buyer.mentioning(egressHost)
	if len(via) == 0 {
		return fmt.Errorf("the bookbuyer's proxy has no way to %s, which its Egress names", egressHost)
	}
	fmt.Fprintf(out, "Egress: bookbuyer → %s: %s\n", egressHost, strings.Join(via, "; "))
	for _, p := range ps[1:] {
		if got := p.mentioning(egressHost); len(got) > 0 {
			return fmt.Errorf("%s, which no Egress names, has a way to %s: %s", p.nodeID, egressHost, strings.Join(got, "; "))
		}
		fmt.Fprintf(out, "Egress: %s has no way to %s (no Egress names it; the mesh's egress mode is Deny)\n", p.nodeID, egressHost)
	}
	return nil
}

// serviceAddresses are the endpoint addresses of a Service, sorted.
func serviceAddresses(ctx context.Context, k client.Client, ns, svc string) ([]string, error) {
	var l discoveryv1.EndpointSliceList
	if err := k.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range l.Items {
		for _, e := range s.Endpoints {
			out = append(out, e.Addresses...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("service %s/%s has no endpoints", ns, svc)
	}
	slices.Sort(out)
	return out, nil
}

// chainsMentioning names the inbound filter chains (listener/chain) whose
// config holds every one of the strings.
func (p *proxy) chainsMentioning(ss ...string) []string {
	var out []string
	for _, l := range p.listeners {
		for _, fc := range l.GetFilterChains() {
			if holdsAll(fc, ss) {
				out = append(out, fmt.Sprintf("%s/%s (%s)", l.GetName(), fc.GetName(), transport(fc.GetFilterChainMatch().GetTransportProtocol())))
			}
		}
	}
	slices.Sort(out)
	return out
}

func transport(t string) string {
	if t == "" {
		return "any transport"
	}
	return t
}

// mentioning lists the resources of the proxy's config that name s: the
// filter chains, route configurations and clusters a connection to s goes
// through.
func (p *proxy) mentioning(s string) []string {
	var out []string
	for _, l := range p.listeners {
		for _, fc := range l.GetFilterChains() {
			if holdsAll(fc, []string{s}) {
				sni := ""
				if n := fc.GetFilterChainMatch().GetServerNames(); len(n) > 0 {
					sni = " by SNI " + strings.Join(n, ",")
				}
				out = append(out, fmt.Sprintf("chain %s/%s%s", l.GetName(), fc.GetName(), sni))
			}
		}
	}
	for _, r := range p.routes {
		for _, vh := range r.GetVirtualHosts() {
			if holdsAll(vh, []string{s}) {
				out = append(out, fmt.Sprintf("route %s virtual host %s (by Host %s)", r.GetName(), vh.GetName(), strings.Join(vh.GetDomains(), ",")))
			}
		}
	}
	for _, c := range p.clusters {
		if holdsAll(c, []string{s}) {
			out = append(out, fmt.Sprintf("cluster %s (%s)", c.GetName(), c.GetType()))
		}
	}
	return out
}

// holdsAll says whether m's JSON form contains every string.
func holdsAll(m proto.Message, ss []string) bool {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return false
	}
	for _, s := range ss {
		if !strings.Contains(string(raw), s) {
			return false
		}
	}
	return true
}
