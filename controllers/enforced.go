package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/enforcement"
	"github.com/open-service-mesh/osm-operator/xds/runner"
)

// The Enforced condition of every policy a mesh reads: how many connected
// proxies of the groups it configures run the config this replica
// published after reading its generation. The leader's replica knows the
// policies' groups and the groups' current config versions (its runner and
// snapshot cache: every replica translates the same model to the same
// versions), and the census sums what every replica's proxies run. The
// writer looks every Interval and writes an object's status only when its
// condition changed, at most once every MinWrite.

// +kubebuilder:rbac:groups=access.smi-spec.io,resources=traffictargets,verbs=get
// +kubebuilder:rbac:groups=access.smi-spec.io,resources=traffictargets/status,verbs=patch
// +kubebuilder:rbac:groups=specs.smi-spec.io,resources=httproutegroups;tcproutes,verbs=get
// +kubebuilder:rbac:groups=specs.smi-spec.io,resources=httproutegroups/status;tcproutes/status,verbs=patch
// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits,verbs=get
// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits/status,verbs=patch

// EnforcementSource is what this replica's control plane knows of the
// policies it configures proxies with.
type EnforcementSource interface {
	// Policies are the policies as the last sync found them.
	Policies() []runner.Policy
	// ConfigVersions are the config version of each group published.
	ConfigVersions() map[string]string
	// FailingGroups are the groups whose last translation failed.
	FailingGroups() map[string]string
}

// EnforcedWriter writes the Enforced condition. It runs on the leader.
type EnforcedWriter struct {
	// Client reads the census and the OSM policies from the cache and
	// writes status; APIReader reads an SMI policy's status once, as the
	// typed SMI objects carry none.
	Client    client.Client
	APIReader client.Reader
	// Namespace holds the census Leases.
	Namespace string
	Source    EnforcementSource
	// Interval is how often the writer looks (2 s when zero); MinWrite is
	// the least time between two writes of one object (5 s when zero).
	Interval, MinWrite time.Duration
	Log                logr.Logger

	written  map[policyKey]writtenStatus
	noStatus map[string]bool // SMI kinds whose CRD has no status subresource
}

type policyKey struct {
	kind, namespace, name string
	uid                   types.UID
}

// writtenStatus is what the writer last wrote of an object, and when.
type writtenStatus struct {
	conditions []metav1.Condition
	at         time.Time
}

// NeedLeaderElection is true: the leader writes status.
func (w *EnforcedWriter) NeedLeaderElection() bool { return true }

// Start writes until ctx ends.
func (w *EnforcedWriter) Start(ctx context.Context) error {
	interval := w.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	w.written, w.noStatus = map[policyKey]writtenStatus{}, map[string]bool{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := w.pass(ctx, time.Now()); err != nil && ctx.Err() == nil {
				w.Log.Error(err, "Failed to write the Enforced conditions of policies")
			}
		}
	}
}

