package controllers

import (
	"fmt"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
)

// VMConfigDir is where a VM keeps the files of its bootstrap Secret.
const VMConfigDir = "/etc/osm"

// Keys of a VM's bootstrap Secret.
const (
	BootstrapKey = "envoy.yaml"
	CertKey      = bootstrap.CertFile
	KeyKey       = bootstrap.KeyFile
	CAKey        = bootstrap.CAFile
	// The SDS files through which Envoy reads the three above.
	ClientCertSDSKey = bootstrap.ClientCertSDSFile
	TrustSDSKey      = bootstrap.TrustSDSFile
)

// vmBootstrap is the Envoy bootstrap of a MeshVM's proxy, with the identity
// and SDS files next to it in VMConfigDir, as indented JSON (which is YAML).
// Envoy re-reads the identity files when they are moved into VMConfigDir.
func vmBootstrap(mi *meshv1alpha1.MeshInstance, vm *meshv1alpha1.MeshVM, operatorNamespace string) ([]byte, error) {
	b, err := bootstrap.Envoy(bootstrap.Options{
		NodeID:      fmt.Sprintf("vm~%s~%s", vm.Namespace, vm.Name),
		Cluster:     vm.Spec.ServiceAccountName,
		XDSHost:     bootstrap.XDSAddress(mi.Spec.XDS.Address, operatorNamespace),
		XDSPort:     uint32(xdsPort(mi)),
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

func xdsPort(mi *meshv1alpha1.MeshInstance) int32 {
	if mi.Spec.XDS.Port == 0 {
		return 15128
	}
	return mi.Spec.XDS.Port
}
