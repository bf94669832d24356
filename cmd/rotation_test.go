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
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// TestARootRotationFailsNoCall rotates a mesh from its bootstrapped root to
// a ClusterIssuer of another root while a proxyless gRPC client calls a
// proxyless server across identities without a pause, on its established
// connection and on new ones, with cert-manager's real controllers issuing
// every certificate and the test standing in for the kubelet (re-mounting
// the identity volumes as their Secret and ConfigMap change). No call
// fails; the phases pass in order, each announced by an Event; at the end
// the files the pods hold trust the new root alone, the server's
// certificate and the xDS server's chain to it.
func TestARootRotationFailsNoCall(t *testing.T) {
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
	// The new issuer: a CA of a root of its own.
	corp, err := testpki.NewCA("corp root")
	if err != nil {
		t.Fatal(err)
	}
	objs := []client.Object{
		mi,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "books"}},
		buyerPod, storePod, grpcService(ns, "bookstore"),
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

	dirs := map[*corev1.Pod]string{buyerPod: t.TempDir(), storePod: t.TempDir()}
	boots := map[*corev1.Pod][]byte{}
	for pod, dir := range dirs {
		mountIdentity(t, ctx, k, pod, dir)
		for _, e := range pod.Spec.Containers[0].Env {
			if e.Name == inject.GRPCBootstrapEnv {
				boots[pod] = localGRPCBootstrap(t, []byte(e.Value), dir, "sidecar~"+ns+"~"+pod.Name)
			}
		}
	}
	xdstest.GRPCServer(t, lis, boots[storePod])
	target := fmt.Sprintf("xds:///bookstore.%s.svc.cluster.local:%d", ns, port)
	// call makes one call; it returns its error and the chain the server
	// presented.
	call := func(conn *grpc.ClientConn) (error, []*x509.Certificate) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var p peer.Peer
		_, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			return err, info.State.PeerCertificates
		}
		return err, nil
	}
	established := xdstest.GRPCClient(t, target, boots[buyerPod])
	testenv.Eventually(t, 60*time.Second, func() error {
		err, _ := call(established)
		return err
	})
	old := &meshv1alpha1.MeshInstance{}
	if err := k.Get(ctx, client.ObjectKey{Name: mi.Name}, old); err != nil {
		t.Fatal(err)
	}
	if len(old.Status.TrustBundle) != 1 {
		t.Fatalf("the bundle before the rotation: %+v", old.Status.TrustBundle)
	}
	oldRoot := old.Status.TrustBundle[0].SHA256Fingerprint

	// Calls go on all through the rotation: on the established connection,
	// and every tenth on a new connection (a new client, a new handshake).
	var calls, fresh atomic.Int64
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
				conn = xdstest.GRPCClient(t, target, boots[buyerPod])
				fresh.Add(1)
			}
			err, _ := call(conn)
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

	start := time.Now()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m := &meshv1alpha1.MeshInstance{}
		if err := k.Get(ctx, client.ObjectKey{Name: mi.Name}, m); err != nil {
			return err
		}
		m.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: "corp", Kind: "ClusterIssuer", Group: "cert-manager.io"}
		return k.Update(ctx, m)
	}); err != nil {
		t.Fatal(err)
	}
	// The kubelet's part: the identity volumes follow their sources.
	var seen []meshv1alpha1.RotationPhase
	var took time.Duration
	testenv.Eventually(t, 4*time.Minute, func() error {
		for pod, dir := range dirs {
			mountIdentity(t, ctx, k, pod, dir)
		}
		m := &meshv1alpha1.MeshInstance{}
		if err := k.Get(ctx, client.ObjectKey{Name: mi.Name}, m); err != nil {
			return err
		}
		if rot := m.Status.Rotation; rot != nil {
			if len(seen) == 0 || seen[len(seen)-1] != rot.Phase {
				seen = append(seen, rot.Phase)
				t.Logf("%5.1fs phase %s: %s", time.Since(start).Seconds(), rot.Phase, rot.Waiting)
			}
			return fmt.Errorf("phase %s: %s", rot.Phase, rot.Waiting)
		}
		if si := m.Status.SigningIssuer; si == nil || si.Name != "corp" {
			return fmt.Errorf("signing issuer %+v, want corp", si)
		}
		took = time.Since(start)
		return nil
	})
	// A while longer on the new root alone.
	for range 12 {
		for pod, dir := range dirs {
			mountIdentity(t, ctx, k, pod, dir)
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(stop)
	<-done
	t.Logf("rotation took %.1fs; %d calls, %d on new connections, %d failed", took.Seconds(), calls.Load(), fresh.Load(), len(failures))
	if len(failures) > 0 {
		t.Errorf("%d of %d calls failed during the rotation; the first: %s", len(failures), calls.Load(), strings.Join(failures[:min(5, len(failures))], "; "))
	}
	// Each phase in order: the polled status may miss a short one, the
	// Events do not.
	for i := 1; i < len(seen); i++ {
		if slices.Index(phases, seen[i]) < slices.Index(phases, seen[i-1]) {
			t.Errorf("phases went backwards: %v", seen)
		}
	}
	var evs eventsv1.EventList
	if err := k.List(ctx, &evs); err != nil {
		t.Fatal(err)
	}
	var announced []string
	slices.SortStableFunc(evs.Items, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	for _, e := range evs.Items {
		if e.Regarding.Kind == "MeshInstance" && e.Regarding.Name == mi.Name && slices.Contains([]string{"Announcing", "Signing", "Retiring", "NoRotation"}, e.Reason) {
			announced = append(announced, e.Reason)
		}
	}
	if want := []string{"Announcing", "Signing", "Retiring", "NoRotation"}; !slices.Equal(announced, want) {
		t.Errorf("rotation Events %v, want %v", announced, want)
	}

	// What the pods hold trusts the new root alone; the server and the xDS
	// server present leaves of it.
	corpFP := meshv1alpha1.Fingerprint(corp.Cert)
	for pod, dir := range dirs {
		certs, err := readPEMFile(dir, bootstrap.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 1 || meshv1alpha1.Fingerprint(certs[0]) != corpFP {
			t.Errorf("pod %s trusts %d certificates after the rotation, want the corp root alone", pod.Name, len(certs))
		}
		if meshv1alpha1.Fingerprint(certs[0]) == oldRoot {
			t.Errorf("pod %s still trusts the former root", pod.Name)
		}
	}
	conn := xdstest.GRPCClient(t, target, boots[buyerPod])
	defer conn.Close()
	err, chain := call(conn)
	if err != nil || len(chain) == 0 {
		t.Fatalf("a call after the rotation: %v", err)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: corp.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the server's certificate does not chain to the new root: %v", err)
	}
	xds, err := tlsChainOf(xdsAddr, dirs[buyerPod])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xds[0].Verify(x509.VerifyOptions{Roots: corp.Pool(), Intermediates: poolOf(xds[1:]), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the xDS server's certificate does not chain to the new root: %v", err)
	}
}

var phases = []meshv1alpha1.RotationPhase{meshv1alpha1.RotationAnnouncing, meshv1alpha1.RotationSigning, meshv1alpha1.RotationRetiring}

// readPEMFile reads the certificates of a PEM file of dir.
func readPEMFile(dir, name string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return out, nil
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
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
