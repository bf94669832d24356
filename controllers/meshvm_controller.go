package controllers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=list;watch;create
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshvms/finalizers;meshinstances/finalizers,verbs=update
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch;create;patch;delete

// vmFinalizer lets the operator delete what garbage collection would leave.
const vmFinalizer = "mesh.openservicemesh.io/vm"

// EndpointSliceManager is the managed-by value of the EndpointSlices the
// operator writes for VMs.
const EndpointSliceManager = "osm-operator"

// MeshVMReconciler puts a virtual machine into a mesh: its identity
// certificate, a bootstrap Secret for its proxy, and EndpointSlices that make
// its addresses backends of the Services it serves.
type MeshVMReconciler struct {
	client.Client
	// Recorder records Events on transitions; nil records none.
	Recorder events.EventRecorder
	// Namespace is the operator's; the default xDS address names its Service.
	Namespace string
}

// Reconcile implements reconcile.Reconciler.
func (r *MeshVMReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vm := &meshv1alpha1.MeshVM{}
	if err := r.Get(ctx, req.NamespacedName, vm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !vm.DeletionTimestamp.IsZero() {
		// Owned objects are garbage-collected; the identity Certificate may
		// serve a MeshMember's pods too, and its Secret has no owner, so
		// they are released here.
		if !controllerutil.ContainsFinalizer(vm, vmFinalizer) {
			return ctrl.Result{}, nil
		}
		if err := releaseCertificates(ctx, r.Client, vm, vm.Namespace); err != nil {
			return ctrl.Result{}, err
		}
		controllerutil.RemoveFinalizer(vm, vmFinalizer)
		return ctrl.Result{}, r.Update(ctx, vm)
	}
	if !controllerutil.ContainsFinalizer(vm, vmFinalizer) {
		controllerutil.AddFinalizer(vm, vmFinalizer)
		return ctrl.Result{}, r.Update(ctx, vm)
	}
	before := vm.DeepCopy()
	o, err := r.reconcileVM(ctx, vm)
	if err == nil {
		return reportStatus(ctx, r.Client, r.Recorder, vm, before, o)
	}
	return ctrl.Result{}, reportFailedWrite(ctx, r.Client, r.Recorder, vm, before, err)
}

func (r *MeshVMReconciler) reconcileVM(ctx context.Context, vm *meshv1alpha1.MeshVM) (outcome, error) {
	addrs, addressed, err := r.acceptAddresses(ctx, vm)
	if err != nil {
		return outcome{}, err
	}
	mi, o, err := getMesh(ctx, r.Client, vm.Spec.Mesh)
	if mi == nil {
		return o, err
	}
	if err := r.ensureServiceAccount(ctx, vm); err != nil {
		return outcome{}, err
	}
	secret, o, err := r.ensureIdentity(ctx, mi, vm)
	if err != nil || !o.ready() {
		return o, err
	}
	if o, err := r.ensureBootstrap(ctx, mi, vm, secret); err != nil || !o.ready() {
		return o, err
	}
	c, err := readCensus(ctx, r.Client, r.Namespace)
	if err != nil {
		return outcome{}, err
	}
	recordProxy(vm, c.VMs, metav1.Now())
	served, err := r.ensureEndpointSlices(ctx, vm, addrs)
	if err != nil {
		return outcome{}, err
	}
	if !addressed.ready() {
		return addressed, nil
	}
	if !served.ready() {
		return served, nil
	}
	config := groupConfig(&vm.Status.Conditions, vm.Generation, c.Failing, mesh.VMGroup(vm))
	connected := proxyConnected(vm)
	if !config.ready() {
		return config, nil
	}
	return connected, nil
}

// recordProxy sets status.proxy from the census: connected while a replica
// reports the VM's proxy (since its stream opened), disconnected since now
// once none does, which includes the replica holding it dying (its Lease
// expires). A VM no proxy has connected to has none. The xDS server only
// reports connections; this is the one place that writes them.
func recordProxy(vm *meshv1alpha1.MeshVM, vms census.VMs, now metav1.Time) {
	if c, ok := vms[census.VMKey(vm.Namespace, vm.Name)]; ok {
		vm.Status.Proxy = &meshv1alpha1.ProxyStatus{Connected: true, LastSeen: ptr.To(c.Since), Version: c.Version, Replica: c.Replica}
		return
	}
	if p := vm.Status.Proxy; p != nil && p.Connected {
		vm.Status.Proxy = &meshv1alpha1.ProxyStatus{LastSeen: &now, Version: p.Version, Replica: p.Replica}
	}
}

// proxyConnected sets ProxyConnected from status.proxy (recordProxy); the
// VM is Ready only while connected.
func proxyConnected(vm *meshv1alpha1.MeshVM) outcome {
	p := vm.Status.Proxy
	switch {
	case p != nil && p.Connected:
		setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionProxyConnected, metav1.ConditionTrue, "Connected",
			fmt.Sprintf("proxy %s connected to %s", p.Version, p.Replica))
		return outcome{}
	case p != nil:
		msg := "the VM's proxy disconnected"
		if p.LastSeen != nil {
			msg += " at " + p.LastSeen.UTC().Format(time.RFC3339)
		}
		setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionProxyConnected, metav1.ConditionFalse, "Disconnected", msg)
		return outcome{reason: "ProxyDisconnected", message: msg}
	default:
		start := "start Envoy on the VM"
		if vm.Proxyless() {
			start = fmt.Sprintf("start the application on the VM with GRPC_XDS_BOOTSTRAP=%s/%s", VMConfigDir, GRPCBootstrapKey)
		}
		msg := fmt.Sprintf("no proxy has connected yet: run `osm-operator vm bootstrap %s -n %s` and %s", vm.Name, vm.Namespace, start)
		setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionProxyConnected, metav1.ConditionFalse, "NotConnected", msg)
		return outcome{reason: "AwaitingProxy", message: msg}
	}
}

