// Command scale measures the xDS control plane at mesh scale (`make
// bench-scale`): a synthetic mesh (services, pods, identities, SMI policy,
// TrafficSplits, MeshVMs) is created in a real API server; the operator's
// control plane (informer cache, runner, snapshot cache, ADS server) serves
// it to simulated proxies — real gRPC ADS clients with mutual TLS, state of the
// world and delta, ACKing like Envoy — run in a second process; and the
// figures of issue 8 are measured at each fleet size: cold start, endpoint
// and policy changes until every affected proxy ACKed, a rolling update,
// bytes per change and the control plane's memory.
//
// It prints a table and writes the figures as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/stdr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

type options struct {
	size          meshtest.Size
	proxies       []int
	deltaFraction float64
	changes       int
	rolling       int
	policies      int
	maxConnecting int
	out           string
	cpuProfile    string
	fleetProfile  string
	memProfile    string
	verbose       bool
	enforced      bool
}

func main() {
	fleet := flag.String("fleet", "", "Run as the proxy fleet with this config file (the harness starts it).")
	fleetProfile := flag.String("fleet-cpuprofile", "", "Write a CPU profile of the fleet (each fleet size appends its size to the name).")
	var o options
	var proxies string
	flag.IntVar(&o.size.Namespaces, "namespaces", 10, "Namespaces the services are spread over.")
	flag.IntVar(&o.size.Services, "services", 1000, "Services, one HTTP port each.")
	flag.IntVar(&o.size.PodsPerService, "pods", 10, "Pods per service.")
	flag.IntVar(&o.size.IdentitiesPerService, "identities", 2, "Service accounts per service.")
	flag.IntVar(&o.size.Splits, "splits", 50, "TrafficSplits (with the default sizes, none chains into another).")
	flag.IntVar(&o.size.VMs, "vms", 20, "MeshVMs, each a proxy too.")
	flag.BoolVar(&o.size.Permissive, "permissive", false, "A permissive mesh instead of SMI policy i → i+1.")
	flag.BoolVar(&o.size.Scoped, "scoped", false, "Give each namespace a MeshMember whose spec.outbound.services are its own and the next namespace's services: with -permissive, what each proxy is sent.")
	flag.IntVar(&o.size.IngressBackends, "ingressbackends", 0, "IngressBackends, each letting an address range reach one service over http.")
	flag.IntVar(&o.size.HTTPRoutes, "httproutes", 0, "Gateway API HTTPRoutes, producer routes of three rules (a prefix with a header set and a timeout, a header match split 90/10, retries), spread over the services.")
	flag.IntVar(&o.size.ResiliencePolicies, "resilience", 0, "ResiliencePolicies, each setting connection limits, outlier detection and least-request balancing on a service.")
	flag.IntVar(&o.size.Egresses, "egresses", 0, "Egresses, each letting one identity reach a host over http and https and a range over https; with any, egress is denied otherwise.")
	flag.StringVar(&proxies, "proxies", "1000,3000,10000", "Fleet sizes to measure, comma-separated; each at most pods+vms.")
	flag.Float64Var(&o.deltaFraction, "delta", 0.5, "Fraction of the proxies on delta xDS; the rest use state of the world.")
	flag.IntVar(&o.changes, "changes", 50, "Single endpoint changes measured one after the other.")
	flag.IntVar(&o.rolling, "rolling", 100, "Endpoint changes of the rolling update, made within one second.")
	flag.IntVar(&o.policies, "policies", 20, "TrafficTarget changes measured one after the other.")
	flag.IntVar(&o.maxConnecting, "max-connecting", 512, "Proxies handshaking at once (reconnect jitter).")
	flag.StringVar(&o.out, "out", "", "JSON file for the figures; default bench/results/scale-<time>.json.")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "Write a CPU profile of the control plane at the largest fleet to this file.")
	flag.StringVar(&o.memProfile, "memprofile", "", "Write a heap profile of the control plane with the largest fleet connected.")
	flag.BoolVar(&o.verbose, "v", false, "Log the control plane.")
	flag.BoolVar(&o.enforced, "enforced", true, "Run the census publisher and the leader's Enforced status writer beside the control plane, and count their writes; false measures the control plane as before the Enforced status.")
	flag.Parse()
	o.fleetProfile = *fleetProfile

	if *fleet != "" {
		if *fleetProfile != "" {
			f, err := os.Create(*fleetProfile)
			if err == nil && pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
		if err := runFleet(*fleet, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			os.Exit(1)
		}
		return
	}
	for _, f := range strings.Split(proxies, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "scale: -proxies %q: each size must be a positive number\n", proxies)
			os.Exit(2)
		}
		o.proxies = append(o.proxies, n)
	}
	if o.out == "" {
		o.out = filepath.Join("bench", "results", "scale-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	}
	log := logr.Discard()
	if o.verbose {
		log = stdr.New(nil)
	}
	ctrllog.SetLogger(log)
	klog.SetLogger(log)
	if err := run(context.Background(), o, log); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log logr.Logger) error {
	h, err := newHarness(ctx, o, log)
	if h != nil {
		defer h.Close()
		// An interrupted run must not leave its API server and etcd behind.
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-signals
			h.Close()
			os.Exit(130)
		}()
	}
	if err != nil {
		return err
	}
	report := Report{Mesh: h.describe(), Started: time.Now().UTC(), EnforcedStatus: o.enforced}
	for i, n := range o.proxies {
		last := i == len(o.proxies)-1
		if last && o.cpuProfile != "" {
			f, err := os.Create(o.cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		progress("fleet of %d proxies", n)
		r, err := h.measure(ctx, n, last && o.memProfile != "")
		if last && o.cpuProfile != "" {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return fmt.Errorf("at %d proxies: %w", n, err)
		}
		report.Runs = append(report.Runs, r)
	}
	printTable(os.Stdout, report)
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("figures written to", o.out)
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[scale %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
