package census

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1ac "k8s.io/client-go/applyconfigurations/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Options configure a Publisher.
type Options struct {
	Client    client.Client
	Namespace string
	// Replica names this replica (its pod); the Lease is LeasePrefix+Replica.
	Replica string
	// Prepare, when set, is called before each report is made from Count,
	// Failing, Trust and Groups: they can then share what it reads once
	// (the server's proxies) instead of each reading it.
	Prepare func()
	// Count returns this replica's connected sidecars per namespace.
	Count func() Counts
	// Failing returns the proxy groups this replica failed to translate;
	// nil reports none.
	Failing func() Failing
	// Trust returns what this replica's proxies acknowledged of their
	// certificates; nil reports nothing.
	Trust func() Trust
	// Groups returns what this replica's proxies run, per group; nil
	// reports nothing.
	Groups func() Groups
	// Renew is how often the Lease is renewed; it lives three times as
	// long. Zero means 10 s.
	Renew time.Duration
	// Settle gathers a burst of connections into one write. Zero means 1 s.
	Settle time.Duration
	// FieldManager applies the Lease.
	FieldManager string
	Log          logr.Logger
}

// Publisher keeps this replica's Lease: its counts and failing groups,
// renewed every Renew, and rewritten soon after proxies connect or
// disconnect or the failing groups change. It is a
// controller-runtime Runnable for every replica.
type Publisher struct {
	Options
	changed chan struct{}

	mu  sync.Mutex
	vms VMs // the MeshVM proxies connected to this replica
}

// NewPublisher returns a publisher; Start runs it.
func NewPublisher(o Options) *Publisher {
	if o.Renew == 0 {
		o.Renew = 10 * time.Second
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	return &Publisher{Options: o, changed: make(chan struct{}, 1), vms: VMs{}}
}

// NeedLeaderElection is false: every replica publishes its own counts.
func (p *Publisher) NeedLeaderElection() bool { return false }

// Connected and Disconnected make the publisher an xDS server's connection
// observer: it publishes the MeshVM proxies connected, which the MeshVM
// controller writes into their status (the xDS server writes nothing).
func (p *Publisher) Connected(node *corev3.Node) {
	if ns, name, ok := vmOf(node.GetId()); ok {
		version := node.GetUserAgentName()
		if v := node.GetUserAgentVersion(); v != "" {
			version += "/" + v
		}
		p.mu.Lock()
		p.vms[VMKey(ns, name)] = VMConnection{Version: version, Since: metav1.Now()}
		p.mu.Unlock()
	}
	p.Changed()
}

// Disconnected: see Connected.
func (p *Publisher) Disconnected(nodeID string) {
	if ns, name, ok := vmOf(nodeID); ok {
		p.mu.Lock()
		delete(p.vms, VMKey(ns, name))
		p.mu.Unlock()
	}
	p.Changed()
}

// vmOf is the MeshVM a node ID names, if it names one.
func vmOf(nodeID string) (namespace, name string, ok bool) {
	kind, namespace, name, err := mesh.ParseNodeID(nodeID)
	return namespace, name, err == nil && kind == mesh.NodeKindVM
}

func (p *Publisher) connectedVMs() VMs {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.vms)
}

// Changed tells the publisher that its counts may have changed. It never
// blocks.
func (p *Publisher) Changed() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Start publishes until ctx ends, then deletes the Lease so that the
// replica's proxies stop counting at once.
func (p *Publisher) Start(ctx context.Context) error {
	renew := time.NewTicker(p.Renew)
	defer renew.Stop()
	var last Counts
	var lastReport []byte
	// publish applies the report; one that says what the last said waits
	// for the renewal (proxies ACKing a version their group already held
	// change nothing).
	publish := func(renewal bool) {
		if p.Prepare != nil {
			p.Prepare()
		}
		r := Report{Counts: p.Count(), VMs: p.connectedVMs()}
		if p.Failing != nil {
			r.Failing = p.Failing().bounded()
		}
		if p.Trust != nil {
			r.Trust = p.Trust().bounded()
		}
		if p.Groups != nil {
			r.Groups = p.Groups()
		}
		annotations, err := r.annotations()
		if err != nil {
			p.Log.Error(err, "Failed to encode the replica's census", "lease", LeasePrefix+p.Replica)
			return
		}
		raw, _ := json.Marshal(annotations)
		if !renewal && bytes.Equal(raw, lastReport) {
			return
		}
		if err := p.apply(ctx, annotations); err != nil {
			p.Log.Error(err, "Failed to publish the replica's census", "lease", LeasePrefix+p.Replica)
			return
		}
		lastReport = raw
		if !maps.Equal(r.Counts, last) {
			p.Log.V(1).Info("Published connected sidecars", "total", r.Counts.Total(nil))
		}
		last = r.Counts
	}
	publish(true)
	for {
		select {
		case <-ctx.Done():
			return p.delete()
		case <-renew.C:
			publish(true)
		case <-p.changed:
			select {
			case <-time.After(p.Settle):
			case <-ctx.Done():
				return p.delete()
			}
			publish(false)
		}
	}
}

// annotations are the Lease's annotations that say r.
func (r Report) annotations() (map[string]string, error) {
	raw, err := json.Marshal(r.Counts)
	if err != nil {
		return nil, fmt.Errorf("encoding counts: %w", err)
	}
	annotations := map[string]string{CountsAnnotation: string(raw)}
	for _, a := range []struct {
		key string
		n   int
		v   any
	}{{VMsAnnotation, len(r.VMs), r.VMs}, {TrustAnnotation, len(r.Trust), r.Trust}, {FailingAnnotation, len(r.Failing), r.Failing}} {
		if a.n == 0 {
			continue
		}
		key := a.key
		raw, err := json.Marshal(a.v)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", key, err)
		}
		annotations[key] = string(raw)
	}
	if len(r.Groups) > 0 {
		var gr groupReport
		gr.Groups, gr.Rejections, gr.Truncated = r.Groups.bounded()
		raw, err := json.Marshal(gr)
		if err != nil {
			return nil, fmt.Errorf("encoding proxy groups: %w", err)
		}
		annotations[GroupsAnnotation] = string(raw)
	}
	return annotations, nil
}

func (p *Publisher) apply(ctx context.Context, annotations map[string]string) error {
	duration := int32(3 * p.Renew / time.Second)
	now := metav1.NewMicroTime(time.Now())
	l := coordinationv1ac.Lease(LeasePrefix+p.Replica, p.Namespace).
		WithLabels(map[string]string{ComponentLabel: Component, "app.kubernetes.io/managed-by": "osm-operator"}).
		WithAnnotations(annotations).
		WithSpec(coordinationv1ac.LeaseSpec().
			WithHolderIdentity(p.Replica).
			WithLeaseDurationSeconds(max(duration, 1)).
			WithRenewTime(now))
	if err := p.Client.Apply(ctx, l, client.FieldOwner(p.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying Lease %s/%s: %w", p.Namespace, LeasePrefix+p.Replica, err)
	}
	return nil
}

func (p *Publisher) delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: LeasePrefix + p.Replica}}
	if err := client.IgnoreNotFound(p.Client.Delete(ctx, l)); err != nil {
		// The Lease expires on its own; readers stop counting it then.
		p.Log.Error(err, "Failed to delete the replica's Lease on the way out", "lease", l.Name)
	}
	return nil
}
