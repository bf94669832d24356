package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run of the harness writes as JSON.
type Report struct {
	Mesh    MeshSize
	Started time.Time
	// EnforcedStatus says that the census publisher and the leader's
	// EnforcedWriter ran beside each control plane (-enforced).
	EnforcedStatus bool
	Runs           []Run
}

// MeshSize describes the synthetic mesh.
type MeshSize struct {
	Services, Endpoints, Identities, Groups, Splits, VMs, Objects int
	IngressBackends, Egresses                                     int
	HTTPRoutes, ResiliencePolicies                                int `json:",omitempty"`
	Permissive                                                    bool
	// Scoped: each namespace's MeshMember names the services it calls.
	Scoped        bool `json:",omitempty"`
	DeltaFraction float64
}

// Run holds the figures at one fleet size.
type Run struct {
	Proxies, DeltaProxies, Groups int
	ColdStart                     ColdStart
	EndpointChange                Latency
	RollingUpdate                 Rolling
	// RollingWindow is from the rolling update's start until 10 s after
	// its last change.
	RollingWindow Window
	PolicyChange  Latency
	Memory        Memory
	// Enforced is what the Enforced status and the census wrote (without
	// -enforced=false).
	Enforced *Enforced `json:",omitempty"`
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
	// What the fleet received until every proxy held its config.
	BytesSentMiB, KiBPerProxy float64
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

	last time.Time // the last change's write
}

// Window is a time after a change, with what was written and the CPU used.
type Window struct {
	Seconds float64
	// CPU time of the control plane (this process: the control plane, the
	// EnforcedWriter and the harness's own writes) and of envtest's
	// kube-apiserver and etcd; Cores are per second of the window.
	ControlPlaneCPUSeconds, APIServerCPUSeconds float64
	ControlPlaneCores, APIServerCores           float64
	// Runner syncs and groups translated.
	Syncs, GroupsTranslated int
	// Status writes of the EnforcedWriter and Lease writes of the census
	// publisher, and their rates over the window.
	StatusWrites, LeaseWrites         int
	StatusWritesPerS, LeaseWritesPerS float64
}

