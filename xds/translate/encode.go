package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/open-service-mesh/osm-operator/xds/wire"
)

// listenerFilterChains is the field number of Listener.filter_chains.
const listenerFilterChains = 3

// Encoded is a resource's wire encoding and its content hash: equal content
// gives an equal hash, on any replica.
type Encoded struct {
	Wire *wire.Message
	Hash string
}

// Encode encodes one of r's resources. Resources shared between groups are
// encoded once per model and their encodings shared; a listener is encoded
// from its own fields and the encodings of its (shared) filter chains, and
// hashed from its own fields and their hashes.
func (r *Resources) Encode(m proto.Message) (Encoded, error) {
	return r.shared.encode(m)
}

// Hash is the content hash of one of r's resources, as Encode has it.
func (r *Resources) Hash(m proto.Message) (string, error) {
	e, err := r.Encode(m)
	return e.Hash, err
}

// encode is Encode; a nil Shared encodes every resource anew.
func (sh *Shared) encode(m proto.Message) (Encoded, error) {
	if l, ok := m.(*listenerv3.Listener); ok && len(l.FilterChains) > 0 {
		return sh.encodeListener(l)
	}
	if sh == nil {
		return encodeOne(m)
	}
	sh.mu.Lock()
	shared := sh.built[m]
	e, known := sh.encoded[m]
	sh.mu.Unlock()
	if known {
		return e, nil
	}
	e, err := encodeOne(m)
	if err != nil {
		return Encoded{}, err
	}
	if shared {
		sh.mu.Lock()
		sh.encoded[m] = e
		sh.mu.Unlock()
	}
	return e, nil
}

func (sh *Shared) encodeListener(l *listenerv3.Listener) (Encoded, error) {
	d := sha256.New()
	chains := make([]*wire.Message, len(l.FilterChains))
	for i, fc := range l.FilterChains {
		e, err := sh.encode(fc)
		if err != nil {
			return Encoded{}, err
		}
		chains[i] = e.Wire
		fmt.Fprintf(d, "%s;", e.Hash)
	}
	// The listener without its chains: a shallow copy, as a listener may
	// be shared by groups encoded at once (the Prometheus listener).
	bare := l.ProtoReflect().Type().New()
	l.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Number() != listenerFilterChains {
			bare.Set(fd, v)
		}
		return true
	})
	rest, err := proto.MarshalOptions{Deterministic: true}.Marshal(bare.Interface())
	if err != nil {
		return Encoded{}, fmt.Errorf("encoding listener %s: %w", l.GetName(), err)
	}
	w, err := wire.Spliced(l, rest, listenerFilterChains, chains)
	if err != nil {
		return Encoded{}, err
	}
	d.Write([]byte(hashBytes(rest)))
	return Encoded{Wire: w, Hash: hex.EncodeToString(d.Sum(nil)[:16])}, nil
}

func encodeOne(m proto.Message) (Encoded, error) {
	w, err := wire.Encode(m)
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{Wire: w, Hash: hashBytes(w.Bytes())}, nil
}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
