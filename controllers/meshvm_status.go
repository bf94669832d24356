package controllers

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// vmFacts are what a MeshVM's reconcile read and wrote, for vmStatus, in
// the order it gathers them. Gathering stops at the first fact that
// decides the VM's state, or at a failed write; a pointer not reached is
// nil.
type vmFacts struct {
	// addresses are the VM's addresses as checkAddresses judged them.
	addresses addressCheck
	// mesh is the MeshInstance the VM names, nil when there is none.
	mesh *meshv1alpha1.MeshInstance
	// elsewhere says why the VM's namespace is in another mesh
	// (mesh.ReadVMMeshConflict).
	elsewhere string
	// identity is the VM's identity Certificate and Secret.
	identity *vmIdentity
	// bootstrap is the VM's bootstrap Secret.
	bootstrap *vmBootstrapFacts
	// census is the xDS replicas' census; proxy is the VM's proxy by it
	// (vmProxy).
	census *census.Census
	proxy  *meshv1alpha1.ProxyStatus
	// published says the VM's EndpointSlices were written; missingServices
	// are the Services it backs that do not exist.
	published       bool
	missingServices []string
	// failedWrite is the write for the VM that failed and stopped the
	// gathering (failedWrite), if one did.
	failedWrite error
}

// vmIdentity is what ensureIdentity found of a VM's identity.
type vmIdentity struct {
	// invalid says why the mesh's spec makes no identity Certificate.
	invalid string
	// cert is the Certificate as the API server has it.
	cert *cmapi.Certificate
	// secret is its Secret once issued; spiffe the identity's SPIFFE ID.
	secret *corev1.Secret
	spiffe string
}

// vmBootstrapFacts are what ensureBootstrap found and wrote.
type vmBootstrapFacts struct {
	// invalid says why the VM's bootstrap cannot be made.
	invalid string
	// bundle is the mesh's trust bundle Secret; bundleMissing says it holds
	// no bundle yet.
	bundle        client.ObjectKey
	bundleMissing bool
	// secret is the name of the bootstrap Secret written, empty when its
	// write failed.
	secret string
}

// addressCheck is how mesh.CheckVMAddress judged a VM's addresses: those
// that may be published, and the errors of those that may not: the IP of a
// pod (conflicts, which wait) or of a class no VM may have (unsafe, which
// stalls until the spec changes).
type addressCheck struct {
	accepted, conflicts, unsafe []string
}

// checkAddresses judges addrs, a VM's, against the pod IPs of the cluster.
func checkAddresses(addrs []string, ips mesh.PodIPs) addressCheck {
	var out addressCheck
	for _, a := range addrs {
		var refused *mesh.VMAddressError
		switch err := mesh.CheckVMAddress(a, ips); {
		case err == nil:
			out.accepted = append(out.accepted, a)
		case errors.As(err, &refused) && refused.Pod != "":
			out.conflicts = append(out.conflicts, err.Error())
		default:
			out.unsafe = append(out.unsafe, err.Error())
		}
	}
	return out
}

// vmStatus is the status of vm that f means, from vm's status as read,
// which it leaves as it is: its certificate, bootstrap Secret and proxy,
// and its conditions (AddressesAccepted, CertificateReady, BootstrapReady,
// ProxyConfigReady, ProxyConnected and the summary). A condition the facts
// do not reach stays as it was.
func vmStatus(vm *meshv1alpha1.MeshVM, f vmFacts) meshv1alpha1.MeshVMStatus {
	st := *vm.Status.DeepCopy()
	conds := newConditionSet(st.Conditions, vm.Generation)
	o := vmOutcome(&st, conds, vm, f)
	if w, failed := writeOutcome(f.failedWrite); failed {
		o = w
	}
	conds.summarize(o)
	st.Conditions, st.ObservedGeneration = conds.list, vm.Generation
	return st
}

