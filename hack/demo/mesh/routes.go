package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/hack/demo/progress"
)

// applyRoutes applies the Gateway API route and the resilience policies of
// config/samples/gateway-api, and waits until the mesh accepts them.
func applyRoutes(ctx context.Context, k client.Client, dir string, p *progress.Printer) error {
	p.Step("applying a Gateway API mesh route and resilience policies (config/samples/gateway-api)")
	if err := applySample(ctx, k, dir); err != nil {
		return err
	}
	return retry(ctx, 60*time.Second, func() error {
		hr := &gwv1.HTTPRoute{}
		if err := k.Get(ctx, client.ObjectKey{Namespace: "bookwarehouse", Name: "bookwarehouse"}, hr); err != nil {
			return err
		}
		if err := accepted(hr.Status.Parents, func(p gwv1.RouteParentStatus) (gwv1.GatewayController, []metav1.Condition) {
			return p.ControllerName, p.Conditions
		}); err != nil {
			return fmt.Errorf("HTTPRoute bookwarehouse/bookwarehouse: %w", err)
		}
		var rps meshv1alpha1.ResiliencePolicyList
		if err := k.List(ctx, &rps); err != nil {
			return err
		}
		for _, rp := range rps.Items {
			if err := accepted(rp.Status.Ancestors, func(a gwv1.PolicyAncestorStatus) (gwv1.GatewayController, []metav1.Condition) {
				return a.ControllerName, a.Conditions
			}); err != nil {
				return fmt.Errorf("ResiliencePolicy %s/%s: %w", rp.Namespace, rp.Name, err)
			}
		}
		p.Step("the mesh accepted HTTPRoute bookwarehouse/bookwarehouse and %d ResiliencePolicies", len(rps.Items))
		return nil
	})
}

// accepted says whether every entry of the mesh's controller is Accepted.
func accepted[T any](entries []T, of func(T) (gwv1.GatewayController, []metav1.Condition)) error {
	n := 0
	for _, e := range entries {
		ctrl, conds := of(e)
		if ctrl != meshv1alpha1.RouteControllerName {
			continue
		}
		n++
		if c := meta.FindStatusCondition(conds, "Accepted"); c == nil || c.Status != "True" {
			return fmt.Errorf("not accepted: %v", conds)
		}
	}
	if n == 0 {
		return fmt.Errorf("no status of the mesh yet")
	}
	return nil
}

// showRoutes prints, for the bookstore's proxy, the routes of its route
// configuration for bookwarehouse, as the mesh route made them.
func (ps proxies) showRoutes(out io.Writer) {
	for _, p := range ps {
		for _, rc := range p.routes {
			if !strings.Contains(rc.GetName(), "bookwarehouse/bookwarehouse") {
				continue
			}
			fmt.Fprintf(out, "Mesh route of %s, as %s's proxy has it:\n", rc.GetName(), p.nodeID)
			for _, vh := range rc.GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					what := "answered " + fmt.Sprint(r.GetDirectResponse().GetStatus())
					if a := r.GetRoute(); a != nil {
						what = fmt.Sprintf("to %s, timeout %s", a.GetCluster(), a.GetTimeout().AsDuration())
						if rp := a.GetRetryPolicy(); rp != nil {
							what += fmt.Sprintf(", %d retries on %s (codes %v), %s a try", rp.GetNumRetries().GetValue(), rp.GetRetryOn(), rp.GetRetriableStatusCodes(), rp.GetPerTryTimeout().AsDuration())
						}
					}
					fmt.Fprintf(out, "  %-45s %s %s\n", r.GetName(), matchString(r), what)
				}
			}
			return
		}
	}
}

// matchString is the path a route matches.
func matchString(r *routev3.Route) string {
	m := r.GetMatch()
	switch {
	case m.GetPathSeparatedPrefix() != "":
		return "path " + m.GetPathSeparatedPrefix() + "[/...]"
	case m.GetPath() != "":
		return "path " + m.GetPath()
	case m.GetSafeRegex() != nil:
		return "path ~ " + m.GetSafeRegex().GetRegex()
	}
	return "prefix " + m.GetPrefix()
}
