package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// rotationRig is a mesh of two proxyless gRPC workloads on the operator and
// cert-manager's real controllers, with a ClusterIssuer "corp" of a root of
// its own next to the mesh's bootstrapped root, and the test standing in
// for the kubelet (remount).
type rotationRig struct {
	t        *testing.T
	ctx      context.Context
	k        client.Client
	xdsAddr  string
	mesh     string
	corp     *testpki.CA
	dirs     map[*corev1.Pod]string
	boots    map[*corev1.Pod][]byte
	buyer    *corev1.Pod
	target   string
	oldRoot  string
	start    time.Time
	seen     []meshv1alpha1.RotationPhase
	rolledBk bool
}

func newRotationRig(t *testing.T) *rotationRig {
	ctx, k, xdsAddr := startOperator(t)
	r := manual.NewBuilderWithScheme(xdsScheme)
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: xdsAddr}}})
	resolver.Register(r)

	lis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	targetPort := int32(lis.Addr().(*net.TCPAddr).Port)
	const ns, port = "bookstore", 14001
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "books"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{Rotation: meshv1alpha1.TrustRotationSpec{Settle: "3s", ReissuePerSecond: 1}}}}
	cfg := inject.ConfigFor(mi, "osm-system", inject.Images{})
	grpcPod := func(name, sa string) *corev1.Pod {
		p := plainPod(ns, name, sa)
		p.Annotations = map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
		if err := inject.Pod(p, cfg); err != nil {
			t.Fatal(err)
		}
		return p
	}
	buyerPod, storePod := grpcPod("bookbuyer-1", "bookbuyer"), grpcPod("bookstore-1", "bookstore")
	// An Envoy sidecar's pod, whose proxy the test plays (sidecar).
	warehouse := plainPod(ns, "bookwarehouse-1", "bookwarehouse")
	if err := inject.Pod(warehouse, cfg); err != nil {
		t.Fatal(err)
	}
	corp, err := testpki.NewCA("corp root")
	if err != nil {
		t.Fatal(err)
	}
	objs := []client.Object{
		mi,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "books"}},
		buyerPod, storePod, warehouse, grpcService(ns, "bookstore"),
		podEndpoints(ns, "bookstore", "v1", "bookstore-1", "192.0.2.81", targetPort),
		&specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}}},
		&accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: "bookbuyer-to-bookstore", Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "bookstore"},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "bookbuyer"}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "all"}},
		}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "corp-ca", Namespace: certmanager.ClusterResourceNamespace}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": corp.PEM, "tls.key": corp.KeyPEM()}},
		&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp"}, Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "corp-ca"}}}},
	}
	for _, o := range objs {
		if err := k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	rig := &rotationRig{t: t, ctx: ctx, k: k, xdsAddr: xdsAddr, mesh: mi.Name, corp: corp, buyer: buyerPod,
		dirs: map[*corev1.Pod]string{buyerPod: t.TempDir(), storePod: t.TempDir()}, boots: map[*corev1.Pod][]byte{},
		target: fmt.Sprintf("xds:///bookstore.%s.svc.cluster.local:%d", ns, port)}
	for pod, dir := range rig.dirs {
		mountIdentity(t, ctx, k, pod, dir)
		for _, e := range pod.Spec.Containers[0].Env {
			if e.Name == inject.GRPCBootstrapEnv {
				rig.boots[pod] = localGRPCBootstrap(t, []byte(e.Value), dir, "sidecar~"+ns+"~"+pod.Name)
			}
		}
	}
	xdstest.GRPCServer(t, lis, rig.boots[storePod])
	first := rig.dial()
	testenv.Eventually(t, 60*time.Second, func() error {
		err, _ := rig.call(first)
		return err
	})
	first.Close()
	m := rig.read()
	if len(m.Status.TrustBundle) != 1 {
		t.Fatalf("the bundle before the rotation: %+v", m.Status.TrustBundle)
	}
	rig.oldRoot = m.Status.TrustBundle[0].SHA256Fingerprint
	return rig
}

