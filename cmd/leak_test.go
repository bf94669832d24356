package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// operatorLog holds everything the operators of the tests logged, at every
// verbosity.
var (
	operatorLog = &syncBuffer{}
	captureLogs sync.Once
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assertNoKeysLeak checks that no private key of any Secret in the cluster
// (identities, mesh roots, the xDS serving certificate), nor any PEM private
// key at all, appears in what the operator logged, in Events, in the status
// of the mesh's resources or in its metrics.
func assertNoKeysLeak(t *testing.T, ctx context.Context, k client.Client) {
	t.Helper()
	var secrets corev1.SecretList
	if err := k.List(ctx, &secrets); err != nil {
		t.Fatal(err)
	}
	// Pieces of each key as they would appear: PEM lines, and the key's
	// DER and PEM base64-encoded (how []byte is written to JSON).
	var needles []string
	for _, s := range secrets.Items {
		for name, v := range s.Data {
			block, _ := pem.Decode(v)
			if block == nil || !strings.Contains(block.Type, "PRIVATE KEY") {
				continue
			}
			lines := strings.Split(strings.TrimSpace(string(v)), "\n")
			for _, l := range lines[1 : len(lines)-1] {
				if len(l) >= 32 {
					needles = append(needles, l[:32])
				}
			}
			needles = append(needles, base64.StdEncoding.EncodeToString(block.Bytes)[8:40]) // the DER as JSON bytes
			if pemB64 := base64.StdEncoding.EncodeToString(v); len(pemB64) > 96 {
				needles = append(needles, pemB64[64:96]) // the PEM as JSON bytes, past the header
			}
			t.Logf("checking for the key %s of Secret %s/%s", name, s.Namespace, s.Name)
		}
	}
	if len(needles) == 0 {
		t.Fatal("no private keys in the cluster to look for")
	}
	needles = append(needles, "PRIVATE KEY")

	sources := map[string]string{"the operator's log": operatorLog.String()}
	var events eventsv1.EventList
	if err := k.List(ctx, &events); err != nil {
		t.Fatal(err)
	}
	sources["Events"] = mustJSON(t, events.Items)
	var coreEvents corev1.EventList
	if err := k.List(ctx, &coreEvents); err != nil {
		t.Fatal(err)
	}
	sources["core Events"] = mustJSON(t, coreEvents.Items)
	for name, l := range map[string]client.ObjectList{"MeshInstance": &meshv1alpha1.MeshInstanceList{}, "MeshMember": &meshv1alpha1.MeshMemberList{}, "MeshVM": &meshv1alpha1.MeshVMList{}} {
		if err := k.List(ctx, l); err != nil {
			t.Fatal(err)
		}
		sources[name+" status"] = mustJSON(t, l)
	}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&metrics, f); err != nil {
			t.Fatal(err)
		}
	}
	sources["metrics"] = metrics.String()

	if len(sources["the operator's log"]) == 0 {
		t.Fatal("the operator logged nothing: the log is not captured")
	}
	for where, text := range sources {
		for _, n := range needles {
			if i := strings.Index(text, n); i >= 0 {
				// What comes before it says who wrote it; the key is not shown.
				t.Errorf("%s holds private key material (%q), after: %q", where, n, text[max(0, i-300):i])
				break
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