// ensureServiceAccount creates the VM's service account when it is missing;
// one that exists (pods may share it) is left as it is.
func (r *MeshVMReconciler) ensureServiceAccount(ctx context.Context, vm *meshv1alpha1.MeshVM) error {
	sa := &corev1.ServiceAccount{}
	err := r.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: vm.Spec.ServiceAccountName}, sa)
	if !apierrors.IsNotFound(err) {
		return err
	}
	sa = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: vm.Spec.ServiceAccountName, Namespace: vm.Namespace, Labels: map[string]string{managedByLabel: managedBy},
	}}
	if err := controllerutil.SetOwnerReference(vm, sa, r.Scheme()); err != nil {
		return err
	}
	if err := r.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return failedWrite(fmt.Errorf("creating ServiceAccount %s: %w", sa.Name, err))
	}
	return nil
}

// ensureIdentity makes sure the identity Certificate of the VM's service
// account exists (a MeshMember of the namespace may own it already) and
// returns its Secret once issued.
func (r *MeshVMReconciler) ensureIdentity(ctx context.Context, mi *meshv1alpha1.MeshInstance, vm *meshv1alpha1.MeshVM) (*corev1.Secret, outcome, error) {
	id := mesh.Identity{Namespace: vm.Namespace, ServiceAccount: vm.Spec.ServiceAccountName}
	want, err := identityCertificate(mi, id)
	if err != nil {
		return nil, outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: err.Error(), stalled: true}, nil
	}
	cert := &cmapi.Certificate{}
	err = r.Get(ctx, client.ObjectKeyFromObject(want), cert)
	if apierrors.IsNotFound(err) {
		cert = want
		if err := controllerutil.SetOwnerReference(vm, cert, r.Scheme()); err != nil {
			return nil, outcome{}, err
		}
		if err := r.Create(ctx, cert); err != nil {
			return nil, outcome{}, failedWrite(fmt.Errorf("creating Certificate %s: %w", cert.Name, err))
		}
	} else if err != nil {
		return nil, outcome{}, fmt.Errorf("reading Certificate %s: %w", want.Name, err)
	} else if !isOwnedBy(cert, vm) {
		// Shared with a MeshMember of the namespace: co-own it, so that the
		// member leaving does not take the VM's identity with it.
		before := cert.DeepCopy()
		if err := controllerutil.SetOwnerReference(vm, cert, r.Scheme()); err != nil {
			return nil, outcome{}, err
		}
		if err := r.Patch(ctx, cert, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return nil, outcome{}, failedWrite(fmt.Errorf("co-owning Certificate %s: %w", cert.Name, err))
		}
	}
	ok, msg := certificateReady(cert)
	status := metav1.ConditionTrue
	reason, message := meshv1alpha1.ReasonSucceeded, "identity certificate issued"
	if !ok {
		status, reason, message = metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "identity certificate: "+msg
	}
	setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionCertificateReady, status, reason, message)
	if !ok {
		return nil, outcome{reason: reason, message: message}, nil
	}
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: cert.Spec.SecretName}, secret); err != nil {
		return nil, outcome{}, fmt.Errorf("reading identity Secret %s: %w", cert.Spec.SecretName, err)
	}
	vm.Status.Certificate = &meshv1alpha1.CertificateStatus{SecretName: secret.Name, Identity: id.SPIFFE(mi.EffectiveTrustDomain())}
	if block, _ := pem.Decode(secret.Data[CertKey]); block != nil {
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			vm.Status.Certificate.NotAfter = ptr.To(metav1.NewTime(c.NotAfter))
		}
	}
	return secret, outcome{}, nil
}

