package controllers

import (
	"fmt"
	"maps"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// VMConfigDir is where a VM keeps the files of its bootstrap Secret.
const VMConfigDir = "/etc/osm"

// Keys of a VM's bootstrap Secret.
const (
	BootstrapKey = "envoy.yaml"
	// GRPCBootstrapKey is a proxyless gRPC VM's xDS bootstrap, in place of
	// BootstrapKey and the SDS files: the application reads it through
	// GRPC_XDS_BOOTSTRAP.
	GRPCBootstrapKey = "grpc-xds-bootstrap.json"
	CertKey          = bootstrap.CertFile
	KeyKey           = bootstrap.KeyFile
	CAKey            = bootstrap.CAFile
	// The SDS files through which Envoy reads the three above.
	ClientCertSDSKey = bootstrap.ClientCertSDSFile
	TrustSDSKey      = bootstrap.TrustSDSFile
)

// vmBootstrapFiles are the files of a VM's bootstrap Secret besides its
// identity's: the Envoy bootstrap and its SDS files for an Envoy VM, the xDS
// bootstrap gRPC reads for a proxyless one, built by the injector's function
// for proxyless pods. Each reads the identity files from VMConfigDir.
func vmBootstrapFiles(mi *meshv1alpha1.MeshInstance, vm *meshv1alpha1.MeshVM, operatorNamespace string) (map[string][]byte, error) {
	if vm.Proxyless() {
		boot, err := bootstrap.GRPC(bootstrap.GRPCOptions{
			NodeID:      vmNodeID(vm),
			Cluster:     vm.Spec.ServiceAccountName,
			ServerURI:   bootstrap.GRPCServerURI(mi.Spec.XDS.Address, mi.Name, operatorNamespace, mi.Spec.XDS.EffectivePort()),
			IdentityDir: VMConfigDir,
			Refresh:     bootstrap.GRPCRefresh,
		})
		if err != nil {
			return nil, fmt.Errorf("encoding the gRPC bootstrap: %w", err)
		}
		return map[string][]byte{GRPCBootstrapKey: boot}, nil
	}
	boot, err := vmBootstrap(mi, vm, operatorNamespace)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{BootstrapKey: boot}
	maps.Copy(files, vmSDSFiles)
	return files, nil
}

// vmNodeID is the node ID a VM's proxy presents (see xds/mesh.ParseNodeID).
func vmNodeID(vm *meshv1alpha1.MeshVM) string {
	return mesh.VMNodeID(vm.Namespace, vm.Name)
}

// vmBootstrap is the Envoy bootstrap of a MeshVM's proxy, with the identity
// and SDS files next to it in VMConfigDir, as indented JSON (which is YAML).
// Envoy re-reads the identity files when they are moved into VMConfigDir.
func vmBootstrap(mi *meshv1alpha1.MeshInstance, vm *meshv1alpha1.MeshVM, operatorNamespace string) ([]byte, error) {
	b, err := bootstrap.Envoy(bootstrap.Options{
		NodeID:      vmNodeID(vm),
		Cluster:     vm.Spec.ServiceAccountName,
		XDSHost:     bootstrap.XDSAddress(mi.Spec.XDS.Address, operatorNamespace),
		XDSPort:     uint32(mi.Spec.XDS.EffectivePort()),
		ServerName:  bootstrap.XDSServerName(mi.Name, operatorNamespace),
		IdentityDir: VMConfigDir,
		SDSDir:      VMConfigDir,
	})
	if err != nil {
		return nil, err
	}
	return bootstrap.JSON(b, "  ")
}

// vmSDSFiles are the SDS files of every VM's folder.
var vmSDSFiles = bootstrap.MustSDSFiles(VMConfigDir)
