package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The validating webhooks check what CEL cannot see: other objects. A
// conflict that would make the mesh wrong is denied; a reference to an
// object that may simply not be applied yet (GitOps applies in any order)
// is a warning. Messages name the object and the field. Their failure
// policy is Ignore: with the operator down, the API server's own schema and
// CEL rules still hold, and GitOps syncs are not blocked.

// check makes an admission validator of a check of the object as it is to
// be: creates and updates are checked, an object being deleted is let go
// (finalizers must never be blocked), and deletions are not checked.
type check[T client.Object] func(ctx context.Context, obj T) (admission.Warnings, error)

func (c check[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	return c(ctx, obj)
}

func (c check[T]) ValidateUpdate(ctx context.Context, _, obj T) (admission.Warnings, error) {
	if !obj.GetDeletionTimestamp().IsZero() {
		return nil, nil
	}
	return c(ctx, obj)
}

func (check[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) { return nil, nil }

// exists reads key into obj and says whether it exists.
func exists(ctx context.Context, r client.Reader, key client.ObjectKey, obj client.Object) (bool, error) {
	err := r.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %T %s: %w", obj, key, err)
	}
	return true, nil
}

// meshWarning warns when the MeshInstance a member names does not exist.
func meshWarning(ctx context.Context, r client.Reader, what, meshName string) (admission.Warnings, error) {
	ok, err := exists(ctx, r, client.ObjectKey{Name: meshName}, &meshv1alpha1.MeshInstance{})
	if err != nil || ok {
		return nil, err
	}
	return admission.Warnings{fmt.Sprintf("%s: spec.mesh: MeshInstance %q does not exist; the member waits for it", what, meshName)}, nil
}

// +kubebuilder:webhook:path=/validate-mesh-openservicemesh-io-v1alpha1-meshmember,mutating=false,failurePolicy=ignore,sideEffects=None,groups=mesh.openservicemesh.io,resources=meshmembers,verbs=create;update,versions=v1alpha1,name=meshmember.mesh.openservicemesh.io,admissionReviewVersions=v1

// MeshMemberValidator denies a second mesh in one namespace and warns of a
// mesh that does not exist.
type MeshMemberValidator struct{ Reader client.Reader }

func (v MeshMemberValidator) Validate(ctx context.Context, mm *meshv1alpha1.MeshMember) (admission.Warnings, error) {
	what := fmt.Sprintf("MeshMember %s/%s", mm.Namespace, mm.Name)
	var members meshv1alpha1.MeshMemberList
	if err := v.Reader.List(ctx, &members, client.InNamespace(mm.Namespace)); err != nil {
		return nil, fmt.Errorf("listing the MeshMembers of %s: %w", mm.Namespace, err)
	}
	for _, o := range members.Items {
		if o.Name != mm.Name && o.Spec.Mesh != mm.Spec.Mesh && o.DeletionTimestamp.IsZero() {
			return nil, fmt.Errorf("%s: spec.mesh %q: namespace %s is already a member of mesh %q through MeshMember %s; a namespace belongs to one mesh",
				what, mm.Spec.Mesh, mm.Namespace, o.Spec.Mesh, o.Name)
		}
	}
	warnings, err := meshWarning(ctx, v.Reader, what, mm.Spec.Mesh)
	if err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{}
	if ok, err := exists(ctx, v.Reader, client.ObjectKey{Name: mm.Namespace}, ns); err != nil {
		return nil, err
	} else if other := ns.Labels[meshv1alpha1.MonitorLabel]; ok && other != "" && other != mm.Spec.Mesh {
		warnings = append(warnings, fmt.Sprintf("%s: namespace %s is labelled %s=%s; the operator relabels it for mesh %q",
			what, mm.Namespace, meshv1alpha1.MonitorLabel, other, mm.Spec.Mesh))
	}
	return warnings, nil
}

// +kubebuilder:webhook:path=/validate-mesh-openservicemesh-io-v1alpha1-meshvm,mutating=false,failurePolicy=ignore,sideEffects=None,groups=mesh.openservicemesh.io,resources=meshvms,verbs=create;update,versions=v1alpha1,name=meshvm.mesh.openservicemesh.io,admissionReviewVersions=v1

// MeshVMValidator denies an address no VM may have (mesh.CheckVMAddress:
// loopback, unspecified, link-local with the cloud metadata address,
// multicast, broadcast) or that another MeshVM of the mesh has, and warns of
// a mesh or a Service that does not exist. An address that is a pod's is not
// checked here: a pod may take it after admission, so the MeshVM controller
// and the mesh model check it where they publish the address.
type MeshVMValidator struct{ Reader client.Reader }

func (v MeshVMValidator) Validate(ctx context.Context, vm *meshv1alpha1.MeshVM) (admission.Warnings, error) {
	what := fmt.Sprintf("MeshVM %s/%s", vm.Namespace, vm.Name)
	var vms meshv1alpha1.MeshVMList
	if err := v.Reader.List(ctx, &vms); err != nil {
		return nil, fmt.Errorf("listing MeshVMs: %w", err)
	}
	for i, a := range vm.Spec.Addresses {
		if err := mesh.CheckVMAddress(a, nil); err != nil {
			return nil, fmt.Errorf("%s: spec.addresses[%d]: %w", what, i, err)
		}
		addr, _ := netip.ParseAddr(a) // CheckVMAddress parsed it
		for _, o := range vms.Items {
			if o.Spec.Mesh != vm.Spec.Mesh || (o.Namespace == vm.Namespace && o.Name == vm.Name) || !o.DeletionTimestamp.IsZero() {
				continue
			}
			if slices.ContainsFunc(o.Spec.Addresses, func(b string) bool { p, err := netip.ParseAddr(b); return err == nil && p == addr }) {
				return nil, fmt.Errorf("%s: spec.addresses[%d]: %s is already the address of MeshVM %s/%s in mesh %q",
					what, i, a, o.Namespace, o.Name, vm.Spec.Mesh)
			}
		}
	}
	if other, err := mesh.NamespaceMesh(ctx, v.Reader, vm.Namespace); err != nil {
		return nil, err
	} else if other != "" && other != vm.Spec.Mesh {
		return nil, fmt.Errorf("%s: spec.mesh %q: namespace %s is a member of mesh %q; a VM joins the mesh of its namespace", what, vm.Spec.Mesh, vm.Namespace, other)
	} else if other == "" {
		// In no mesh, the namespace is its first MeshVM's. On an update
		// the VM's stored copy counts, with its own creation and mesh.
		first := mesh.FirstVM(func(yield func(*meshv1alpha1.MeshVM) bool) {
			for o := range mesh.Items(vms.Items) {
				if o.Namespace == vm.Namespace && !yield(o) {
					return
				}
			}
		})
		if why := mesh.VMMeshConflict(vm, "", first); why != "" {
			return nil, fmt.Errorf("%s: spec.mesh %q: %s", what, vm.Spec.Mesh, why)
		}
	}
	warnings, err := meshWarning(ctx, v.Reader, what, vm.Spec.Mesh)
	if err != nil {
		return nil, err
	}
	for i, s := range vm.Spec.Services {
		ok, err := exists(ctx, v.Reader, client.ObjectKey{Namespace: vm.Namespace, Name: s}, &corev1.Service{})
		if err != nil {
			return nil, err
		}
		if !ok {
			warnings = append(warnings, fmt.Sprintf("%s: spec.services[%d]: Service %s/%s does not exist; the VM backs it once it does", what, i, vm.Namespace, s))
		}
	}
	return warnings, nil
}

// +kubebuilder:webhook:path=/validate-access-smi-spec-io-v1alpha3-traffictarget,mutating=false,failurePolicy=ignore,sideEffects=None,groups=access.smi-spec.io,resources=traffictargets,verbs=create;update,versions=v1alpha3,name=traffictarget.mesh.openservicemesh.io,admissionReviewVersions=v1

// TrafficTargetValidator denies what the mesh cannot enforce
// (mesh.CheckTrafficTarget: subjects that are not service accounts, a
// destination in another namespace, rules of unknown kinds) and warns of
// what allows nothing (mesh.CheckHTTPRule, mesh.CheckTCPRule: a route that
// does not exist, or matches it does not have) and of sources outside the
// mesh (mesh.SourceOutsideMesh). The mesh model runs the same checks.
type TrafficTargetValidator struct{ Reader client.Reader }

func (v TrafficTargetValidator) Validate(ctx context.Context, tt *accessv1alpha3.TrafficTarget) (admission.Warnings, error) {
	what := fmt.Sprintf("TrafficTarget %s/%s", tt.Namespace, tt.Name)
	if errs := mesh.CheckTrafficTarget(tt); len(errs) > 0 {
		return nil, refusal(what, errs)
	}
	var warnings admission.Warnings
	warn := func(errs []mesh.FieldError) {
		for _, e := range errs {
			warnings = append(warnings, fmt.Sprintf("%s: %v", what, e))
		}
	}
	// A source of another mesh, or of none, is left out of the policy. It
	// may join the mesh later (GitOps applies in any order): a warning.
	here, err := mesh.NamespaceMesh(ctx, v.Reader, tt.Namespace)
	if err != nil {
		return nil, err
	}
	for i, s := range tt.Spec.Sources {
		if s.Namespace == "" || s.Namespace == tt.Namespace || here == "" {
			continue
		}
		there, err := mesh.NamespaceMesh(ctx, v.Reader, s.Namespace)
		if err != nil {
			return nil, err
		}
		if there == here {
			continue
		}
		if there == "" {
			// A namespace holding a MeshVM of the mesh holds its workloads.
			vm, err := holdsVM(ctx, v.Reader, s.Namespace, here)
			if err != nil {
				return nil, err
			}
			if vm {
				continue
			}
		}
		warn([]mesh.FieldError{mesh.SourceOutsideMesh(i, s.Namespace, here, there)})
	}
	for i, r := range tt.Spec.Rules {
		key := client.ObjectKey{Namespace: tt.Namespace, Name: r.Name}
		switch r.Kind {
		case "HTTPRouteGroup":
			g, err := get(ctx, v.Reader, key, &specsv1alpha4.HTTPRouteGroup{})
			if err != nil {
				return nil, err
			}
			warn(mesh.CheckHTTPRule(tt, i, g))
		case "TCPRoute":
			rt, err := get(ctx, v.Reader, key, &specsv1alpha4.TCPRoute{})
			if err != nil {
				return nil, err
			}
			warn(mesh.CheckTCPRule(tt, i, rt))
		}
	}
	return warnings, nil
}

// get reads key into obj: obj when it exists, nil when it does not.
func get[T client.Object](ctx context.Context, r client.Reader, key client.ObjectKey, obj T) (T, error) {
	var none T
	ok, err := exists(ctx, r, key, obj)
	if err != nil || !ok {
		return none, err
	}
	return obj, nil
}

// holdsVM says whether namespace holds a MeshVM of mesh.
func holdsVM(ctx context.Context, r client.Reader, namespace, meshName string) (bool, error) {
	var vms meshv1alpha1.MeshVMList
	if err := r.List(ctx, &vms, client.InNamespace(namespace)); err != nil {
		return false, fmt.Errorf("listing the MeshVMs of %s: %w", namespace, err)
	}
	return slices.ContainsFunc(vms.Items, func(vm meshv1alpha1.MeshVM) bool {
		return vm.Spec.Mesh == meshName && vm.DeletionTimestamp.IsZero()
	}), nil
}

// refusal is the denial of what, for errs.
func refusal(what string, errs []mesh.FieldError) error {
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return fmt.Errorf("%s: %w", what, errors.Join(all...))
}

// +kubebuilder:webhook:path=/validate-split-smi-spec-io-v1alpha4-trafficsplit,mutating=false,failurePolicy=ignore,sideEffects=None,groups=split.smi-spec.io,resources=trafficsplits,verbs=create;update,versions=v1alpha4,name=trafficsplit.mesh.openservicemesh.io,admissionReviewVersions=v1

// TrafficSplitValidator denies a split that cannot route
// (mesh.CheckTrafficSplit: no backends, weights out of range or all zero, a
// backend named twice, a Service of another namespace) and a second split
// of one Service (mesh.SplitConflict), and warns of Services that do not
// exist, or that a split cannot send the root's traffic to, and of what
// the model then does (mesh.PlanSplit, the model's decision): they may be
// created or changed later.
type TrafficSplitValidator struct{ Reader client.Reader }

func (v TrafficSplitValidator) Validate(ctx context.Context, ts *splitv1alpha4.TrafficSplit) (admission.Warnings, error) {
	what := fmt.Sprintf("TrafficSplit %s/%s", ts.Namespace, ts.Name)
	if errs := mesh.CheckTrafficSplit(ts); len(errs) > 0 {
		return nil, refusal(what, errs)
	}
	root, _ := mesh.SplitService(ts.Spec.Service, ts.Namespace) // CheckTrafficSplit checked them
	var splits splitv1alpha4.TrafficSplitList
	if err := v.Reader.List(ctx, &splits, client.InNamespace(ts.Namespace)); err != nil {
		return nil, fmt.Errorf("listing the TrafficSplits of %s: %w", ts.Namespace, err)
	}
	for _, o := range splits.Items {
		if o.Name == ts.Name || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if r, err := mesh.SplitService(o.Spec.Service, o.Namespace); err == nil && r == root {
			return nil, refusal(what, []mesh.FieldError{mesh.SplitConflict(mesh.ServiceKey{Namespace: ts.Namespace, Name: root}, o.Name)})
		}
	}
	// The Services the split names, as the model's PlanSplit sees them.
	names := []string{root}
	for _, b := range ts.Spec.Backends {
		name, _ := mesh.SplitService(b.Service, ts.Namespace)
		names = append(names, name)
	}
	targets := map[string]*mesh.SplitTarget{}
	for _, name := range names {
		if _, read := targets[name]; read {
			continue
		}
		svc, err := get(ctx, v.Reader, client.ObjectKey{Namespace: ts.Namespace, Name: name}, &corev1.Service{})
		if err != nil {
			return nil, err
		}
		targets[name] = nil
		if svc != nil {
			t := mesh.SplitTargetOf(svc)
			targets[name] = &t
		}
	}
	plan := mesh.PlanSplit(ts, func(name string) (mesh.SplitTarget, bool) {
		if t := targets[name]; t != nil {
			return *t, true
		}
		return mesh.SplitTarget{}, false
	})
	var warnings admission.Warnings
	for _, p := range plan.Problems {
		warnings = append(warnings, what+": "+p.Error())
	}
	return warnings, nil
}

// +kubebuilder:webhook:path=/validate-specs-smi-spec-io-v1alpha4-httproutegroup,mutating=false,failurePolicy=ignore,sideEffects=None,groups=specs.smi-spec.io,resources=httproutegroups,verbs=create;update,versions=v1alpha4,name=httproutegroup.mesh.openservicemesh.io,admissionReviewVersions=v1

// HTTPRouteGroupValidator denies matches a proxy could not enforce and
// match names used twice, which a TrafficTarget could not tell apart
// (mesh.CheckHTTPRouteGroup, which the mesh model runs too).
type HTTPRouteGroupValidator struct{}

func (HTTPRouteGroupValidator) Validate(_ context.Context, g *specsv1alpha4.HTTPRouteGroup) (admission.Warnings, error) {
	if errs := mesh.CheckHTTPRouteGroup(g); len(errs) > 0 {
		return nil, refusal(fmt.Sprintf("HTTPRouteGroup %s/%s", g.Namespace, g.Name), errs)
	}
	return nil, nil
}
