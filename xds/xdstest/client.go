// Package xdstest is an ADS client for tests and benchmarks: it dials the
// server with mutual TLS, subscribes like Envoy does, and ACKs or NACKs what it
// receives.
package xdstest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Dial connects to an xDS server at addr with the client certificate cert,
// asking for and verifying the server name serverName against roots.
func Dial(addr, serverName string, cert *tls.Certificate, roots *x509.CertPool) (*grpc.ClientConn, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
}

// Stream is a state-of-the-world ADS stream of one node.
type Stream struct {
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	sent   bool
	// names are the resources subscribed to, by type, as Envoy repeats them
	// in every request of that type.
	names map[string][]string
}

// OpenStream opens an ADS stream for the node nodeID.
func OpenStream(ctx context.Context, conn *grpc.ClientConn, nodeID string) (*Stream, error) {
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	return &Stream{node: &corev3.Node{Id: nodeID}, stream: s, names: map[string][]string{}}, nil
}

// Subscribe asks for names of typeURL (all of them when names is empty). Like
// Envoy, the stream sends the node only on its first request.
func (s *Stream) Subscribe(typeURL string, names []string) error {
	s.names[typeURL] = names
	return s.send(&discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names})
}

// ACK accepts a response.
func (s *Stream) ACK(r *discoveryv3.DiscoveryResponse) error {
	return s.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: r.GetTypeUrl(), ResourceNames: s.names[r.GetTypeUrl()], VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce(),
	})
}

// ACKAs accepts a response in a request that names node, as a proxy that
// tries to switch its stream to another node would.
func (s *Stream) ACKAs(r *discoveryv3.DiscoveryResponse, node *corev3.Node) error {
	return s.send(&discoveryv3.DiscoveryRequest{
		Node: node, TypeUrl: r.GetTypeUrl(), ResourceNames: s.names[r.GetTypeUrl()], VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce(),
	})
}

// Send sends a request as it is, but for the node of the stream's first
// request, which it adds when the request has none.
func (s *Stream) Send(r *discoveryv3.DiscoveryRequest) error { return s.send(r) }

// NACK rejects a response with an error message, keeping previousVersion.
func (s *Stream) NACK(r *discoveryv3.DiscoveryResponse, previousVersion, message string) error {
	return s.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: r.GetTypeUrl(), ResourceNames: s.names[r.GetTypeUrl()], VersionInfo: previousVersion, ResponseNonce: r.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: 3, Message: message},
	})
}

func (s *Stream) send(r *discoveryv3.DiscoveryRequest) error {
	if !s.sent && r.Node == nil {
		r.Node = s.node
		s.sent = true
	}
	if err := s.stream.Send(r); err != nil {
		return fmt.Errorf("sending %s request: %w", r.TypeUrl, err)
	}
	return nil
}

// Recv waits for the next response.
func (s *Stream) Recv() (*discoveryv3.DiscoveryResponse, error) { return s.stream.Recv() }

// DeltaStream is an incremental ADS stream of one node.
type DeltaStream struct {
	node   *corev3.Node
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	sent   bool
}

// OpenDeltaStream opens a delta ADS stream for the node nodeID.
func OpenDeltaStream(ctx context.Context, conn *grpc.ClientConn, nodeID string) (*DeltaStream, error) {
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	return &DeltaStream{node: &corev3.Node{Id: nodeID}, stream: s}, nil
}

// Subscribe asks for names of typeURL (a wildcard subscription when empty).
func (s *DeltaStream) Subscribe(typeURL string, names []string) error {
	return s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: names})
}

// ACK accepts a response.
func (s *DeltaStream) ACK(r *discoveryv3.DeltaDiscoveryResponse) error {
	return s.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()})
}

// ACKAs accepts a response in a request that names node.
func (s *DeltaStream) ACKAs(r *discoveryv3.DeltaDiscoveryResponse, node *corev3.Node) error {
	return s.send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()})
}

// Send sends a request as it is, but for the node of the stream's first
// request, which it adds when the request has none.
func (s *DeltaStream) Send(r *discoveryv3.DeltaDiscoveryRequest) error { return s.send(r) }

func (s *DeltaStream) send(r *discoveryv3.DeltaDiscoveryRequest) error {
	if !s.sent && r.Node == nil {
		r.Node = s.node
		s.sent = true
	}
	if err := s.stream.Send(r); err != nil {
		return fmt.Errorf("sending %s delta request: %w", r.TypeUrl, err)
	}
	return nil
}

// Recv waits for the next response.
func (s *DeltaStream) Recv() (*discoveryv3.DeltaDiscoveryResponse, error) { return s.stream.Recv() }
