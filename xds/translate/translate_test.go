package translate_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/out")

// clusterDomains are the operator's --cluster-domain of the inputs that do
// not run with the default, a setting no manifest holds.
var clusterDomains = map[string]string{"cluster-domain": "corp.example"}

// TestGolden translates every input under testdata/in for each of its proxy
// groups and compares the resources with testdata/out/<input>/<group>.yaml.
// Run `go test ./xds/translate -update` to rewrite them, and review the diff
// like code.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, file := range inputs {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			in, err := meshtest.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			in.ClusterDomain = clusterDomains[name]
			m, problems := mesh.Build(in)
			outDir := filepath.Join("testdata", "out", name)
			got := map[string][]byte{"problems.yaml": marshalYAML(t, problemStrings(problems))}
			for _, g := range m.Groups {
				res, err := translate.Translate(m.View(g), fakeCerts(g))
				if err != nil {
					t.Fatalf("group %s: %v", g, err)
				}
				// Translate checked Envoy's load rules with the messages it
				// packed; check again decoding every typed config, as Envoy does.
				if g.Kind == mesh.ProxyEnvoy {
					if err := envoyrules.Check(res.Envoy(), translate.RuleOptions()); err != nil {
						t.Errorf("group %s: %v", g, err)
					}
				}
				got[strings.ReplaceAll(g.String(), "/", "_")+".yaml"] = resourcesYAML(t, res)
			}
			if *update {
				_ = os.RemoveAll(outDir)
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					t.Fatal(err)
				}
				for f, b := range got {
					if err := os.WriteFile(filepath.Join(outDir, f), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			files, _ := filepath.Glob(filepath.Join(outDir, "*.yaml"))
			if len(files) != len(got) {
				t.Errorf("%d golden files in %s, %d produced; run with -update", len(files), outDir, len(got))
			}
			for f, b := range got {
				want, err := os.ReadFile(filepath.Join(outDir, f))
				if err != nil {
					t.Errorf("%v; run with -update", err)
					continue
				}
				if d := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(b), "\n")); d != "" {
					t.Errorf("%s/%s differs from the golden file (-golden +got); run with -update and review the diff against Envoy's documented behaviour:\n%s", outDir, f, d)
				}
			}
		})
	}
}

func fakeCerts(g mesh.Group) *translate.Certificates {
	return &translate.Certificates{
		CertChain:   []byte("cert of " + g.Identity.String()),
		PrivateKey:  []byte("key of " + g.Identity.String()),
		TrustBundle: []byte("mesh trust bundle"),
	}
}

func problemStrings(ps []mesh.Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

// resourcesYAML renders resources as YAML through protojson, which (unlike
// protojson's own output) is stable from run to run.
func resourcesYAML(t *testing.T, r *translate.Resources) []byte {
	t.Helper()
	doc := map[string][]any{}
	add := func(kind string, m proto.Message) {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		doc[kind] = append(doc[kind], v)
	}
	for _, x := range r.Listeners {
		add("listeners", x)
	}
	for _, x := range r.Routes {
		add("routes", x)
	}
	for _, x := range r.Clusters {
		add("clusters", x)
	}
	for _, x := range r.Endpoints {
		add("endpoints", x)
	}
	for _, x := range r.Secrets {
		add("secrets", x)
	}
	return marshalYAML(t, doc)
}

func marshalYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(fmt.Errorf("rendering YAML: %w", err))
	}
	return b
}
