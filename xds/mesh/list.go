package mesh

import (
	"context"
	"fmt"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// List reads every model input from the informer cache, without copies:
// the model only reads them. It returns the meshes apart: build each with
// in.Mesh set to it.
func List(ctx context.Context, c client.Reader) (Inputs, []*meshv1alpha1.MeshInstance, error) {
	var in Inputs
	noCopy := client.UnsafeDisableDeepCopy
	var (
		meshes  meshv1alpha1.MeshInstanceList
		nss     corev1.NamespaceList
		members meshv1alpha1.MeshMemberList
		svcs    corev1.ServiceList
		slices  discoveryv1.EndpointSliceList
		pods    corev1.PodList
		vms     meshv1alpha1.MeshVMList
		tts     accessv1alpha3.TrafficTargetList
		hrgs    specsv1alpha4.HTTPRouteGroupList
		tcps    specsv1alpha4.TCPRouteList
		splits  splitv1alpha4.TrafficSplitList
		lists   = []client.ObjectList{&meshes, &nss, &members, &svcs, &slices, &pods, &vms, &tts, &hrgs, &tcps, &splits}
	)
	for _, l := range lists {
		if err := c.List(ctx, l, noCopy); err != nil {
			return in, nil, fmt.Errorf("listing %T: %w", l, err)
		}
	}
	in.Namespaces = ptrs(nss.Items)
	in.Members = ptrs(members.Items)
	in.Services = ptrs(svcs.Items)
	in.EndpointSlices = ptrs(slices.Items)
	in.Pods = ptrs(pods.Items)
	in.VMs = ptrs(vms.Items)
	in.TrafficTargets = ptrs(tts.Items)
	in.HTTPRouteGroups = ptrs(hrgs.Items)
	in.TCPRoutes = ptrs(tcps.Items)
	in.TrafficSplits = ptrs(splits.Items)
	return in, ptrs(meshes.Items), nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