// pass judges every policy once and writes those whose status changed.
func (w *EnforcedWriter) pass(ctx context.Context, now time.Time) error {
	minWrite := w.MinWrite
	if minWrite == 0 {
		minWrite = 5 * time.Second
	}
	policies := w.Source.Policies()
	current, failing := w.Source.ConfigVersions(), w.Source.FailingGroups()
	c, err := census.Read(ctx, w.Client, w.Namespace, now)
	if err != nil {
		return err
	}
	seen := make(map[policyKey]bool, len(policies))
	var errs []error
	for _, p := range policies {
		k := policyKey{p.Kind, p.Namespace, p.Name, p.UID}
		seen[k] = true
		want := policyStatusConditions(p, enforcement.Facts{
			Generation: p.Generation, Groups: p.Groups, Inactive: p.Inactive,
			Current: current, Failing: failing, Census: c.Groups, Truncated: c.Truncated,
		})
		// An SMI policy's status is the writer's alone: what it wrote
		// last stands. An OSM policy's the MeshInstance reconciler writes
		// too, so each pass compares with the cache's.
		last, ok := w.written[k]
		_, smi := smiKinds[p.Kind]
		if ok && (now.Sub(last.at) < minWrite || smi && sameConditions(last.conditions, want)) {
			continue
		}
		wrote, err := w.write(ctx, p, want, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if wrote || smi {
			w.written[k] = writtenStatus{conditions: want, at: now}
		}
	}
	for k := range w.written {
		if !seen[k] {
			delete(w.written, k)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d policies: %w", len(errs), errs[0])
	}
	return nil
}

// policyStatusConditions are the conditions the writer owns of p: Enforced,
// and for the SMI kinds, whose status is the writer's alone, Accepted (and
// Stalled when the mesh left some of it out, as kstatus reads it).
func policyStatusConditions(p runner.Policy, f enforcement.Facts) []metav1.Condition {
	out := []metav1.Condition{enforcement.Condition(f)}
	if _, smi := smiKinds[p.Kind]; !smi {
		return out
	}
	accepted := metav1.Condition{Type: ConditionAccepted, Status: metav1.ConditionTrue, Reason: ReasonAccepted, ObservedGeneration: p.Generation,
		Message: fmt.Sprintf("Read by mesh %s", p.Mesh)}
	if len(p.Problems) > 0 {
		msg := truncate(fmt.Sprintf("mesh %s left out what does not resolve (%s): %s", p.Mesh, leftOutMeans(p.Kind), strings.Join(p.Problems, "; ")), maxPolicyMessage)
		accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, policyv1alpha1.ReasonLeftOut, msg
		out = append(out, metav1.Condition{Type: meshv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: policyv1alpha1.ReasonLeftOut, Message: msg, ObservedGeneration: p.Generation})
	}
	return append([]metav1.Condition{accepted}, out...)
}

// Conditions of the SMI kinds.
const (
	ConditionAccepted = "Accepted"
	ReasonAccepted    = "Accepted"
)

// sameConditions compares conditions but for their transition times.
func sameConditions(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		x.LastTransitionTime, y.LastTransitionTime = metav1.Time{}, metav1.Time{}
		return x == y
	})
}

// osmKinds make the typed OSM policies the writer patches.
var osmKinds = map[string]func() statusObject{
	"IngressBackend":         func() statusObject { return &policyv1alpha1.IngressBackend{} },
	"Egress":                 func() statusObject { return &policyv1alpha1.Egress{} },
	"UpstreamTrafficSetting": func() statusObject { return &policyv1alpha1.UpstreamTrafficSetting{} },
	"Retry":                  func() statusObject { return &policyv1alpha1.Retry{} },
}

// gatewayKinds make the Gateway API-shaped policies the writer patches,
// and give the conditions of the mesh's entries in their status: a route's
// parents, a ResiliencePolicy's ancestors, of controller
// meshv1alpha1.RouteControllerName. Other controllers' entries are theirs.
var gatewayKinds = map[string]func() (client.Object, func(client.Object) []*[]metav1.Condition){
	"HTTPRoute": func() (client.Object, func(client.Object) []*[]metav1.Condition) {
		return &gwv1.HTTPRoute{}, func(o client.Object) []*[]metav1.Condition {
			return parentConditions(o.(*gwv1.HTTPRoute).Status.Parents)
		}
	},
	"GRPCRoute": func() (client.Object, func(client.Object) []*[]metav1.Condition) {
		return &gwv1.GRPCRoute{}, func(o client.Object) []*[]metav1.Condition {
			return parentConditions(o.(*gwv1.GRPCRoute).Status.Parents)
		}
	},
	"ResiliencePolicy": func() (client.Object, func(client.Object) []*[]metav1.Condition) {
		return &meshv1alpha1.ResiliencePolicy{}, func(o client.Object) []*[]metav1.Condition {
			var out []*[]metav1.Condition
			ancestors := o.(*meshv1alpha1.ResiliencePolicy).Status.Ancestors
			for i := range ancestors {
				if ancestors[i].ControllerName == meshv1alpha1.RouteControllerName {
					out = append(out, &ancestors[i].Conditions)
				}
			}
			return out
		}
	},
}

func parentConditions(parents []gwv1.RouteParentStatus) []*[]metav1.Condition {
	var out []*[]metav1.Condition
	for i := range parents {
		if parents[i].ControllerName == meshv1alpha1.RouteControllerName {
			out = append(out, &parents[i].Conditions)
		}
	}
	return out
}

