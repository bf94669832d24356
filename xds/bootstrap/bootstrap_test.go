package bootstrap

import (
	"path"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The xDS connection's certificate and trusted CA come through file-based
// SDS: every secret the bootstrap asks for is in a file of SDSDir that
// SDSFiles writes, under the name asked for, valid, naming the identity
// files and watching their directory (so that Envoy reads them again when
// Kubernetes swaps a renewed Secret into the volume). The bootstrap itself
// holds no file of the identity: only SDS references.
func TestTheXDSConnectionReadsItsIdentityThroughSDS(t *testing.T) {
	const identityDir, sdsDir = "/var/run/osm/identity", "/var/run/osm/sds"
	b, err := Envoy(Options{NodeID: "sidecar~shop~web-1", Cluster: "web", XDSHost: "osm-operator-xds.osm-system.svc", XDSPort: 15128,
		ServerName: "demo.osm-operator-xds.osm-system.svc", IdentityDir: identityDir, SDSDir: sdsDir})
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as the proxy reads it.
	raw, err := JSON(b, "")
	if err != nil {
		t.Fatal(err)
	}
	b = &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(raw, b); err != nil {
		t.Fatal(err)
	}
	files, err := SDSFiles(identityDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := b.GetStaticResources().GetClusters()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
		t.Fatal(err)
	}
	common := ctx.GetCommonTlsContext()
	if len(common.GetTlsCertificates()) > 0 || common.GetValidationContext() != nil {
		t.Fatal("the bootstrap reads identity files itself, once: they would never be read again")
	}
	refs := []*tlsv3.SdsSecretConfig{
		common.GetTlsCertificateSdsSecretConfigs()[0],
		common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(),
	}
	if sans := common.GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames(); len(sans) != 1 || sans[0].GetMatcher().GetExact() != "demo.osm-operator-xds.osm-system.svc" {
		t.Errorf("the xDS server's name is not verified: %v", sans)
	}
	for i, ref := range refs {
		p := ref.GetSdsConfig().GetPathConfigSource().GetPath()
		if path.Dir(p) != sdsDir {
			t.Fatalf("secret %d: SDS path %q is not in %s", i, p, sdsDir)
		}
		data, ok := files[path.Base(p)]
		if !ok {
			t.Fatalf("secret %d: SDSFiles has no %s", i, path.Base(p))
		}
		r := &discoveryv3.DiscoveryResponse{}
		if err := protojson.Unmarshal(data, r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(r.GetResources()) != 1 {
			t.Fatalf("%s: %d resources", p, len(r.GetResources()))
		}
		s := &tlsv3.Secret{}
		if err := r.GetResources()[0].UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		if err := s.ValidateAll(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if s.GetName() != ref.GetName() {
			t.Errorf("%s holds secret %q, the bootstrap asks for %q", p, s.GetName(), ref.GetName())
		}
		var want map[string]string
		var watched string
		switch i {
		case 0:
			c := s.GetTlsCertificate()
			want = map[string]string{c.GetCertificateChain().GetFilename(): CertFile, c.GetPrivateKey().GetFilename(): KeyFile}
			watched = c.GetWatchedDirectory().GetPath()
		case 1:
			v := s.GetValidationContext()
			want = map[string]string{v.GetTrustedCa().GetFilename(): CAFile}
			watched = v.GetWatchedDirectory().GetPath()
		}
		for got, name := range want {
			if got != path.Join(identityDir, name) {
				t.Errorf("%s reads %q, want %s", p, got, path.Join(identityDir, name))
			}
		}
		if watched != identityDir {
			t.Errorf("%s watches %q, want %s", p, watched, identityDir)
		}
	}
	if _, err := Envoy(Options{NodeID: "x", IdentityDir: identityDir}); err == nil {
		t.Error("a bootstrap without an SDS directory was built")
	}
}

// A mesh's own xDS Service name is a valid Service name for any mesh name
// (dots, 253 characters), distinct between meshes, and "osm-xds-<mesh>"
// where that is valid; the server name and the gRPC target follow it.
func TestXDSMeshService(t *testing.T) {
	if got := XDSMeshService("books"); got != "osm-xds-books" {
		t.Errorf("XDSMeshService(books) = %q", got)
	}
	seen := map[string]string{}
	long := "payments-" + strings.Repeat("a", 50)
	// A mesh named as another's hashed Service, less the prefix.
	spelled := strings.TrimPrefix(XDSMeshService(long), xdsHashedServicePrefix)
	for _, mesh := range []string{"books", "a.b", "a-b", strings.Repeat("m", 253), strings.Repeat("m", 252) + "n", strings.Repeat("x.", 100) + "y", long, spelled} {
		got := XDSMeshService(mesh)
		if errs := validation.IsDNS1035Label(got); len(errs) > 0 {
			t.Errorf("XDSMeshService(%.20s…) = %q: %v", mesh, got, errs)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("meshes %.20s… and %.20s… share the Service %q", mesh, other, got)
		}
		seen[got] = mesh
	}
	if got := XDSServerName("books", "osm-system"); got != "osm-xds-books.osm-system.svc" {
		t.Errorf("XDSServerName = %q", got)
	}
	if got := GRPCServerURI("", "books", "osm-system", 15128); got != "osm-xds-books.osm-system.svc:15128" {
		t.Errorf("GRPCServerURI = %q", got)
	}
	if got := GRPCServerURI("xds.example.com", "books", "osm-system", 443); got != "xds.example.com:443" {
		t.Errorf("GRPCServerURI with an address = %q", got)
	}
}

// A mesh's xDS Service is stored, and its DNS name is the server name
// proxies and proxyless gRPC verify: these are the names XDSMeshService gave
// when they were pinned, plain and hashed.
func TestXDSMeshServicesArePinned(t *testing.T) {
	for _, c := range []struct{ mesh, want string }{
		{"osm", "osm-xds-osm"},
		{"Upper", "osm-xdh-Upper-ada6d7a662f03a9ad858"},
		{"a.b", "osm-xdh-a-b-2e7336dc8eba87ef472d"},
		{strings.Repeat("m", 55), "osm-xds-" + strings.Repeat("m", 55)},
		{strings.Repeat("m", 56), "osm-xdh-" + strings.Repeat("m", 34) + "-433433c89b6417aafffa"},
		// Dots become dashes.
		{strings.Repeat("mesh.", 20) + "x", "osm-xdh-mesh-mesh-mesh-mesh-mesh-mesh-mesh-58c42af2fd1c661a6b54"},
		// The cut falls after a dash (a dot before), which goes.
		{strings.Repeat("m", 33) + ".x", "osm-xdh-" + strings.Repeat("m", 33) + "-668d51482bdf13d9ce92"},
	} {
		if got := XDSMeshService(c.mesh); got != c.want {
			t.Errorf("XDSMeshService(%.20s… of %d) = %q, want %q", c.mesh, len(c.mesh), got, c.want)
		}
	}
}
