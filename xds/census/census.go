// Package census counts the sidecars connected to the xDS servers of all
// replicas, and gathers the proxy groups whose translation failed.
//
// Every replica serves xDS and knows only its own streams and translations;
// the leader writes status. So each replica publishes its count of connected
// sidecars per namespace, and its failing groups, in a Lease of the
// operator's namespace, renewed while it runs and deleted when it stops.
// Readers sum the Leases that have not expired: a replica that died without
// cleaning up stops counting after the Lease's duration, and the leader
// deletes its Lease then (Expired).
package census

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
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
	// FailingAnnotation holds a Lease's failing proxy groups: JSON
	// {"<namespace>": {"groups": n, "errors": {"<group>": "<error>"}}}.
	FailingAnnotation = "mesh.openservicemesh.io/failing-groups"
	// VMsAnnotation holds a Lease's connected MeshVM proxies: JSON
	// {"<namespace>/<meshvm>": {"version": "envoy/1.36.2", "since": "<RFC 3339>"}}.
	VMsAnnotation = "mesh.openservicemesh.io/connected-vms"
	// TrustAnnotation holds a Lease's trust report: JSON {"<mesh>":
	// {"proxies": n, "bundles": {"<sha256>": n}, "leafRoots": {"<sha256>": n}}}.
	TrustAnnotation = "mesh.openservicemesh.io/trust"
	// GroupsAnnotation holds what a Lease's proxies run, per group: JSON
	// {"groups": {"<group>": {"c": connected, "v": "<config version>",
	// "h": holding it, "r": rejecting}}, "rejections": {"<group>":
	// "<detail>"}, "truncated": true when groups were left out}.
	GroupsAnnotation = "mesh.openservicemesh.io/proxy-groups"
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

// Failing are, per namespace, the proxy groups whose last translation
// failed: they keep their last good config.
type Failing map[string]Failures

// Failures are the failing proxy groups of one namespace.
type Failures struct {
	// Groups is how many there are.
	Groups int `json:"groups"`
	// Errors holds the error of each, or of the first MaxErrors of them by
	// name when a Lease carries them: group → error.
	Errors map[string]string `json:"errors,omitempty"`
}

// Bounds of what a Lease carries, which keep it far below the API server's
// limit on annotations however many groups fail.
const (
	MaxErrors     = 5
	MaxErrorBytes = 512
)

// Fail records that group, of namespace, failed with err.
func (f Failing) Fail(namespace, group string, err error) {
	n := f[namespace]
	if n.Errors == nil {
		n.Errors = map[string]string{}
	}
	if _, ok := n.Errors[group]; !ok {
		n.Groups++
	}
	n.Errors[group] = err.Error()
	f[namespace] = n
}

// Merge adds the failures another replica reports. Replicas translate the
// same model, so they report the same groups: a namespace counts the most
// any replica reports, not their sum.
func (f Failing) Merge(o Failing) {
	for ns, of := range o {
		n := f[ns]
		n.Groups = max(n.Groups, of.Groups)
		for g, e := range of.Errors {
			if n.Errors == nil {
				n.Errors = map[string]string{}
			}
			n.Errors[g] = e
		}
		f[ns] = n
	}
}

