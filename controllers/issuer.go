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

// issuerFacts are what the operator read of the mesh's issuer, for
// verdict. cert-manager's ClusterIssuers are read from the cache; an
// external issuer's object is read as it is (unstructured, past the cache)
// through the kind the API server serves for its group.
type issuerFacts struct {
	ref cmmeta.IssuerReference
	// clusterIssuer is cert-manager's ClusterIssuer the ref names, nil when
	// there is none (or the ref names another kind).
	clusterIssuer *cmapi.ClusterIssuer
	// Of an issuer of another group: served says the API server serves its
	// kind, namespaced that the kind is namespaced; object is the issuer,
	// nil when it does not exist or may not be read (forbidden).
	served, namespaced, forbidden bool
	object                        *unstructured.Unstructured
}

// ofCertManager says whether ref names an issuer of cert-manager's own group.
func ofCertManager(ref cmmeta.IssuerReference) bool {
	return ref.Group == "" || ref.Group == certManagerGroup
}

// readIssuer reads the mesh's issuer.
func (r *MeshInstanceReconciler) readIssuer(ctx context.Context, mi *meshv1alpha1.MeshInstance) (issuerFacts, error) {
	f := issuerFacts{ref: meshIssuer(mi)}
	if ofCertManager(f.ref) {
		if f.ref.Kind != cmapi.ClusterIssuerKind {
			return f, nil
		}
		ci := &cmapi.ClusterIssuer{}
		if err := r.Get(ctx, client.ObjectKey{Name: f.ref.Name}, ci); apierrors.IsNotFound(err) {
			return f, nil
		} else if err != nil {
			return f, fmt.Errorf("reading ClusterIssuer %s: %w", f.ref.Name, err)
		}
		f.clusterIssuer = ci
		return f, nil
	}
	gk := schema.GroupKind{Group: f.ref.Group, Kind: f.ref.Kind}
	mapping, err := r.RESTMapper().RESTMapping(gk)
	if meta.IsNoMatchError(err) {
		return f, nil
	} else if err != nil {
		return f, fmt.Errorf("finding the API of issuer kind %s: %w", gk, err)
	}
	f.served = true
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		f.namespaced = true
		return f, nil
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mapping.GroupVersionKind)
	switch err := r.Get(ctx, client.ObjectKey{Name: f.ref.Name}, u); {
	case apierrors.IsNotFound(err):
	case apierrors.IsForbidden(err):
		logf.FromContext(ctx).V(1).Info("Cannot read the mesh's external issuer; judging it by its certificates", "kind", gk.String(), "issuer", f.ref.Name)
		f.forbidden = true
	case err != nil:
		return f, fmt.Errorf("reading %s %s: %w", gk, f.ref.Name, err)
	default:
		f.object = u
	}
	return f, nil
}

// verdict judges the mesh's issuer: the zero outcome when it may sign, or
// why it cannot. An issuer of another group must be of a served,
// cluster-scoped kind. Its object is read when the operator may read it
// (RBAC grants no group but cert-manager's by default): a Ready condition
// that is not True is the mesh's reason; without the object's word, the
// Certificates it issues (the xDS serving one first) tell.
func (f issuerFacts) verdict() outcome {
	ref := f.ref
	if ofCertManager(ref) {
		switch {
		case ref.Kind != cmapi.ClusterIssuerKind:
			return outcome{reason: meshv1alpha1.ReasonIssuerKindUnsupported, stalled: true,
				message: fmt.Sprintf("issuerRef %s/%s: an Issuer signs only in its own namespace, and workload identities live in theirs; use a ClusterIssuer", ref.Kind, ref.Name)}
		case f.clusterIssuer == nil:
			return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("ClusterIssuer %s not found", ref.Name)}
		}
		if ok, msg := issuerReady(f.clusterIssuer); !ok {
			return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("ClusterIssuer %s is not ready: %s", ref.Name, msg)}
		}
		return outcome{}
	}
	gk := schema.GroupKind{Group: ref.Group, Kind: ref.Kind}
	switch {
	case !f.served:
		return outcome{reason: meshv1alpha1.ReasonIssuerKindNotInstalled,
			message: fmt.Sprintf("issuerRef %s %s: the API server serves no kind %s in group %s; install the issuer's CRD", ref.Kind, ref.Name, ref.Kind, ref.Group)}
	case f.namespaced:
		return outcome{reason: meshv1alpha1.ReasonIssuerKindUnsupported, stalled: true,
			message: fmt.Sprintf("issuerRef %s %s: %s is a namespaced kind, which signs only in its own namespace, and workload identities live in theirs; use the issuer's cluster-scoped kind", ref.Kind, ref.Name, gk)}
	case f.forbidden:
		return outcome{}
	case f.object == nil:
		return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("%s %s not found", ref.Kind, ref.Name)}
	}
	if ok, msg, found := unstructuredReady(f.object); found && !ok {
		return outcome{reason: meshv1alpha1.ReasonIssuerNotReady, message: fmt.Sprintf("%s %s is not ready: %s", ref.Kind, ref.Name, msg)}
	}
	return outcome{}
}

func issuerReady(ci *cmapi.ClusterIssuer) (bool, string) {
	for _, c := range ci.Status.Conditions {
		if c.Type == cmapi.IssuerConditionReady {
			return c.Status == cmmeta.ConditionTrue, c.Message
		}
	}
	return false, "no Ready condition yet"
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
