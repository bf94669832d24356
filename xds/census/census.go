// Package census counts the sidecars connected to the xDS servers of all
// replicas.
//
// Every replica serves xDS and knows only its own streams; the leader writes
// status. So each replica publishes its count of connected sidecars per
// namespace in a Lease of the operator's namespace, renewed while it runs and
// deleted when it stops. Readers sum the Leases that have not expired: a
// replica that died without cleaning up stops counting after the Lease's
// duration, and the leader deletes its Lease then (Expired).
package census

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// ComponentLabel marks the Leases of this package; the operator's
	// informer cache holds only Leases with it.
	ComponentLabel = "mesh.openservicemesh.io/component"
	// Component is ComponentLabel's value.
	Component = "xds-replica"
	// CountsAnnotation holds a Lease's counts: JSON {"<namespace>": n}.
	CountsAnnotation = "mesh.openservicemesh.io/connected-sidecars"
	// LeasePrefix starts the name of each replica's Lease.
	LeasePrefix = "osm-xds-"
)

// Counts are connected sidecars per namespace.
type Counts map[string]int32

// Add adds o into c.
func (c Counts) Add(o Counts) {
	for ns, n := range o {
		c[ns] += n
	}
}

// Total is the sum over every namespace in namespaces, or over all when
// namespaces is nil.
func (c Counts) Total(namespaces map[string]bool) int32 {
	var t int32
	for ns, n := range c {
		if namespaces == nil || namespaces[ns] {
			t += n
		}
	}
	return t
}

// Decode reads a Lease's counts. A Lease without the annotation counts none.
func Decode(l *coordinationv1.Lease) (Counts, error) {
	raw, ok := l.Annotations[CountsAnnotation]
	if !ok {
		return Counts{}, nil
	}
	c := Counts{}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("lease %s/%s: annotation %s: %w", l.Namespace, l.Name, CountsAnnotation, err)
	}
	return c, nil
}

// Expiry is when a Lease stops counting: its last renewal plus its duration.
// A Lease that was never renewed has expired.
func Expiry(l *coordinationv1.Lease) time.Time {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
}

// Census is the sum of the live Leases.
type Census struct {
	Counts Counts
	// Replicas is the number of live Leases.
	Replicas int
	// Expired are the Leases that no longer count.
	Expired []coordinationv1.Lease
	// Invalid are the Leases whose counts could not be read.
	Invalid []error
}

// Read sums the live Leases of namespace at time now.
func Read(ctx context.Context, r client.Reader, namespace string, now time.Time) (Census, error) {
	var leases coordinationv1.LeaseList
	if err := r.List(ctx, &leases, client.InNamespace(namespace), client.MatchingLabels{ComponentLabel: Component}); err != nil {
		return Census{}, fmt.Errorf("listing xDS replica Leases: %w", err)
	}
	out := Census{Counts: Counts{}}
	for _, l := range leases.Items {
		if !Expiry(&l).After(now) {
			out.Expired = append(out.Expired, l)
			continue
		}
		c, err := Decode(&l)
		if err != nil {
			out.Invalid = append(out.Invalid, err)
			continue
		}
		out.Replicas++
		out.Counts.Add(c)
	}
	return out, nil
}
