package inject

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// FuzzInject feeds the injector arbitrary pods (any spec, any annotations,
// in a member namespace): nothing may panic, and a pod is either refused
// with an error, left alone with a reason, or injected by a patch that
// applies to the pod as the API server sends it and gives a sidecar whose
// bootstrap Envoy accepts. The seeds are the golden inputs.
func FuzzInject(f *testing.F) {
	for _, in := range seeds(f, "testdata/in/*.yaml") {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		raw, err := yaml.YAMLToJSON(manifest)
		if err != nil {
			return
		}
		pod := &corev1.Pod{}
		if err := json.Unmarshal(raw, pod); err != nil {
			return // the API server would have refused it
		}
		if raw, err = json.Marshal(pod); err != nil {
			return
		}
		d, err := Decide(pod, memberNamespace(pod.Namespace), nil)
		if err != nil || !d.Inject {
			return
		}
		ops, err := Patch(pod, testConfig())
		if err != nil {
			return // refused, naming the annotation
		}
		checkPatch(t, raw, ops)
	})
}

// FuzzManifests feeds `osm-operator inject -f` arbitrary YAML streams:
// nothing may panic, and what it accepts it writes back as YAML documents.
func FuzzManifests(f *testing.F) {
	for _, in := range seeds(f, "testdata/manifests/*.yaml") {
		f.Add(in)
	}
	for _, in := range seeds(f, "testdata/in/*.yaml") {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := Manifests(in, testConfig())
		if err != nil {
			return
		}
		if _, _, err := Manifests(out, testConfig()); err != nil {
			t.Errorf("the output of inject does not read back: %v\n%s", err, out)
		}
	})
}

func seeds(f *testing.F, glob string) [][]byte {
	paths, err := filepath.Glob(glob)
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
