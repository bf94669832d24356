package controllers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
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
	"github.com/open-service-mesh/osm-operator/xds/mesh"
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
	// the least time between two writes of one object (5 s when zero), and
	// CountsEvery between two writes that only change its counts (30 s).
	Interval, MinWrite, CountsEvery time.Duration
	// WritesPerSecond bounds the writes of all objects (50 when zero, with
	// bursts of twice as many): a new leader's first passes over thousands
	// of policies, or a fleet reconnecting, must not swamp the API server.
	WritesPerSecond float64
	Log             logr.Logger

	budget *rate.Limiter

	written  map[policyKey]writtenStatus
	noStatus map[string]bool // SMI kinds whose missing status subresource was logged
	// offset turns the order policies are written in from pass to pass,
	// so that no namespace's policies always come first.
	offset int
}

type policyKey struct {
	kind, namespace, name string
	uid                   types.UID
}

func keyOf(p runner.Policy) policyKey { return policyKey{p.Kind, p.Namespace, p.Name, p.UID} }

// writtenStatus is what the writer last wrote of an object, and when, and
// the policy as the runner last gave it.
type writtenStatus struct {
	conditions []metav1.Condition
	at         time.Time
	policy     runner.Policy
}

// NeedLeaderElection is true: the leader writes status.
func (w *EnforcedWriter) NeedLeaderElection() bool { return true }

// Start writes until ctx ends.
func (w *EnforcedWriter) Start(ctx context.Context) error {
	interval := w.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	w.init()
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

func (w *EnforcedWriter) init() {
	w.written, w.noStatus = map[policyKey]writtenStatus{}, map[string]bool{}
	perSecond := cmp.Or(w.WritesPerSecond, 50)
	w.budget = rate.NewLimiter(rate.Limit(perSecond), int(2*perSecond))
}

// pass judges every policy once and writes those whose status changed.
func (w *EnforcedWriter) pass(ctx context.Context, now time.Time) error {
	minWrite, countsEvery := cmp.Or(w.MinWrite, 5*time.Second), cmp.Or(w.CountsEvery, 30*time.Second)
	policies := w.Source.Policies()
	current, failing := w.Source.ConfigVersions(), w.Source.FailingGroups()
	c, err := census.ReadWithGroups(ctx, w.Client, w.Namespace, now)
	if err != nil {
		return err
	}
	type due struct {
		p    runner.Policy
		k    policyKey
		want []metav1.Condition
	}
	// A new verdict (status, reason, generation) is written before counts
	// that moved: proxies come and go all the time.
	var verdicts, counts []due
	seen := make(map[policyKey]bool, len(policies))
	for _, p := range policies {
		k := keyOf(p)
		seen[k] = true
		want := policyStatusConditions(p, enforcement.Facts{
			Namespace: p.Namespace, Generation: p.Generation, Groups: p.Groups, Inactive: p.Inactive,
			Current: current, Failing: failing, Census: c.Groups, Truncated: c.Truncated,
		})
		// An SMI policy's status is the writer's alone: what it wrote
		// last stands. A typed policy's the MeshInstance reconciler
		// writes too: it is compared with the cache's at least every
		// CountsEvery, which mends a write over the writer's.
		last, ok := w.written[k]
		_, smi := smiKinds[p.Kind]
		switch {
		case !ok:
			verdicts = append(verdicts, due{p, k, want})
		case now.Sub(last.at) < minWrite || smi && sameConditions(last.conditions, want):
		case !sameVerdicts(last.conditions, want):
			verdicts = append(verdicts, due{p, k, want})
		case now.Sub(last.at) >= countsEvery:
			counts = append(counts, due{p, k, want})
		}
	}
	var errs []error
	all := append(rotate(verdicts, w.offset), rotate(counts, w.offset)...)
	for i, d := range all {
		err := w.write(ctx, d.p, d.want, now)
		if errors.Is(err, errNoBudget) {
			w.offset += i // the rest first on a later pass
			break
		}
		if err != nil && !errors.Is(err, errNothingYet) {
			// Tried again after MinWrite, as a new verdict.
			w.written[d.k] = writtenStatus{at: now}
			errs = append(errs, err)
		}
	}
	// A policy no mesh reads any more (its namespace left, or it is being
	// deleted) says so rather than keep what it said last.
	for k, last := range w.written {
		if seen[k] {
			continue
		}
		if last.conditions == nil || last.policy.Kind == "" {
			delete(w.written, k)
			continue
		}
		err := w.write(ctx, last.policy, notInMesh(last.policy), now)
		if errors.Is(err, errNoBudget) {
			break
		}
		if err != nil && !errors.Is(err, errNothingYet) {
			errs = append(errs, err)
		}
		delete(w.written, k)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d policies: %w", len(errs), errs[0])
	}
	return nil
}

// rotate is s from its element n (modulo its length) on, then the rest.
func rotate[T any](s []T, n int) []T {
	if len(s) == 0 {
		return s
	}
	n %= len(s)
	return append(s[n:len(s):len(s)], s[:n]...)
}

// noStatusRetry is how long an SMI object without a status to write into
// waits before the next try.
const noStatusRetry = 5 * time.Minute

// errNoBudget ends a pass that spent its writes; errNothingYet says that
// a route or ResiliencePolicy has no entry of the mesh's to write into
// yet (the MeshInstance reconciler writes them): the next pass tries.
var (
	errNoBudget   = errors.New("no writes left in this pass")
	errNothingYet = errors.New("no entry of the mesh's yet")
)

// sameVerdicts compares conditions but for their messages and times.
func sameVerdicts(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.ObservedGeneration == y.ObservedGeneration
	})
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

