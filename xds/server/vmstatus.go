package server

import (
	"context"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// ConnectionObserver hears of proxies connecting (their first stream) and
// disconnecting (their last stream closed), on this replica.
type ConnectionObserver interface {
	Connected(node *corev3.Node)
	Disconnected(nodeID string)
}

// Observers tell each of their observers in turn.
type Observers []ConnectionObserver

// Connected implements ConnectionObserver.
func (o Observers) Connected(node *corev3.Node) {
	for _, x := range o {
		x.Connected(node)
	}
}

// Disconnected implements ConnectionObserver.
func (o Observers) Disconnected(nodeID string) {
	for _, x := range o {
		x.Disconnected(nodeID)
	}
}

// VMStatus records in a MeshVM's status.proxy whether its proxy holds an xDS
// stream. Only the replica holding a stream knows of it, so each replica
// writes for its own streams: a connect claims status.proxy, and a
// disconnect is written only by the replica that holds the claim, so a proxy
// that moved to another replica is never marked gone. Writes use optimistic
// locking. Pods are not recorded: they are many, and their readiness is the
// kubelet's.
type VMStatus struct {
	Client  client.Client
	Replica string
	Log     logr.Logger
}

// Connected implements ConnectionObserver.
func (v *VMStatus) Connected(node *corev3.Node) {
	version := node.GetUserAgentName()
	if bv := node.GetUserAgentVersion(); bv != "" {
		version += "/" + bv
	}
	v.update(node.GetId(), func(p *meshv1alpha1.ProxyStatus) bool {
		*p = meshv1alpha1.ProxyStatus{Connected: true, LastSeen: ptr.To(metav1.Now()), Version: version, Replica: v.Replica}
		return true
	})
}

// Disconnected implements ConnectionObserver.
func (v *VMStatus) Disconnected(nodeID string) {
	v.update(nodeID, func(p *meshv1alpha1.ProxyStatus) bool {
		if p.Replica != v.Replica || !p.Connected {
			return false // another replica holds the proxy now
		}
		p.Connected, p.LastSeen = false, ptr.To(metav1.Now())
		return true
	})
}

func (v *VMStatus) update(nodeID string, change func(*meshv1alpha1.ProxyStatus) bool) {
	kind, ns, name, err := ParseNodeID(nodeID)
	if err != nil || kind != NodeKindVM {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		vm := &meshv1alpha1.MeshVM{}
		if err := v.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, vm); err != nil {
			return client.IgnoreNotFound(err)
		}
		before := vm.DeepCopy()
		if vm.Status.Proxy == nil {
			vm.Status.Proxy = &meshv1alpha1.ProxyStatus{}
		}
		if !change(vm.Status.Proxy) {
			return nil
		}
		return v.Client.Status().Patch(ctx, vm, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		v.Log.Error(err, "Failed to record a VM proxy's connection", "node", nodeID)
	}
}
