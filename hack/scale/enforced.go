package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	coordinationv1ac "k8s.io/client-go/applyconfigurations/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The cost of the Enforced status: the harness runs the leader's
// controllers.EnforcedWriter beside each control plane it starts, and the
// census publisher it reads, and counts what both write through these
// wrappers.

type writeKind uint8

const (
	statusWrite writeKind = iota
	leaseWrite
)

type write struct {
	at   time.Time
	kind writeKind
	// failed says the API server refused it; kind is the object's kind
	// (status writes).
	failed bool
	object string
}

// writeLog records the status writes of the EnforcedWriter and the Lease
// writes of the census publisher of one control plane.
type writeLog struct {
	mu     sync.Mutex
	writes []write
	// The largest Lease written: all its annotations, and the proxy-groups
	// one; and whether some Lease left groups out.
	leaseBytes, groupsBytes int
	truncated               bool
}

func (l *writeLog) add(w write) {
	l.mu.Lock()
	l.writes = append(l.writes, w)
	l.mu.Unlock()
}

// count counts the writes of kind made in [from, to); failed ones too when
// failed is set, only those that succeeded otherwise.
func (l *writeLog) count(kind writeKind, from, to time.Time, failed bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, w := range l.writes {
		if w.kind == kind && w.failed == failed && !w.at.Before(from) && w.at.Before(to) {
			n++
		}
	}
	return n
}

// byObject counts the status writes of each kind of object in [from, to).
func (l *writeLog) byObject(from, to time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, w := range l.writes {
		if w.kind == statusWrite && !w.failed && !w.at.Before(from) && w.at.Before(to) {
			out[w.object]++
		}
	}
	return out
}

