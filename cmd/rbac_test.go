package main

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// permission is one verb on one resource, as RBAC grants it.
type permission struct{ group, resource, verb string }

func (p permission) String() string {
	return fmt.Sprintf("%s %s/%s", p.verb, groupName(p.group), p.resource)
}

func groupName(g string) string {
	if g == "" {
		return "core"
	}
	return g
}

// requestLog records the permission each request of a client needed, and
// the requests refused.
type requestLog struct {
	mu        sync.Mutex
	used      map[permission]int
	forbidden []string
	infos     request.RequestInfoFactory
}

func newRequestLog() *requestLog {
	return &requestLog{
		used:  map[permission]int{},
		infos: request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")},
	}
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		info, err := l.infos.NewRequestInfo(req)
		resp, rerr := rt.RoundTrip(req)
		if err == nil && info.IsResourceRequest {
			resource := info.Resource
			if info.Subresource != "" {
				resource += "/" + info.Subresource
			}
			p := permission{info.APIGroup, resource, info.Verb}
			l.mu.Lock()
			l.used[p]++
			if resp != nil && resp.StatusCode == http.StatusForbidden {
				l.forbidden = append(l.forbidden, fmt.Sprintf("%s %s", p, req.URL.Path))
			}
			l.mu.Unlock()
		}
		return resp, rerr
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// renderedRules reads the operator's ClusterRole and leader election Role
// as config/rbac renders them.
func renderedRules(t *testing.T) (*rbacv1.ClusterRole, *rbacv1.Role) {
	t.Helper()
	cr := &rbacv1.ClusterRole{}
	role := &rbacv1.Role{}
	for path, obj := range map[string]any{"../config/rbac/role.yaml": cr, "../config/rbac/leader_election_role.yaml": role} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return cr, role
}

func grants(rules []rbacv1.PolicyRule) map[permission]bool {
	out := map[permission]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out[permission{g, res, v}] = true
				}
			}
		}
	}
	return out
}

