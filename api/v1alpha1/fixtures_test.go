package v1alpha1_test

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Valid objects of each kind, changed by options into the case under test.

func meshInstance(name string, opts ...func(*meshv1alpha1.MeshInstance)) *meshv1alpha1.MeshInstance {
	m := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, o := range opts {
		o(m)
	}
	return m
}

func meshMember(ns string, opts ...func(*meshv1alpha1.MeshMember)) *meshv1alpha1.MeshMember {
	m := &meshv1alpha1.MeshMember{
		ObjectMeta: metav1.ObjectMeta{Name: "member", Namespace: ns},
		Spec:       meshv1alpha1.MeshMemberSpec{Mesh: "osm"},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func meshVM(ns string, opts ...func(*meshv1alpha1.MeshVM)) *meshv1alpha1.MeshVM {
	m := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh:               "osm",
			ServiceAccountName: "warehouse",
			Addresses:          []string{"192.0.2.10", "2001:db8::10"},
			Ports: []meshv1alpha1.VMPort{
				{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP},
				{Name: "grpc", Port: 9090, Protocol: meshv1alpha1.ProtocolGRPC},
			},
			Services: []string{"warehouse"},
		},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}