// notInMesh are the conditions the writer owns of p once no mesh reads it.
func notInMesh(p runner.Policy) []metav1.Condition {
	msg := fmt.Sprintf("No mesh reads this %s: its namespace left mesh %s, or it is being deleted", p.Kind, p.Mesh)
	out := []metav1.Condition{{Type: enforcement.ConditionEnforced, Status: metav1.ConditionUnknown, Reason: ReasonNotInMesh, Message: msg, ObservedGeneration: p.Generation}}
	if _, smi := smiKinds[p.Kind]; smi {
		out = append([]metav1.Condition{{Type: ConditionAccepted, Status: metav1.ConditionFalse, Reason: ReasonNotInMesh, Message: msg, ObservedGeneration: p.Generation}}, out...)
	}
	return out
}

// ReasonNotInMesh is the reason of a policy no mesh reads any more.
const ReasonNotInMesh = "NotInMesh"

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

// typedKinds make the typed policies the writer patches, and give the
// condition lists it sets Enforced in: an OSM policy's conditions; the
// mesh's entries of a route's parents and of a ResiliencePolicy's
// ancestors (controller meshv1alpha1.RouteControllerName; other
// controllers' entries are theirs).
var typedKinds = map[string]func() (client.Object, func(client.Object) []*[]metav1.Condition){
	"IngressBackend":         osmKind(func() statusObject { return &policyv1alpha1.IngressBackend{} }),
	"Egress":                 osmKind(func() statusObject { return &policyv1alpha1.Egress{} }),
	"UpstreamTrafficSetting": osmKind(func() statusObject { return &policyv1alpha1.UpstreamTrafficSetting{} }),
	"Retry":                  osmKind(func() statusObject { return &policyv1alpha1.Retry{} }),
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

func osmKind(newObj func() statusObject) func() (client.Object, func(client.Object) []*[]metav1.Condition) {
	return func() (client.Object, func(client.Object) []*[]metav1.Condition) {
		return newObj(), func(o client.Object) []*[]metav1.Condition {
			return []*[]metav1.Condition{o.(statusObject).StatusConditions()}
		}
	}
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

// smiKinds are the SMI kinds the mesh reads, by kind.
var smiKinds = func() map[string]schema.GroupVersionKind {
	out := map[string]schema.GroupVersionKind{}
	for _, gvk := range mesh.SMIKinds {
		out[gvk.Kind] = gvk
	}
	return out
}()

// write sets want in p's status, unless it is there already, and records
// what the policy's status now says (w.written).
func (w *EnforcedWriter) write(ctx context.Context, p runner.Policy, want []metav1.Condition, now time.Time) error {
	if newObj, ok := typedKinds[p.Kind]; ok {
		return w.writeTyped(ctx, p, newObj, want, now)
	}
	if gvk, ok := smiKinds[p.Kind]; ok {
		return w.writeSMI(ctx, p, gvk, want, now)
	}
	return nil
}

// writeTyped writes a typed policy's status, read from the cache: its
// other conditions are the MeshInstance reconciler's.
func (w *EnforcedWriter) writeTyped(ctx context.Context, p runner.Policy, newObj func() (client.Object, func(client.Object) []*[]metav1.Condition), want []metav1.Condition, now time.Time) error {
	obj, entries := newObj()
	if err := w.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Name}, obj); apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading %s: %w", p.Ref(), err)
	}
	if obj.GetUID() != p.UID {
		return nil // made again under its name: the next sync judges it
	}
	before := obj.DeepCopyObject().(client.Object)
	lists := entries(obj)
	if len(lists) == 0 {
		return errNothingYet
	}
	for _, conds := range lists {
		for _, c := range want {
			c.LastTransitionTime = metav1.NewTime(now)
			meta.SetStatusCondition(conds, c)
		}
	}
	if !equality.Semantic.DeepEqual(before, obj) {
		if !w.budget.Allow() {
			return errNoBudget
		}
		// The lock keeps the writer and the MeshInstance reconciler from
		// writing over what either did not read.
		if err := w.Client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("patching the status of %s: %w", p.Ref(), err)
		}
	}
	w.written[keyOf(p)] = writtenStatus{conditions: want, at: now, policy: p}
	return nil
}

