package controllers

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// maxProblemsShown bounds the problems a PoliciesValid message lists.
const maxProblemsShown = 5

// checkPolicies builds the mesh model, as the xDS runner does, and reports
// the objects it had to leave out in the PoliciesValid condition.
func (r *MeshInstanceReconciler) checkPolicies(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	in, _, err := mesh.List(ctx, r.Client)
	if err != nil {
		return err
	}
	in.Mesh = mi
	_, problems := mesh.Build(in)
	if len(problems) == 0 {
		setCondition(&mi.Status.Conditions, mi.Generation, meshv1alpha1.ConditionPoliciesValid, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Every object of the mesh is in use")
		return nil
	}
	var shown []string
	for _, p := range problems[:min(len(problems), maxProblemsShown)] {
		shown = append(shown, p.Error())
	}
	msg := fmt.Sprintf("%d objects were left out (what they would allow is denied): %s", len(problems), strings.Join(shown, "; "))
	if len(problems) > maxProblemsShown {
		msg += "; …"
	}
	setCondition(&mi.Status.Conditions, mi.Generation, meshv1alpha1.ConditionPoliciesValid, metav1.ConditionFalse, meshv1alpha1.ReasonInvalidObjects, msg)
	return nil
}
