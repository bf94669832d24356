package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Report is what a run of the harness writes as JSON.
type Report struct {
	Mesh    MeshSize
	Started time.Time
	Runs    []Run
}

// MeshSize describes the synthetic mesh.
type MeshSize struct {
	Services, Endpoints, Identities, Groups, Splits, VMs, Objects int
	IngressBackends, Egresses                                     int
	HTTPRoutes, ResiliencePolicies                                int `json:",omitempty"`
	Permissive                                                    bool
	DeltaFraction                                                 float64
}

// Run holds the figures at one fleet size.
type Run struct {
	Proxies, DeltaProxies, Groups int
	ColdStart                     ColdStart
	EndpointChange                Latency
	RollingUpdate                 Rolling
	PolicyChange                  Latency
	Memory                        Memory
}

// ColdStart is from the control plane's start, with every proxy waiting.
type ColdStart struct {
	// FirstSyncMS is when every group's snapshot was published (informer
	// lists, model, translation); AllHeldMS when the last proxy ACKed all of
	// its config; P50HeldMS when half of them had.
	InformersSyncedMS, FirstSyncMS, AllHeldMS, P50HeldMS float64
	// What the runner did meanwhile, and the CPU time each process used.
	Syncs, GroupsTranslated                 int
	SyncSeconds                             float64
	ControlPlaneCPUSeconds, FleetCPUSeconds float64
}

// Latency is from a change to the last affected proxy's ACK, over changes.
type Latency struct {
	Changes                  int
	P50MS, P99MS, MaxMS      float64
	GroupsPerChange          float64
	AffectedProxiesPerChange float64
	// Bytes each affected proxy received per change, by protocol.
	BytesPerDeltaProxy, BytesPerSotWProxy float64

	groups, affected           int
	deltaBytes, deltaReceivers int64
	sotwBytes, sotwReceivers   int64
}

func (l *Latency) add(rep reply, groups int) {
	l.Changes++
	l.groups += groups
	l.affected += rep.Reached
	l.deltaBytes += rep.Bytes["delta"]
	l.deltaReceivers += rep.Receivers["delta"]
	l.sotwBytes += rep.Bytes["sotw"]
	l.sotwReceivers += rep.Receivers["sotw"]
}

func (l *Latency) summarize(took []time.Duration) {
	slices.Sort(took)
	if len(took) == 0 {
		return
	}
	l.P50MS, l.P99MS, l.MaxMS = ms(took[len(took)/2]), ms(took[(len(took)*99)/100]), ms(took[len(took)-1])
	l.GroupsPerChange = float64(l.groups) / float64(l.Changes)
	l.AffectedProxiesPerChange = float64(l.affected) / float64(l.Changes)
	if l.deltaReceivers > 0 {
		l.BytesPerDeltaProxy = float64(l.deltaBytes) / float64(l.deltaReceivers)
	}
	if l.sotwReceivers > 0 {
		l.BytesPerSotWProxy = float64(l.sotwBytes) / float64(l.sotwReceivers)
	}
}

// Rolling is a burst of endpoint changes within about a second.
type Rolling struct {
	Changes                 int
	SpanMS, ConvergedMS     float64
	Groups, AffectedProxies int
}

// Memory is the control plane's (this process's) memory after a GC.
type Memory struct {
	RSSMiB, IdleRSSMiB, LiveHeapMiB, IdleLiveHeapMiB float64
	RSSPerProxyKiB, LivePerProxyKiB                  float64
	// StacksMiB are the goroutine stacks with the fleet connected (part of
	// the live figures).
	StacksMiB  float64
	Goroutines int
}

func printTable(w io.Writer, r Report) {
	m := r.Mesh
	fmt.Fprintf(w, "\nMesh: %d services, %d endpoints, %d identities, %d proxy groups, %d TrafficSplits, %d MeshVMs (%s); %.0f%% of proxies on delta xDS\n\n",
		m.Services, m.Endpoints, m.Identities, m.Groups, m.Splits, m.VMs, map[bool]string{true: "permissive", false: "SMI policy"}[m.Permissive], 100*m.DeltaFraction)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name, target string, f func(Run) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, run := range r.Runs {
			fmt.Fprintf(tw, "%s\t", f(run))
		}
		fmt.Fprintf(tw, "%s\t\n", target)
	}
	row("proxies", "target", func(x Run) string { return fmt.Sprint(x.Proxies) })
	row("groups with proxies", "", func(x Run) string { return fmt.Sprint(x.Groups) })
	row("informers synced ms", "", func(x Run) string { return f0(x.ColdStart.InformersSyncedMS) })
	row("first sync (list+translate+publish) ms", "", func(x Run) string { return f0(x.ColdStart.FirstSyncMS) })
	row("cold start: all proxies hold config ms", "≤ 10000", func(x Run) string { return f0(x.ColdStart.AllHeldMS) })
	row("cold start: half of them ms", "", func(x Run) string { return f0(x.ColdStart.P50HeldMS) })
	row("cold start: runner syncs / seconds", "", func(x Run) string {
		return fmt.Sprintf("%d / %.1f", x.ColdStart.Syncs, x.ColdStart.SyncSeconds)
	})
	row("cold start: CPU s control plane / fleet", "", func(x Run) string {
		return fmt.Sprintf("%.1f / %.1f", x.ColdStart.ControlPlaneCPUSeconds, x.ColdStart.FleetCPUSeconds)
	})
	row("endpoint change → affected ACKed p50 ms", "", func(x Run) string { return f0(x.EndpointChange.P50MS) })
	row("endpoint change → affected ACKed p99 ms", "≤ 1000", func(x Run) string { return f0(x.EndpointChange.P99MS) })
	row("affected proxies per endpoint change", "", func(x Run) string { return f1(x.EndpointChange.AffectedProxiesPerChange) })
	row("bytes per change per delta proxy", "≤ 2048", func(x Run) string { return f0(x.EndpointChange.BytesPerDeltaProxy) })
	row("bytes per change per SotW proxy", "", func(x Run) string { return f0(x.EndpointChange.BytesPerSotWProxy) })
	row("rolling update: changes", "", func(x Run) string { return fmt.Sprint(x.RollingUpdate.Changes) })
	row("rolling update: span ms", "", func(x Run) string { return f0(x.RollingUpdate.SpanMS) })
	row("rolling update: converged after last ms", "≤ 2000", func(x Run) string { return f0(x.RollingUpdate.ConvergedMS) })
	row("policy change → affected ACKed p50 ms", "", func(x Run) string { return f0(x.PolicyChange.P50MS) })
	row("policy change → affected ACKed p99 ms", "≤ 1000", func(x Run) string { return f0(x.PolicyChange.P99MS) })
	row("affected proxies per policy change", "", func(x Run) string { return f1(x.PolicyChange.AffectedProxiesPerChange) })
	row("RSS with proxies MiB", "≤ 1024", func(x Run) string { return f0(x.Memory.RSSMiB) })
	row("RSS without proxies MiB", "", func(x Run) string { return f0(x.Memory.IdleRSSMiB) })
	row("RSS per proxy KiB", "≤ 50", func(x Run) string { return f1(x.Memory.RSSPerProxyKiB) })
	row("live heap+stacks per proxy KiB", "", func(x Run) string { return f1(x.Memory.LivePerProxyKiB) })
	row("goroutines / stacks MiB with proxies", "", func(x Run) string {
		return fmt.Sprintf("%d / %.0f", x.Memory.Goroutines, x.Memory.StacksMiB)
	})
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
