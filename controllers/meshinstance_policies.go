package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

const (
	// maxProblemsShown bounds the objects a PoliciesValid message names (the
	// others are counted, and each has an Event), and the groups a
	// ProxyConfigReady message names.
	maxProblemsShown = 5
	// maxProblemShown bounds, in bytes, a problem in the PoliciesValid
	// message: a problem quotes what the user wrote (a regex, a name), and
	// the API server refuses a condition message past 32 kB, which would
	// leave the whole status unwritten.
	maxProblemShown = 300
	// reasonLeftOut is the reason of the Event on an object the mesh left out.
	reasonLeftOut = "LeftOutOfMesh"
)

// leftOut is an object the mesh model left out, whole or in part, and why.
type leftOut struct {
	// object is "Kind namespace/name"; kind is its Kind.
	object, kind string
	source       metav1.Object
	problems     []string
}

// checkPolicies builds the mesh model, as the xDS runner does, and returns
// the objects it had to leave out (policiesValid counts them by kind and
// names a few), recording a Warning Event on each, and the status of the
// IngressBackends and Egresses of the mesh's namespaces, and of its routes.
func (r *MeshInstanceReconciler) checkPolicies(ctx context.Context, mi *meshv1alpha1.MeshInstance, namespaces []string) ([]leftOut, []policyReport, []routeReport, error) {
	in, _, err := mesh.List(ctx, r.Client)
	if err != nil {
		return nil, nil, nil, err
	}
	in.Mesh = mi
	m, problems := mesh.Build(in)
	objs := leftOutObjects(problems)
	r.policyEvents.record(ctx, r.Recorder, mi, objs)
	return objs, meshPolicyReports(mi, namespaces, in, m, problems), append(meshRouteReports(namespaces, in, m), meshResilienceReports(namespaces, in, m)...), nil
}

// leftOutObjects groups problems by object, in the order of the problems
// (Build sorts them by object).
func leftOutObjects(problems []mesh.Problem) []leftOut {
	var out []leftOut
	for _, p := range problems {
		if n := len(out); n > 0 && out[n-1].object == p.Object {
			out[n-1].problems = append(out[n-1].problems, p.Err.Error())
			continue
		}
		kind, _, _ := strings.Cut(p.Object, " ")
		out = append(out, leftOut{object: p.Object, kind: kind, source: p.Source, problems: []string{p.Err.Error()}})
	}
	return out
}

// policiesMessage is the PoliciesValid message of objs: the count of each
// kind, then the first objects with their first problem, then how many
// more there are.
func policiesMessage(objs []leftOut) string {
	counts := map[string]int{}
	for _, o := range objs {
		counts[o.kind]++
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		kinds = append(kinds, plural(counts[k], k))
	}
	var shown []string
	for _, o := range objs[:min(len(objs), maxProblemsShown)] {
		s := o.object + ": " + truncate(o.problems[0], maxProblemShown)
		if n := len(o.problems) - 1; n > 0 {
			s += fmt.Sprintf(" (and %s)", plural(n, "more problem"))
		}
		shown = append(shown, s)
	}
	msg := fmt.Sprintf("%s left out (what they would allow is denied): %s", strings.Join(kinds, ", "), strings.Join(shown, "; "))
	if n := len(objs) - maxProblemsShown; n > 0 {
		msg += fmt.Sprintf("; and %d more (each has a Warning Event)", n)
	}
	return msg
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// policyEvents records a Warning Event on each object a mesh leaves out
// when its problems appear or change, not on every reconcile. It remembers
// the note last recorded for each object (by UID, so an object made again
// is told again); after a restart each object is told once more.
type policyEvents struct {
	mu sync.Mutex
	// last maps a mesh to the note last recorded for each of its objects.
	last map[string]map[string]string
}

func (pe *policyEvents) record(ctx context.Context, rec events.EventRecorder, mi *meshv1alpha1.MeshInstance, objs []leftOut) {
	if rec == nil {
		return
	}
	pe.mu.Lock()
	defer pe.mu.Unlock()
	if pe.last == nil {
		pe.last = map[string]map[string]string{}
	}
	prev, now := pe.last[mi.Name], map[string]string{}
	for _, o := range objs {
		regarding, ok := o.source.(runtime.Object)
		if !ok {
			continue
		}
		key := o.object + "/" + string(o.source.GetUID())
		note := truncate(fmt.Sprintf("Left out of mesh %s: %s", mi.Name, strings.Join(o.problems, "; ")), maxEventNote)
		now[key] = note
		if prev[key] == note {
			continue
		}
		rec.Eventf(regarding, mi, corev1.EventTypeWarning, reasonLeftOut, "BuildMesh", "%s", note)
		ctrl.LoggerFrom(ctx).Info("Recorded an object left out of the mesh", "object", o.object, "problems", len(o.problems))
	}
	pe.last[mi.Name] = now
}
