// Package simnode runs pods without a kubelet, for `make demo`: it registers
// a Node, binds pending pods to it (a one-node scheduler) and reports them
// running and ready with an address of their own, so that the real
// controllers (ReplicaSets, EndpointSlices) and the operator see them as on
// a cluster. Nothing is executed.
package simnode

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Node is the simulated node's name.
const Node = "osm-demo-node"

// Start registers the node and runs the simulated kubelet until ctx ends.
// Pod addresses are taken from podCIDR.
func Start(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, podCIDR string, log logr.Logger) error {
	prefix, err := netip.ParsePrefix(podCIDR)
	if err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, Logger: log})
	if err != nil {
		return err
	}
	k := &kubelet{Client: mgr.GetClient(), next: prefix.Addr().Next(), prefix: prefix, ips: map[string]string{}}
	if err := k.registerNode(ctx, cfg); err != nil {
		return err
	}
	if err := ctrl.NewControllerManagedBy(mgr).For(&corev1.Pod{}).Named("simnode").Complete(k); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			log.Error(err, "The simulated node stopped")
		}
	}()
	return nil
}

type kubelet struct {
	client.Client
	mu     sync.Mutex
	next   netip.Addr
	prefix netip.Prefix
	ips    map[string]string // pod UID → IP
}

func (k *kubelet) registerNode(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: Node, Labels: map[string]string{"kubernetes.io/hostname": Node, "type": "simulated"}}}
	if err := c.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("registering node %s: %w", Node, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("128Gi"), corev1.ResourcePods: resource.MustParse("500"),
	}
	now := metav1.Now()
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated", LastHeartbeatTime: now, LastTransitionTime: now}},
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeHostName, Address: Node}},
		NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "simulated", OperatingSystem: "linux", Architecture: "amd64"},
	}
	if err := c.Status().Update(ctx, n); err != nil {
		return fmt.Errorf("reporting node %s ready: %w", Node, err)
	}
	return nil
}

// Reconcile binds a pending pod to the node, then reports it running.
func (k *kubelet) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := k.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	switch {
	case !pod.DeletionTimestamp.IsZero():
		// Nothing runs, so nothing needs stopping: let the pod go.
		return ctrl.Result{}, client.IgnoreNotFound(k.Delete(ctx, pod, client.GracePeriodSeconds(0)))
	case pod.Spec.NodeName == "":
		b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}, Target: corev1.ObjectReference{Kind: "Node", Name: Node}}
		return ctrl.Result{}, client.IgnoreNotFound(k.SubResource("binding").Create(ctx, pod, b))
	case pod.Spec.NodeName != Node || pod.Status.Phase == corev1.PodRunning:
		return ctrl.Result{}, nil
	}
	ip, err := k.ip(pod)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := metav1.Now()
	running := func(c corev1.Container) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
	}
	pod.Status.Phase, pod.Status.PodIP, pod.Status.HostIP, pod.Status.StartTime = corev1.PodRunning, ip, "10.0.0.1", &now
	pod.Status.PodIPs, pod.Status.HostIPs = []corev1.PodIP{{IP: ip}}, []corev1.HostIP{{IP: "10.0.0.1"}}
	pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses = nil, nil
	for _, c := range pod.Spec.InitContainers {
		s := running(c)
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			s.Ready, s.State = true, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}
		}
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, s)
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, running(c))
	}
	pod.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	if err := k.Status().Update(ctx, pod); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

func (k *kubelet) ip(pod *corev1.Pod) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ip, ok := k.ips[string(pod.UID)]; ok {
		return ip, nil
	}
	if !k.prefix.Contains(k.next) {
		return "", fmt.Errorf("the pod CIDR %s is exhausted", k.prefix)
	}
	ip := k.next.String()
	k.ips[string(pod.UID)] = ip
	k.next = k.next.Next()
	return ip, nil
}
