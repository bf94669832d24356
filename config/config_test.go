// Package config_test checks the manifests under config/ against the real API
// server: the samples are accepted, and the SMI CRDs keep every field of the
// SMI SDK's types.
package config_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// TestSamplesAreAccepted sends every object of config/samples to the API server
// (namespaces for real, everything else as a server-side dry run, so samples
// that share names do not collide).
func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	objs := readManifests(t, "samples")
	if len(objs) < 20 {
		t.Fatalf("found only %d objects under config/samples", len(objs))
	}
	namespaces := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			namespaces[o.GetName()] = true
		} else if ns := o.GetNamespace(); ns != "" {
			namespaces[ns] = true
		}
	}
	for ns := range namespaces {
		err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	kinds := map[string]int{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		kinds[o.GetKind()]++
		if err := env.Client.Create(ctx, o, client.DryRunAll); err != nil {
			t.Errorf("%s %s/%s from %s is refused: %v", o.GetKind(), o.GetNamespace(), o.GetName(), o.GetAnnotations()[sourceAnnotation], err)
		}
	}
	for _, k := range []string{"MeshInstance", "MeshMember", "MeshVM", "IngressBackend", "Egress", "TrafficTarget", "HTTPRouteGroup", "TCPRoute", "TrafficSplit", "HTTPRoute", "GRPCRoute", "ResiliencePolicy", "UpstreamTrafficSetting", "Retry", "Deployment", "Service", "ServiceAccount"} {
		if kinds[k] == 0 {
			t.Errorf("the samples have no %s", k)
		}
	}
}

// TestSMICRDsKeepEveryField writes SMI objects with every field of the SMI SDK
// types set and reads them back: a structural schema that missed a field would
// prune it.
func TestSMICRDsKeepEveryField(t *testing.T) {
	ctx := context.Background()
	scheme := testenv.Scheme()
	utilruntime.Must(accessv1alpha3.AddToScheme(scheme))
	utilruntime.Must(specsv1alpha4.AddToScheme(scheme))
	utilruntime.Must(splitv1alpha4.AddToScheme(scheme))
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := "smi-roundtrip"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	meta := metav1.ObjectMeta{Name: "full", Namespace: ns}
	cases := []struct {
		obj, got client.Object
		spec     func(client.Object) any
	}{
		{&accessv1alpha3.TrafficTarget{ObjectMeta: meta, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "bookstore", Namespace: ns},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "bookbuyer", Namespace: "bookbuyer"}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "routes", Matches: []string{"buy"}}},
		}}, &accessv1alpha3.TrafficTarget{}, func(o client.Object) any { return o.(*accessv1alpha3.TrafficTarget).Spec }},
		{&specsv1alpha4.HTTPRouteGroup{ObjectMeta: meta, Spec: specsv1alpha4.HTTPRouteGroupSpec{
			Matches: []specsv1alpha4.HTTPMatch{{
				Name: "buy", Methods: []string{"GET", "POST"}, PathRegex: "/buy/.*",
				Headers: map[string]string{"user-agent": "bookbuyer/.*"},
			}},
		}}, &specsv1alpha4.HTTPRouteGroup{}, func(o client.Object) any { return o.(*specsv1alpha4.HTTPRouteGroup).Spec }},
		{&specsv1alpha4.TCPRoute{ObjectMeta: meta, Spec: specsv1alpha4.TCPRouteSpec{
			Matches: specsv1alpha4.TCPMatch{Name: "mysql", Ports: []int{3306, 33060}},
		}}, &specsv1alpha4.TCPRoute{}, func(o client.Object) any { return o.(*specsv1alpha4.TCPRoute).Spec }},
		{&splitv1alpha4.TrafficSplit{ObjectMeta: meta, Spec: splitv1alpha4.TrafficSplitSpec{
			Service:  "bookstore",
			Backends: []splitv1alpha4.TrafficSplitBackend{{Service: "bookstore-v1", Weight: 80}, {Service: "bookstore-v2", Weight: 20}},
			Matches:  []corev1.TypedLocalObjectReference{{APIGroup: ptr.To("specs.smi-spec.io"), Kind: "HTTPRouteGroup", Name: "routes"}},
		}}, &splitv1alpha4.TrafficSplit{}, func(o client.Object) any { return o.(*splitv1alpha4.TrafficSplit).Spec }},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%T", tc.obj)
		t.Run(name, func(t *testing.T) {
			want := tc.spec(tc.obj.DeepCopyObject().(client.Object))
			if err := c.Create(ctx, tc.obj); err != nil {
				t.Fatalf("creating: %v", err)
			}
			if err := c.Get(ctx, client.ObjectKeyFromObject(tc.obj), tc.got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, tc.spec(tc.got)); diff != "" {
				t.Errorf("the API server changed the spec (-sent +stored):\n%s", diff)
			}
		})
	}
}

const sourceAnnotation = "test.osm/source"

// readManifests decodes every YAML document under config/<dir>, in file order.
func readManifests(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") || d.Name() == "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			ann := u.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[sourceAnnotation] = path
			u.SetAnnotations(ann)
			objs = append(objs, u)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return strings.Compare(a.GetAnnotations()[sourceAnnotation], b.GetAnnotations()[sourceAnnotation])
	})
	return objs
}