// TestRBACGrantsWhatTheOperatorUses runs the operator as main runs it, with
// leader election, as a user bound to nothing but the rendered ClusterRole
// and leader election Role, through a mesh's whole life: a mesh, a member
// whose existing workloads are rolled, a VM that moves and goes, a dead
// replica's Lease, then the member and the mesh deleted. Every request the
// operator makes is recorded as the permission it needs. None may be
// refused (the role grants too little), and every granted verb must have
// been used (the role grants too much), but for those listed with why the
// run cannot reach them.
func TestRBACGrantsWhatTheOperatorUses(t *testing.T) {
	// The admission plugin that checks an owner reference blocking its
	// owner's deletion against the owner's finalizers subresource.
	o := startClusterWith(t, testenv.Options{AdmissionPlugins: []string{"OwnerReferencesPermissionEnforcement"}})
	ctx, k := o.ctx, o.k
	cr, role := renderedRules(t)
	const user = "osm-operator-rbac"
	role.Namespace = "osm-system"
	for _, obj := range []client.Object{
		cr, role,
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cr.Name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: role.Namespace},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}},
	} {
		if err := k.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	au, err := o.env.ControlPlane.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := au.Config()
	log := newRequestLog()
	cfg.Wrap(log.wrap)
	_, stop := runOperator(t, ctx, cfg, true)
	t.Cleanup(func() {
		if t.Failed() {
			log.mu.Lock()
			defer log.mu.Unlock()
			t.Logf("refused so far: %q", log.forbidden)
		}
	})

	// Workloads that run before their namespace joins: one of each kind
	// the operator rolls, with a pod that has no sidecar.
	ns := "rbac"
	mustCreate := func(objs ...client.Object) {
		t.Helper()
		for _, obj := range objs {
			if err := k.Create(ctx, obj); err != nil {
				t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
			}
		}
	}
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	tmpl := func(app string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{ServiceAccountName: app, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	}
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: appsv1.DeploymentSpec{Selector: sel("web"), Template: tmpl("web")}}
	db := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}, Spec: appsv1.StatefulSetSpec{Selector: sel("db"), Template: tmpl("db")}}
	agent := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns}, Spec: appsv1.DaemonSetSpec{Selector: sel("agent"), Template: tmpl("agent")}}
	mustCreate(web, db, agent)
	owned := func(name string, owner client.Object, kind string) *corev1.Pod {
		p := plainPod(ns, name, owner.GetName())
		p.Labels = map[string]string{"app": owner.GetName()}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true)}}
		return p
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns, Labels: map[string]string{"app": "web"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: web.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: sel("web"), Template: tmpl("web")}}
	mustCreate(rs)
	mustCreate(owned("web-1-a", rs, "ReplicaSet"), owned("db-0", db, "StatefulSet"), owned("agent-a", agent, "DaemonSet"))

	// The shared xDS Service, which the mesh's own mirrors; the mesh, the
	// member, a Service and a VM backing it.
	mustCreate(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: bootstrap.XDSServiceName, Namespace: "osm-system"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"control-plane": "controller-manager"}, Ports: []corev1.ServicePort{{Name: "grpc-xds", Port: 15128}},
		}},
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "demo", RestartExistingWorkloads: true}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
	)
	// A pod of the VM's service account: the VM co-owns its Certificate.
	mustCreate(testPod(ns, "warehouse-1", "warehouse"))
	vm := &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: meshv1alpha1.MeshVMSpec{
		Mesh: "demo", ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.10"},
		Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}, Services: []string{"warehouse"}}}
	mustCreate(vm)
	// A VM whose service account nothing else has: the operator creates it.
	archive := &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: "archive", Namespace: ns}, Spec: meshv1alpha1.MeshVMSpec{
		Mesh: "demo", ServiceAccountName: "archive", Addresses: []string{"192.0.2.11"},
		Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}}}
	mustCreate(archive)
	// A replica that died without deleting its Lease.
	mustCreate(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: census.LeasePrefix + "dead", Namespace: "osm-system", Labels: map[string]string{census.ComponentLabel: census.Component}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("dead"), LeaseDurationSeconds: ptr.To[int32](1),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now().Add(-time.Minute)))},
	})

	ready := func(obj client.Object, conds func() []metav1.Condition, typ string) func() error {
		return func() error {
			if err := k.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return err
			}
			for _, c := range conds() {
				if c.Type == typ && c.Status == metav1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("%s is not %s: %+v", obj.GetName(), typ, conds())
		}
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns}}
	// An identity Secret left behind by a Certificate that is gone: the
	// namespace controller checks past its cache, then deletes it.
	orphan := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.IdentitySecretName("ghost"), Namespace: ns,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "osm-operator"}}}
	mustCreate(orphan)
	testenv.Eventually(t, 90*time.Second, ready(mm, func() []metav1.Condition { return mm.Status.Conditions }, meshv1alpha1.ConditionReady))
	// The member namespace holds the mesh's trust bundle.
	testenv.Eventually(t, 30*time.Second, func() error {
		return k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.TrustBundleConfigMapName("demo")}, &corev1.ConfigMap{})
	})
	// The VM waits for its proxy, which this test does not run.
	testenv.Eventually(t, 90*time.Second, ready(vm, func() []metav1.Condition { return vm.Status.Conditions }, meshv1alpha1.ConditionBootstrapReady))
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, obj := range []client.Object{web, db, agent} {
			if err := k.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return err
			}
		}
		for _, a := range []map[string]string{web.Spec.Template.Annotations, db.Spec.Template.Annotations, agent.Spec.Template.Annotations} {
			if len(a) == 0 {
				return fmt.Errorf("not every workload was rolled")
			}
		}
		return nil
	})
	endpointSlices := func() ([]discoveryv1.EndpointSlice, error) {
		var l discoveryv1.EndpointSliceList
		err := k.List(ctx, &l, client.InNamespace(ns))
		return l.Items, err
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		l, err := endpointSlices()
		if err == nil && len(l) == 0 {
			err = fmt.Errorf("no EndpointSlice for the VM yet")
		}
		return err
	})
	// The VM moves.
	updateVM := func(change func()) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := k.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
				return err
			}
			change()
			return k.Update(ctx, vm)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	updateVM(func() { vm.Spec.Addresses = []string{"192.0.2.11"} })
	testenv.Eventually(t, 30*time.Second, func() error {
		l, err := endpointSlices()
		if err != nil {
			return err
		}
		for _, s := range l {
			for _, e := range s.Endpoints {
				if slices.Contains(e.Addresses, "192.0.2.11") {
					return nil
				}
			}
		}
		return fmt.Errorf("the VM's EndpointSlice has not moved")
	})
	// The VM stops backing the Service: its EndpointSlice goes.
	updateVM(func() { vm.Spec.Services = nil })
	testenv.Eventually(t, 30*time.Second, func() error {
		l, err := endpointSlices()
		if err == nil && len(l) > 0 {
			err = fmt.Errorf("the EndpointSlice of a Service the VM no longer backs is still there")
		}
		return err
	})
	// Someone edits what the operator owns: it puts it back.
	var issuers cmapi.ClusterIssuerList
	if err := k.List(ctx, &issuers); err != nil || len(issuers.Items) == 0 {
		t.Fatalf("the mesh's ClusterIssuers: %d, %v", len(issuers.Items), err)
	}
	edited := &issuers.Items[0]
	delete(edited.Labels, "app.kubernetes.io/managed-by")
	if err := k.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k.Get(ctx, client.ObjectKeyFromObject(edited), edited); err != nil {
			return err
		}
		if edited.Labels["app.kubernetes.io/managed-by"] == "" {
			return fmt.Errorf("ClusterIssuer %s was not put back", edited.Name)
		}
		return nil
	})
	bootstrapSecret := &corev1.Secret{}
	if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "warehouse-bootstrap"}, bootstrapSecret); err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(bootstrapSecret.Data)
	for key := range bootstrapSecret.Data {
		bootstrapSecret.Data[key] = []byte("edited")
	}
	if err := k.Update(ctx, bootstrapSecret); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k.Get(ctx, client.ObjectKeyFromObject(bootstrapSecret), bootstrapSecret); err != nil {
			return err
		}
		for key, v := range want {
			if string(bootstrapSecret.Data[key]) != string(v) {
				return fmt.Errorf("the VM's bootstrap Secret was not put back (%s)", key)
			}
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		err := k.Get(ctx, client.ObjectKeyFromObject(orphan), &corev1.Secret{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the orphaned identity Secret is still there (%v)", err)
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		err := k.Get(ctx, client.ObjectKey{Namespace: "osm-system", Name: census.LeasePrefix + "dead"}, &coordinationv1.Lease{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the dead replica's Lease is still there (%v)", err)
	})

	// A policy of each kind the operator judges: it writes their status.
	ib := &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: policyv1alpha1.IngressBackendSpec{
		Backends: []policyv1alpha1.IngressBackendTarget{{Name: "warehouse", Port: policyv1alpha1.BackendPort{Number: 8080, Protocol: policyv1alpha1.BackendProtocolHTTP}}},
		Sources:  []policyv1alpha1.IngressSource{{Kind: policyv1alpha1.IngressSourceIPRange, Name: "10.0.0.0/8"}}}}
	eg := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: ns}, Spec: policyv1alpha1.EgressSpec{
		Sources: []policyv1alpha1.EgressSource{{Kind: policyv1alpha1.EgressSourceServiceAccount, Name: "web", Namespace: ns}},
		Hosts:   []string{"payments.example.com"},
		Ports:   []policyv1alpha1.EgressPort{{Number: 443, Protocol: policyv1alpha1.EgressProtocolHTTPS}}}}
	// Gateway API routes and a ResiliencePolicy, of a Service that is not
	// there: the mesh writes what it made of them all the same.
	parent := []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "warehouse"}}
	hr := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent}}}
	gr := &gwv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parent}}}
	rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: meshv1alpha1.ResiliencePolicySpec{
		TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "warehouse"}}},
		Resilience: meshv1alpha1.Resilience{Connections: &meshv1alpha1.ConnectionLimits{MaxRequests: ptr.To(int32(10))}}}}
	// OSM's resilience kinds, of the same Service.
	uts := &policyv1alpha1.UpstreamTrafficSetting{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: policyv1alpha1.UpstreamTrafficSettingSpec{
		Host: "warehouse." + ns + ".svc.cluster.local", ConnectionSettings: &policyv1alpha1.ConnectionSettings{TCP: &policyv1alpha1.TCPConnectionSettings{MaxConnections: ptr.To[int64](10)}}}}
	retry := &policyv1alpha1.Retry{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: policyv1alpha1.RetrySpec{
		Source:       policyv1alpha1.RetrySource{Kind: policyv1alpha1.RetrySourceServiceAccount, Name: "web", Namespace: ns},
		Destinations: []policyv1alpha1.RetryDestination{{Kind: policyv1alpha1.RetryDestinationService, Name: "warehouse", Namespace: ns}},
		RetryPolicy:  policyv1alpha1.RetryPolicySpec{RetryOn: "5xx"}}}
	// The SMI kinds: their status is the operator's too.
	hrg := &specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}}}
	tcp := &specsv1alpha4.TCPRoute{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}}
	tt := &accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: "web-to-db", Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
		Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "db"},
		Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "web"}},
		Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "all"}, {Kind: "TCPRoute", Name: "db"}},
	}}
	ts := &splitv1alpha4.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns}, Spec: splitv1alpha4.TrafficSplitSpec{
		Service: "warehouse", Backends: []splitv1alpha4.TrafficSplitBackend{{Service: "warehouse", Weight: 100}}}}
	mustCreate(ib, eg, hr, gr, rp, uts, retry, hrg, tcp, tt, ts)
	for _, p := range []struct{ apiVersion, kind, name string }{
		{"specs.smi-spec.io/v1alpha4", "HTTPRouteGroup", hrg.Name}, {"specs.smi-spec.io/v1alpha4", "TCPRoute", tcp.Name},
		{"access.smi-spec.io/v1alpha3", "TrafficTarget", tt.Name}, {"split.smi-spec.io/v1alpha4", "TrafficSplit", ts.Name},
	} {
		testenv.Eventually(t, 30*time.Second, func() error {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion(p.apiVersion)
			u.SetKind(p.kind)
			if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: p.name}, u); err != nil {
				return err
			}
			if conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions"); len(conds) == 0 {
				return fmt.Errorf("%s %s has no status conditions yet", p.kind, p.name)
			}
			return nil
		})
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, o := range []client.Object{ib, eg, hr, gr, rp, uts, retry} {
			if err := k.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
				return err
			}
		}
		if ib.Status.ObservedGeneration == 0 || eg.Status.ObservedGeneration == 0 || len(hr.Status.Parents) == 0 || len(gr.Status.Parents) == 0 || len(rp.Status.Ancestors) == 0 ||
			uts.Status.ObservedGeneration == 0 || retry.Status.ObservedGeneration == 0 {
			return fmt.Errorf("the policies have no status yet: %+v, %+v, %+v, %+v, %+v, %+v, %+v", ib.Status, eg.Status, hr.Status, gr.Status, rp.Status, uts.Status, retry.Status)
		}
		return nil
	})

	// Everything goes: the VM, the member, the mesh.
	gone := func(obj client.Object) {
		t.Helper()
		if err := k.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 60*time.Second, func() error {
			err := k.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("%s is still there (%v)", obj.GetName(), err)
		})
	}
	gone(archive)
	gone(vm) // its EndpointSlice is its own: garbage collection takes it (envtest runs none)
	gone(mm)
	// The namespace left the mesh: its trust bundle ConfigMap goes.
	testenv.Eventually(t, 30*time.Second, func() error {
		err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.TrustBundleConfigMapName("demo")}, &corev1.ConfigMap{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the trust bundle ConfigMap of a namespace that left is still there (%v)", err)
	})
	gone(&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "demo"}})
	stop()

	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.forbidden) > 0 {
		t.Errorf("the role refused %d requests:\n%s", len(log.forbidden), strings.Join(log.forbidden, "\n"))
	}
	granted := grants(cr.Rules)
	for p := range grants(role.Rules) {
		granted[p] = true
	}
	var unused, ungranted []string
	for p := range granted {
		// Informers start with a streaming watch; they list when the
		// API server cannot stream, and on every relist.
		if p.verb == "list" && log.used[permission{p.group, p.resource, "watch"}] > 0 {
			continue
		}
		if log.used[p] == 0 {
			if why, ok := unreachable[p]; ok {
				t.Logf("granted and not used in this run: %s (%s)", p, why)
				continue
			}
			unused = append(unused, p.String())
		}
	}
	for p := range log.used {
		if !granted[p] {
			ungranted = append(ungranted, p.String())
		}
	}
	sort.Strings(unused)
	sort.Strings(ungranted)
	if len(unused) > 0 {
		t.Errorf("the role grants what the operator never used:\n%s", strings.Join(unused, "\n"))
	}
	if len(ungranted) > 0 {
		t.Errorf("the operator used what the role does not grant:\n%s", strings.Join(ungranted, "\n"))
	}
	var usedList []string
	for p, n := range log.used {
		usedList = append(usedList, fmt.Sprintf("%s ×%d", p, n))
	}
	sort.Strings(usedList)
	t.Logf("used:\n%s", strings.Join(usedList, "\n"))
}

