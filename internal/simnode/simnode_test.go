package simnode_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/open-service-mesh/osm-operator/internal/simnode"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestPodsRun: against a real API server, the simulated node binds a new pod
// to itself, reports it running and ready with an address of its own (init
// containers done, native sidecars running), and lets a deleted pod go.
func TestPodsRun(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := simnode.Start(ctx, env.Config, env.Scheme, "10.244.0.0/30", logr.Discard()); err != nil {
		t.Fatal(err)
	}
	k := env.Client
	node := &corev1.Node{}
	if err := k.Get(ctx, client.ObjectKey{Name: simnode.Node}, node); err != nil || node.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Fatalf("node %s: %v %+v", simnode.Node, err, node.Status.Conditions)
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{
				{Name: "setup", Image: "setup"},
				{Name: "proxy", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
			},
			Containers: []corev1.Container{{Name: "app", Image: "app"}},
		}}
	}
	ips := map[string]bool{}
	for _, name := range []string{"a", "b", "c"} {
		p := pod(name)
		if err := k.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := k.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
				return err
			}
			if p.Spec.NodeName != simnode.Node || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return fmt.Errorf("pod %s: node %q, phase %s, IP %q", name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
			}
			return nil
		})
		ips[p.Status.PodIP] = true
		if s := p.Status.InitContainerStatuses; len(s) != 2 || s[0].State.Terminated == nil || s[1].State.Running == nil {
			t.Errorf("pod %s init containers: %+v", name, s)
		}
	}
	if len(ips) != 3 {
		t.Errorf("the pods share an address: %v", ips)
	}
	// A /30 has three addresses after the network's: a fourth pod waits.
	c := pod("d")
	if err := k.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := k.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil || c.Status.Phase == corev1.PodRunning {
		t.Errorf("a pod ran with the pod CIDR exhausted: %v %s %s", err, c.Status.Phase, c.Status.PodIP)
	}

	if err := k.Delete(ctx, pod("a")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k.Get(ctx, client.ObjectKey{Namespace: "default", Name: "a"}, &corev1.Pod{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the deleted pod is still there (%v)", err)
		}
		return nil
	})
}
