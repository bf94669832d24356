package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// fleet is the running proxy process.
type fleet struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

func (h *harness) startFleet(address string, proxies []fleetProxy) (*fleet, error) {
	cfg := fleetConfig{Address: address, ServerName: serverName, CA: h.ca.PEM, Identities: h.identities, Proxies: proxies, MaxConnecting: h.o.maxConnecting}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(h.certDir, "fleet.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-fleet", path}
	if h.o.fleetProfile != "" {
		args = append(args, "-fleet-cpuprofile", fmt.Sprintf("%s.%d", h.o.fleetProfile, len(proxies)))
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the fleet: %w", err)
	}
	return &fleet{cmd: cmd, in: in, out: json.NewDecoder(bufio.NewReader(out))}, nil
}

func (f *fleet) ask(req request) (reply, error) {
	var rep reply
	b, err := json.Marshal(req)
	if err != nil {
		return rep, err
	}
	if _, err := f.in.Write(append(b, '\n')); err != nil {
		return rep, fmt.Errorf("asking the fleet to %s: %w", req.Op, err)
	}
	if err := f.out.Decode(&rep); err != nil {
		return rep, fmt.Errorf("reading the fleet's answer to %s: %w", req.Op, err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("fleet: %s", rep.Error)
	}
	return rep, nil
}

func (f *fleet) stop() error {
	if _, err := f.ask(request{Op: "stop"}); err != nil {
		_ = f.cmd.Process.Kill()
	}
	return f.cmd.Wait()
}

// measure runs every scenario with a fleet of n proxies against a freshly
// started control plane.
func (h *harness) measure(ctx context.Context, n int, heapProfile bool) (Run, error) {
	r := Run{Proxies: n}
	proxies := h.proxies[:n]
	groups := map[string]bool{}
	for _, p := range proxies {
		groups[p.Group] = true
		if p.Delta {
			r.DeltaProxies++
		}
	}
	r.Groups = len(groups)
	address, err := freeAddress()
	if err != nil {
		return r, err
	}
	f, err := h.startFleet(address, proxies)
	if err != nil {
		return r, err
	}
	defer func() { _ = f.cmd.Process.Kill() }()

	// Cold start: the control plane starts while every proxy is waiting to
	// reconnect.
	start := time.Now()
	cp, err := startControlPlane(h.env.Config, h.env.Scheme, address, h.certDir, h.log, h.o.enforced)
	if err != nil {
		return r, err
	}
	defer cp.Stop()
	if _, err := cp.server.Addr(ctx); err != nil {
		return r, err
	}
	if _, err := f.ask(request{Op: "connect"}); err != nil {
		return r, err
	}
	cpu0, fleetCPU0, sync0 := cpuSeconds("self"), cpuSeconds(strconv.Itoa(f.cmd.Process.Pid)), readRunnerMetrics()

	for len(cp.snapshots.Versions()) < h.groups {
		if time.Since(start) > 2*time.Minute {
			return r, fmt.Errorf("the runner published %d of %d groups in 2 minutes", len(cp.snapshots.Versions()), h.groups)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.ColdStart.FirstSyncMS = ms(time.Since(start))
	rep, err := f.ask(request{Op: "await", Groups: cp.snapshots.Versions(), Timeout: 5 * time.Minute})
	sync1 := readRunnerMetrics()
	select {
	case <-cp.synced: // long since: the runner synced after them
		r.ColdStart.InformersSyncedMS = ms(cp.syncedAt.Sub(start))
	case <-time.After(time.Second):
	}
	r.ColdStart.ControlPlaneCPUSeconds = cpuSeconds("self") - cpu0
	r.ColdStart.FleetCPUSeconds = cpuSeconds(strconv.Itoa(f.cmd.Process.Pid)) - fleetCPU0
	r.ColdStart.Syncs, r.ColdStart.SyncSeconds = sync1.syncs-sync0.syncs, sync1.syncSeconds-sync0.syncSeconds
	r.ColdStart.GroupsTranslated = sync1.groups - sync0.groups
	if err != nil {
		return r, err
	}
	if rep.Reached < rep.Proxies {
		return r, fmt.Errorf("cold start: %d of %d proxies hold their config after 5 minutes (e.g. %v)", rep.Reached, rep.Proxies, rep.Missing)
	}
	coldDone := time.Now()
	// Nothing was marked yet: the bytes are all the fleet received.
	r.ColdStart.BytesSentMiB = float64(rep.Bytes["delta"]+rep.Bytes["sotw"]) / (1 << 20)
	r.ColdStart.KiBPerProxy = 1024 * r.ColdStart.BytesSentMiB / float64(n)
	held := since(start, rep.Times)
	r.ColdStart.AllHeldMS, r.ColdStart.P50HeldMS = ms(held[len(held)-1]), ms(held[len(held)/2])
	progress("cold start: %d proxies hold full config after %.0f ms (informers synced %.0f ms, first sync %.0f ms; %d syncs took %.1f s, %d groups translated; CPU: control plane %.1f s, fleet %.1f s; %.0f MiB sent, %.0f KiB per proxy)",
		n, r.ColdStart.AllHeldMS, r.ColdStart.InformersSyncedMS, r.ColdStart.FirstSyncMS, r.ColdStart.Syncs, r.ColdStart.SyncSeconds, r.ColdStart.GroupsTranslated, r.ColdStart.ControlPlaneCPUSeconds, r.ColdStart.FleetCPUSeconds, r.ColdStart.BytesSentMiB, r.ColdStart.KiBPerProxy)

	// The leader's first passes judge every policy and write most of them;
	// the figures after are of a settled writer, as before it there was
	// none. What the first passes cost is Enforced.InitialWindow.
	var initial Window
	settled := time.Now()
	if cp.writes != nil {
		i0, cpuI0, apiI0 := time.Now(), cpuSeconds("self"), childCPU("kube-apiserver", "etcd")
		quiet := cp.writes.waitQuiet(statusWrite, i0, writerQuiet, 2*time.Minute)
		i1, cpuI1, apiI1 := time.Now(), cpuSeconds("self"), childCPU("kube-apiserver", "etcd")
		settled = i1
		initial = Window{Seconds: i1.Sub(i0).Seconds(), ControlPlaneCPUSeconds: cpuI1 - cpuI0, APIServerCPUSeconds: apiI1 - apiI0}
		initial.ControlPlaneCores, initial.APIServerCores = initial.ControlPlaneCPUSeconds/initial.Seconds, initial.APIServerCPUSeconds/initial.Seconds
		initial.StatusWrites, initial.LeaseWrites = cp.writes.count(statusWrite, i0, i1, false), cp.writes.count(leaseWrite, i0, i1, false)
		initial.StatusWritesPerS, initial.LeaseWritesPerS = float64(initial.StatusWrites)/initial.Seconds, float64(initial.LeaseWrites)/initial.Seconds
		progress("Enforced: first passes after the cold start: %d status writes in %.1f s (%s), %d since the start; CPU: control plane %.2f cores, API server+etcd %.2f cores",
			initial.StatusWrites, initial.Seconds, map[bool]string{true: "settled", false: "still writing at the timeout"}[quiet], cp.writes.count(statusWrite, start, i1, false), initial.ControlPlaneCores, initial.APIServerCores)
	}

	connected := readMemory()
	if heapProfile {
		if err := writeHeapProfile(h.o.memProfile); err != nil {
			return r, err
		}
	}

	rnd := rand.New(rand.NewPCG(uint64(n), 8))
	if r.EndpointChange, err = h.endpointChanges(ctx, cp, f, rnd); err != nil {
		return r, err
	}
	progress("endpoint change: p50 %.0f ms, p99 %.0f ms, %.0f B per affected delta proxy", r.EndpointChange.P50MS, r.EndpointChange.P99MS, r.EndpointChange.BytesPerDeltaProxy)
	// The rolling update's window: from its start until rollingTail after
	// its last change, what the Enforced status and the census write as it
	// settles, and the CPU it takes.
	w0, cpuW0, apiW0, syncW0 := time.Now(), cpuSeconds("self"), childCPU("kube-apiserver", "etcd"), readRunnerMetrics()
	if r.RollingUpdate, err = h.rollingUpdate(ctx, cp, f, rnd); err != nil {
		return r, err
	}
	progress("rolling update: %d changes in %.0f ms, converged %.0f ms after the last", r.RollingUpdate.Changes, r.RollingUpdate.SpanMS, r.RollingUpdate.ConvergedMS)
	time.Sleep(time.Until(r.RollingUpdate.last.Add(rollingTail)))
	w1, cpuW1, apiW1, syncW1 := time.Now(), cpuSeconds("self"), childCPU("kube-apiserver", "etcd"), readRunnerMetrics()
	win := &r.RollingWindow
	win.Seconds = w1.Sub(w0).Seconds()
	win.ControlPlaneCPUSeconds, win.APIServerCPUSeconds = cpuW1-cpuW0, apiW1-apiW0
	win.ControlPlaneCores, win.APIServerCores = win.ControlPlaneCPUSeconds/win.Seconds, win.APIServerCPUSeconds/win.Seconds
	win.Syncs, win.GroupsTranslated = syncW1.syncs-syncW0.syncs, syncW1.groups-syncW0.groups
	if cp.writes != nil {
		win.StatusWrites, win.LeaseWrites = cp.writes.count(statusWrite, w0, w1, false), cp.writes.count(leaseWrite, w0, w1, false)
		win.StatusWritesPerS, win.LeaseWritesPerS = float64(win.StatusWrites)/win.Seconds, float64(win.LeaseWrites)/win.Seconds
	}
	progress("rolling update window (%.1f s): %d status writes (%.1f/s), %d Lease writes (%.1f/s); CPU: control plane %.2f cores, API server+etcd %.2f cores; %d runner syncs",
		win.Seconds, win.StatusWrites, win.StatusWritesPerS, win.LeaseWrites, win.LeaseWritesPerS, win.ControlPlaneCores, win.APIServerCores, win.Syncs)
	var reasons map[string]int
	if cp.writes != nil {
		reasons = h.enforcedReasons(ctx)
		progress("Enforced conditions of the SMI policies after the rolling update: %v", reasons)
	}
	if r.PolicyChange, err = h.policyChanges(ctx, cp, f, rnd); err != nil {
		return r, err
	}
	progress("policy change: p50 %.0f ms, p99 %.0f ms", r.PolicyChange.P50MS, r.PolicyChange.P99MS)

	// Memory: with the fleet connected, and again once it is gone; the
	// difference is what the proxies cost beyond the shared snapshots.
	fleetGone := time.Now()
	if err := f.stop(); err != nil {
		return r, fmt.Errorf("stopping the fleet: %w", err)
	}
	for len(cp.server.Proxies()) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the server's streams unwind
	idle := readMemory()
	r.Memory = Memory{
		RSSMiB: mib(connected.rss), IdleRSSMiB: mib(idle.rss), LiveHeapMiB: mib(connected.live), IdleLiveHeapMiB: mib(idle.live),
		Goroutines: connected.goroutines, StacksMiB: mib(connected.stacks),
		RSSPerProxyKiB:  float64(int64(connected.rss)-int64(idle.rss)) / 1024 / float64(n),
		LivePerProxyKiB: float64(int64(connected.live)-int64(idle.live)) / 1024 / float64(n),
	}
	progress("memory: %.0f MiB RSS with the fleet (%.1f KiB per proxy), %.0f MiB without", r.Memory.RSSMiB, r.Memory.RSSPerProxyKiB, r.Memory.IdleRSSMiB)
	if cp.writes != nil {
		e := enforcedFigures(cp, start, coldDone, settled, fleetGone, time.Now())
		e.InitialWindow, e.Reasons = initial, reasons
		r.Enforced = &e
		progress("Enforced: %d policies; %d status writes (%d in the cold start, the last %.1f s after the start; %d after the fleet left), at most %d in a second, %d refused; %d Lease writes, largest Lease %d B of annotations (proxy groups %d B, truncated %v); %d errors logged",
			e.Policies, e.StatusWrites, e.ColdStartStatusWrites, e.LastInitialWriteS, e.StatusWritesAfterFleet, e.PeakStatusWritesPerS, e.StatusWritesRefused, e.LeaseWrites, e.LeaseAnnotationBytes, e.GroupsAnnotationBytes, e.CensusTruncated, e.ErrorsLogged)
		if e.FirstError != "" {
			progress("first error logged: %s", e.FirstError)
		}
	}
	return r, nil
}

// writerQuiet is how long without a status write says the writer settled:
// more than its interval (2 s) and the least time between two writes of
// one object (5 s).
const writerQuiet = 6 * time.Second

// rollingTail is how long after the rolling update's last change its
// window lasts: the writer looks every 2 s and writes an object at most
// every 5 s, the census at most every second.
const rollingTail = 10 * time.Second

// enforcedFigures are what the EnforcedWriter and the census wrote while
// the control plane ran (from start to end): the cold start ran until
// coldDone, the writer's first passes until settled, the fleet was
// connected until fleetGone.
func enforcedFigures(cp *controlPlane, start, coldDone, settled, fleetGone, end time.Time) Enforced {
	w := cp.writes
	e := Enforced{
		StatusWrites:           w.count(statusWrite, start, fleetGone, false),
		StatusWritesAfterFleet: w.count(statusWrite, fleetGone, end, false),
		StatusWritesRefused:    w.count(statusWrite, start, end, true),
		ColdStartStatusWrites:  w.count(statusWrite, start, coldDone, false),
		StatusWritesByKind:     w.byObject(start, fleetGone),
		PeakStatusWritesPerS:   w.peak(statusWrite, start, fleetGone),
		LeaseWrites:            w.count(leaseWrite, start, fleetGone, false),
		LeaseWritesRefused:     w.count(leaseWrite, start, end, true),
		PoliciesByKind:         map[string]int{},
	}
	if t := w.last(statusWrite, start, settled); !t.IsZero() {
		e.LastInitialWriteS = t.Sub(start).Seconds()
	}
	for _, p := range cp.xds.Policies() {
		e.Policies++
		e.PoliciesByKind[p.Kind]++
	}
	w.mu.Lock()
	e.LeaseAnnotationBytes, e.GroupsAnnotationBytes, e.CensusTruncated = w.leaseBytes, w.groupsBytes, w.truncated
	w.mu.Unlock()
	counts, first, infos := cp.logged.snapshot()
	for _, n := range counts {
		e.ErrorsLogged += n
	}
	e.Errors, e.FirstError, e.WriterMessages = counts, first, infos
	return e
}

// change changes the API and returns when its last write was made.
type change func() (time.Time, error)

// converge makes the change, waits for the runner to publish what it
// changes, and for every proxy of the changed groups to hold it. It returns
// how long after the last write the last proxy ACKed, the fleet's reply and
// the number of groups that changed.
func (h *harness) converge(cp *controlPlane, f *fleet, c change) (time.Duration, reply, int, error) {
	before := cp.snapshots.Versions()
	if _, err := f.ask(request{Op: "mark"}); err != nil {
		return 0, reply{}, 0, err
	}
	last, err := c()
	if err != nil {
		return 0, reply{}, 0, err
	}
	// A change the runner takes long over (every group of a Permissive mesh
	// translated) is measured whole, not cut at a timeout.
	changed := waitChanged(cp, before, 300*time.Millisecond, time.Minute)
	if len(changed) == 0 {
		return 0, reply{}, 0, fmt.Errorf("the change published nothing within a minute")
	}
	rep, err := f.ask(request{Op: "await", Groups: changed, Timeout: time.Minute})
	if err != nil {
		return 0, rep, 0, err
	}
	if rep.Reached < rep.Proxies {
		return 0, rep, 0, fmt.Errorf("%d of %d affected proxies hold the change after a minute (e.g. %v)", rep.Reached, rep.Proxies, rep.Missing)
	}
	var took time.Duration
	if len(rep.Times) > 0 {
		took = slices.Max(since(last, rep.Times))
	}
	return took, rep, len(changed), nil
}

// waitChanged waits until the published versions differ from before and then
// stay the same for quiet; it returns the groups that changed.
func waitChanged(cp *controlPlane, before map[string][types.UnknownType]string, quiet, timeout time.Duration) map[string][types.UnknownType]string {
	deadline := time.Now().Add(timeout)
	var changed map[string][types.UnknownType]string
	stable := time.Now()
	var seen uint64
	for time.Now().Before(deadline) {
		if u := cp.snapshots.Updates(); u != seen {
			seen = u
			now := map[string][types.UnknownType]string{}
			for g, v := range cp.snapshots.Versions() {
				if before[g] != v {
					now[g] = v
				}
			}
			if !maps.Equal(now, changed) {
				changed, stable = now, time.Now()
			}
		}
		if len(changed) > 0 && time.Since(stable) >= quiet {
			return changed
		}
		time.Sleep(2 * time.Millisecond)
	}
	return changed
}

// endpointChanges moves one endpoint of a random service at a time.
func (h *harness) endpointChanges(ctx context.Context, cp *controlPlane, f *fleet, rnd *rand.Rand) (Latency, error) {
	var l Latency
	var took []time.Duration
	for range h.o.changes {
		es := h.slices[rnd.IntN(h.o.size.Services)]
		d, rep, groups, err := h.converge(cp, f, h.moveEndpoint(ctx, es, rnd.IntN(len(es.Endpoints)), h.newAddress()))
		if err != nil {
			return l, fmt.Errorf("endpoint change of %s/%s: %w", es.Namespace, es.Name, err)
		}
		took = append(took, d)
		l.add(rep, groups)
	}
	l.summarize(took)
	return l, nil
}

// rollingUpdate replaces the pods of services one by one, as Deployments'
// rolling updates do, h.o.rolling endpoint changes within a second: each
// service's pods in turn, the services at once.
func (h *harness) rollingUpdate(ctx context.Context, cp *controlPlane, f *fleet, rnd *rand.Rand) (Rolling, error) {
	var r Rolling
	perService := min(h.o.size.PodsPerService, h.o.rolling)
	var services [][]change
	for n := 0; n < h.o.rolling; {
		es := h.slices[rnd.IntN(h.o.size.Services)]
		var steps []change
		for i := range min(perService, h.o.rolling-n) {
			steps = append(steps, h.moveEndpoint(ctx, es, i%len(es.Endpoints), h.newAddress()))
		}
		services = append(services, steps)
		n += len(steps)
	}
	pause := time.Second / time.Duration(perService)
	var start, lastChange time.Time
	rolling := func() (time.Time, error) {
		start = time.Now()
		var mu sync.Mutex
		var last time.Time
		var errs []error
		var wg sync.WaitGroup
		for _, steps := range services {
			wg.Go(func() {
				for i, step := range steps {
					if i > 0 {
						time.Sleep(pause - pause/4) // the write takes the rest
					}
					at, err := step()
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else if at.After(last) {
						last = at
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		lastChange = last
		return last, errors.Join(errs...)
	}
	d, rep, groups, err := h.converge(cp, f, rolling)
	if err != nil {
		return r, fmt.Errorf("rolling update: %w", err)
	}
	r.Changes = h.o.rolling
	r.last = lastChange
	r.SpanMS = ms(time.Since(start) - d) // until the last change, roughly
	r.ConvergedMS = ms(d)
	r.Groups, r.AffectedProxies = groups, rep.Reached
	return r, nil
}

// policyChanges adds a source to a random TrafficTarget, then takes it away
// again, one change at a time.
func (h *harness) policyChanges(ctx context.Context, cp *controlPlane, f *fleet, rnd *rand.Rand) (Latency, error) {
	if len(h.targets) == 0 {
		return h.splitChanges(ctx, cp, f, rnd)
	}
	keys := slices.Sorted(maps.Keys(h.targets))
	return h.policyLatency(cp, f, func(i int) (change, string) {
		tt := h.targets[keys[rnd.IntN(len(keys))]]
		if i%2 == 1 {
			tt = h.lastTarget
		}
		h.lastTarget = tt
		return func() (time.Time, error) { return h.flipSource(ctx, tt, i%2 == 0) }, "TrafficTarget " + tt.Namespace + "/" + tt.Name
	})
}

// policyLatency measures h.o.policies changes, the i-th made by next(i)
// (and named, for errors), each until every affected proxy ACKed it.
func (h *harness) policyLatency(cp *controlPlane, f *fleet, next func(i int) (change, string)) (Latency, error) {
	var l Latency
	var took []time.Duration
	for i := range h.o.policies {
		c, name := next(i)
		d, rep, groups, err := h.converge(cp, f, c)
		if err != nil {
			return l, fmt.Errorf("policy change of %s: %w", name, err)
		}
		took = append(took, d)
		l.add(rep, groups)
	}
	l.summarize(took)
	return l, nil
}

// splitChanges are the policy changes of a mesh without TrafficTargets (a
// Permissive one): a TrafficSplit's weights shift and shift back, which
// changes the routes of every group that calls the split's root.
func (h *harness) splitChanges(ctx context.Context, cp *controlPlane, f *fleet, rnd *rand.Rand) (Latency, error) {
	if len(h.splits) == 0 {
		return Latency{}, fmt.Errorf("no TrafficTargets nor TrafficSplits to change")
	}
	var sp *splitv1alpha4.TrafficSplit
	return h.policyLatency(cp, f, func(i int) (change, string) {
		shift := -5
		if i%2 == 0 {
			sp, shift = h.splits[rnd.IntN(len(h.splits))], 5
		}
		s := sp
		return func() (time.Time, error) { return h.shiftWeight(ctx, s, shift) }, "TrafficSplit " + s.Namespace + "/" + s.Name
	})
}

// shiftWeight moves shift of a split's weight from its first backend to
// its last.
func (h *harness) shiftWeight(ctx context.Context, sp *splitv1alpha4.TrafficSplit, shift int) (time.Time, error) {
	var at time.Time
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(sp), sp); err != nil {
			return err
		}
		be := sp.Spec.Backends
		if len(be) < 2 || be[0].Weight < shift || be[len(be)-1].Weight < -shift {
			return fmt.Errorf("TrafficSplit %s/%s has no weight to shift", sp.Namespace, sp.Name)
		}
		be[0].Weight -= shift
		be[len(be)-1].Weight += shift
		at = time.Now()
		return h.k8s.Update(ctx, sp)
	})
	return at, err
}

// moveEndpoint gives endpoint i of es a new address. Each change reads its
// own copy of the slice, so changes of different slices can run at once.
func (h *harness) moveEndpoint(ctx context.Context, es *discoveryv1.EndpointSlice, i int, address string) change {
	return func() (time.Time, error) {
		var at time.Time
		cur := &discoveryv1.EndpointSlice{}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(es), cur); err != nil {
				return err
			}
			cur.Endpoints[i].Addresses = []string{address}
			at = time.Now()
			return h.k8s.Update(ctx, cur)
		})
		return at, err
	}
}

// newAddress is an endpoint address not used before.
func (h *harness) newAddress() string {
	h.moved++
	return fmt.Sprintf("10.%d.%d.%d", 200+h.moved/62500%50, h.moved/250%250, h.moved%250+1)
}

// flipSource adds (or removes) a source identity of another service to tt.
func (h *harness) flipSource(ctx context.Context, tt *accessv1alpha3.TrafficTarget, add bool) (time.Time, error) {
	var at time.Time
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(tt), tt); err != nil {
			return err
		}
		src := accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Namespace: tt.Namespace, Name: "extra-caller"}
		if add {
			// The first identity of a service further along the ring.
			other := h.targets[h.otherTarget(tt)]
			src = accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Namespace: other.Namespace, Name: other.Name}
			tt.Spec.Sources = append(tt.Spec.Sources, src)
		} else {
			tt.Spec.Sources = tt.Spec.Sources[:len(tt.Spec.Sources)-1]
		}
		at = time.Now()
		return h.k8s.Update(ctx, tt)
	})
	return at, err
}