// writeSMI writes an SMI policy's status, which is the writer's alone: from
// what it wrote last, else from the object as read (a read and a write of
// the budget's).
func (w *EnforcedWriter) writeSMI(ctx context.Context, p runner.Policy, gvk schema.GroupVersionKind, want []metav1.Condition, now time.Time) error {
	key := client.ObjectKey{Namespace: p.Namespace, Name: p.Name}
	var prev []metav1.Condition
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	// JSON patch tests are the preconditions: a merge patch's
	// metadata.uid is not checked on the status subresource.
	ops := []map[string]any{{"op": "test", "path": "/metadata/uid", "value": p.UID}}
	if last, ok := w.written[keyOf(p)]; ok && last.conditions != nil {
		if !w.budget.Allow() {
			return errNoBudget
		}
		prev = last.conditions
		u.SetNamespace(p.Namespace)
		u.SetName(p.Name)
	} else {
		if !w.budget.AllowN(time.Now(), 2) {
			return errNoBudget
		}
		if err := w.APIReader.Get(ctx, key, u); apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading %s: %w", p.Ref(), err)
		}
		if u.GetUID() != p.UID {
			return nil
		}
		if raw, ok, _ := unstructured.NestedSlice(u.Object, "status", "conditions"); ok {
			if b, err := json.Marshal(raw); err == nil {
				_ = json.Unmarshal(b, &prev) // a status we cannot read is written anew
			}
		}
		ops = append(ops, map[string]any{"op": "test", "path": "/metadata/resourceVersion", "value": u.GetResourceVersion()})
		if og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); og == p.Generation && sameConditions(prev, want) {
			w.written[keyOf(p)] = writtenStatus{conditions: prev, at: now, policy: p}
			return nil
		}
	}
	conds := slices.Clone(prev)
	applyConditions(&conds, want, metav1.NewTime(now))
	ops = append(ops, map[string]any{"op": "add", "path": "/status", "value": map[string]any{"observedGeneration": p.Generation, "conditions": conds}})
	patch, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("encoding the status of %s: %w", p.Ref(), err)
	}
	if err := w.Client.Status().Patch(ctx, u, client.RawPatch(types.JSONPatchType, patch)); apierrors.IsNotFound(err) {
		// The object is gone, or its CRD has no status subresource (an
		// SMI CRD of another project's): nothing to write into. Judged
		// per object, so that no one's objects stop another's writes.
		if w.APIReader.Get(ctx, key, u) == nil && !w.noStatus[p.Kind] {
			w.Log.Info("Not writing the status of an SMI policy: its CRD may have no status subresource", "kind", p.Kind, "policy", p.Ref())
			w.noStatus[p.Kind] = true // logged once
		}
		// Tried again in a few minutes: a CRD without the subresource
		// would spend every write on this kind's objects.
		w.written[keyOf(p)] = writtenStatus{at: now.Add(noStatusRetry)}
		return nil
	} else if err != nil {
		return fmt.Errorf("patching the status of %s: %w", p.Ref(), err)
	}
	w.written[keyOf(p)] = writtenStatus{conditions: conds, at: now, policy: p}
	return nil
}