// ensureBootstrap writes the Secret a VM admin copies to the VM: the proxy's
// bootstrap (vmBootstrapFiles), the identity's certificate and key, and the
// mesh's trust bundle (the roots the VM trusts: the mesh's, not the ca.crt
// of the identity Secret, which a namespace's user may write and an issuer
// may leave empty). It follows certificate renewals and bundle changes.
func (r *MeshVMReconciler) ensureBootstrap(ctx context.Context, mi *meshv1alpha1.MeshInstance, vm *meshv1alpha1.MeshVM, identity *corev1.Secret) (outcome, error) {
	name := fitName(vm.Name + "-bootstrap")
	if meshv1alpha1.IsIdentitySecretName(name) {
		// It would be (or become) the identity Secret of another service
		// account: the VM's key in it, and the VM its owner.
		msg := fmt.Sprintf("the bootstrap Secret %s would be the identity Secret of a service account; a MeshVM's name may not start with %q or %q: rename it",
			name, meshv1alpha1.IdentitySecretPrefix, meshv1alpha1.IdentitySecretHashedPrefix)
		setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionBootstrapReady, metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, msg)
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: msg, stalled: true}, nil
	}
	boot, err := vmBootstrapFiles(mi, vm, r.Namespace)
	if err != nil {
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: err.Error(), stalled: true}, nil
	}
	bundle := &corev1.Secret{}
	key := client.ObjectKey{Namespace: r.Namespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}
	if err := r.Get(ctx, key, bundle); client.IgnoreNotFound(err) != nil {
		return outcome{}, fmt.Errorf("reading the mesh's trust bundle %s: %w", key, err)
	}
	if len(bundle.Data[meshv1alpha1.TrustBundleKey]) == 0 {
		msg := fmt.Sprintf("waiting for mesh %s's trust bundle (Secret %s; see the MeshInstance's %s condition)", mi.Name, key, meshv1alpha1.ConditionTrustBundleKnown)
		setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionBootstrapReady, metav1.ConditionFalse, meshv1alpha1.ReasonTrustBundleUnknown, msg)
		return outcome{reason: meshv1alpha1.ReasonTrustBundleUnknown, message: msg}, nil
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: vm.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, r.Client, s, func() error {
		s.Labels = MeshObjectLabels(mi.Name)
		s.Data = map[string][]byte{
			CertKey: identity.Data[CertKey],
			KeyKey:  identity.Data[KeyKey],
			CAKey:   bundle.Data[meshv1alpha1.TrustBundleKey],
		}
		maps.Copy(s.Data, boot)
		return controllerutil.SetControllerReference(vm, s, r.Scheme())
	}); err != nil {
		err = failedWrite(fmt.Errorf("writing bootstrap Secret %s: %w", s.Name, err))
		if o, failed := writeOutcome(err); failed {
			setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionBootstrapReady, metav1.ConditionFalse, o.reason, o.message)
		}
		return outcome{}, err
	}
	vm.Status.BootstrapSecretName = s.Name
	setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionBootstrapReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded,
		fmt.Sprintf("copy it to %s on the VM: kubectl get secret %s -n %s", VMConfigDir, s.Name, vm.Namespace))
	return outcome{}, nil
}

// acceptAddresses returns the VM's addresses that may be published, and sets
// AddressesAccepted. mesh.CheckVMAddress refuses the addresses no VM may have
// (the CRD and the webhook refuse them too, but the webhook's failure policy
// lets objects by while the operator is down, and an older CRD has no rule)
// and those that are the IP of a pod of the cluster, which admission cannot
// check race-free: a pod may take the address after. An address of an unsafe
// class stalls until the spec changes. A pod's address waits: the VM is
// looked at again every waitRequeue, and its address is published once the
// pod is gone. The controller does not watch pods, so a pod taking the
// address of a published VM is found at the VM's next reconcile; the mesh
// model (mesh.Build) leaves that endpoint out at once.
func (r *MeshVMReconciler) acceptAddresses(ctx context.Context, vm *meshv1alpha1.MeshVM) ([]string, outcome, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return nil, outcome{}, fmt.Errorf("listing pods: %w", err)
	}
	ips := mesh.PodIPs{}
	for i := range pods.Items {
		ips.Add(&pods.Items[i])
	}
	var accepted, conflicts, unsafe []string
	for _, a := range vm.Spec.Addresses {
		var refused *mesh.VMAddressError
		switch err := mesh.CheckVMAddress(a, ips); {
		case err == nil:
			accepted = append(accepted, a)
		case errors.As(err, &refused) && refused.Pod != "":
			conflicts = append(conflicts, err.Error())
		default:
			unsafe = append(unsafe, err.Error())
		}
	}
	var o outcome
	switch {
	case len(unsafe) > 0:
		o = outcome{reason: meshv1alpha1.ReasonUnsafeAddress, stalled: true}
	case len(conflicts) > 0:
		o = outcome{reason: meshv1alpha1.ReasonAddressConflict}
	}
	if o.ready() {
		setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionAddressesAccepted, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded,
			"every address is accepted")
		return accepted, o, nil
	}
	o.message = "addresses left out of the VM's EndpointSlices: " + strings.Join(append(unsafe, conflicts...), "; ")
	setCondition(&vm.Status.Conditions, vm.Generation, meshv1alpha1.ConditionAddressesAccepted, metav1.ConditionFalse, o.reason, o.message)
	return accepted, o, nil
}