// vmOutcome fills st and conds from f and returns the VM's outcome.
func vmOutcome(st *meshv1alpha1.MeshVMStatus, conds *conditionSet, vm *meshv1alpha1.MeshVM, f vmFacts) outcome {
	accepted, addressed := addressesAccepted(f.addresses)
	conds.set(accepted)
	if f.mesh == nil {
		return meshNotFound(vm.Spec.Mesh)
	}
	if f.elsewhere != "" {
		// Stalled: a change of the VM's or of its namespace's mesh, both
		// watched, decides it.
		return outcome{reason: meshv1alpha1.ReasonMeshConflict, message: f.elsewhere, stalled: true}
	}
	id := f.identity
	if id == nil { // the write of its service account or Certificate failed
		return outcome{}
	}
	if id.invalid != "" {
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: id.invalid, stalled: true}
	}
	issued, msg := certificateReady(id.cert)
	if !issued {
		msg = "identity certificate: " + msg
		conds.set(condition(meshv1alpha1.ConditionCertificateReady, metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, msg))
		return outcome{reason: meshv1alpha1.ReasonCertificatePending, message: msg}
	}
	conds.set(condition(meshv1alpha1.ConditionCertificateReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "identity certificate issued"))
	st.Certificate = vmCertificate(id)
	b := f.bootstrap
	switch {
	case b == nil:
		return outcome{}
	case b.invalid != "":
		conds.set(condition(meshv1alpha1.ConditionBootstrapReady, metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, b.invalid))
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: b.invalid, stalled: true}
	case b.bundleMissing:
		msg := fmt.Sprintf("waiting for mesh %s's trust bundle (Secret %s; see the MeshInstance's %s condition)", f.mesh.Name, b.bundle, meshv1alpha1.ConditionTrustBundleKnown)
		conds.set(condition(meshv1alpha1.ConditionBootstrapReady, metav1.ConditionFalse, meshv1alpha1.ReasonTrustBundleUnknown, msg))
		return outcome{reason: meshv1alpha1.ReasonTrustBundleUnknown, message: msg}
	case b.secret == "":
		if w, failed := writeOutcome(f.failedWrite); failed {
			conds.set(condition(meshv1alpha1.ConditionBootstrapReady, metav1.ConditionFalse, w.reason, w.message))
		}
		return outcome{}
	}
	st.BootstrapSecretName = b.secret
	conds.set(condition(meshv1alpha1.ConditionBootstrapReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded,
		fmt.Sprintf("copy it to %s on the VM: kubectl get secret %s -n %s", VMConfigDir, b.secret, vm.Namespace)))
	if f.census == nil {
		return outcome{}
	}
	st.Proxy = f.proxy.DeepCopy()
	switch {
	case !f.published: // an EndpointSlice's write failed
		return outcome{}
	case !addressed.ready():
		return addressed
	case len(f.missingServices) > 0:
		return outcome{reason: "ServiceNotFound", message: fmt.Sprintf("the VM backs Services that do not exist: %v", f.missingServices)}
	}
	config, configured := groupConfigReady(f.census.Failing, mesh.VMGroup(vm))
	conds.set(config)
	connection, connected := proxyConnected(vm, st.Proxy)
	conds.set(connection)
	if !configured.ready() {
		return configured
	}
	return connected
}

// addressesAccepted is AddressesAccepted of a, and the outcome it means.
func addressesAccepted(a addressCheck) (metav1.Condition, outcome) {
	var o outcome
	switch {
	case len(a.unsafe) > 0:
		o = outcome{reason: meshv1alpha1.ReasonUnsafeAddress, stalled: true}
	case len(a.conflicts) > 0:
		o = outcome{reason: meshv1alpha1.ReasonAddressConflict}
	default:
		return condition(meshv1alpha1.ConditionAddressesAccepted, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "every address is accepted"), o
	}
	o.message = "addresses left out of the VM's EndpointSlices: " + strings.Join(append(append([]string(nil), a.unsafe...), a.conflicts...), "; ")
	return condition(meshv1alpha1.ConditionAddressesAccepted, metav1.ConditionFalse, o.reason, o.message), o
}

// vmCertificate is status.certificate of an issued identity: its Secret,
// SPIFFE ID and, when its certificate parses, its end.
func vmCertificate(id *vmIdentity) *meshv1alpha1.CertificateStatus {
	out := &meshv1alpha1.CertificateStatus{SecretName: id.secret.Name, Identity: id.spiffe}
	if block, _ := pem.Decode(id.secret.Data[CertKey]); block != nil {
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out.NotAfter = ptr.To(metav1.NewTime(c.NotAfter))
		}
	}
	return out
}

// vmProxy is status.proxy of the MeshVM key, prev as read, by the
// census: connected while a replica reports the VM's proxy (since its
// stream opened), disconnected since now once none does, which includes
// the replica holding it dying (its Lease expires). A VM no proxy has
// connected to has none. The xDS server only reports connections; this is
// the one rule that turns them into status.
func vmProxy(prev *meshv1alpha1.ProxyStatus, vms census.VMs, key string, now metav1.Time) *meshv1alpha1.ProxyStatus {
	if c, ok := vms[key]; ok {
		return &meshv1alpha1.ProxyStatus{Connected: true, LastSeen: ptr.To(c.Since), Version: c.Version, Replica: c.Replica}
	}
	if prev != nil && prev.Connected {
		return &meshv1alpha1.ProxyStatus{LastSeen: &now, Version: prev.Version, Replica: prev.Replica}
	}
	return prev.DeepCopy()
}

// proxyConnected is ProxyConnected of vm, whose proxy is p (vmProxy), and
// the outcome it means: the VM is Ready only while connected.
func proxyConnected(vm *meshv1alpha1.MeshVM, p *meshv1alpha1.ProxyStatus) (metav1.Condition, outcome) {
	switch {
	case p != nil && p.Connected:
		return condition(meshv1alpha1.ConditionProxyConnected, metav1.ConditionTrue, "Connected", fmt.Sprintf("proxy %s connected to %s", p.Version, p.Replica)), outcome{}
	case p != nil:
		msg := "the VM's proxy disconnected"
		if p.LastSeen != nil {
			msg += " at " + p.LastSeen.UTC().Format(time.RFC3339)
		}
		return condition(meshv1alpha1.ConditionProxyConnected, metav1.ConditionFalse, "Disconnected", msg), outcome{reason: "ProxyDisconnected", message: msg}
	default:
		start := "start Envoy on the VM"
		if vm.Proxyless() {
			start = fmt.Sprintf("start the application on the VM with GRPC_XDS_BOOTSTRAP=%s/%s", VMConfigDir, GRPCBootstrapKey)
		}
		msg := fmt.Sprintf("no proxy has connected yet: run `osm-operator vm bootstrap %s -n %s` and %s", vm.Name, vm.Namespace, start)
		return condition(meshv1alpha1.ConditionProxyConnected, metav1.ConditionFalse, "NotConnected", msg), outcome{reason: "AwaitingProxy", message: msg}
	}
}