// bounded is f as a Lease carries it: at most MaxErrors errors of at most
// MaxErrorBytes each per namespace.
func (f Failing) bounded() Failing {
	out := make(Failing, len(f))
	for ns, n := range f {
		groups := slices.Sorted(maps.Keys(n.Errors))
		b := Failures{Groups: n.Groups, Errors: map[string]string{}}
		for _, g := range groups[:min(len(groups), MaxErrors)] {
			b.Errors[g] = truncate(n.Errors[g], MaxErrorBytes)
		}
		out[ns] = b
	}
	return out
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Report is what one replica's Lease says.
type Report struct {
	Counts  Counts
	Failing Failing
	VMs     VMs
	Trust   Trust
	// Groups is what the replica's proxies run, per group; Truncated says
	// that it left groups out (MaxGroups).
	Groups    Groups
	Truncated bool
}

// groupReport is GroupsAnnotation's JSON.
type groupReport struct {
	Groups     Groups            `json:"groups"`
	Rejections map[string]string `json:"rejections,omitempty"`
	Truncated  bool              `json:"truncated,omitempty"`
}

// Trust says, per mesh, what the proxies that take their certificates over
// xDS (SDS) have acknowledged: which trust bundle, and which CA certificate
// of it their own leaf chains to. A certificate rotation waits on these
// counts.
type Trust map[string]MeshTrust

// MeshTrust is the trust report of one mesh.
type MeshTrust struct {
	// Proxies is the number of connected proxies holding secrets they
	// acknowledged.
	Proxies int32 `json:"proxies"`
	// Bundles counts, by the SHA-256 of the trust bundle's PEM, the
	// proxies that acknowledged the current secrets of their group, which
	// carry that bundle.
	Bundles map[string]int32 `json:"bundles,omitempty"`
	// LeafRoots counts, by the SHA-256 fingerprint of the bundle's CA
	// certificate their leaf chains to, the same proxies.
	LeafRoots map[string]int32 `json:"leafRoots,omitempty"`
}

// MaxTrustKeys bounds the bundles and leaf roots a Lease reports per mesh:
// the most counted are kept. A rotation has two.
const MaxTrustKeys = 8

// Add adds o into t.
func (t Trust) Add(o Trust) {
	for mesh, on := range o {
		n := t[mesh]
		n.Proxies += on.Proxies
		n.Bundles = addCounts(n.Bundles, on.Bundles)
		n.LeafRoots = addCounts(n.LeafRoots, on.LeafRoots)
		t[mesh] = n
	}
}

func addCounts(into, from map[string]int32) map[string]int32 {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		into = map[string]int32{}
	}
	for k, v := range from {
		into[k] += v
	}
	return into
}

// bounded is t as a Lease carries it: at most MaxTrustKeys of each map per
// mesh, the most counted.
func (t Trust) bounded() Trust {
	out := make(Trust, len(t))
	for mesh, n := range t {
		out[mesh] = MeshTrust{Proxies: n.Proxies, Bundles: mostCounted(n.Bundles), LeafRoots: mostCounted(n.LeafRoots)}
	}
	return out
}

