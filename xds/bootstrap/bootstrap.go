// Package bootstrap builds the Envoy bootstraps of the mesh's proxies: a
// node ID, ADS over mutual TLS to the operator with the identity files the
// proxy holds (read through file-based SDS, so that a renewed certificate
// is picked up without a restart), the admin interface on localhost, and
// any static listeners and clusters the proxy needs before it reaches the
// operator (the pod health listeners of a sidecar). The same code serves
// MeshVMs and injected sidecars.
package bootstrap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/open-service-mesh/osm-operator/internal/objname"
	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// XDSServiceName is the operator's Service for xDS, shared by every mesh.
const XDSServiceName = "osm-operator-xds"

// xdsMeshServicePrefix starts the name of each mesh's own xDS Service;
// xdsHashedServicePrefix the name of a mesh whose name does not fit, so no
// mesh's plain name can spell another's hashed one.
const (
	xdsMeshServicePrefix   = "osm-xds-"
	xdsHashedServicePrefix = "osm-xdh-"
	// xdsServiceHashLen is the hex digits of the hash a hashed name ends in.
	xdsServiceHashLen = 20
)

// XDSMeshService is the name of mesh's own Service for xDS, in the
// operator's namespace, beside XDSServiceName and to the same pods: a DNS
// label (a Service's name), "osm-xds-<mesh>" when that is one, else
// "osm-xdh-<mesh, cut>-<hash of the mesh's name>" (a mesh's name may hold
// dots and be 253 characters long): a prefix no plain name has, and 80 bits
// of hash, so no two meshes share one.
func XDSMeshService(mesh string) string {
	if name := xdsMeshServicePrefix + mesh; len(validation.IsDNS1035Label(name)) == 0 {
		return name
	}
	return objname.Cut(strings.ReplaceAll(xdsHashedServicePrefix+mesh, ".", "-"), mesh, validation.DNS1035LabelMaxLength, xdsServiceHashLen)
}

// XDSServerName is the TLS server name the proxies of mesh ask for and
// verify, and the name of the xDS server a proxyless application dials:
// gRPC verifies the server against the host it dials and cannot be told
// another name, so the name is the DNS name of the mesh's own Service
// (XDSMeshService). The operator answers each mesh with a certificate of
// its own issuer, chosen by this name.
func XDSServerName(mesh, operatorNamespace string) string {
	return fmt.Sprintf("%s.%s.svc", XDSMeshService(mesh), operatorNamespace)
}

// XDSServingNames are the DNS names of mesh's xDS serving certificate:
// XDSServerName, and the name Envoy sidecars injected before it asked for
// (they keep their bootstrap until their pod is replaced). No two meshes'
// certificates share a name, so the server finds each mesh's by the name
// a proxy asks for; none lists the shared Service's name.
func XDSServingNames(mesh, operatorNamespace string) []string {
	return []string{
		XDSServerName(mesh, operatorNamespace),
		fmt.Sprintf("%s.%s.%s.svc", mesh, XDSServiceName, operatorNamespace),
	}
}