// ensureEndpointSlices publishes addrs, the VM's accepted addresses, as
// endpoints of each Service it backs, one slice per Service and address
// family. A VM endpoint is ready while its proxy is connected; before any
// proxy has connected, it is ready once its identity and bootstrap are (so
// that a VM whose proxy is starting is not kept out), and it stops being
// ready when the proxy leaves.
func (r *MeshVMReconciler) ensureEndpointSlices(ctx context.Context, vm *meshv1alpha1.MeshVM, addrs []string) (outcome, error) {
	var missing []string
	want := map[string]bool{}
	for _, name := range vm.Spec.Services {
		svc := &corev1.Service{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: name}, svc); apierrors.IsNotFound(err) {
			missing = append(missing, name)
			continue
		} else if err != nil {
			return outcome{}, fmt.Errorf("reading Service %s: %w", name, err)
		}
		ports := vmSlicePorts(svc, vm)
		ready := vm.Status.Proxy == nil || vm.Status.Proxy.Connected
		for family, addrs := range byFamily(addrs) {
			es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: fitName(fmt.Sprintf("%s-%s-%s", vm.Name, name, strings.ToLower(family))), Namespace: vm.Namespace}}
			want[es.Name] = true
			if _, err := controllerutil.CreateOrPatch(ctx, r.Client, es, func() error {
				es.Labels = map[string]string{
					discoveryv1.LabelServiceName: name,
					discoveryv1.LabelManagedBy:   EndpointSliceManager,
					managedByLabel:               managedBy,
				}
				es.AddressType = discoveryv1.AddressType(family)
				es.Ports = ports
				es.Endpoints = []discoveryv1.Endpoint{{
					Addresses:  addrs,
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
					TargetRef:  &corev1.ObjectReference{Kind: "MeshVM", APIVersion: meshv1alpha1.GroupVersion.String(), Name: vm.Name, Namespace: vm.Namespace, UID: vm.UID},
				}}
				return controllerutil.SetControllerReference(vm, es, r.Scheme())
			}); err != nil {
				return outcome{}, failedWrite(fmt.Errorf("writing EndpointSlice %s for Service %s: %w", es.Name, name, err))
			}
		}
	}
	// Slices of Services the VM no longer backs go.
	var owned discoveryv1.EndpointSliceList
	if err := r.List(ctx, &owned, client.InNamespace(vm.Namespace), client.MatchingLabels{discoveryv1.LabelManagedBy: EndpointSliceManager}); err != nil {
		return outcome{}, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	for i := range owned.Items {
		es := &owned.Items[i]
		if metav1.IsControlledBy(es, vm) && !want[es.Name] {
			if err := r.Delete(ctx, es); client.IgnoreNotFound(err) != nil {
				return outcome{}, failedWrite(fmt.Errorf("deleting EndpointSlice %s: %w", es.Name, err))
			}
		}
	}
	if len(missing) > 0 {
		return outcome{reason: "ServiceNotFound", message: fmt.Sprintf("the VM backs Services that do not exist: %v", missing)}, nil
	}
	return outcome{}, nil
}

// byFamily splits addresses by EndpointSlice address type.
func byFamily(addrs []string) map[string][]string {
	out := map[string][]string{}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue // the API server validates addresses; nothing else is expected
		}
		family := string(discoveryv1.AddressTypeIPv4)
		if ip.Is6() && !ip.Is4In6() {
			family = string(discoveryv1.AddressTypeIPv6)
		}
		out[family] = append(out[family], ip.String())
	}
	return out
}

// vmSlicePorts maps each Service port to the VM port its targetPort names (by
// name or number); ports the VM does not serve are left out.
func vmSlicePorts(svc *corev1.Service, vm *meshv1alpha1.MeshVM) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		for _, vp := range vm.Spec.Ports {
			match := sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal == vp.Name ||
				sp.TargetPort.Type == intstr.Int && (sp.TargetPort.IntVal == vp.Port || sp.TargetPort.IntVal == 0 && sp.Port == vp.Port)
			if match {
				out = append(out, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(vp.Port), Protocol: ptr.To(corev1.ProtocolTCP), AppProtocol: sp.AppProtocol})
				break
			}
		}
	}
	return out
}