// otherTarget names the TrafficTarget of the first identity of the service
// seven further along the ring from tt's (TrafficTargets are named after
// their destination identity, svc-<i>-sa-<k>).
func (h *harness) otherTarget(tt *accessv1alpha3.TrafficTarget) string {
	i, _ := strconv.Atoi(strings.Split(tt.Name, "-")[1])
	j := (i + 7) % h.o.size.Services
	return fmt.Sprintf("ns-%d/svc-%d-sa-0", j%h.o.size.Namespaces, j)
}

type memory struct {
	rss, live, stacks uint64
	goroutines        int
}

// readMemory is the process's resident memory and live heap after a GC,
// with freed memory returned to the OS.
func readMemory() memory {
	runtime.GC()
	debug.FreeOSMemory()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	m := memory{live: s[0].Value.Uint64() + stats.StackInuse, stacks: stats.StackInuse, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.rss = kb * 1024
			}
		}
	}
	return m
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// since are the durations from t0 to each time, sorted.
func since(t0 time.Time, times []time.Time) []time.Duration {
	out := make([]time.Duration, len(times))
	for i, t := range times {
		out[i] = t.Sub(t0)
	}
	slices.Sort(out)
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mib(b uint64) float64       { return float64(b) / (1 << 20) }

// cpuSeconds is the CPU time (user and system) of a process so far, from
// /proc/<pid>/stat; pid "self" is this one.
func cpuSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields start after it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ)
}

type runnerMetrics struct {
	syncs, groups int
	syncSeconds   float64
}

// readRunnerMetrics reads the runner's own metrics from the registry the
// manager serves.
func readRunnerMetrics() runnerMetrics {
	var m runnerMetrics
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return m
	}
	for _, f := range families {
		for _, x := range f.GetMetric() {
			switch f.GetName() {
			case "osm_xds_sync_duration_seconds":
				m.syncs = int(x.GetHistogram().GetSampleCount())
				m.syncSeconds = x.GetHistogram().GetSampleSum()
			case "osm_xds_groups_translated_total":
				m.groups = int(x.GetCounter().GetValue())
			}
		}
	}
	return m
}
