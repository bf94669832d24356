package controllers

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// certManagerGroup is cert-manager's API group, its issuers' and the
// default of an issuerRef.
const certManagerGroup = "cert-manager.io"

// checkIssuer judges the mesh's issuer: the zero outcome when it may sign,
// or why it cannot. cert-manager's ClusterIssuers are read from the cache;
// an external issuer's object is read as it is (unstructured, past the
// cache) through the kind the API server serves for its group.
func (r *MeshInstanceReconciler) checkIssuer(ctx context.Context, mi *meshv1alpha1.MeshInstance) (outcome, error) {
	ref := meshIssuer(mi)
	if ref.Group == "" || ref.Group == certManagerGroup {
		return r.checkClusterIssuer(ctx, ref)
	}
	return r.checkExternalIssuer(ctx, ref)
}

func (r *MeshInstanceReconciler) checkClusterIssuer(ctx context.Context, ref cmmeta.IssuerReference) (outcome, error) {
	if ref.Kind != cmapi.ClusterIssuerKind {
		return outcome{reason: meshv1alpha1.ReasonIssuerKindUnsupported, stalled: true,
			message: fmt.Sprintf("issuerRef %s/%s: an Issuer signs only in its own namespace, and workload identities live in theirs; use a ClusterIssuer", ref.Kind, ref.Name)}, nil
	}
	ci := &cmapi.ClusterIssuer{}
	if err := r.Get(ctx, client.ObjectKey{Name: ref.Name}, ci); apierrors.IsNotFound(err) {
		return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("ClusterIssuer %s not found", ref.Name)}, nil
	} else if err != nil {
		return outcome{}, fmt.Errorf("reading ClusterIssuer %s: %w", ref.Name, err)
	}
	if ok, msg := issuerReady(ci); !ok {
		return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("ClusterIssuer %s is not ready: %s", ref.Name, msg)}, nil
	}
	return outcome{}, nil
}

func issuerReady(ci *cmapi.ClusterIssuer) (bool, string) {
	for _, c := range ci.Status.Conditions {
		if c.Type == cmapi.IssuerConditionReady {
			return c.Status == cmmeta.ConditionTrue, c.Message
		}
	}
	return false, "no Ready condition yet"
}

// checkExternalIssuer judges an issuer of another group. Its kind must be
// served and cluster-scoped. Its object is read when the operator may read
// it (RBAC grants no group but cert-manager's by default): a Ready
// condition that is not True is the mesh's reason; without the object's
// word, the Certificates it issues (the xDS serving one first) tell.
func (r *MeshInstanceReconciler) checkExternalIssuer(ctx context.Context, ref cmmeta.IssuerReference) (outcome, error) {
	gk := schema.GroupKind{Group: ref.Group, Kind: ref.Kind}
	mapping, err := r.RESTMapper().RESTMapping(gk)
	if meta.IsNoMatchError(err) {
		return outcome{reason: meshv1alpha1.ReasonIssuerKindNotInstalled,
			message: fmt.Sprintf("issuerRef %s %s: the API server serves no kind %s in group %s; install the issuer's CRD", ref.Kind, ref.Name, ref.Kind, ref.Group)}, nil
	} else if err != nil {
		return outcome{}, fmt.Errorf("finding the API of issuer kind %s: %w", gk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return outcome{reason: meshv1alpha1.ReasonIssuerKindUnsupported, stalled: true,
			message: fmt.Sprintf("issuerRef %s %s: %s is a namespaced kind, which signs only in its own namespace, and workload identities live in theirs; use the issuer's cluster-scoped kind", ref.Kind, ref.Name, gk)}, nil
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mapping.GroupVersionKind)
	switch err := r.Get(ctx, client.ObjectKey{Name: ref.Name}, u); {
	case apierrors.IsNotFound(err):
		return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("%s %s not found", ref.Kind, ref.Name)}, nil
	case apierrors.IsForbidden(err):
		logf.FromContext(ctx).V(1).Info("Cannot read the mesh's external issuer; judging it by its certificates", "kind", gk.String(), "issuer", ref.Name)
		return outcome{}, nil
	case err != nil:
		return outcome{}, fmt.Errorf("reading %s %s: %w", gk, ref.Name, err)
	}
	if ok, msg, found := unstructuredReady(u); found && !ok {
		return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("%s %s is not ready: %s", ref.Kind, ref.Name, msg)}, nil
	}
	return outcome{}, nil
}

// unstructuredReady reads an object's status.conditions Ready, the
// convention cert-manager's external issuers follow; found is false when the
// object has none (or not in that form).
func unstructuredReady(u *unstructured.Unstructured) (ok bool, message string, found bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, isMap := c.(map[string]any)
		if !isMap || m["type"] != "Ready" {
			continue
		}
		status, _ := m["status"].(string)
		message, _ = m["message"].(string)
		if message == "" {
			message, _ = m["reason"].(string)
		}
		return status == string(cmmeta.ConditionTrue), truncate(message, maxIssuerMessage), true
	}
	return false, "", false
}

// maxIssuerMessage bounds what of an external issuer's message the mesh's
// condition repeats: the issuer's controller, not the operator, wrote it.
const maxIssuerMessage = 512
