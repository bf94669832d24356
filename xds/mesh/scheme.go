package mesh

import (
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// SMIKinds are the SMI kinds the model reads, at the versions it reads.
var SMIKinds = []schema.GroupVersionKind{
	accessv1alpha3.SchemeGroupVersion.WithKind("TrafficTarget"),
	specsv1alpha4.SchemeGroupVersion.WithKind("HTTPRouteGroup"),
	specsv1alpha4.SchemeGroupVersion.WithKind("TCPRoute"),
	splitv1alpha4.SchemeGroupVersion.WithKind("TrafficSplit"),
}

// AddToScheme registers every type the model is built from.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, meshv1alpha1.AddToScheme,
		accessv1alpha3.AddToScheme, specsv1alpha4.AddToScheme, splitv1alpha4.AddToScheme,
		policyv1alpha1.AddToScheme, gwv1.Install, gwv1beta1.Install,
	} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}

// NewScheme returns a scheme holding every type the model is built from.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(AddToScheme(s))
	return s
}