// unreachable are the grants the test's run cannot exercise, and why.
var unreachable = map[permission]string{
	// An Event repeated soon after is patched into a series rather than
	// created again; whether a run repeats one is a matter of timing.
	{"", "events", "patch"}:              "a repeated Event is patched",
	{"events.k8s.io", "events", "patch"}: "a repeated Event is patched",
	// The finalizers subresources are no request of the operator's: the
	// OwnerReferencesPermissionEnforcement admission plugin checks them
	// when an owner reference the operator sets blocks its owner's
	// deletion. Without the grant, those writes are refused (seen with
	// this test's run: the mesh's ClusterIssuers could not be created).
	{"mesh.openservicemesh.io", "meshinstances/finalizers", "update"}: "checked by admission, not requested",
	{"mesh.openservicemesh.io", "meshmembers/finalizers", "update"}:   "checked by admission, not requested",
	{"mesh.openservicemesh.io", "meshvms/finalizers", "update"}:       "checked by admission, not requested",
	// cert-manager's webhook checks it (a SubjectAccessReview) when the
	// operator sets Approved or Denied on a CertificateRequest; the test
	// runs cert-manager's controllers, not its webhook.
	{"cert-manager.io", "signers", "approve"}: "checked by cert-manager's webhook, not requested",
	// A mesh's xDS Service is patched only when the shared one it mirrors
	// changes.
	{"", "services", "patch"}: "a mesh's xDS Service is patched when the shared one changes",
	// The trust bundle ConfigMaps are written by server-side apply: a
	// patch, which the API server authorizes as a create too when the
	// ConfigMap does not exist (seen with this test's run: without the
	// grant, every apply was refused).
	{"", "configmaps", "create"}: "checked by the API server when an apply creates, not requested",
}