// GRPCServerURI is the xDS server of a proxyless application of mesh,
// host:port: address when set (a MeshInstance's spec.xds.address, which its
// serving certificate must then name), else the mesh's XDSServerName.
func GRPCServerURI(address, mesh, operatorNamespace string, port int32) string {
	host := address
	if host == "" {
		host = XDSServerName(mesh, operatorNamespace)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// XDSAddress is the host proxies dial: address when set (a MeshInstance's
// spec.xds.address), else the operator's xDS Service.
func XDSAddress(address, operatorNamespace string) string {
	if address != "" {
		return address
	}
	return fmt.Sprintf("%s.%s.svc", XDSServiceName, operatorNamespace)
}

// Files in a proxy's identity directory: cert-manager's Secret keys.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

// XDSCluster is the static cluster of the xDS server.
const XDSCluster = "osm-xds"

// Options describe a proxy's bootstrap.
type Options struct {
	// NodeID names the proxy's workload (see xds/mesh.ParseNodeID). It may
	// hold $(VAR) references that Kubernetes expands from the container's
	// environment.
	NodeID string
	// Cluster is the node's cluster: its service account.
	Cluster string
	// XDSHost and XDSPort are where the xDS server is dialled; ServerName is
	// the TLS name asked for and verified.
	XDSHost    string
	XDSPort    uint32
	ServerName string
	// IdentityDir holds CertFile, KeyFile and CAFile.
	IdentityDir string
	// SDSDir holds the files of SDSFiles(IdentityDir): through them Envoy
	// reads the identity files, and reads them again whenever IdentityDir's
	// contents are swapped, as Kubernetes does a Secret volume's on renewal.
	SDSDir string
	// Listeners and Clusters are added as static resources.
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
}

// Files of SDSDir, and the secrets they hold.
const (
	ClientCertSDSFile = "xds-client-cert.json"
	TrustSDSFile      = "xds-trust.json"

	clientCertSecret = "osm-xds-client-cert"
	trustSecret      = "osm-xds-trust"
)

// SDSFiles are the files of an SDSDir for identityDir, by name: discovery
// responses (JSON, which is YAML) of the proxy's xDS client certificate and
// of the CA it trusts the xDS server by, both read from identityDir's files
// and watched through identityDir.
func SDSFiles(identityDir string) (map[string][]byte, error) {
	file := func(name string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path.Join(identityDir, name)}}
	}
	watched := &corev3.WatchedDirectory{Path: identityDir}
	secrets := map[string]*tlsv3.Secret{
		ClientCertSDSFile: {Name: clientCertSecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: file(CertFile), PrivateKey: file(KeyFile), WatchedDirectory: watched,
		}}},
		TrustSDSFile: {Name: trustSecret, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: file(CAFile), WatchedDirectory: watched,
		}}},
	}
	out := map[string][]byte{}
	for name, sec := range secrets {
		if err := sec.ValidateAll(); err != nil {
			return nil, fmt.Errorf("SDS file %s: %w", name, err)
		}
		a, err := anypb.New(sec)
		if err != nil {
			return nil, err
		}
		raw, err := JSON(&discoveryv3.DiscoveryResponse{Resources: []*anypb.Any{a}}, "")
		if err != nil {
			return nil, fmt.Errorf("encoding SDS file %s: %w", name, err)
		}
		out[name] = raw
	}
	return out, nil
}

// MustSDSFiles is SDSFiles for a directory fixed in the program, which
// cannot fail but through a bug: it panics then.
func MustSDSFiles(identityDir string) map[string][]byte {
	f, err := SDSFiles(identityDir)
	if err != nil {
		panic(err)
	}
	return f
}

// Envoy returns the bootstrap, validated by Envoy's own rules.
func Envoy(o Options) (*bootstrapv3.Bootstrap, error) {
	if o.SDSDir == "" {
		return nil, fmt.Errorf("the bootstrap of %s: no SDS directory", o.NodeID)
	}
	sds := func(name, file string) *tlsv3.SdsSecretConfig {
		return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &corev3.ConfigSource{
			ResourceApiVersion:    corev3.ApiVersion_V3,
			ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{Path: path.Join(o.SDSDir, file)}},
		}}
	}
	tls, err := anypb.New(&tlsv3.UpstreamTlsContext{
		Sni: o.ServerName,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			// The xDS server speaks TLS 1.3 only; Envoy offers at most 1.2 unless told.
			TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3, TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds(clientCertSecret, ClientCertSDSFile)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext: &tlsv3.CertificateValidationContext{
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
						SanType: tlsv3.SubjectAltNameMatcher_DNS,
						Matcher: exact(o.ServerName),
					}},
				},
				ValidationContextSdsSecretConfig: sds(trustSecret, TrustSDSFile),
			}},
			AlpnProtocols: []string{"h2"},
		},
	})
	if err != nil {
		return nil, err
	}
	ads := &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3, ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	xds := &clusterv3.Cluster{
		Name:                          XDSCluster,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout:                durationpb.New(5e9),
		LoadAssignment:                StaticEndpoint(XDSCluster, o.XDSHost, o.XDSPort),
		TypedExtensionProtocolOptions: HTTP2Upstream(),
		TransportSocket:               &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tls}},
	}
	b := &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: o.NodeID, Cluster: o.Cluster},
		Admin: &bootstrapv3.Admin{Address: SocketAddress("127.0.0.1", mesh.AdminPort)},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			// Incremental (delta) ADS: an endpoint change sends the
			// proxy the ClusterLoadAssignments that changed, where state
			// of the world sends every one it holds (in a Permissive mesh
			// of 1,000 services, ~380 KB per change per proxy instead of
			// ~600 B). Every ads: {} source below (CDS, LDS, and the
			// resources' EDS, RDS and SDS) follows the ADS stream's type.
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_DELTA_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSCluster},
				}}},
				SetNodeOnFirstMessageOnly: true,
			},
			CdsConfig: ads,
			LdsConfig: ads,
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: o.Listeners,
			Clusters:  append([]*clusterv3.Cluster{xds}, o.Clusters...),
		},
		LayeredRuntime: runtime(),
		StatsConfig:    StatsConfig(),
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("the bootstrap of %s is invalid: %w", o.NodeID, err)
	}
	// What Envoy loads where the IPv6 overlay is given (--config-path): the
	// bootstrap merged into it, which holds all of the bootstrap.
	loaded := b
	if len(o.Listeners) > 0 {
		loaded = IPv6Overlay(o.Listeners)
		proto.Merge(loaded, b)
	}
	if err := envoyrules.CheckBootstrap(loaded, nil, envoyrules.Options{}); err != nil {
		return nil, fmt.Errorf("the bootstrap of %s: %w", o.NodeID, err)
	}
	return b, nil
}

