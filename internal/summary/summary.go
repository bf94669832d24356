// Package summary prints the state of the meshes of a cluster as their
// statuses say it: each mesh, member, VM and policy with its Ready
// condition and counts. `osm-operator status` and `make demo` print it.
package summary

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Write prints one line per object: the meshes, their members and VMs,
// then the policies the mesh judges. Gateway API kinds the cluster does not
// serve are left out.
func Write(ctx context.Context, k client.Reader, out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAMESPACE/NAME\tREADY\tREASON\tDETAILS")
	row := func(kind string, o metav1.Object, ready, reason, details string) {
		name := o.GetName()
		if ns := o.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", kind, name, ready, reason, details)
	}
	var mis meshv1alpha1.MeshInstanceList
	if err := k.List(ctx, &mis); err != nil {
		return fmt.Errorf("listing MeshInstances: %w", err)
	}
	for _, m := range mis.Items {
		r, why := ready(m.Status.Conditions)
		row("MeshInstance", &m, r, why, fmt.Sprintf("%d member namespaces (%d accept plaintext from outside the mesh), %d identities, %d VMs, %d proxies connected, %d trust anchors",
			m.Status.MemberNamespaces, m.Status.NamespacesAcceptingPlaintext, m.Status.Identities, m.Status.VMs, m.Status.ConnectedProxies, len(m.Status.TrustBundle)))
	}
	var mms meshv1alpha1.MeshMemberList
	if err := k.List(ctx, &mms); err != nil {
		return fmt.Errorf("listing MeshMembers: %w", err)
	}
	for _, m := range mms.Items {
		r, why := ready(m.Status.Conditions)
		row("MeshMember", &m, r, why, fmt.Sprintf("%d/%d identities ready, %d pods injected, %d proxies connected, plaintext from outside the mesh: %s on ports %v",
			m.Status.IdentitiesReady, m.Status.Identities, m.Status.PodsInjected, m.Status.ProxiesConnected, m.Status.PlaintextFromOutsideMesh, m.Status.PortsAcceptingPlaintext))
	}
	var vms meshv1alpha1.MeshVMList
	if err := k.List(ctx, &vms); err != nil {
		return fmt.Errorf("listing MeshVMs: %w", err)
	}
	for _, v := range vms.Items {
		r, why := ready(v.Status.Conditions)
		connected := "no proxy connected"
		if v.Status.Proxy != nil && v.Status.Proxy.Connected {
			connected = "proxy connected to " + v.Status.Proxy.Replica
		}
		row("MeshVM", &v, r, why, strings.Join(v.Spec.Addresses, ",")+", "+connected)
	}
	// The OSM policy kinds: their Ready condition.
	osm := []struct {
		kind string
		list client.ObjectList
	}{
		{"IngressBackend", &policyv1alpha1.IngressBackendList{}},
		{"Egress", &policyv1alpha1.EgressList{}},
		{"UpstreamTrafficSetting", &policyv1alpha1.UpstreamTrafficSettingList{}},
		{"Retry", &policyv1alpha1.RetryList{}},
	}
	for _, l := range osm {
		if err := k.List(ctx, l.list); err != nil {
			return fmt.Errorf("listing %ss: %w", l.kind, err)
		}
		if err := meta.EachListItem(l.list, func(o runtime.Object) error {
			p := o.(interface {
				metav1.Object
				StatusConditions() *[]metav1.Condition
			})
			conds := *p.StatusConditions()
			r, why := ready(conds)
			row(l.kind, p, r, why, withEnforced(readyMessage(conds), conds))
			return nil
		}); err != nil {
			return err
		}
	}
	// The SMI kinds: whether the mesh accepted them, and where they are
	// enforced. A cluster without their CRDs has none.
	for _, gvk := range mesh.SMIKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := k.List(ctx, list); meta.IsNoMatchError(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			var st struct {
				Conditions []metav1.Condition `json:"conditions"`
			}
			raw, _ := json.Marshal(u.Object["status"])
			_ = json.Unmarshal(raw, &st) // a status we cannot read shows as none
			accepted, reason := "Unknown", ""
			if c := meta.FindStatusCondition(st.Conditions, "Accepted"); c != nil {
				accepted, reason = string(c.Status), c.Reason
			}
			row(gvk.Kind, u, accepted, reason, withEnforced("", st.Conditions))
		}
	}
	// Policies of Gateway API's attachment: their conditions by parent.
	var rps meshv1alpha1.ResiliencePolicyList
	if err := k.List(ctx, &rps); err != nil {
		return fmt.Errorf("listing ResiliencePolicies: %w", err)
	}
	for _, p := range rps.Items {
		var parts []string
		accepted := metav1.ConditionTrue
		reason := string(gwv1.PolicyReasonAccepted)
		for _, a := range p.Status.Ancestors {
			if a.ControllerName != meshv1alpha1.RouteControllerName {
				continue
			}
			if c := meta.FindStatusCondition(a.Conditions, string(gwv1.PolicyConditionAccepted)); c != nil {
				parts = append(parts, fmt.Sprintf("%s: %s", a.AncestorRef.Name, c.Message))
				if c.Status != metav1.ConditionTrue {
					accepted, reason = c.Status, c.Reason
				}
			}
		}
		if len(parts) == 0 {
			accepted, reason = "Unknown", ""
		}
		details := strings.Join(parts, "; ")
		for _, a := range p.Status.Ancestors {
			if a.ControllerName == meshv1alpha1.RouteControllerName {
				details = withEnforced(details, a.Conditions) // the same in every entry
				break
			}
		}
		row("ResiliencePolicy", &p, string(accepted), reason, details)
	}
	var hrs gwv1.HTTPRouteList
	var grs gwv1.GRPCRouteList
	for _, l := range []struct {
		kind string
		list client.ObjectList
	}{{"HTTPRoute", &hrs}, {"GRPCRoute", &grs}} {
		if err := k.List(ctx, l.list); mesh.Absent(l.list, err) {
			continue
		} else if err != nil {
			return fmt.Errorf("listing %ss: %w", l.kind, err)
		}
	}
	for _, r := range hrs.Items {
		route("HTTPRoute", &r, r.Status.Parents, row)
	}
	for _, r := range grs.Items {
		route("GRPCRoute", &r, r.Status.Parents, row)
	}
	return w.Flush()
}