// smiKinds are the SMI kinds' versions the mesh reads.
var smiKinds = map[string]schema.GroupVersionKind{
	"TrafficTarget":  {Group: "access.smi-spec.io", Version: "v1alpha3", Kind: "TrafficTarget"},
	"HTTPRouteGroup": {Group: "specs.smi-spec.io", Version: "v1alpha4", Kind: "HTTPRouteGroup"},
	"TCPRoute":       {Group: "specs.smi-spec.io", Version: "v1alpha4", Kind: "TCPRoute"},
	"TrafficSplit":   {Group: "split.smi-spec.io", Version: "v1alpha4", Kind: "TrafficSplit"},
}

// write writes want into p's status; it says whether it did.
func (w *EnforcedWriter) write(ctx context.Context, p runner.Policy, want []metav1.Condition, now time.Time) (bool, error) {
	key := client.ObjectKey{Namespace: p.Namespace, Name: p.Name}
	if newObj, ok := osmKinds[p.Kind]; ok {
		obj := newObj()
		if err := w.Client.Get(ctx, key, obj); apierrors.IsNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("reading %s: %w", p.Ref(), err)
		}
		if obj.GetUID() != p.UID {
			return false, nil // made again under its name: the next sync judges it
		}
		before := obj.DeepCopyObject().(statusObject)
		for _, c := range want {
			c.LastTransitionTime = metav1.NewTime(now)
			meta.SetStatusCondition(obj.StatusConditions(), c)
		}
		if equality.Semantic.DeepEqual(before, obj) {
			return false, nil
		}
		// The MeshInstance reconciler writes the other conditions: the
		// lock keeps either from writing over what it did not read.
		if err := w.Client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("patching the status of %s: %w", p.Ref(), err)
		}
		return true, nil
	}
	if newObj, ok := gatewayKinds[p.Kind]; ok {
		obj, entries := newObj()
		if err := w.Client.Get(ctx, key, obj); apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("reading %s: %w", p.Ref(), err)
		}
		if obj.GetUID() != p.UID {
			return false, nil
		}
		before := obj.DeepCopyObject().(client.Object)
		// The mesh's own entries (one per Service it is attached to); none
		// before the MeshInstance reconciler wrote them: the next pass.
		for _, conds := range entries(obj) {
			for _, c := range want {
				c.LastTransitionTime = metav1.NewTime(now)
				meta.SetStatusCondition(conds, c)
			}
		}
		if equality.Semantic.DeepEqual(before, obj) {
			return false, nil
		}
		if err := w.Client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("patching the status of %s: %w", p.Ref(), err)
		}
		return true, nil
	}
	gvk, ok := smiKinds[p.Kind]
	if !ok || w.noStatus[p.Kind] {
		return false, nil
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := w.APIReader.Get(ctx, key, u); apierrors.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("reading %s: %w", p.Ref(), err)
	}
	if u.GetUID() != p.UID {
		return false, nil
	}
	var prev []metav1.Condition
	if raw, ok, _ := unstructured.NestedSlice(u.Object, "status", "conditions"); ok {
		if b, err := json.Marshal(raw); err == nil {
			_ = json.Unmarshal(b, &prev) // a status we cannot read is written anew
		}
	}
	conds := slices.Clone(prev)
	applyConditions(&conds, want, metav1.NewTime(now))
	if og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); og == p.Generation && equality.Semantic.DeepEqual(conds, prev) {
		return false, nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": p.UID, "resourceVersion": u.GetResourceVersion()},
		"status":   map[string]any{"observedGeneration": p.Generation, "conditions": conds},
	})
	if err != nil {
		return false, fmt.Errorf("encoding the status of %s: %w", p.Ref(), err)
	}
	if err := w.Client.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); apierrors.IsNotFound(err) {
		// The object is gone, or its CRD has no status subresource (an
		// SMI CRD of another project's): nothing to write into.
		if w.APIReader.Get(ctx, key, u) == nil {
			w.Log.Info("Not writing the status of SMI policies: their CRD has no status subresource", "kind", p.Kind)
			w.noStatus[p.Kind] = true
		}
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("patching the status of %s: %w", p.Ref(), err)
	}
	return true, nil
}