// sidecar plays the Envoy sidecar of pod bookwarehouse-1: it connects to the
// xDS server with its identity, subscribes to its secrets as Envoy does, and
// sends on the channel the fingerprints of the trust bundle's CA
// certificates of each secrets response it gets; it acknowledges each while
// ack is set, and else leaves it unacknowledged. As Envoy does, it
// connects again, with the identity files as they are then, when its
// stream ends (the server ends one whose certificate's root the mesh no
// longer trusts); reconnects counts those.
func (r *rotationRig) sidecar(ack *atomic.Bool, reconnects *atomic.Int32) <-chan []string {
	r.t.Helper()
	const ns = "bookstore"
	open := func() (*xdstest.Stream, *grpc.ClientConn, error) {
		identity := &corev1.Secret{}
		cm := &corev1.ConfigMap{}
		if err := r.k.Get(r.ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("bookwarehouse")}, identity); err != nil {
			return nil, nil, err
		}
		if err := r.k.Get(r.ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.TrustBundleConfigMapName(r.mesh)}, cm); err != nil {
			return nil, nil, err
		}
		cert, err := tls.X509KeyPair(identity.Data["tls.crt"], identity.Data["tls.key"])
		if err != nil {
			return nil, nil, err
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM([]byte(cm.Data[meshv1alpha1.TrustBundleKey]))
		conn, err := xdstest.Dial(r.xdsAddr, bootstrap.XDSServingNames(r.mesh, "osm-system")[0], &cert, roots)
		if err != nil {
			return nil, nil, err
		}
		s, err := xdstest.OpenStream(r.ctx, conn, "sidecar~"+ns+"~bookwarehouse-1")
		if err == nil {
			err = s.Subscribe(resourcev3.SecretType, []string{translate.IdentitySecret, translate.TrustBundleSecret})
		}
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		return s, conn, nil
	}
	// The identity is issued before the sidecar starts.
	testenv.Eventually(r.t, 60*time.Second, func() error {
		s, conn, err := open()
		if err == nil {
			conn.Close()
			_ = s
		}
		return err
	})
	out := make(chan []string, 64)
	go func() {
		for first := true; r.ctx.Err() == nil; first = false {
			if !first {
				reconnects.Add(1)
				time.Sleep(200 * time.Millisecond)
			}
			s, conn, err := open()
			if err != nil {
				continue
			}
			for {
				resp, err := s.Recv()
				if err != nil {
					break
				}
				if resp.GetTypeUrl() != resourcev3.SecretType {
					continue
				}
				var fps []string
				for _, res := range resp.GetResources() {
					sec := &tlsv3.Secret{}
					if err := res.UnmarshalTo(sec); err == nil && sec.GetName() == translate.TrustBundleSecret {
						for _, c := range certificatesOfPEM(sec.GetValidationContext().GetTrustedCa().GetInlineBytes()) {
							fps = append(fps, meshv1alpha1.Fingerprint(c))
						}
					}
				}
				select {
				case out <- fps:
				default: // nobody reads: keep the latest only
				}
				// A proxy that has not acknowledged yet does once ack is
				// set; the server sends nothing new meanwhile.
				for !ack.Load() && r.ctx.Err() == nil {
					time.Sleep(100 * time.Millisecond)
				}
				if err := s.ACK(resp); err != nil {
					break
				}
			}
			conn.Close()
		}
	}()
	return out
}

func certificatesOfPEM(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return out
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func (r *rotationRig) dial() *grpc.ClientConn {
	return xdstest.GRPCClient(r.t, r.target, r.boots[r.buyer])
}

// call makes one call; it returns its error and the chain the server
// presented.
func (r *rotationRig) call(conn *grpc.ClientConn) (error, []*x509.Certificate) {
	cctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	var p peer.Peer
	_, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		return err, info.State.PeerCertificates
	}
	return err, nil
}

func (r *rotationRig) read() *meshv1alpha1.MeshInstance {
	r.t.Helper()
	m := &meshv1alpha1.MeshInstance{}
	if err := r.k.Get(r.ctx, client.ObjectKey{Name: r.mesh}, m); err != nil {
		r.t.Fatal(err)
	}
	return m
}

// change edits the mesh's spec.
func (r *rotationRig) change(edit func(c *meshv1alpha1.Certificates)) {
	r.t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m := &meshv1alpha1.MeshInstance{}
		if err := r.k.Get(r.ctx, client.ObjectKey{Name: r.mesh}, m); err != nil {
			return err
		}
		edit(&m.Spec.Certificates)
		return r.k.Update(r.ctx, m)
	}); err != nil {
		r.t.Fatal(err)
	}
}

