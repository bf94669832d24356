package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// memberFacts are what a MeshMember's reconcile read and wrote, for
// memberStatus. Gathering stops at the first fact that decides the
// member's state (no mesh, a bad selector, a mesh spec that makes no
// Certificates); the fields after it are then zero.
type memberFacts struct {
	// mesh is the MeshInstance the member names, nil when there is none.
	mesh *meshv1alpha1.MeshInstance
	// selectorErr says why spec.selector is no label selector.
	selectorErr error
	// identities is what ensureIdentities found and wrote.
	identities identities
	// pods are the member pods; namespace and members (the MeshMembers of
	// the namespace) are what the injector decides them by.
	pods      []corev1.Pod
	namespace *corev1.Namespace
	members   []meshv1alpha1.MeshMember
	// image is the mesh's Envoy.
	image string
	// census is the xDS replicas' census.
	census census.Census
}

// memberStatus is the status of mm that f means, from mm's status as read,
// which it leaves as it is: the counts and names of its pods and
// identities, the plaintext setting in effect and the ports accepting
// plaintext, and its conditions (ProxiesUpToDate, ProxyConfigReady,
// IdentitiesReady and the summary). A condition the facts do not reach
// stays as it was.
func memberStatus(mm *meshv1alpha1.MeshMember, f memberFacts) meshv1alpha1.MeshMemberStatus {
	st := *mm.Status.DeepCopy()
	conds := newConditionSet(st.Conditions, mm.Generation)
	conds.summarize(memberOutcome(&st, conds, mm, f))
	st.Conditions, st.ObservedGeneration = conds.list, mm.Generation
	return st
}

// memberOutcome fills st and conds from f and returns the member's outcome.
func memberOutcome(st *meshv1alpha1.MeshMemberStatus, conds *conditionSet, mm *meshv1alpha1.MeshMember, f memberFacts) outcome {
	if f.mesh == nil {
		return meshNotFound(mm.Spec.Mesh)
	}
	st.PlaintextFromOutsideMesh = meshv1alpha1.EffectivePlaintextFromOutsideMesh(f.mesh.Spec, mm.Spec.Inbound, 0)
	st.PortsAcceptingPlaintext = portsAcceptingPlaintext(f.mesh, mm, f.pods)
	switch {
	case f.selectorErr != nil:
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: fmt.Sprintf("spec.selector: %v", f.selectorErr), stalled: true}
	case f.identities.invalid != "":
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: f.identities.invalid, stalled: true}
	}
	without := podsWithoutProxy(f.pods, f.namespace, f.members)
	st.PodsWithoutProxy, st.PodsWithoutProxyNames = int32(len(without)), firstNames(without)
	old := podsWithOldProxy(f.pods, f.mesh.Name, f.image)
	st.PodsWithOldProxy, st.PodsWithOldProxyNames = int32(len(old.names)), firstNames(old.names)
	conds.set(proxiesUpToDate(old, f.image))
	setIdentityStatus(st, f.identities)
	st.ProxiesConnected = f.census.Counts[mm.Namespace]
	config, configured := proxyConfigReady(f.census.Failing, map[string]bool{mm.Namespace: true})
	conds.set(config)
	ids := identitiesReady(f.identities)
	conds.set(ids)
	if ids.Status != metav1.ConditionTrue {
		return outcome{reason: ids.Reason, message: ids.Message}
	}
	return configured
}

// setIdentityStatus writes the identity counts of a MeshMember's status.
func setIdentityStatus(st *meshv1alpha1.MeshMemberStatus, ids identities) {
	st.Identities, st.IdentitiesReady, st.PodsInjected = int32(ids.accounts), int32(ids.ready), int32(ids.injected)
	failed := ids.failedAccounts()
	st.IdentitiesFailed = int32(len(failed))
	st.IdentitiesFailedNames = firstNames(failed)
}

