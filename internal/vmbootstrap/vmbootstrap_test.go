package vmbootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

func TestFolderForAVM(t *testing.T) {
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm", Namespace: "books"},
		Spec:       meshv1alpha1.MeshVMSpec{Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080}, {Name: "admin", Port: 9000}}},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm-bootstrap", Namespace: "books"}, Data: map[string][]byte{
		"envoy.yaml": []byte("{}"), "tls.crt": []byte("crt"), "tls.key": []byte("key"), "ca.crt": []byte("ca"),
		"xds-client-cert.json": []byte("{}"), "xds-trust.json": []byte("{}"),
	}}
	files, err := Files(vm, secret)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	script, _ := os.ReadFile(filepath.Join(dir, IptablesScript))
	for _, want := range []string{"--dport 8080 -j REDIRECT --to-ports 15003", "--dport 9000 -j REDIRECT --to-ports 15003", "--uid-owner envoy -j RETURN", "--to-ports 15001"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("iptables.sh lacks %q", want)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "tls.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode %v, %v", st.Mode(), err)
	}
	unit, _ := os.ReadFile(filepath.Join(dir, SystemdUnit))
	if !strings.Contains(string(unit), "--config-path /etc/osm/envoy.yaml") {
		t.Errorf("unit:\n%s", unit)
	}

	delete(secret.Data, "tls.key")
	if _, err := Files(vm, secret); err == nil || !strings.Contains(err.Error(), "is the MeshVM Ready") {
		t.Errorf("a Secret without a key gave %v", err)
	}
}