func mostCounted(m map[string]int32) map[string]int32 {
	if len(m) <= MaxTrustKeys {
		return m
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	out := make(map[string]int32, MaxTrustKeys)
	for _, k := range keys[:MaxTrustKeys] {
		out[k] = m[k]
	}
	return out
}

// VMConnection is a MeshVM's proxy holding an xDS stream.
type VMConnection struct {
	// Version is the proxy's user agent and its version.
	Version string `json:"version,omitempty"`
	// Since is when its first stream opened.
	Since metav1.Time `json:"since"`
	// Replica holds the stream: the Lease's holder (not in the annotation).
	Replica string `json:"-"`
}

// VMs are the MeshVM proxies connected, by "<namespace>/<meshvm>".
type VMs map[string]VMConnection

// VMKey is a MeshVM's key in VMs.
func VMKey(namespace, name string) string { return namespace + "/" + name }

// merge adds o, of replica, into v: a proxy on two replicas (it moved, and
// the old stream has not closed yet) is the one that connected last.
func (v VMs) merge(o VMs, replica string) {
	for k, c := range o {
		c.Replica = replica
		if had, ok := v[k]; !ok || had.Since.Before(&c.Since) {
			v[k] = c
		}
	}
}

// Decode reads a Lease's report but its groups (DecodeGroups), which only
// the Enforced condition and explain read. A Lease without an annotation
// counts no sidecars or no failures.
func Decode(l *coordinationv1.Lease) (Report, error) {
	r := Report{Counts: Counts{}, Failing: Failing{}, VMs: VMs{}, Trust: Trust{}}
	for key, into := range map[string]any{CountsAnnotation: &r.Counts, FailingAnnotation: &r.Failing, VMsAnnotation: &r.VMs, TrustAnnotation: &r.Trust} {
		if err := decodeAnnotation(l, key, into); err != nil {
			return Report{}, err
		}
	}
	return r, nil
}

// DecodeGroups reads a Lease's groups, and whether it left some out.
func DecodeGroups(l *coordinationv1.Lease) (Groups, bool, error) {
	var gr groupReport
	if err := decodeAnnotation(l, GroupsAnnotation, &gr); err != nil {
		return nil, false, err
	}
	if gr.Groups == nil {
		gr.Groups = Groups{}
	}
	gr.Groups.withRejections(gr.Rejections)
	return gr.Groups, gr.Truncated, nil
}

func decodeAnnotation(l *coordinationv1.Lease, key string, into any) error {
	raw, ok := l.Annotations[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal([]byte(raw), into); err != nil {
		return fmt.Errorf("lease %s/%s: annotation %s: %w", l.Namespace, l.Name, key, err)
	}
	return nil
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
	// Failing are the proxy groups some replica failed to translate.
	Failing Failing
	// VMs are the MeshVM proxies connected to some replica.
	VMs VMs
	// Trust is what the connected proxies acknowledged of their
	// certificates.
	Trust Trust
	// Groups is what the connected proxies run, per group (ReadWithGroups
	// only); Truncated says that some replica left groups out.
	Groups    Groups
	Truncated bool
	// Replicas is the number of live Leases.
	Replicas int
	// AsOf is the oldest renewal of a live Lease: the census says nothing
	// of what happened after it. Zero without a live Lease.
	AsOf time.Time
	// Expired are the Leases that no longer count.
	Expired []coordinationv1.Lease
	// Invalid are the Leases whose counts could not be read.
	Invalid []error
}

// Read sums the live Leases of namespace at time now, but their groups.
func Read(ctx context.Context, r client.Reader, namespace string, now time.Time) (Census, error) {
	return read(ctx, r, namespace, now, false)
}

// ReadWithGroups is Read with the groups.
func ReadWithGroups(ctx context.Context, r client.Reader, namespace string, now time.Time) (Census, error) {
	return read(ctx, r, namespace, now, true)
}

func read(ctx context.Context, r client.Reader, namespace string, now time.Time, groups bool) (Census, error) {
	var leases coordinationv1.LeaseList
	if err := r.List(ctx, &leases, client.InNamespace(namespace), client.MatchingLabels{ComponentLabel: Component}); err != nil {
		return Census{}, fmt.Errorf("listing xDS replica Leases: %w", err)
	}
	out := Census{Counts: Counts{}, Failing: Failing{}, VMs: VMs{}, Trust: Trust{}, Groups: Groups{}}
	for _, l := range leases.Items {
		if !Expiry(&l).After(now) {
			out.Expired = append(out.Expired, l)
			continue
		}
		r, err := Decode(&l)
		if err == nil && groups {
			r.Groups, r.Truncated, err = DecodeGroups(&l)
		}
		if err != nil {
			out.Invalid = append(out.Invalid, err)
			continue
		}
		out.Replicas++
		if renewed := l.Spec.RenewTime.Time; out.AsOf.IsZero() || renewed.Before(out.AsOf) {
			out.AsOf = renewed
		}
		out.Counts.Add(r.Counts)
		out.Failing.Merge(r.Failing)
		out.VMs.merge(r.VMs, ptr.Deref(l.Spec.HolderIdentity, l.Name))
		out.Trust.Add(r.Trust)
		out.Groups.Add(r.Groups)
		out.Truncated = out.Truncated || r.Truncated
	}
	return out, nil
}
