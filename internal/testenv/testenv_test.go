package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestMissingBinariesSayHowToBuildThem: a machine without the control plane
// gets an error naming the fix, never a silent skip.
func TestMissingBinariesSayHowToBuildThem(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("ENVTEST_STORE", t.TempDir())
	_, err = binaryAssets(root)
	if err == nil {
		t.Fatal("an empty store was accepted")
	}
	for _, want := range []string{"kube-apiserver is missing", "make envtest", "KUBEBUILDER_ASSETS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestAssetsFromTheStoreAtThePinnedVersion(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	version, err := pinnedVersion(filepath.Join(root, "hack", "envtest-versions.env"), "KUBE_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	dir := filepath.Join(store, "k8s", version+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if err := os.WriteFile(filepath.Join(dir, bin), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("ENVTEST_STORE", store)
	got, err := binaryAssets(root)
	if err != nil {
		t.Fatal(err)
	}
	if got != dir {
		t.Errorf("assets = %s, want %s", got, dir)
	}
}

// The store is found as hack/build-envtest.sh finds it, so that a test
// looking for the binaries there (hack/demo's) looks where `make envtest`
// put them.
func TestStoreIsTheBuildScripts(t *testing.T) {
	home := t.TempDir()
	for _, c := range []struct {
		name, store, xdg, want string
	}{
		{"ENVTEST_STORE", "/srv/envtest", "/data", "/srv/envtest"},
		{"XDG_DATA_HOME", "", "/data", "/data/kubebuilder-envtest"},
		{"the home directory", "", "", filepath.Join(home, ".local", "share", "kubebuilder-envtest")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("ENVTEST_STORE", c.store)
			t.Setenv("XDG_DATA_HOME", c.xdg)
			got, err := Store()
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("store %s, want %s", got, c.want)
			}
		})
	}
}
