package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/vmbootstrap"
)

// TestProxylessVMGetsAGRPCBootstrap: a MeshVM whose proxy is ProxylessGRPC
// gets the xDS bootstrap gRPC reads (grpc-go's format, the injector's
// function) with its identity files, and none of what an Envoy VM needs: no
// Envoy bootstrap, no SDS files, no iptables script, no systemd unit.
func TestProxylessVMGetsAGRPCBootstrap(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "grpcvms"}}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: "grpcvms", ServiceAccountName: "ledger", Proxy: meshv1alpha1.ProxyProxylessGRPC,
			Addresses: []string{"192.0.2.30"},
			Ports:     []meshv1alpha1.VMPort{{Name: "grpc", Port: 9090, Protocol: meshv1alpha1.ProtocolGRPC}},
		},
	}
	if err := k8s.Create(ctx, vm); err != nil {
		t.Fatal(err)
	}
	boot := &corev1.Secret{}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionBootstrapReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("BootstrapReady = %+v", c)
		}
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: vm.Status.BootstrapSecretName}, boot)
	})
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range boot.Data {
			if !yield(k) {
				return
			}
		}
	})
	want := []string{controllers.CAKey, controllers.GRPCBootstrapKey, controllers.CertKey, controllers.KeyKey}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("the bootstrap Secret holds %v, want %v", keys, want)
	}
	var g struct {
		XDSServers []struct {
			ServerURI    string `json:"server_uri"`
			ChannelCreds []struct {
				Type   string            `json:"type"`
				Config map[string]string `json:"config"`
			} `json:"channel_creds"`
			ServerFeatures []string `json:"server_features"`
		} `json:"xds_servers"`
		Node struct {
			ID      string `json:"id"`
			Cluster string `json:"cluster"`
		} `json:"node"`
		CertificateProviders map[string]struct {
			PluginName string            `json:"plugin_name"`
			Config     map[string]string `json:"config"`
		} `json:"certificate_providers"`
		ListenerTemplate string `json:"server_listener_resource_name_template"`
	}
	if err := json.Unmarshal(boot.Data[controllers.GRPCBootstrapKey], &g); err != nil {
		t.Fatalf("the gRPC bootstrap does not parse: %v\n%s", err, boot.Data[controllers.GRPCBootstrapKey])
	}
	if g.Node.ID != "vm~"+ns+"~ledger-vm" || g.Node.Cluster != "ledger" {
		t.Errorf("node %+v", g.Node)
	}
	if len(g.XDSServers) != 1 || !slices.Equal(g.XDSServers[0].ServerFeatures, []string{"xds_v3"}) ||
		len(g.XDSServers[0].ChannelCreds) != 1 || g.XDSServers[0].ChannelCreds[0].Type != "tls" ||
		g.XDSServers[0].ChannelCreds[0].Config["certificate_file"] != path.Join(controllers.VMConfigDir, controllers.CertKey) {
		t.Errorf("xds_servers %+v", g.XDSServers)
	}
	if p, ok := g.CertificateProviders["mesh"]; !ok || p.PluginName != "file_watcher" ||
		p.Config["private_key_file"] != path.Join(controllers.VMConfigDir, controllers.KeyKey) ||
		p.Config["ca_certificate_file"] != path.Join(controllers.VMConfigDir, controllers.CAKey) {
		t.Errorf("certificate_providers %+v", g.CertificateProviders)
	}
	if g.ListenerTemplate == "" {
		t.Error("no server_listener_resource_name_template")
	}

	_, files, err := vmbootstrap.Fetch(ctx, k8s, ns, vm.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{controllers.BootstrapKey, controllers.ClientCertSDSKey, controllers.TrustSDSKey, vmbootstrap.IptablesScript, vmbootstrap.SystemdUnit} {
		if _, ok := files[f]; ok {
			t.Errorf("the folder of a proxyless VM holds %s", f)
		}
	}
	if len(files[controllers.GRPCBootstrapKey]) == 0 {
		t.Error("the folder of a proxyless VM lacks its gRPC bootstrap")
	}
}
