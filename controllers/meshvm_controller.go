package controllers

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"

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
	f, err := r.gather(ctx, vm)
	if !reportable(err) {
		return ctrl.Result{}, err
	}
	f.failedWrite = err
	before := vm.DeepCopy()
	vm.Status = vmStatus(before, f)
	return reportFailedWrite(ctx, r.Client, r.Recorder, vm, before, err)
}

// gather makes the VM's objects (service account, identity Certificate,
// bootstrap Secret, EndpointSlices) and gathers what vmStatus needs. It
// stops at a failed write, returning it with the facts gathered so far.
func (r *MeshVMReconciler) gather(ctx context.Context, vm *meshv1alpha1.MeshVM) (vmFacts, error) {
	var f vmFacts
	var err error
	if f.addresses, err = r.checkAddresses(ctx, vm); err != nil {
		return f, err
	}
	if f.mesh, err = getMesh(ctx, r.Client, vm.Spec.Mesh); f.mesh == nil {
		return f, err
	}
	// Its identity is its namespace's service account's: it is issued, and
	// the VM served, only in the namespace's mesh.
	if f.elsewhere, err = mesh.ReadVMMeshConflict(ctx, r.Client, vm); err != nil || f.elsewhere != "" {
		return f, err
	}
	if err := r.ensureServiceAccount(ctx, vm); err != nil {
		return f, err
	}
	if f.identity, err = r.ensureIdentity(ctx, f.mesh, vm); err != nil || f.identity.secret == nil {
		return f, err
	}
	if f.bootstrap, err = r.ensureBootstrap(ctx, f.mesh, vm, f.identity.secret); err != nil || f.bootstrap.secret == "" {
		return f, err
	}
	c, err := readCensus(ctx, r.Client, r.Namespace)
	if err != nil {
		return f, err
	}
	f.census = &c
	f.proxy = vmProxy(vm.Status.Proxy, c.VMs, census.VMKey(vm.Namespace, vm.Name), metav1.Now())
	if f.missingServices, err = r.ensureEndpointSlices(ctx, vm, f.addresses.accepted, f.proxy); err != nil {
		return f, err
	}
	f.published = true
	return f, nil
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
// reads its Secret once issued. On a failed write it returns no identity.
func (r *MeshVMReconciler) ensureIdentity(ctx context.Context, mi *meshv1alpha1.MeshInstance, vm *meshv1alpha1.MeshVM) (*vmIdentity, error) {
	id := mesh.Identity{Namespace: vm.Namespace, ServiceAccount: vm.Spec.ServiceAccountName}
	want, err := identityCertificate(mi, id)
	if err != nil {
		return &vmIdentity{invalid: err.Error()}, nil
	}
	cert := &cmapi.Certificate{}
	err = r.Get(ctx, client.ObjectKeyFromObject(want), cert)
	if apierrors.IsNotFound(err) {
		cert = want
		if err := controllerutil.SetOwnerReference(vm, cert, r.Scheme()); err != nil {
			return nil, err
		}
		if err := r.Create(ctx, cert); err != nil {
			return nil, failedWrite(fmt.Errorf("creating Certificate %s: %w", cert.Name, err))
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading Certificate %s: %w", want.Name, err)
	} else if !isOwnedBy(cert, vm) {
		// Shared with a MeshMember of the namespace: co-own it, so that the
		// member leaving does not take the VM's identity with it.
		before := cert.DeepCopy()
		if err := controllerutil.SetOwnerReference(vm, cert, r.Scheme()); err != nil {
			return nil, err
		}
		if err := r.Patch(ctx, cert, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return nil, failedWrite(fmt.Errorf("co-owning Certificate %s: %w", cert.Name, err))
		}
	}
	out := &vmIdentity{cert: cert, spiffe: id.SPIFFE(mi.EffectiveTrustDomain())}
	if ok, _ := certificateReady(cert); !ok {
		return out, nil
	}
	out.secret = &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: cert.Spec.SecretName}, out.secret); err != nil {
		return nil, fmt.Errorf("reading identity Secret %s: %w", cert.Spec.SecretName, err)
	}
	return out, nil
}