// route prints a route's entries of the mesh: Accepted and ResolvedRefs
// per parent.
func route(kind string, o metav1.Object, parents []gwv1.RouteParentStatus, row func(kind string, o metav1.Object, ready, reason, details string)) {
	status, reason := "Unknown", ""
	var parts []string
	for _, p := range parents {
		if p.ControllerName != meshv1alpha1.RouteControllerName {
			continue
		}
		if status == "Unknown" {
			status = string(metav1.ConditionTrue)
		}
		for _, t := range []string{string(gwv1.RouteConditionAccepted), string(gwv1.RouteConditionResolvedRefs)} {
			c := meta.FindStatusCondition(p.Conditions, t)
			if c == nil || c.ObservedGeneration != o.GetGeneration() {
				status, reason = "Unknown", "NotObservedYet"
				continue
			}
			if c.Status != metav1.ConditionTrue {
				status, reason = string(c.Status), c.Reason
				parts = append(parts, fmt.Sprintf("%s: %s", p.ParentRef.Name, c.Message))
			}
		}
	}
	if status == string(metav1.ConditionTrue) {
		reason = string(gwv1.RouteReasonAccepted)
	}
	details := strings.Join(parts, "; ")
	for _, p := range parents {
		if p.ControllerName == meshv1alpha1.RouteControllerName {
			details = withEnforced(details, p.Conditions) // the same in every entry
			break
		}
	}
	row(kind, o, status, reason, details)
}

func ready(conds []metav1.Condition) (string, string) {
	c := meta.FindStatusCondition(conds, meshv1alpha1.ConditionReady)
	if c == nil {
		return "Unknown", ""
	}
	return string(c.Status), c.Reason
}

// withEnforced is details with the Enforced condition of conds, if any.
func withEnforced(details string, conds []metav1.Condition) string {
	c := meta.FindStatusCondition(conds, "Enforced")
	if c == nil {
		return details
	}
	e := fmt.Sprintf("enforced %s (%s): %s", c.Status, c.Reason, c.Message)
	if details == "" {
		return e
	}
	return details + "; " + e
}

// readyMessage is the message of the Ready condition, or "".
func readyMessage(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, meshv1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}