// identitiesReady is a MeshMember's IdentitiesReady: False while an
// identity failed, or waits for cert-manager.
func identitiesReady(ids identities) metav1.Condition {
	if failed := ids.failedAccounts(); len(failed) > 0 {
		return condition(meshv1alpha1.ConditionIdentitiesReady, metav1.ConditionFalse, meshv1alpha1.ReasonIdentityFailed, fmt.Sprintf(
			"the identity Certificates of %d of %d service accounts could not be written (the others are issued on their own); their Events say why: %v",
			len(failed), ids.accounts, firstNames(failed)))
	}
	if n := len(ids.waiting); n > 0 {
		return condition(meshv1alpha1.ConditionIdentitiesReady, metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending,
			fmt.Sprintf("waiting for %d of %d identities: %v", n, ids.accounts, firstNames(ids.waiting)))
	}
	return condition(meshv1alpha1.ConditionIdentitiesReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, fmt.Sprintf("%d identities issued", ids.ready))
}

// maxStatusNames bounds the names a MeshMember's status lists, in its
// fields and its conditions' messages.
const maxStatusNames = 20

// firstNames are the first maxStatusNames of names, which are sorted.
func firstNames(names []string) []string {
	return names[:min(len(names), maxStatusNames)]
}

// podsWithoutProxy are the names, sorted, of the member pods the injector
// would give a sidecar (inject.Decide, the injector's own rule) but that
// run without one.
func podsWithoutProxy(pods []corev1.Pod, ns *corev1.Namespace, members []meshv1alpha1.MeshMember) []string {
	var names []string
	for i := range pods {
		p := &pods[i]
		if !live(p) {
			continue
		}
		if d, err := inject.Decide(p, ns, members); err == nil && d.Inject {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names
}

// live says whether a pod runs or will: not being deleted, not ended.
func live(p *corev1.Pod) bool {
	return p.DeletionTimestamp.IsZero() && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// oldProxies are the live member pods whose proxy is not what the
// injector gives them today, by name (sorted), with how many of them are
// so for each reason: an Envoy other than the mesh's; an injection that
// trusts the identity Secret's ca.crt (inject.InjectedBeforeMeshTrust: a
// sidecar's xDS server trust, a proxyless pod's peer trust too); an
// injection for another mesh (its namespace moved), whose proxy dials that
// mesh's xDS server and trusts its roots.
type oldProxies struct {
	names                        []string
	image, untrusting, elsewhere int
}

// podsWithOldProxy finds the oldProxies of pods in mesh meshName, whose
// Envoy is image.
func podsWithOldProxy(pods []corev1.Pod, meshName, image string) oldProxies {
	var o oldProxies
	for i := range pods {
		p := &pods[i]
		if !live(p) || !inject.Injected(p) {
			continue
		}
		got, envoy := inject.ProxyImage(p)
		otherImage := envoy && got != image
		untrusting := inject.InjectedBeforeMeshTrust(p)
		injectedFor, annotated := p.Annotations[meshv1alpha1.InjectedAnnotation]
		elsewhere := annotated && injectedFor != meshName
		if otherImage {
			o.image++
		}
		if untrusting {
			o.untrusting++
		}
		if elsewhere {
			o.elsewhere++
		}
		if otherImage || untrusting || elsewhere {
			o.names = append(o.names, p.Name)
		}
	}
	slices.Sort(o.names)
	return o
}

// proxiesUpToDate is ProxiesUpToDate of o in a mesh whose Envoy is image.
// It is not the member's Ready: those proxies still work, for now.
func proxiesUpToDate(o oldProxies, image string) metav1.Condition {
	if len(o.names) == 0 {
		return condition(meshv1alpha1.ConditionProxiesUpToDate, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded,
			fmt.Sprintf("Every member sidecar runs the mesh's Envoy, %s", image))
	}
	var why []string
	if o.image > 0 {
		why = append(why, fmt.Sprintf("%d run another Envoy than the mesh's %s", o.image, image))
	}
	if o.untrusting > 0 {
		why = append(why, fmt.Sprintf("%d were injected when pods trusted their identity Secret's ca.crt rather than the mesh's trust bundle", o.untrusting))
	}
	if o.elsewhere > 0 {
		why = append(why, fmt.Sprintf("%d were injected for another mesh", o.elsewhere))
	}
	return condition(meshv1alpha1.ConditionProxiesUpToDate, metav1.ConditionFalse, meshv1alpha1.ReasonProxyImageOutdated,
		fmt.Sprintf("%d member pods have an old proxy: %s (first: %v); roll them to move them to the mesh's", len(o.names), strings.Join(why, ", "), firstNames(o.names)))
}
