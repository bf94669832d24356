package translate

import (
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Shared holds the resources that are the same in every group that has them
// (a service port's cluster, endpoints, route and outbound filter chain), so
// that translating the groups of one model builds and validates each only
// once, and the groups' snapshots share them. A Shared belongs to one model:
// make a new one whenever the model is rebuilt. It is safe for concurrent use.
type Shared struct {
	mu    sync.Mutex
	items map[sharedKey]sharedItem
	// built marks the resources made here, validated when they were built.
	built map[proto.Message]bool
	// encoded are the built resources' encodings, made on first use.
	encoded map[proto.Message]Encoded
	// packed maps each Any the translations made to its message, so that
	// the rules read it without decoding it again.
	packed sync.Map
	// rules checks what the groups' proxies load against Envoy's load
	// rules, each shared resource once.
	rules, rulesPending *envoyrules.Checker
}

type sharedKey struct {
	kind string
	svc  *mesh.Service
	port int32
	// name tells apart the resources of one kind that belong to no
	// service (an egress host's cluster).
	name string
}

type sharedItem struct {
	msg proto.Message
	err error
}

// NewShared returns an empty Shared.
func NewShared() *Shared {
	sh := &Shared{items: map[sharedKey]sharedItem{}, built: map[proto.Message]bool{}, encoded: map[proto.Message]Encoded{}}
	opts := RuleOptions()
	opts.Unpack = func(a *anypb.Any) (proto.Message, bool) {
		m, ok := sh.packed.Load(a)
		if !ok {
			return nil, false
		}
		return m.(proto.Message), true
	}
	pending := opts
	pending.SecretsPending = true
	sh.rules, sh.rulesPending = envoyrules.NewChecker(opts), envoyrules.NewChecker(pending)
	return sh
}

// RuleOptions describe the mesh's Envoy proxies to Envoy's load rules: the
// regex limit their bootstraps set, and the one cluster meant to be empty.
func RuleOptions() envoyrules.Options {
	return envoyrules.Options{MaxRegexProgramSize: envoyrules.MeshRegexLimit, Blackholes: []string{BlackholeCluster}, Unserved: []string{InvalidBackendCluster}}
}

// get returns the resource kind of the port of s, building and validating it
// on first use.
func (sh *Shared) get(kind string, s *mesh.Service, port int32, build func(t *translator) proto.Message, view *mesh.View) (proto.Message, error) {
	return sh.getKey(sharedKey{kind: kind, svc: s, port: port}, build, view)
}

// getKey is get of any key.
func (sh *Shared) getKey(k sharedKey, build func(t *translator) proto.Message, view *mesh.View) (proto.Message, error) {
	sh.mu.Lock()
	it, ok := sh.items[k]
	sh.mu.Unlock()
	if ok {
		return it.msg, it.err
	}
	t := &translator{view: view, out: &Resources{}, shared: sh}
	msg := build(t)
	err := t.err
	if err == nil {
		if v, ok := msg.(validator); ok {
			err = v.ValidateAll()
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.items[k] = sharedItem{msg, err}
	if err == nil {
		sh.built[msg] = true
	}
	return msg, err
}

func (sh *Shared) validated(m proto.Message) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.built[m]
}
