package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/open-service-mesh/osm-operator/xds/cache"
)

// Debug serves, on a local address only, what the xDS server holds:
//
//	GET /debug/xds/proxies                   connected proxies, ACKed versions, last NACKs
//	GET /debug/xds/config?node=<node ID>     the configuration of a proxy's group
//	GET /debug/xds/config?group=<group>      the configuration of a group
//
// The configuration includes no private key: secrets are listed by name only.
type Debug struct {
	Address string
	Server  *Server
	Cache   *cache.Cache
}

// NeedLeaderElection is false: every replica can be inspected.
func (d *Debug) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (d *Debug) Start(ctx context.Context) error {
	host, _, err := net.SplitHostPort(d.Address)
	if err != nil {
		return fmt.Errorf("debug address %q: %w", d.Address, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("the debug endpoint serves proxy configuration and only binds to loopback, not %q", d.Address)
	}
	srv := &http.Server{Addr: d.Address, Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("debug endpoint: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// Handler is the debug HTTP handler.
func (d *Debug) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/xds/proxies", func(w http.ResponseWriter, _ *http.Request) {
		ps := d.Server.Proxies()
		sort.Slice(ps, func(i, j int) bool { return ps[i].NodeID < ps[j].NodeID })
		writeJSON(w, ps)
	})
	mux.HandleFunc("GET /debug/xds/config", func(w http.ResponseWriter, r *http.Request) {
		group := r.URL.Query().Get("group")
		if node := r.URL.Query().Get("node"); node != "" {
			group = ""
			for _, p := range d.Server.Proxies() {
				if p.NodeID == node {
					group = p.Group
				}
			}
		}
		if group == "" {
			http.Error(w, "name a connected proxy (?node=) or a group (?group=)", http.StatusBadRequest)
			return
		}
		snap, err := d.Cache.GetSnapshot(group)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		out, err := dump(group, snap)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, out)
	})
	return mux
}

// dump renders a snapshot as JSON-ready values, secrets by name only.
func dump(group string, snap cachev3.ResourceSnapshot) (map[string]any, error) {
	out := map[string]any{"group": group}
	for _, t := range []struct {
		name string
		typ  types.ResponseType
	}{{"listeners", types.Listener}, {"routes", types.Route}, {"clusters", types.Cluster}, {"endpoints", types.Endpoint}, {"secrets", types.Secret}} {
		url, err := cachev3.GetResponseTypeURL(t.typ)
		if err != nil {
			return nil, err
		}
		res := snap.GetResources(url)
		names := make([]string, 0, len(res))
		for n := range res {
			names = append(names, n)
		}
		sort.Strings(names)
		section := map[string]any{"version": snap.GetVersion(url)}
		items := []json.RawMessage{}
		for _, n := range names {
			if t.typ == types.Secret {
				items = append(items, json.RawMessage(fmt.Sprintf("%q", n)))
				continue
			}
			b, err := protojson.Marshal(res[n])
			if err != nil {
				return nil, fmt.Errorf("rendering %s %q: %w", t.name, n, err)
			}
			items = append(items, b)
		}
		section["resources"] = items
		out[t.name] = section
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
