package controllers

import (
	"fmt"
	"path"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// VMConfigDir is where a VM keeps the files of its bootstrap Secret.
const VMConfigDir = "/etc/osm"

// Keys of a VM's bootstrap Secret.
const (
	BootstrapKey = "envoy.yaml"
	CertKey      = "tls.crt"
	KeyKey       = "tls.key"
	CAKey        = "ca.crt"
)

const xdsClusterName = "osm-xds"

// vmBootstrap is the Envoy bootstrap of a MeshVM's proxy: its node ID, ADS
// over mutual TLS to the operator with the files next to it, and the admin
// interface on localhost only. It is returned as JSON, which is YAML.
func vmBootstrap(vm *meshv1alpha1.MeshVM, xdsHost string, xdsPort int32) ([]byte, error) {
	file := func(name string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path.Join(VMConfigDir, name)}}
	}
	tls, err := anypb.New(&tlsv3.UpstreamTlsContext{
		Sni: xdsHost,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:       &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
			TlsCertificates: []*tlsv3.TlsCertificate{{CertificateChain: file(CertKey), PrivateKey: file(KeyKey)}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: file(CAKey),
			}},
			AlpnProtocols: []string{"h2"},
		},
	})
	if err != nil {
		return nil, err
	}
	h2, err := anypb.New(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		},
	}})
	if err != nil {
		return nil, err
	}
	ads := &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3, ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	address := func(host string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	b := &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: fmt.Sprintf("vm~%s~%s", vm.Namespace, vm.Name), Cluster: vm.Spec.ServiceAccountName},
		Admin: &bootstrapv3.Admin{Address: address("127.0.0.1", 15000)},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             corev3.ApiConfigSource_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: xdsClusterName},
				}}},
				SetNodeOnFirstMessageOnly: true,
			},
			CdsConfig: ads,
			LdsConfig: ads,
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{{
			Name:                 xdsClusterName,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
			ConnectTimeout:       durationpb.New(5e9),
			LoadAssignment: &endpointv3.ClusterLoadAssignment{
				ClusterName: xdsClusterName,
				Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: address(xdsHost, uint32(xdsPort))}},
				}}}},
			},
			TypedExtensionProtocolOptions: map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2},
			TransportSocket:               &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tls}},
		}}},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("the bootstrap of MeshVM %s/%s is invalid: %w", vm.Namespace, vm.Name, err)
	}
	return protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(b)
}
