package wire_test

import (
	"bytes"
	"testing"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/wire"
)

func listener(chains int) *listenerv3.Listener {
	l := &listenerv3.Listener{
		Name: "outbound",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 15001}}}},
		// Fields numbered after filter_chains (3), in and out of a oneof.
		UseOriginalDst:                wrapperspb.Bool(true),
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(1 << 20),
		ListenerFilters:               []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.original_dst"}},
		DefaultFilterChain:            &listenerv3.FilterChain{Name: "default"},
	}
	for i := range chains {
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
			Name:             "chain-" + string(rune('a'+i)),
			FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(8080 + i))},
		})
	}
	return l
}

func encoding(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spliced is l encoded from its chains' Messages, as translation does.
func spliced(t *testing.T, l *listenerv3.Listener) *wire.Message {
	t.Helper()
	var chains []*wire.Message
	for _, fc := range l.FilterChains {
		w, err := wire.Encode(fc)
		if err != nil {
			t.Fatal(err)
		}
		chains = append(chains, w)
	}
	saved := l.FilterChains
	l.FilterChains = nil
	rest := encoding(t, l)
	l.FilterChains = saved
	w, err := wire.Spliced(l, rest, 3, chains)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestMarshalGivesTheEncoding(t *testing.T) {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: "shop/buyer|8080", Endpoints: []*endpointv3.LocalityLbEndpoints{{Priority: 1}}}
	w, err := wire.Encode(cla)
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*listenerv3.Listener{"no chains": listener(0), "one chain": listener(1), "three chains": listener(3)} {
		t.Run(name, func(t *testing.T) {
			for _, m := range []struct {
				w    *wire.Message
				orig proto.Message
			}{{spliced(t, l), l}, {w, cla}} {
				got, err := cachev3.MarshalResource(m.w)
				if err != nil {
					t.Fatal(err)
				}
				if want := encoding(t, m.orig); !bytes.Equal(got, want) {
					t.Fatalf("%T: marshalled to\n%x\nwant\n%x", m.orig, got, want)
				}
				if proto.Size(m.w) != len(got) || m.w.Size() != len(got) {
					t.Fatalf("%T: size %d/%d, encoding %d", m.orig, proto.Size(m.w), m.w.Size(), len(got))
				}
				if !proto.Equal(m.w, m.orig) || !proto.Equal(m.orig, m.w) {
					t.Fatalf("%T: not proto.Equal to its resource", m.orig)
				}
				a, b := protojson.Format(m.w), protojson.Format(m.orig)
				if a != b {
					t.Fatalf("%T: protojson %s, want %s", m.orig, a, b)
				}
				if cachev3.GetResourceName(m.w) != cachev3.GetResourceName(m.orig) {
					t.Fatalf("%T: name %q, want %q", m.orig, cachev3.GetResourceName(m.w), cachev3.GetResourceName(m.orig))
				}
			}
		})
	}
}

func TestSplicedRefusesAFilledField(t *testing.T) {
	l := listener(1)
	if _, err := wire.Spliced(l, encoding(t, l), 3, nil); err == nil {
		t.Fatal("spliced into an encoding that has the field")
	}
	if _, err := wire.Spliced(l, []byte{0xff}, 3, nil); err == nil {
		t.Fatal("spliced into a broken encoding")
	}
}

// Every stream sent a resource in one piece is sent the bytes the Message
// holds, not a copy, by go-control-plane's own response path, and an append
// to them cannot write into the shared copy.
func TestStreamsShareTheBytes(t *testing.T) {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: "shop/buyer|8080"}
	w, err := wire.Encode(cla)
	if err != nil {
		t.Fatal(err)
	}
	shared := w.Bytes()
	snap, err := cachev3.NewSnapshot("1", map[resourcev3.Type][]types.Resource{resourcev3.EndpointType: {w}})
	if err != nil {
		t.Fatal(err)
	}
	c := cachev3.NewSnapshotCache(false, cachev3.IDHash{}, nil)
	if err := c.SetSnapshot(t.Context(), "node", snap); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		resp, err := c.Fetch(t.Context(), &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "node"}, TypeUrl: resourcev3.EndpointType})
		if err != nil {
			t.Fatal(err)
		}
		out, err := resp.GetDiscoveryResponse()
		if err != nil {
			t.Fatal(err)
		}
		got := out.GetResources()[0].GetValue()
		if unsafe.SliceData(got) != unsafe.SliceData(shared) {
			t.Fatal("the response holds a copy of the encoding")
		}
		back := &endpointv3.ClusterLoadAssignment{}
		if err := out.GetResources()[0].UnmarshalTo(back); err != nil || !proto.Equal(back, cla) {
			t.Fatalf("the response decodes to %v (%v)", back, err)
		}
	}
	_ = append(w.Bytes(), 0xff)
	if !bytes.Equal(w.Bytes(), encoding(t, cla)) {
		t.Fatal("an append wrote into the shared encoding")
	}
}
