package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// The fleet is the simulated proxies, run in a process of their own (this
// program with -fleet) so that the control plane's memory is measured apart.
// It reads a fleetConfig file, connects every proxy at once, and then answers
// requests, one JSON line each way, on stdin and stdout.

type fleetConfig struct {
	Address, ServerName string
	CA                  []byte
	// Identities are the key pairs of the identities, by "namespace/sa".
	Identities map[string]keyPair
	Proxies    []fleetProxy
	// MaxConnecting bounds the handshakes in flight, as proxies' own
	// reconnect jitter would.
	MaxConnecting int
}

type keyPair struct{ Cert, Key []byte }

type fleetProxy struct {
	NodeID, Identity, Group string
	Delta                   bool
}

// request is what the harness asks the fleet.
type request struct {
	// Op is "connect" (start the proxies), "mark" (count bytes from now),
	// "await" or "stop".
	Op string
	// Groups are the versions, by group, that the proxies of each group must
	// hold (await).
	Groups  map[string][types.UnknownType]string
	Timeout time.Duration
}

// reply answers a request.
type reply struct {
	// Proxies awaited, and how many hold the versions.
	Proxies, Reached int
	// Times are when each proxy that reached them sent its last ACK.
	Times []time.Time
	// Bytes received since the mark, and the proxies that received any, by
	// protocol ("sotw", "delta").
	Bytes, Receivers map[string]int64
	// Missing names a few proxies that did not reach the versions.
	Missing []string
	Error   string
}

type fleetMember struct {
	fleetProxy
	mu   sync.Mutex
	held xdstest.Held
	mark int64
}

func runFleet(configPath string, in io.Reader, out io.Writer) error {
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var cfg fleetConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("reading the fleet config: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CA) {
		return fmt.Errorf("the fleet config's CA is not PEM")
	}
	certs := map[string]*tls.Certificate{}
	for id, kp := range cfg.Identities {
		c, err := tls.X509KeyPair(kp.Cert, kp.Key)
		if err != nil {
			return fmt.Errorf("identity %s: %w", id, err)
		}
		certs[id] = &c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	members := make([]*fleetMember, len(cfg.Proxies))
	for i, p := range cfg.Proxies {
		if certs[p.Identity] == nil {
			return fmt.Errorf("proxy %s: no key pair for identity %s", p.NodeID, p.Identity)
		}
		members[i] = &fleetMember{fleetProxy: p}
	}
	connecting := make(chan struct{}, max(cfg.MaxConnecting, 1))
	var wg sync.WaitGroup
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			cancel()
			wg.Wait()
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("reading a request: %w", err)
		}
		var rep reply
		switch req.Op {
		case "connect": // every proxy at once, as after a control plane restart
			for _, m := range members {
				wg.Go(func() { m.run(ctx, cfg, certs[m.Identity], roots, connecting) })
			}
		case "mark":
			for _, m := range members {
				m.mu.Lock()
				m.mark = m.held.Bytes
				m.mu.Unlock()
			}
		case "await":
			rep = await(members, req)
		case "stop":
			cancel()
			wg.Wait()
			return enc.Encode(rep)
		default:
			rep.Error = fmt.Sprintf("unknown op %q", req.Op)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
}

// run keeps the proxy connected, reconnecting with jittered backoff as Envoy does.
func (m *fleetMember) run(ctx context.Context, cfg fleetConfig, cert *tls.Certificate, roots *x509.CertPool, connecting chan struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		select {
		case connecting <- struct{}{}:
		case <-ctx.Done():
			return
		}
		released := false
		release := func() {
			if !released {
				released = true
				<-connecting
			}
		}
		conn, err := xdstest.Dial(cfg.Address, cfg.ServerName, cert, roots)
		if err == nil {
			m.mu.Lock()
			base := m.held.Bytes // a new stream counts its bytes from zero
			m.mu.Unlock()
			e := &xdstest.Envoy{NodeID: m.NodeID, Delta: m.Delta, OnHeld: func(h xdstest.Held) {
				release() // connected and served
				h.Bytes += base
				m.mu.Lock()
				m.held = h
				m.mu.Unlock()
			}}
			err = e.Run(ctx, conn)
			_ = conn.Close()
		}
		release()
		if ctx.Err() != nil {
			return
		}
		logOnce(err)
		select {
		case <-time.After(backoff/2 + rand.N(backoff)):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// await waits until the proxies of the requested groups hold their versions.
func await(members []*fleetMember, req request) reply {
	rep := reply{Bytes: map[string]int64{}, Receivers: map[string]int64{}}
	var awaited []*fleetMember
	for _, m := range members {
		if _, ok := req.Groups[m.Group]; ok {
			awaited = append(awaited, m)
		}
	}
	rep.Proxies = len(awaited)
	deadline := time.Now().Add(req.Timeout)
	pending := awaited
	for {
		var still []*fleetMember
		for _, m := range pending {
			m.mu.Lock()
			ok := m.held.Versions == req.Groups[m.Group]
			m.mu.Unlock()
			if !ok {
				still = append(still, m)
			}
		}
		pending = still
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		// The times reported are the proxies' own, so polling slowly costs
		// no accuracy.
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range pending {
		if len(rep.Missing) < 3 {
			m.mu.Lock()
			rep.Missing = append(rep.Missing, fmt.Sprintf("%s holds %q, not %q", m.NodeID, m.held.Versions, req.Groups[m.Group]))
			m.mu.Unlock()
		}
	}
	for _, m := range awaited {
		m.mu.Lock()
		if m.held.Versions == req.Groups[m.Group] {
			rep.Reached++
			rep.Times = append(rep.Times, m.held.At)
		}
		kind := "sotw"
		if m.Delta {
			kind = "delta"
		}
		if b := m.held.Bytes - m.mark; b > 0 {
			rep.Bytes[kind] += b
			rep.Receivers[kind]++
		}
		m.mu.Unlock()
	}
	return rep
}

var logged sync.Map

// logOnce reports each distinct stream error once, on stderr.
func logOnce(err error) {
	if err == nil {
		return
	}
	if _, seen := logged.LoadOrStore(err.Error(), true); !seen {
		fmt.Fprintln(os.Stderr, "fleet: a proxy's stream failed (it reconnects):", err)
	}
}