// calls calls the server without a pause until the returned function is
// called, on an established connection and every tenth time on a new one
// (a new client, new handshakes); that function returns the number of
// calls and the failures.
func (r *rotationRig) calls() func() (int64, []string) {
	established := r.dial()
	var calls atomic.Int64
	var mu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			conn := established
			if i%10 == 9 {
				conn = r.dial()
			}
			err, _ := r.call(conn)
			if conn != established {
				conn.Close()
			}
			calls.Add(1)
			if status.Code(err) != codes.OK {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("call %d (new connection %v) at %s: %v", i, conn != established, time.Now().Format(time.StampMilli), err))
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() (int64, []string) {
		close(stop)
		<-done
		established.Close()
		return calls.Load(), failures
	}
}

// until remounts the identity volumes as the kubelet would and records the
// rotation's phases, until done says the mesh is there.
func (r *rotationRig) until(timeout time.Duration, done func(m *meshv1alpha1.MeshInstance) error) {
	r.t.Helper()
	testenv.Eventually(r.t, timeout, func() error {
		for pod, dir := range r.dirs {
			mountIdentity(r.t, r.ctx, r.k, pod, dir)
		}
		m := r.read()
		if rot := m.Status.Rotation; rot != nil && (len(r.seen) == 0 || r.seen[len(r.seen)-1] != rot.Phase || rot.RolledBack != r.rolledBk) {
			r.seen, r.rolledBk = append(r.seen, rot.Phase), rot.RolledBack
			r.t.Logf("%5.1fs phase %s (rolled back %v): %s", time.Since(r.start).Seconds(), rot.Phase, rot.RolledBack, rot.Waiting)
		}
		return done(m)
	})
}

