package controllers_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

// BenchmarkRootRotation rotates a mesh of OSM_ROTATION_IDENTITIES (default
// 1,000) identities, in namespaces of 100, from its bootstrapped root to a
// CA ClusterIssuer of another root, on cert-manager's real controllers,
// at reissuePerSecond 20 (the default) and 200, with a settle time of 1 s:
// it reports the seconds from the change to the rotation's end and the
// leaves re-issued per second during Signing. No proxy is connected (the
// census waits for none): what it measures is the certificates' side.
func BenchmarkRootRotation(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("OSM_ROTATION_IDENTITIES")); err == nil && v > 0 {
		n = v
	}
	for _, rate := range []int32{20, 200} {
		b.Run(fmt.Sprintf("identities=%d/reissuePerSecond=%d", n, rate), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				mesh := fmt.Sprintf("rot-%d-%d-%d", n, rate, seq.Add(1))
				mi, issuer := rotationMesh(b, mesh, n, rate)
				b.StartTimer()
				start := time.Now()
				setIssuer(b, mi, issuer)
				var signing, retiring time.Time
				waitFor(b, 30*time.Minute, func() (bool, error) {
					if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(mi), mi); err != nil {
						return false, err
					}
					rot := mi.Status.Rotation
					switch {
					case rot != nil && rot.Phase == meshv1alpha1.RotationSigning && signing.IsZero():
						signing = rot.PhaseSince.Time
					case rot != nil && rot.Phase == meshv1alpha1.RotationRetiring && retiring.IsZero():
						retiring = rot.PhaseSince.Time
					}
					return rot == nil && mi.Status.SigningIssuer != nil && mi.Status.SigningIssuer.Name == issuer, nil
				})
				took := time.Since(start)
				b.StopTimer()
				b.ReportMetric(took.Seconds(), "s/rotation")
				if !signing.IsZero() && retiring.After(signing) {
					b.ReportMetric(float64(n+1)/retiring.Sub(signing).Seconds(), "leaves/s")
					b.ReportMetric(retiring.Sub(signing).Seconds(), "s/signing")
				}
				_ = k8s.Delete(context.Background(), mi)
			}
		})
	}
}

// rotationMesh makes a mesh of n identities with every one issued by its
// bootstrapped root, and a CA ClusterIssuer of another root; it returns
// the mesh and that issuer's name.
func rotationMesh(b *testing.B, name string, n int, rate int32) (*meshv1alpha1.MeshInstance, string) {
	ctx := context.Background()
	ca, err := testpki.NewCA(name + " corp root")
	if err != nil {
		b.Fatal(err)
	}
	issuer := name + "-corp"
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{Rotation: meshv1alpha1.TrustRotationSpec{Settle: "1s", ReissuePerSecond: rate}}}}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: issuer, Namespace: certmanager.ClusterResourceNamespace}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": ca.PEM, "tls.key": ca.KeyPEM()}},
		&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: issuer}, Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: issuer}}}},
		mi,
	}
	for ns := 0; ns*100 < n; ns++ {
		nsName := fmt.Sprintf("%s-%d", name, ns)
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName}},
			&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: nsName}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: name}})
	}
	for _, o := range objs {
		if err := k8s.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		ns := fmt.Sprintf("%s-%d", name, i/100)
		if err := k8s.Create(ctx, meshedPod(name, ns, fmt.Sprintf("app-%d", i), fmt.Sprintf("sa-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, 20*time.Minute, func() (bool, error) {
		var certs cmapi.CertificateList
		if err := k8s.List(ctx, &certs, client.MatchingLabels{"app.kubernetes.io/managed-by": "osm-operator", "mesh.openservicemesh.io/mesh": name}); err != nil {
			return false, err
		}
		issued := 0
		for _, c := range certs.Items {
			for _, cond := range c.Status.Conditions {
				if len(c.Spec.URIs) > 0 && cond.Type == cmapi.CertificateConditionReady && cond.Status == "True" {
					issued++
				}
			}
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return false, err
		}
		return issued == n && len(mi.Status.TrustBundle) == 1 && mi.Status.SigningIssuer != nil, nil
	})
	return mi, issuer
}

func setIssuer(b *testing.B, mi *meshv1alpha1.MeshInstance, issuer string) {
	waitFor(b, 10*time.Second, func() (bool, error) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(mi), mi); err != nil {
			return false, err
		}
		mi.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: issuer, Kind: "ClusterIssuer", Group: "cert-manager.io"}
		return k8s.Update(context.Background(), mi) == nil, nil
	})
}

// waitFor polls done every 200 ms until it is true, an error, or timeout.
func waitFor(b *testing.B, timeout time.Duration, done func() (bool, error)) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not done within %v", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