// Enforced is what the EnforcedWriter and the census publisher wrote over
// one fleet size's control plane.
type Enforced struct {
	// Policies the writer judges at the end, by kind.
	Policies       int
	PoliciesByKind map[string]int
	// StatusWrites are the status patches made while the fleet was
	// connected, by kind of policy; ColdStartStatusWrites those made until
	// every proxy held its config; LastInitialWriteS is when the last write
	// of the writer's first passes was made, from the control plane's
	// start; StatusWritesAfterFleet those made after the fleet
	// left (until the control plane stopped: the idle memory measure);
	// PeakStatusWritesPerS the most within one second; refused ones the
	// API server refused.
	StatusWrites, ColdStartStatusWrites, StatusWritesAfterFleet int
	StatusWritesByKind                                          map[string]int
	LastInitialWriteS                                           float64
	// Reasons count the SMI policies by their Enforced condition's reason
	// after the rolling update's window.
	Reasons map[string]int
	// InitialWindow is from the cold start's end until the writer made no
	// write for 6 s (included): what its first passes cost.
	InitialWindow                             Window
	PeakStatusWritesPerS, StatusWritesRefused int
	// LeaseWrites are the census Lease writes while the fleet was
	// connected; the largest Lease's annotations, and its proxy-groups
	// annotation, in bytes; CensusTruncated says that a Lease left groups
	// out (census.MaxGroups, MaxGroupBytes).
	LeaseWrites, LeaseWritesRefused             int
	LeaseAnnotationBytes, GroupsAnnotationBytes int
	CensusTruncated                             bool
	// Errors logged by the writer and the control plane, by logger and
	// message, the first in full; WriterMessages the writer's other
	// messages.
	ErrorsLogged   int
	Errors         map[string]int `json:",omitempty"`
	FirstError     string         `json:",omitempty"`
	WriterMessages map[string]int `json:",omitempty"`
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
		m.Services, m.Endpoints, m.Identities, m.Groups, m.Splits, m.VMs, map[bool]string{true: "permissive", false: "SMI policy"}[m.Permissive]+map[bool]string{true: ", scoped by spec.outbound.services"}[m.Scoped], 100*m.DeltaFraction)
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
	row("cold start: MiB sent / KiB per proxy", "", func(x Run) string {
		return fmt.Sprintf("%.0f / %.0f", x.ColdStart.BytesSentMiB, x.ColdStart.KiBPerProxy)
	})
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
	row("rolling window (start → last+10 s) s", "", func(x Run) string { return f1(x.RollingWindow.Seconds) })
	row("rolling window: CPU cores control plane / API server+etcd", "", func(x Run) string {
		return fmt.Sprintf("%.2f / %.2f", x.RollingWindow.ControlPlaneCores, x.RollingWindow.APIServerCores)
	})
	row("rolling window: runner syncs / groups translated", "", func(x Run) string {
		return fmt.Sprintf("%d / %d", x.RollingWindow.Syncs, x.RollingWindow.GroupsTranslated)
	})
	if r.EnforcedStatus {
		row("rolling window: status writes/s (writes)", "", func(x Run) string {
			return fmt.Sprintf("%.1f (%d)", x.RollingWindow.StatusWritesPerS, x.RollingWindow.StatusWrites)
		})
		row("rolling window: census Lease writes/s (writes)", "", func(x Run) string {
			return fmt.Sprintf("%.1f (%d)", x.RollingWindow.LeaseWritesPerS, x.RollingWindow.LeaseWrites)
		})
	}
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
	if r.EnforcedStatus {
		e := func(f func(Enforced) string) func(Run) string {
			return func(x Run) string {
				if x.Enforced == nil {
					return "-"
				}
				return f(*x.Enforced)
			}
		}
		row("Enforced: policies judged", "", e(func(x Enforced) string { return fmt.Sprint(x.Policies) }))
		row("Enforced: status writes with the fleet (cold start)", "", e(func(x Enforced) string {
			return fmt.Sprintf("%d (%d)", x.StatusWrites, x.ColdStartStatusWrites)
		}))
		row("Enforced: last initial write after start s", "", e(func(x Enforced) string { return f1(x.LastInitialWriteS) }))
		row("Enforced: first passes after cold start: writes / s (incl. 6 s quiet)", "", e(func(x Enforced) string {
			return fmt.Sprintf("%d / %.1f", x.InitialWindow.StatusWrites, x.InitialWindow.Seconds)
		}))
		row("Enforced: first passes: CPU cores control plane / API server+etcd", "", e(func(x Enforced) string {
			return fmt.Sprintf("%.2f / %.2f", x.InitialWindow.ControlPlaneCores, x.InitialWindow.APIServerCores)
		}))
		row("Enforced: status writes after the fleet left", "", e(func(x Enforced) string { return fmt.Sprint(x.StatusWritesAfterFleet) }))
		row("Enforced: peak status writes in 1 s / refused", "", e(func(x Enforced) string {
			return fmt.Sprintf("%d / %d", x.PeakStatusWritesPerS, x.StatusWritesRefused)
		}))
		row("census: Lease writes with the fleet", "", e(func(x Enforced) string { return fmt.Sprint(x.LeaseWrites) }))
		row("census: largest Lease annotations / proxy groups B", "", e(func(x Enforced) string {
			t := ""
			if x.CensusTruncated {
				t = " (truncated)"
			}
			return fmt.Sprintf("%d / %d%s", x.LeaseAnnotationBytes, x.GroupsAnnotationBytes, t)
		}))
		row("Enforced reasons after the rolling update", "", e(func(x Enforced) string {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(x.Reasons)) {
				parts = append(parts, fmt.Sprintf("%s %d", k, x.Reasons[k]))
			}
			return strings.Join(parts, ", ")
		}))
		row("errors logged (writer, control plane)", "", e(func(x Enforced) string { return fmt.Sprint(x.ErrorsLogged) }))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
