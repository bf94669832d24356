package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
)

// Hash is a content hash of one of r's resources: equal content gives an equal
// hash, on any replica. Resources shared between groups are encoded once per
// model; the outbound listener is hashed from its own fields and the hashes of
// its (shared) filter chains.
func (r *Resources) Hash(m proto.Message) (string, error) {
	if r.shared == nil {
		return hashMessage(m)
	}
	return r.shared.hash(m)
}

func (sh *Shared) hash(m proto.Message) (string, error) {
	if l, ok := m.(*listenerv3.Listener); ok && len(l.FilterChains) > 0 {
		return sh.listenerHash(l)
	}
	sh.mu.Lock()
	shared := sh.built[m]
	h, known := sh.hashes[m]
	sh.mu.Unlock()
	if known {
		return h, nil
	}
	h, err := hashMessage(m)
	if err != nil || !shared {
		return h, err
	}
	sh.mu.Lock()
	sh.hashes[m] = h
	sh.mu.Unlock()
	return h, nil
}

func (sh *Shared) listenerHash(l *listenerv3.Listener) (string, error) {
	d := sha256.New()
	for _, fc := range l.FilterChains {
		h, err := sh.hash(fc)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(d, "%s;", h)
	}
	// The listener belongs to one group, so it can lend its chains out.
	chains := l.FilterChains
	l.FilterChains = nil
	h, err := hashMessage(l)
	l.FilterChains = chains
	if err != nil {
		return "", err
	}
	d.Write([]byte(h))
	return hex.EncodeToString(d.Sum(nil)[:16]), nil
}

func hashMessage(m proto.Message) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding %T: %w", m, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}