// settled remounts a while longer.
func (r *rotationRig) settled() {
	for range 12 {
		for pod, dir := range r.dirs {
			mountIdentity(r.t, r.ctx, r.k, pod, dir)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// complete is until's test of a mesh whose rotation is over, signed by
// issuer.
func complete(issuer string) func(m *meshv1alpha1.MeshInstance) error {
	return func(m *meshv1alpha1.MeshInstance) error {
		if rot := m.Status.Rotation; rot != nil {
			return fmt.Errorf("phase %s: %s", rot.Phase, rot.Waiting)
		}
		if si := m.Status.SigningIssuer; si == nil || si.Name != issuer {
			return fmt.Errorf("signing issuer %+v, want %s", si, issuer)
		}
		return nil
	}
}

// rotationEvents are the reasons of the mesh's rotation Events, in order.
func (r *rotationRig) rotationEvents() []string {
	var evs eventsv1.EventList
	if err := r.k.List(r.ctx, &evs); err != nil {
		r.t.Fatal(err)
	}
	var out []string
	slices.SortStableFunc(evs.Items, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	for _, e := range evs.Items {
		if e.Regarding.Kind == "MeshInstance" && e.Regarding.Name == r.mesh && slices.Contains([]string{"Announcing", "Signing", "Retiring", "Held", "NoRotation"}, e.Reason) {
			out = append(out, e.Reason)
		}
	}
	return out
}

// trustsOnly checks that the pods' files trust the root of fingerprint fp
// alone, and that the server and the xDS server present leaves of pool.
func (r *rotationRig) trustsOnly(fp string, roots *x509.CertPool) {
	r.t.Helper()
	for pod, dir := range r.dirs {
		certs, err := readPEMFile(dir, bootstrap.CAFile)
		if err != nil {
			r.t.Fatal(err)
		}
		if len(certs) != 1 || meshv1alpha1.Fingerprint(certs[0]) != fp {
			r.t.Errorf("pod %s trusts %d certificates, want one, of sha256 %.16s", pod.Name, len(certs), fp)
		}
	}
	conn := r.dial()
	defer conn.Close()
	err, chain := r.call(conn)
	if err != nil || len(chain) == 0 {
		r.t.Fatalf("a call after the rotation: %v", err)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		r.t.Errorf("the server's certificate does not chain to the root trusted: %v", err)
	}
	xds, err := tlsChainOf(r.xdsAddr, r.dirs[r.buyer])
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := xds[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: poolOf(xds[1:]), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		r.t.Errorf("the xDS server's certificate does not chain to the root trusted: %v", err)
	}
}

var corpRef = &meshv1alpha1.IssuerReference{Name: "corp", Kind: "ClusterIssuer", Group: "cert-manager.io"}

// TestARootRotationFailsNoCall rotates a mesh from its bootstrapped root to
// a ClusterIssuer of another root while a proxyless gRPC client calls a
// proxyless server across identities without a pause, on its established
// connection and on new ones, with cert-manager's real controllers issuing
// every certificate and the test standing in for the kubelet. No call
// fails; the phases pass in order, each announced by an Event; at the end
// the files the pods hold trust the new root alone, and the server's
// certificate and the xDS server's chain to it.
func TestARootRotationFailsNoCall(t *testing.T) {
	r := newRotationRig(t)
	var ack atomic.Bool
	var reconnects atomic.Int32
	ack.Store(true)
	bundles := r.sidecar(&ack, &reconnects)
	oldOnly := []string{r.oldRoot}
	awaitFingerprints(t, bundles, oldOnly)
	stop := r.calls()
	r.start = time.Now()
	// The sidecar receives the bundle with both roots and does not
	// acknowledge it: the new issuer does not sign, however long.
	ack.Store(false)
	r.change(func(c *meshv1alpha1.Certificates) { c.IssuerRef = corpRef })
	both := []string{r.oldRoot, meshv1alpha1.Fingerprint(r.corp.Cert)}
	awaitFingerprints(t, bundles, both)
	r.until(time.Minute, func(m *meshv1alpha1.MeshInstance) error {
		if rot := m.Status.Rotation; rot == nil || rot.ProxiesWaitedFor != 1 || !strings.Contains(rot.Waiting, "1 of 1 connected proxies") {
			return fmt.Errorf("rotation %+v, want waiting for the sidecar", rot)
		}
		// The proxyless pods' provider files hold both roots meanwhile.
		for pod, dir := range r.dirs {
			if certs, err := readPEMFile(dir, bootstrap.CAFile); err != nil || len(certs) != 2 {
				return fmt.Errorf("pod %s's ca.crt holds %d certificates (%v), want both roots", pod.Name, len(certs), err)
			}
		}
		return nil
	})
	time.Sleep(6 * time.Second) // twice the settle time
	if m := r.read(); m.Status.Rotation == nil || m.Status.Rotation.Phase != meshv1alpha1.RotationAnnouncing {
		t.Fatalf("the rotation went on while the sidecar had not acknowledged the bundle: %+v", m.Status.Rotation)
	}
	ack.Store(true)
	r.until(4*time.Minute, complete("corp"))
	corpOnly := []string{meshv1alpha1.Fingerprint(r.corp.Cert)}
	awaitFingerprints(t, bundles, corpOnly)
	t.Logf("the sidecar's stream was opened again %d times (once the former root left, with its renewed certificate)", reconnects.Load())
	took := time.Since(r.start)
	r.settled()
	n, failures := stop()
	t.Logf("rotation took %.1fs; %d calls, %d failed", took.Seconds(), n, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed during the rotation; the first: %s", len(failures), n, strings.Join(failures[:min(5, len(failures))], "; "))
	}
	// The polled status may miss a short phase; the Events do not.
	for i := 1; i < len(r.seen); i++ {
		if slices.Index(phases, r.seen[i]) < slices.Index(phases, r.seen[i-1]) {
			t.Errorf("phases went backwards: %v", r.seen)
		}
	}
	if got, want := r.rotationEvents(), []string{"Announcing", "Signing", "Retiring", "NoRotation"}; !slices.Equal(got, want) {
		t.Errorf("rotation Events %v, want %v", got, want)
	}
	if meshv1alpha1.Fingerprint(r.corp.Cert) == r.oldRoot {
		t.Fatal("the test's roots are one")
	}
	r.trustsOnly(meshv1alpha1.Fingerprint(r.corp.Cert), r.corp.Pool())
}

// TestARotationRolledBackWhileSigningFailsNoCall holds a rotation to the
// corp root once it signs, then sets issuerRef back: the rotation turns
// into one back to the bootstrapped root, from its Signing phase (both
// roots are trusted everywhere already), and when released ends with the
// bootstrapped root alone. No call fails.
func TestARotationRolledBackWhileSigningFailsNoCall(t *testing.T) {
	r := newRotationRig(t)
	oldPool := x509.NewCertPool()
	if certs, err := readPEMFile(r.dirs[r.buyer], bootstrap.CAFile); err != nil || len(certs) != 1 {
		t.Fatalf("the bootstrapped root: %v", err)
	} else {
		oldPool.AddCert(certs[0])
	}
	stop := r.calls()
	r.start = time.Now()
	r.change(func(c *meshv1alpha1.Certificates) { c.IssuerRef, c.Rotation.Hold = corpRef, true })
	r.until(2*time.Minute, func(m *meshv1alpha1.MeshInstance) error {
		if rot := m.Status.Rotation; rot == nil || rot.Phase != meshv1alpha1.RotationAnnouncing || !strings.Contains(rot.Waiting, "held") {
			return fmt.Errorf("rotation %+v, want held while announcing", rot)
		}
		return nil
	})
	r.change(func(c *meshv1alpha1.Certificates) { c.Rotation.Hold = false })
	r.until(2*time.Minute, func(m *meshv1alpha1.MeshInstance) error {
		if rot := m.Status.Rotation; rot == nil || rot.Phase != meshv1alpha1.RotationSigning {
			return fmt.Errorf("rotation %+v, want signing", rot)
		}
		return nil
	})
	r.change(func(c *meshv1alpha1.Certificates) { c.Rotation.Hold = true })
	// Held once every leaf is corp's: the workloads run on the new root.
	r.until(2*time.Minute, func(m *meshv1alpha1.MeshInstance) error {
		if rot := m.Status.Rotation; rot == nil || rot.Phase != meshv1alpha1.RotationSigning || !strings.Contains(rot.Waiting, "held") {
			return fmt.Errorf("rotation %+v, want held while signing", rot)
		}
		return nil
	})
	r.change(func(c *meshv1alpha1.Certificates) { c.IssuerRef, c.Rotation.Hold = nil, false })
	r.until(4*time.Minute, complete("osm-books-ca"))
	took := time.Since(r.start)
	r.settled()
	n, failures := stop()
	t.Logf("rotation and roll back took %.1fs; %d calls, %d failed; phases %v", took.Seconds(), n, len(failures), r.seen)
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed; the first: %s", len(failures), n, strings.Join(failures[:min(5, len(failures))], "; "))
	}
	if !r.rolledBk {
		t.Errorf("no rolled back rotation was seen: %v", r.seen)
	}
	// Held while announcing, signing, held, signing back, retiring, done
	// (a hold may be announced again when a re-issued leaf lags).
	if got, want := r.rotationEvents(), []string{"Held", "Signing", "Held", "Signing", "Retiring", "NoRotation"}; !isSubsequence(want, slices.Compact(got)) {
		t.Errorf("rotation Events %v, want %v in that order", got, want)
	}
	m := r.read()
	if len(m.Status.TrustBundle) != 1 || m.Status.TrustBundle[0].SHA256Fingerprint != r.oldRoot {
		t.Errorf("after the roll back the bundle is %+v, want the bootstrapped root alone", m.Status.TrustBundle)
	}
	r.trustsOnly(r.oldRoot, oldPool)
}

var phases = []meshv1alpha1.RotationPhase{meshv1alpha1.RotationAnnouncing, meshv1alpha1.RotationSigning, meshv1alpha1.RotationRetiring}

// readPEMFile reads the certificates of a PEM file of dir.
func readPEMFile(dir, name string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	return certificatesOfPEM(data), nil
}

// tlsChainOf is the chain the xDS server presents to a workload holding
// the identity files of dir, verified as the workload verifies it.
func tlsChainOf(addr, dir string) ([]*x509.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, bootstrap.CertFile), filepath.Join(dir, bootstrap.KeyFile))
	if err != nil {
		return nil, err
	}
	roots, err := readPEMFile(dir, bootstrap.CAFile)
	if err != nil {
		return nil, err
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: poolOf(roots), MinVersion: tls.VersionTLS13,
		ServerName: bootstrap.XDSServingNames("books", "osm-system")[0], NextProtos: []string{"h2"},
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates, nil
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// isSubsequence says whether want appears in got in order.
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// awaitFingerprints waits for a secrets response whose trust bundle holds
// exactly the CA certificates of fingerprints want.
func awaitFingerprints(t *testing.T, bundles <-chan []string, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.After(60 * time.Second)
	for {
		select {
		case got := <-bundles:
			if slices.Equal(slices.Sorted(slices.Values(got)), want) {
				return
			}
		case <-deadline:
			t.Fatalf("the sidecar never received a trust bundle of %v", want)
		}
	}
}