// IPv6Overlay holds a twin on [::] of each static listener, for a proxy
// whose kernel has IPv6: Envoy merges the bootstrap it is given inline
// (--config-yaml) into the one it reads from a file (--config-path),
// appending repeated fields, so a sidecar started with this file also
// listens on IPv6 and one started with an empty file does not. A static
// listener cannot bind [::] unconditionally: Envoy aborts when the kernel
// has no IPv6, and whether a pod's has is known only once it runs.
func IPv6Overlay(listeners []*listenerv3.Listener) *bootstrapv3.Bootstrap {
	b := &bootstrapv3.Bootstrap{StaticResources: &bootstrapv3.Bootstrap_StaticResources{}}
	for _, l := range listeners {
		twin := proto.Clone(l).(*listenerv3.Listener)
		twin.Name = l.GetName() + "-ipv6"
		twin.Address = SocketAddress("::", l.GetAddress().GetSocketAddress().GetPortValue())
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, twin)
	}
	return b
}

// runtime is the proxy's runtime: a static layer that raises the RE2
// program size Envoy accepts in a regex to the mesh's limit (Envoy's
// default of 100 refuses ordinary path patterns), and the admin layer Envoy
// has when no runtime is configured.
func runtime() *bootstrapv3.LayeredRuntime {
	return &bootstrapv3.LayeredRuntime{Layers: []*bootstrapv3.RuntimeLayer{
		{Name: "mesh", LayerSpecifier: &bootstrapv3.RuntimeLayer_StaticLayer{StaticLayer: &structpb.Struct{Fields: map[string]*structpb.Value{
			envoyrules.RegexLimitKey: structpb.NewNumberValue(envoyrules.MeshRegexLimit),
		}}}},
		{Name: "admin", LayerSpecifier: &bootstrapv3.RuntimeLayer_AdminLayer_{AdminLayer: &bootstrapv3.RuntimeLayer_AdminLayer{}}},
	}}
}

// JSON renders a bootstrap, or a file it names, as Envoy reads it (JSON is
// YAML), compact when indent is empty. The bytes are stable: protojson's
// are deliberately not.
func JSON(m proto.Message, indent string) ([]byte, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if indent == "" {
		err = json.Compact(&out, raw)
	} else {
		err = json.Indent(&out, raw, "", indent)
	}
	return out.Bytes(), err
}

// SocketAddress is a TCP address.
func SocketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// StaticEndpoint is the load assignment of a cluster with one endpoint.
func StaticEndpoint(cluster, host string, port uint32) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: SocketAddress(host, port)}},
		}}}},
	}
}

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

// HTTP2Upstream are the protocol options of a static cluster that speaks
// HTTP/2 to its upstream (Envoy speaks HTTP/1.1 to a cluster unless they
// say otherwise): gRPC, in plain text with prior knowledge or over TLS.
func HTTP2Upstream() map[string]*anypb.Any {
	h2, err := anypb.New(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		},
	}})
	if err != nil {
		panic(err) // a message of this build always marshals
	}
	return map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2}
}