// peak is the most writes of kind within any one second from a write on,
// in [from, to).
func (l *writeLog) peak(kind writeKind, from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var at []time.Time
	for _, w := range l.writes {
		if w.kind == kind && !w.failed && !w.at.Before(from) && w.at.Before(to) {
			at = append(at, w.at)
		}
	}
	best, j := 0, 0
	for i := range at { // writes are logged in the order they returned: nearly sorted
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// last is the time of the last write of kind in [from, to), zero if none.
func (l *writeLog) last(kind writeKind, from, to time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t time.Time
	for _, w := range l.writes {
		if w.kind == kind && !w.failed && !w.at.Before(from) && w.at.Before(to) && w.at.After(t) {
			t = w.at
		}
	}
	return t
}

// waitQuiet waits until no write of kind was made for quiet since from,
// at most timeout; it says whether it was quiet.
func (l *writeLog) waitQuiet(kind writeKind, from time.Time, quiet, timeout time.Duration) bool {
	deadline := from.Add(timeout)
	for {
		last := l.last(kind, from, time.Now().Add(time.Hour))
		if last.IsZero() {
			last = from
		}
		if time.Since(last) >= quiet {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *writeLog) lease(annotations map[string]string) {
	n := 0
	for k, v := range annotations {
		n += len(k) + len(v)
	}
	g := annotations[census.GroupsAnnotation]
	l.mu.Lock()
	l.leaseBytes, l.groupsBytes = max(l.leaseBytes, n), max(l.groupsBytes, len(g))
	l.truncated = l.truncated || strings.Contains(g, `"truncated":true`)
	l.mu.Unlock()
}

// countingClient counts the status writes (Status().Patch and the others)
// and the Lease writes (Apply, as the publisher writes) made through it.
type countingClient struct {
	client.Client
	log *writeLog
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

func (c *countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	err := c.Client.Apply(ctx, obj, opts...)
	if l, ok := obj.(*coordinationv1ac.LeaseApplyConfiguration); ok {
		c.log.add(write{at: time.Now(), kind: leaseWrite, failed: err != nil})
		if err == nil {
			c.log.lease(l.Annotations)
		}
	}
	return err
}

func (c *countingClient) statusWrite(obj client.Object, err error) {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		if gvk, gerr := c.GroupVersionKindFor(obj); gerr == nil {
			kind = gvk.Kind
		} else {
			kind = fmt.Sprintf("%T", obj)
		}
	}
	c.log.add(write{at: time.Now(), kind: statusWrite, failed: err != nil, object: kind})
}

type countingStatus struct {
	client.SubResourceWriter
	c *countingClient
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	s.c.statusWrite(obj, err)
	return err
}

func (s *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	err := s.SubResourceWriter.Update(ctx, obj, opts...)
	s.c.statusWrite(obj, err)
	return err
}

// errorLog gathers the errors the writer and the control plane log (the
// harness discards its log without -v).
type errorLog struct {
	mu     sync.Mutex
	counts map[string]int // by "<logger>: <message>"
	first  string         // the first error, in full
	infos  map[string]int // the writer's own level-0 messages
}

func (e *errorLog) errorf(name, msg string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts = map[string]int{}
	}
	e.counts[name+": "+msg]++
	if e.first == "" {
		e.first = fmt.Sprintf("%s: %s: %v", name, msg, err)
	}
}

func (e *errorLog) info(name, msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.infos == nil {
		e.infos = map[string]int{}
	}
	e.infos[name+": "+msg]++
}

func (e *errorLog) snapshot() (counts map[string]int, first string, infos map[string]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	counts, infos = map[string]int{}, map[string]int{}
	for k, v := range e.counts {
		counts[k] = v
	}
	for k, v := range e.infos {
		infos[k] = v
	}
	return counts, e.first, infos
}

// errorSink passes everything to the harness's sink (none without -v) and
// records the errors, and the writer's messages.
type errorSink struct {
	next logr.LogSink
	name string
	log  *errorLog
}

// enforcedReasons counts the SMI policies by the reason of their Enforced
// condition ("none" without one), read from the API server.
func (h *harness) enforcedReasons(ctx context.Context) map[string]int {
	out := map[string]int{}
	for _, gvk := range mesh.SMIKinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := h.k8s.List(ctx, l); err != nil {
			out["not listed: "+gvk.Kind]++
			continue
		}
		for _, u := range l.Items {
			reason := "none"
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Enforced" {
					reason, _ = m["reason"].(string)
				}
			}
			out[reason]++
		}
	}
	return out
}

func (s errorSink) Init(info logr.RuntimeInfo) {
	if s.next != nil {
		s.next.Init(info)
	}
}

// Enabled is true at level 0, so that the writer's messages reach Info.
func (s errorSink) Enabled(level int) bool {
	return level == 0 || s.next != nil && s.next.Enabled(level)
}

func (s errorSink) Info(level int, msg string, kv ...any) {
	if level == 0 && strings.HasPrefix(s.name, "enforced") {
		s.log.info(s.name, msg)
	}
	if s.next != nil && s.next.Enabled(level) {
		s.next.Info(level, msg, kv...)
	}
}

func (s errorSink) Error(err error, msg string, kv ...any) {
	s.log.errorf(s.name, msg, err)
	if s.next != nil {
		s.next.Error(err, msg, kv...)
	}
}

func (s errorSink) WithValues(kv ...any) logr.LogSink {
	if s.next != nil {
		s.next = s.next.WithValues(kv...)
	}
	return s
}

func (s errorSink) WithName(name string) logr.LogSink {
	if s.next != nil {
		s.next = s.next.WithName(name)
	}
	if s.name != "" {
		name = s.name + "/" + name
	}
	s.name = name
	return s
}

// childCPU is the CPU time so far of this process's children of the given
// command names (envtest's kube-apiserver and etcd).
func childCPU(names ...string) float64 {
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total float64
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || fields[1] != self {
			continue
		}
		comm := s[open+1 : close]
		for _, n := range names {
			if comm == n {
				total += cpuSeconds(filepath.Base(filepath.Dir(path)))
			}
		}
	}
	return total
}
