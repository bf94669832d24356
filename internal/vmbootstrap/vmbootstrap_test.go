package vmbootstrap

import (
	"os"
	"path/filepath"
	"slices"
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
	dir := filepath.Join(t.TempDir(), "warehouse-vm")
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

// The folder holds the VM's private key: Write creates it for its owner
// alone, writes the key 0600 even over a key file left 0644, replaces a
// symbolic link planted in its place instead of writing through it, and
// refuses a folder it did not create.
func TestWriteKeepsTheKeyPrivate(t *testing.T) {
	files := map[string][]byte{"tls.key": []byte("key"), "tls.crt": []byte("crt")}
	root := t.TempDir()
	dir := filepath.Join(root, "vm")
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v, %v; want 0700", st.Mode(), err)
	}

	// A key left readable by all, and a link planted for the certificate.
	if err := os.Chmod(filepath.Join(dir, "tls.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(root, "outside")
	if err := os.WriteFile(outside, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, files); err != nil {
		t.Fatalf("writing again into its own folder: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "tls.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode %v, %v; want 0600", st.Mode(), err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "precious" {
		t.Errorf("the file a planted link pointed to now holds %q", b)
	}
	if st, err := os.Lstat(filepath.Join(dir, "tls.crt")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("tls.crt is %v, %v; want a regular file", st.Mode(), err)
	}

	// Folders it did not create: an existing one, and a link to one.
	foreign := filepath.Join(root, "home")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(foreign, files); err == nil || !strings.Contains(err.Error(), "was not written by") {
		t.Errorf("writing into a folder it did not create: %v", err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, files); err == nil {
		t.Error("wrote through a link to a folder")
	}
	if entries, _ := os.ReadDir(foreign); len(entries) != 0 {
		t.Errorf("the foreign folder now holds %d files", len(entries))
	}
}

// A folder with the marker is not enough: someone else may have prepared it
// (say /tmp/vm1, mode 0777, with a marker) to swap iptables.sh, which runs as
// root on the VM, before the admin copies the folder. Write writes again
// only into a folder owned by the user running it, open to no one else,
// whose marker is a regular file of that user; the folder Write created is
// accepted again.
func TestWriteRefusesAFolderSomeoneElsePrepared(t *testing.T) {
	files := map[string][]byte{"tls.key": []byte("key"), IptablesScript: []byte("#!/bin/sh\n")}
	root := t.TempDir()
	prepare := func(name string, mode os.FileMode) string {
		t.Helper()
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, Marker), []byte("Written by osm-operator vm bootstrap.\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return dir
	}
	refused := func(dir, want string) {
		t.Helper()
		err := Write(dir, files)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Write(%s): %v; want a refusal saying %q", dir, err, want)
		}
		if _, err := os.Lstat(filepath.Join(dir, IptablesScript)); err == nil {
			t.Errorf("Write(%s) wrote %s", dir, IptablesScript)
		}
	}

	refused(prepare("open", 0o777), "has mode 0777: others than its owner may read or change its files")
	refused(prepare("group", 0o770), "has mode 0770")
	refused(prepare("readable", 0o705), "has mode 0705")

	// The folder Write created, written into again.
	own := filepath.Join(root, "own")
	if err := Write(own, files); err != nil {
		t.Fatal(err)
	}
	if err := Write(own, files); err != nil {
		t.Errorf("writing again into its own folder: %v", err)
	}
	// A marker that is not a regular file.
	linked := prepare("linked-marker", 0o700)
	if err := os.Remove(filepath.Join(linked, Marker)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(own, Marker), filepath.Join(linked, Marker)); err != nil {
		t.Fatal(err)
	}
	refused(linked, "was not written by osm-operator vm bootstrap")

	// Folders and markers of another user: only root can make them.
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot give a folder to another user")
	}
	const nobody = 65534
	theirs := prepare("theirs", 0o700)
	if err := os.Lchown(theirs, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	refused(theirs, "folder "+theirs+" is owned by uid 65534, not by you (uid 0)")
	theirMarker := prepare("their-marker", 0o700)
	if err := os.Lchown(filepath.Join(theirMarker, Marker), nobody, nobody); err != nil {
		t.Fatal(err)
	}
	refused(theirMarker, "its marker "+Marker+" is owned by uid 65534, not by you (uid 0)")
}

// A proxyless gRPC VM's folder is its gRPC bootstrap and identity files:
// no Envoy bootstrap, no script run as root, no unit; the next steps name
// the bootstrap's place.
func TestFolderForAProxylessVM(t *testing.T) {
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger-vm", Namespace: "books"},
		Spec:       meshv1alpha1.MeshVMSpec{Proxy: meshv1alpha1.ProxyProxylessGRPC, Ports: []meshv1alpha1.VMPort{{Name: "grpc", Port: 9090}}},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ledger-vm-bootstrap", Namespace: "books"}, Data: map[string][]byte{
		"grpc-xds-bootstrap.json": []byte("{}"), "tls.crt": []byte("crt"), "tls.key": []byte("key"), "ca.crt": []byte("ca"),
		// Left from when the VM ran Envoy: not copied.
		"envoy.yaml": []byte("{}"),
	}}
	files, err := Files(vm, secret)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"ca.crt", "grpc-xds-bootstrap.json", "tls.crt", "tls.key"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	if next := NextSteps(vm); !strings.Contains(next, "GRPC_XDS_BOOTSTRAP=/etc/osm/grpc-xds-bootstrap.json") {
		t.Errorf("next steps: %s", next)
	}
	delete(secret.Data, "grpc-xds-bootstrap.json")
	if _, err := Files(vm, secret); err == nil || !strings.Contains(err.Error(), "grpc-xds-bootstrap.json") {
		t.Errorf("a Secret without the gRPC bootstrap gave %v", err)
	}
}