// ensureBootstrap writes the Secret a VM admin copies to the VM: the proxy's
// bootstrap (vmBootstrapFiles), the identity's certificate and key, and the
// mesh's trust bundle (the roots the VM trusts: the mesh's, not the ca.crt
// of the identity Secret, which a namespace's user may write and an issuer
// may leave empty). It follows certificate renewals and bundle changes.
func (r *MeshVMReconciler) ensureBootstrap(ctx context.Context, mi *meshv1alpha1.MeshInstance, vm *meshv1alpha1.MeshVM, identity *corev1.Secret) (*vmBootstrapFacts, error) {
	name := fitName(vm.Name + "-bootstrap")
	if meshv1alpha1.IsIdentitySecretName(name) {
		// It would be (or become) the identity Secret of another service
		// account: the VM's key in it, and the VM its owner.
		return &vmBootstrapFacts{invalid: fmt.Sprintf("the bootstrap Secret %s would be the identity Secret of a service account; a MeshVM's name may not start with %q or %q: rename it",
			name, meshv1alpha1.IdentitySecretPrefix, meshv1alpha1.IdentitySecretHashedPrefix)}, nil
	}
	boot, err := vmBootstrapFiles(mi, vm, r.Namespace)
	if err != nil {
		return &vmBootstrapFacts{invalid: err.Error()}, nil
	}
	out := &vmBootstrapFacts{bundle: client.ObjectKey{Namespace: r.Namespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}}
	bundle := &corev1.Secret{}
	if err := r.Get(ctx, out.bundle, bundle); client.IgnoreNotFound(err) != nil {
		return nil, fmt.Errorf("reading the mesh's trust bundle %s: %w", out.bundle, err)
	}
	if len(bundle.Data[meshv1alpha1.TrustBundleKey]) == 0 {
		out.bundleMissing = true
		return out, nil
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
		return out, failedWrite(fmt.Errorf("writing bootstrap Secret %s: %w", s.Name, err))
	}
	out.secret = s.Name
	return out, nil
}

// checkAddresses judges the VM's addresses (checkAddresses) against the
// IPs of the cluster's pods. mesh.CheckVMAddress refuses the addresses no
// VM may have (the CRD and the webhook refuse them too, but the webhook's
// failure policy lets objects by while the operator is down, and an older
// CRD has no rule) and those that are the IP of a pod of the cluster, which
// admission cannot check race-free: a pod may take the address after. An
// address of an unsafe class stalls until the spec changes. A pod's address
// waits: the VM is looked at again every waitRequeue, and its address is
// published once the pod is gone. The controller does not watch pods, so a
// pod taking the address of a published VM is found at the VM's next
// reconcile; the mesh model (mesh.Build) leaves that endpoint out at once.
func (r *MeshVMReconciler) checkAddresses(ctx context.Context, vm *meshv1alpha1.MeshVM) (addressCheck, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return addressCheck{}, fmt.Errorf("listing pods: %w", err)
	}
	ips := mesh.PodIPs{}
	for i := range pods.Items {
		ips.Add(&pods.Items[i])
	}
	return checkAddresses(vm.Spec.Addresses, ips), nil
}

// ensureEndpointSlices publishes addrs, the VM's accepted addresses, as
// endpoints of each Service it backs, one slice per Service and address
// family. A VM endpoint is ready while its proxy is connected; before any
// proxy has connected, it is ready once its identity and bootstrap are (so
// that a VM whose proxy is starting is not kept out), and it stops being
// ready when the proxy leaves: proxy is the VM's (vmProxy). It returns the
// Services the VM backs that do not exist.
func (r *MeshVMReconciler) ensureEndpointSlices(ctx context.Context, vm *meshv1alpha1.MeshVM, addrs []string, proxy *meshv1alpha1.ProxyStatus) ([]string, error) {
	var missing []string
	want := map[string]bool{}
	for _, name := range vm.Spec.Services {
		svc := &corev1.Service{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: vm.Namespace, Name: name}, svc); apierrors.IsNotFound(err) {
			missing = append(missing, name)
			continue
		} else if err != nil {
			return nil, fmt.Errorf("reading Service %s: %w", name, err)
		}
		ports := vmSlicePorts(svc, vm)
		ready := proxy == nil || proxy.Connected
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
				return nil, failedWrite(fmt.Errorf("writing EndpointSlice %s for Service %s: %w", es.Name, name, err))
			}
		}
	}
	// Slices of Services the VM no longer backs go.
	var owned discoveryv1.EndpointSliceList
	if err := r.List(ctx, &owned, client.InNamespace(vm.Namespace), client.MatchingLabels{discoveryv1.LabelManagedBy: EndpointSliceManager}); err != nil {
		return nil, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	for i := range owned.Items {
		es := &owned.Items[i]
		if metav1.IsControlledBy(es, vm) && !want[es.Name] {
			if err := r.Delete(ctx, es); client.IgnoreNotFound(err) != nil {
				return nil, failedWrite(fmt.Errorf("deleting EndpointSlice %s: %w", es.Name, err))
			}
		}
	}
	return missing, nil
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
