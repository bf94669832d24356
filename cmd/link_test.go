package main

import (
	"io"
	"net"
	"sync"
	"testing"
)

// tcpLink forwards TCP connections from addr to target until it is cut: a
// network partition between one client and a server, for outage tests.
type tcpLink struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
}

func newTCPLink(t *testing.T, target string) *tcpLink {
	t.Helper()
	k := &tcpLink{t: t, target: target}
	k.listen("127.0.0.1:0")
	t.Cleanup(k.Cut)
	return k
}

func (k *tcpLink) listen(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		k.t.Fatal(err)
	}
	k.mu.Lock()
	k.l, k.addr = l, l.Addr().String()
	k.mu.Unlock()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", k.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			k.mu.Lock()
			k.conns = append(k.conns, in, out)
			k.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

// Cut closes the listener and every forwarded connection.
func (k *tcpLink) Cut() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.l != nil {
		_ = k.l.Close()
		k.l = nil
	}
	for _, c := range k.conns {
		_ = c.Close()
	}
	k.conns = nil
}

// Restore listens again on the same address.
func (k *tcpLink) Restore() { k.listen(k.addr) }
