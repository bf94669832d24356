package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks"
)

// reportLatencies reports the median and 99th percentile of d in unit.
func reportLatencies(b *testing.B, d []time.Duration, unit time.Duration, name string) {
	slices.Sort(d)
	at := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))]) / float64(unit) }
	b.ReportMetric(at(0.50), "p50-"+name)
	b.ReportMetric(at(0.99), "p99-"+name)
}

// BenchmarkInjectHandler measures the pod injector alone, 1,000 calls an
// operation: decoding the pod, reading the namespace, its members and the
// mesh from the informer cache, injecting and writing the JSON patch.
func BenchmarkInjectHandler(b *testing.B) {
	ns := meshNamespace(b, "bench", nil)
	raw, err := json.Marshal(pod(ns, "", nil))
	if err != nil {
		b.Fatal(err)
	}
	h := &webhooks.PodInjector{Reader: cache, Namespace: "osm-system"}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Namespace: ns, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}}
	ctx := context.Background()
	if r := h.Handle(ctx, req); len(r.Patches) == 0 {
		b.Fatalf("not injected: %+v", r.Result)
	}
	var d []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		for range 1000 {
			start := time.Now()
			if r := h.Handle(ctx, req); !r.Allowed {
				b.Fatal(r.Result)
			}
			d = append(d, time.Since(start))
		}
	}
	reportLatencies(b, d, time.Microsecond, "µs")
}

// BenchmarkAdmission creates 1,000 pods in a member namespace through the
// real API server, which calls the injector over TLS: the latency of each
// create, one at a time, and the throughput of 8 clients at once. The same
// creates in a namespace outside any mesh (the webhook is not called) give
// the API server's own share.
func BenchmarkAdmission(b *testing.B) {
	const pods = 1000
	ctx := context.Background()
	sequential := func(ns string) []time.Duration {
		d := make([]time.Duration, 0, pods/2)
		for i := range pods / 2 {
			start := time.Now()
			p := pod(ns, fmt.Sprintf("seq-%d", i), nil)
			if err := k8s.Create(ctx, p); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		return d
	}
	for b.Loop() {
		reportLatencies(b, sequential(namespace(b, nil, nil)), time.Millisecond, "ms-unmeshed")
		// Called, and answering without a patch: the cost of the call itself.
		optOut := map[string]string{meshv1alpha1.SidecarInjectionAnnotation: meshv1alpha1.SidecarInjectionDisabled}
		reportLatencies(b, sequential(meshNamespace(b, "bench", optOut)), time.Millisecond, "ms-optout")
		ns := meshNamespace(b, "bench", nil)
		reportLatencies(b, sequential(ns), time.Millisecond, "ms")

		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < pods/2; i += 8 {
					p := pod(ns, fmt.Sprintf("par-%d", i), nil)
					if err := k8s.Create(ctx, p); err != nil {
						errs <- err
						return
					}
					if len(p.Spec.InitContainers) == 0 {
						errs <- fmt.Errorf("pod %s not injected", p.Name)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.ReportMetric(float64(pods/2)/time.Since(start).Seconds(), "pods/s")
	}
}
