package controllers

import (
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

const meshEnvoy = "envoy:mesh"

// podWith is a running pod of namespace shop; image, when set, is the
// image of its Envoy sidecar.
func podWith(name, image string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	p.Spec.Containers = []corev1.Container{{Name: "app", Image: "app"}}
	if image != "" {
		p.Spec.InitContainers = []corev1.Container{{Name: inject.ProxyContainer, Image: image}}
	}
	return p
}

// memberFactsWith are the facts of a member of mesh "m" in namespace shop
// whose pods are pods and whose identities are ids.
func memberFactsWith(ids identities, pods ...corev1.Pod) memberFacts {
	return memberFacts{
		mesh:       &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "m"}},
		identities: ids,
		pods:       pods,
		namespace:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{meshv1alpha1.MonitorLabel: "m"}}},
		image:      meshEnvoy,
		census:     census.Census{Counts: census.Counts{"shop": 3, "elsewhere": 9}},
	}
}

func TestMemberStatus(t *testing.T) {
	issued := identities{accounts: 2, ready: 2, injected: 2}
	prev := meshv1alpha1.MeshMemberStatus{
		Identities: 5, ProxiesConnected: 1,
		Conditions: []metav1.Condition{{Type: meshv1alpha1.ConditionIdentitiesReady, Status: metav1.ConditionTrue, Reason: meshv1alpha1.ReasonSucceeded}},
	}
	const (
		ready       = meshv1alpha1.ConditionReady
		reconciling = meshv1alpha1.ConditionReconciling
		stalled     = meshv1alpha1.ConditionStalled
		idsReady    = meshv1alpha1.ConditionIdentitiesReady
		upToDate    = meshv1alpha1.ConditionProxiesUpToDate
		config      = meshv1alpha1.ConditionProxyConfigReady
	)
	for _, c := range []struct {
		name  string
		facts memberFacts
		want  map[string]want
		check func(t *testing.T, st meshv1alpha1.MeshMemberStatus)
	}{
		{
			name:  "no mesh: waiting, the rest as it was",
			facts: memberFacts{},
			want: map[string]want{
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonMeshNotFound, "MeshInstance m not found"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonMeshNotFound, ""},
				idsReady:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
				upToDate:    {}, stalled: {},
			},
			check: func(t *testing.T, st meshv1alpha1.MeshMemberStatus) {
				if st.Identities != 5 || st.ProxiesConnected != 1 {
					t.Errorf("counts %d, %d; want those read, 5 and 1", st.Identities, st.ProxiesConnected)
				}
			},
		},
		{
			name:  "bad selector: stalled",
			facts: memberFacts{mesh: &meshv1alpha1.MeshInstance{}, selectorErr: errors.New("bad operator")},
			want: map[string]want{
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, "spec.selector: bad operator"},
				stalled:     {metav1.ConditionTrue, meshv1alpha1.ReasonInvalidSpec, ""},
				reconciling: {},
			},
		},
		{
			name:  "a mesh spec that makes no Certificate: stalled",
			facts: memberFactsWith(identities{invalid: "spec.certificates.duration: bad"}),
			want: map[string]want{
				ready:   {metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, "spec.certificates.duration: bad"},
				stalled: {metav1.ConditionTrue, meshv1alpha1.ReasonInvalidSpec, ""},
			},
		},
		{
			name:  "all issued and published: ready",
			facts: memberFactsWith(issued, podWith("a", meshEnvoy), podWith("b", meshEnvoy)),
			want: map[string]want{
				ready:       {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Reconciled"},
				idsReady:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "2 identities issued"},
				upToDate:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "runs the mesh's Envoy, " + meshEnvoy},
				config:      {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
				reconciling: {}, stalled: {},
			},
			check: func(t *testing.T, st meshv1alpha1.MeshMemberStatus) {
				if st.Identities != 2 || st.IdentitiesReady != 2 || st.PodsInjected != 2 || st.ProxiesConnected != 3 || st.PodsWithoutProxy != 0 {
					t.Errorf("status %+v", st)
				}
			},
		},
		{
			name:  "an identity failed: IdentitiesReady False, waiting",
			facts: memberFactsWith(identities{accounts: 2, ready: 1, failed: []identityFailure{{serviceAccount: "web", err: errors.New("denied")}}}),
			want: map[string]want{
				idsReady:    {metav1.ConditionFalse, meshv1alpha1.ReasonIdentityFailed, "1 of 2 service accounts could not be written"},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonIdentityFailed, "[web]"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonIdentityFailed, ""},
				stalled:     {},
			},
			check: func(t *testing.T, st meshv1alpha1.MeshMemberStatus) {
				if st.IdentitiesFailed != 1 || fmt.Sprint(st.IdentitiesFailedNames) != "[web]" {
					t.Errorf("failed %d %v, want 1 [web]", st.IdentitiesFailed, st.IdentitiesFailedNames)
				}
			},
		},
		{
			name:  "an identity pending: IdentitiesReady False, waiting",
			facts: memberFactsWith(identities{accounts: 2, ready: 1, waiting: []string{"web: not issued yet"}}),
			want: map[string]want{
				idsReady:    {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "waiting for 1 of 2 identities: [web: not issued yet]"},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, ""},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonCertificatePending, ""},
			},
		},
		{
			name:  "old proxy images: ProxiesUpToDate False, still Ready",
			facts: memberFactsWith(issued, podWith("new", meshEnvoy), podWith("old-2", "envoy:old"), podWith("old-1", "envoy:older")),
			want: map[string]want{
				upToDate: {metav1.ConditionFalse, meshv1alpha1.ReasonProxyImageOutdated, "2 member pods have an old proxy: 2 run another Envoy than the mesh's " + meshEnvoy + " (first: [old-1 old-2])"},
				ready:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
			},
			check: func(t *testing.T, st meshv1alpha1.MeshMemberStatus) {
				if st.PodsWithOldProxy != 2 || fmt.Sprint(st.PodsWithOldProxyNames) != "[old-1 old-2]" {
					t.Errorf("old proxies %d %v", st.PodsWithOldProxy, st.PodsWithOldProxyNames)
				}
			},
		},
		{
			name: "a pod injected when pods trusted their identity Secret: ProxiesUpToDate False, still Ready",
			facts: func() memberFacts {
				before := podWith("before", meshEnvoy)
				before.Spec.Volumes = []corev1.Volume{{Name: inject.IdentityVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "osm-identity-web"}}}}
				current := podWith("current", meshEnvoy)
				current.Spec.Volumes = []corev1.Volume{{Name: inject.IdentityVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}}
				return memberFactsWith(issued, before, current)
			}(),
			want: map[string]want{
				upToDate: {metav1.ConditionFalse, meshv1alpha1.ReasonProxyImageOutdated, "1 member pods have an old proxy: 1 were injected when pods trusted their identity Secret's ca.crt rather than the mesh's trust bundle (first: [before])"},
				ready:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
			},
			check: func(t *testing.T, st meshv1alpha1.MeshMemberStatus) {
				if st.PodsWithOldProxy != 1 || fmt.Sprint(st.PodsWithOldProxyNames) != "[before]" {
					t.Errorf("old proxies %d %v, want 1 [before]", st.PodsWithOldProxy, st.PodsWithOldProxyNames)
				}
			},
		},
		{
			name: "a proxyless pod injected when pods trusted their identity Secret, and a pod injected for another mesh: ProxiesUpToDate False",
			facts: func() memberFacts {
				proxyless := podWith("grpc-1", "")
				proxyless.Annotations = map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC), meshv1alpha1.InjectedAnnotation: "m"}
				proxyless.Spec.Containers[0].Env = []corev1.EnvVar{{Name: mesh.GRPCBootstrapEnv, Value: "/etc/osm/bootstrap.json"}}
				proxyless.Spec.Volumes = []corev1.Volume{{Name: inject.IdentityVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "osm-identity-web"}}}}
				moved := podWith("moved-1", meshEnvoy)
				moved.Annotations = map[string]string{meshv1alpha1.InjectedAnnotation: "previous"}
				current := podWith("current", meshEnvoy)
				current.Annotations = map[string]string{meshv1alpha1.InjectedAnnotation: "m"}
				return memberFactsWith(issued, proxyless, moved, current)
			}(),
			want: map[string]want{
				upToDate: {metav1.ConditionFalse, meshv1alpha1.ReasonProxyImageOutdated, "2 member pods have an old proxy: 1 were injected when pods trusted their identity Secret's ca.crt rather than the mesh's trust bundle, 1 were injected for another mesh (first: [grpc-1 moved-1])"},
				ready:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
			},
		},
		{
			name: "pods without a sidecar are counted, the ended ones not",
			facts: func() memberFacts {
				done := podWith("done", "")
				done.Status.Phase = corev1.PodSucceeded
				return memberFactsWith(issued, podWith("bare-2", ""), podWith("bare-1", ""), done, podWith("meshed", meshEnvoy))
			}(),
			want: map[string]want{ready: {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""}},
			check: func(t *testing.T, st meshv1alpha1.MeshMemberStatus) {
				if st.PodsWithoutProxy != 2 || fmt.Sprint(st.PodsWithoutProxyNames) != "[bare-1 bare-2]" {
					t.Errorf("without proxy %d %v", st.PodsWithoutProxy, st.PodsWithoutProxyNames)
				}
			},
		},
		{
			name: "a group of the namespace failed its translation: stalled",
			facts: func() memberFacts {
				f := memberFactsWith(issued)
				f.census.Failing = census.Failing{"shop": {Groups: 1, Errors: map[string]string{"envoy/shop/web": "bad route"}}, "elsewhere": {Groups: 4}}
				return f
			}(),
			want: map[string]want{
				config:  {metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, "1 proxy groups keep their last good config, their translation failed: envoy/shop/web: bad route"},
				ready:   {metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, ""},
				stalled: {metav1.ConditionTrue, meshv1alpha1.ReasonTranslationFailed, ""},
			},
		},
		{
			name: "identities pending over a failed translation: waiting for the identities",
			facts: func() memberFacts {
				f := memberFactsWith(identities{accounts: 1, waiting: []string{"web: pending"}})
				f.census.Failing = census.Failing{"shop": {Groups: 1, Errors: map[string]string{"envoy/shop/web": "bad route"}}}
				return f
			}(),
			want: map[string]want{
				config:      {metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, ""},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, ""},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonCertificatePending, ""},
				stalled:     {},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "member", Namespace: "shop", Generation: 4}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "m"}, Status: *prev.DeepCopy()}
			read := mm.DeepCopy()
			st := memberStatus(mm, c.facts)
			if !equality.Semantic.DeepEqual(mm, read) {
				t.Errorf("memberStatus changed the member it was given")
			}
			if st.ObservedGeneration != 4 {
				t.Errorf("observedGeneration %d, want 4", st.ObservedGeneration)
			}
			checkConditions(t, st.Conditions, c.want)
			if c.check != nil {
				c.check(t, st)
			}
		})
	}
}
