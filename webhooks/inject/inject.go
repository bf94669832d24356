// Package inject adds the mesh's Envoy sidecar to a pod: pure functions of
// the pod and the mesh's configuration, shared by the admission webhook and
// `osm-operator inject`. Injection creates nothing and waits for nothing: the
// bootstrap is passed inline, with the pod's name expanded by Kubernetes, the
// identity comes from the Secret the MeshMember reconciler issues, and the
// roots the pod trusts from the mesh's trust bundle ConfigMap, which the
// MeshInstance reconciler keeps in each namespace of the mesh.
package inject

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Names and ports of what injection adds.
const (
	ProxyContainer = mesh.SidecarContainer
	InitContainer  = "osm-init"
	IdentityVolume = "osm-identity"
	// IdentityDir is where the proxy reads its certificate and key, and the
	// mesh's trust bundle (identityVolumeOf).
	IdentityDir = "/var/run/osm/identity"
	// SDSVolume holds the proxy's SDS files (bootstrap.SDSFiles), projected
	// from the pod's annotations SDSAnnotationPrefix+<file>.
	SDSVolume = "osm-sds"
	// SDSDir is where the proxy reads them.
	SDSDir = "/var/run/osm/sds"
	// BootstrapVolume holds the bootstrap overlay the init container writes:
	// the IPv6 twins of the proxy's static listeners where the pod's kernel
	// has IPv6, nothing where it has not (bootstrap.IPv6Overlay).
	BootstrapVolume = "osm-bootstrap"
	BootstrapDir    = "/var/run/osm/bootstrap"
	OverlayFile     = BootstrapDir + "/ipv6.json"
	// SDSAnnotationPrefix starts the annotations holding the SDS files.
	SDSAnnotationPrefix = "mesh.openservicemesh.io/sds-"

	// ProxyUID runs Envoy; the redirection rules let its own traffic out.
	ProxyUID = 1500
)

// Pod annotations that tune injection.
const (
	OutboundPortExclusionAnnotation    = "openservicemesh.io/outbound-port-exclusion-list"
	InboundPortExclusionAnnotation     = "openservicemesh.io/inbound-port-exclusion-list"
	OutboundIPRangeExclusionAnnotation = "openservicemesh.io/outbound-ip-range-exclusion-list"
)

// Prometheus scrape annotations, set unless the pod has its own.
const (
	PrometheusScrapeAnnotation = "prometheus.io/scrape"
	PrometheusPortAnnotation   = "prometheus.io/port"
	PrometheusPathAnnotation   = "prometheus.io/path"
)

// DefaultSidecarImage and DefaultInitImage are used when neither the mesh
// nor the operator's flags name one. DefaultSidecarImage is the Envoy this
// build of the operator is made and tested for.
const (
	DefaultSidecarImage = "envoyproxy/envoy-distroless:v1.36.2"
	// DefaultInitImage needs sh and iptables-restore.
	DefaultInitImage = "openservicemesh/init:v1.2.4"
)

// Config is what injection takes from the mesh.
type Config struct {
	Mesh string
	// Sidecar is the MeshInstance's spec.sidecar.
	Sidecar meshv1alpha1.Sidecar
	// XDSHost, XDSPort and XDSServerName are where and how the proxy reaches
	// the xDS server.
	XDSHost       string
	XDSPort       int32
	XDSServerName string
	// GRPCServerURI is where a proxyless gRPC application dials the xDS
	// server: a name its certificate is verified by.
	GRPCServerURI string
	// InitImage is used when Sidecar.InitImage is empty.
	InitImage string
	// SidecarImage is used when Sidecar.Image is empty.
	SidecarImage string
}

// Images are the operator's images (its --sidecar-image and --init-image),
// for the meshes that name none; empty means the build's.
type Images struct {
	Sidecar, Init string
}

// SidecarImage is the Envoy image of a mesh's sidecars, sidecar being its
// spec.sidecar: the image the mesh names, or else operatorDefault (the
// operator's --sidecar-image), or else the build's. Injection and the
// MeshMember's count of pods with an old proxy both read it here.
func SidecarImage(sidecar meshv1alpha1.Sidecar, operatorDefault string) string {
	return cmp.Or(sidecar.Image, operatorDefault, DefaultSidecarImage)
}

// ProxyImage is the image of the pod's Envoy sidecar, if it has one.
func ProxyImage(pod *corev1.Pod) (string, bool) {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == ProxyContainer {
			return c.Image, true
		}
	}
	return "", false
}

// InjectedBeforeMeshTrust says whether pod was injected before pods took
// their roots from the mesh's trust bundle: its identity volume is its
// identity Secret alone, whose ca.crt it trusts (identityVolumeOf). It
// keeps working while its issuer publishes the mesh's root there; rolling
// it gives it the mesh's bundle.
func InjectedBeforeMeshTrust(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == IdentityVolume {
			return v.Secret != nil
		}
	}
	return false
}

// ConfigFor is the injection config of mesh mi, served by an operator in
// operatorNamespace whose default images are images.
func ConfigFor(mi *meshv1alpha1.MeshInstance, operatorNamespace string, images Images) Config {
	port := mi.Spec.XDS.EffectivePort()
	return Config{
		Mesh:          mi.Name,
		Sidecar:       mi.Spec.Sidecar,
		XDSHost:       bootstrap.XDSAddress(mi.Spec.XDS.Address, operatorNamespace),
		XDSPort:       port,
		XDSServerName: bootstrap.XDSServerName(mi.Name, operatorNamespace),
		GRPCServerURI: bootstrap.GRPCServerURI(mi.Spec.XDS.Address, mi.Name, operatorNamespace, port),
		InitImage:     images.Init,
		SidecarImage:  images.Sidecar,
	}
}

// Injected says whether the pod's spec has what injection gives it
// (mesh.HasProxy, the one rule, which the model uses too): the injector
// leaves a pod it injected alone when it is called again.
func Injected(pod *corev1.Pod) bool { return mesh.HasProxy(pod) }

// Pod adds the sidecar to pod in place, or, to a proxyless gRPC pod
// (annotated openservicemesh.io/proxy: grpc), the xDS bootstrap of its gRPC
// library. Bad annotations are reported, naming the annotation, and so is a
// probe of a port of the proxy's own, naming the container, the probe and the
// port; either leaves the pod untouched.
func Pod(pod *corev1.Pod, cfg Config) error {
	if pod.Annotations[mesh.ProxyKindAnnotation] == string(mesh.ProxyGRPC) {
		return proxyless(pod, cfg)
	}
	ex, err := exclusions(pod, cfg.Sidecar)
	if err != nil {
		return err
	}
	probes, err := rewriteProbes(pod)
	if err != nil {
		return err
	}
	boot, err := proxyBootstrap(pod, cfg, probes)
	if err != nil {
		return err
	}
	overlay, err := ipv6Overlay(probes)
	if err != nil {
		return err
	}
	init := initContainer(cfg, ex, overlay)
	proxy := proxyContainer(cfg, boot, mesh.ServiceAccountOf(pod.Spec.ServiceAccountName))
	pod.Spec.InitContainers = append([]corev1.Container{init, proxy}, pod.Spec.InitContainers...)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: BootstrapVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi")),
	}}})
	addIdentity(pod, cfg)
	addSDS(pod)
	if _, ok := pod.Annotations[PrometheusScrapeAnnotation]; !ok {
		pod.Annotations[PrometheusScrapeAnnotation] = "true"
		pod.Annotations[PrometheusPortAnnotation] = strconv.Itoa(mesh.PrometheusPort)
		pod.Annotations[PrometheusPathAnnotation] = "/stats/prometheus"
	}
	return nil
}

// addIdentity adds the identity volume and marks the pod injected.
func addIdentity(pod *corev1.Pod, cfg Config) {
	pod.Spec.Volumes = append(pod.Spec.Volumes, identityVolumeOf(pod.Spec.ServiceAccountName, cfg.Mesh))
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[meshv1alpha1.InjectedAnnotation] = cfg.Mesh
}

// identityVolumeOf is the identity volume of a pod running as
// serviceAccount in mesh meshName, mounted at IdentityDir: the certificate and key of
// the service account's identity Secret, and the mesh's trust bundle (the
// ConfigMap meshv1alpha1.TrustBundleConfigMapName, which the operator keeps
// in every namespace of the mesh) as ca.crt, projected together, so the
// files the bootstraps read keep their paths and are swapped at once when
// either source changes. The pod trusts the mesh's roots, not the ca.crt of
// its Secret, which an issuer may leave empty (ACME) and anyone who may
// write Secrets in the namespace may change. Neither source is optional:
// the kubelet starts the pod once both exist, as it did for the Secret.
func identityVolumeOf(serviceAccount, meshName string) corev1.Volume {
	return corev1.Volume{
		Name: IdentityVolume,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: meshv1alpha1.IdentitySecretName(mesh.ServiceAccountOf(serviceAccount))},
				Items: []corev1.KeyToPath{
					{Key: corev1.TLSCertKey, Path: bootstrap.CertFile},
					{Key: corev1.TLSPrivateKeyKey, Path: bootstrap.KeyFile},
				},
			}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: meshv1alpha1.TrustBundleConfigMapName(meshName)},
				Items:                []corev1.KeyToPath{{Key: meshv1alpha1.TrustBundleKey, Path: bootstrap.CAFile}},
			}},
		}}},
	}
}

// sdsFiles are the sidecar's SDS files, the same for every sidecar.
var sdsFiles = bootstrap.MustSDSFiles(IdentityDir)

// addSDS adds the sidecar's SDS files: annotations, projected as files into
// the proxy's SDSDir by the downward API. Their content names files only,
// never their secrets.
func addSDS(pod *corev1.Pod) {
	v := &corev1.DownwardAPIVolumeSource{}
	for _, name := range slices.Sorted(maps.Keys(sdsFiles)) {
		key := SDSAnnotationPrefix + strings.TrimSuffix(name, ".json")
		pod.Annotations[key] = string(sdsFiles[name])
		v.Items = append(v.Items, corev1.DownwardAPIVolumeFile{
			Path:     name,
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.annotations['%s']", key)},
		})
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: SDSVolume, VolumeSource: corev1.VolumeSource{DownwardAPI: v}})
}

// GRPCBootstrapEnv holds a proxyless gRPC application's xDS bootstrap.
const GRPCBootstrapEnv = mesh.GRPCBootstrapEnv

// proxyless gives every container of a proxyless gRPC pod its xDS
// bootstrap, in the environment, and its identity files: the gRPC library
// talks to the xDS server itself, with mutual TLS, and takes its
// certificates from a file watcher over the identity Secret (renewals
// included). No sidecar, no traffic redirection.
func proxyless(pod *corev1.Pod, cfg Config) error {
	boot, err := bootstrap.GRPC(bootstrap.GRPCOptions{
		NodeID:      mesh.PodNodeID("$(OSM_POD_NAMESPACE)", "$(OSM_POD_NAME)"),
		Cluster:     mesh.ServiceAccountOf(pod.Spec.ServiceAccountName),
		ServerURI:   cfg.GRPCServerURI,
		IdentityDir: IdentityDir,
		Refresh:     bootstrap.GRPCRefresh,
	})
	if err != nil {
		return fmt.Errorf("encoding the gRPC bootstrap: %w", err)
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		// $(VAR) expands only variables defined earlier in the list.
		c.Env = append(c.Env,
			corev1.EnvVar{Name: "OSM_POD_NAME", ValueFrom: field("metadata.name")},
			corev1.EnvVar{Name: "OSM_POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			corev1.EnvVar{Name: GRPCBootstrapEnv, Value: string(boot)},
		)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: IdentityVolume, MountPath: IdentityDir, ReadOnly: true})
	}
	addIdentity(pod, cfg)
	return nil
}

// proxyContainer is Envoy as a native sidecar: an init container that keeps
// running, started before the app's containers and stopped after them, so
// that the app starts with its proxy ready and Jobs complete.
func proxyContainer(cfg Config, boot, serviceAccount string) corev1.Container {
	image := SidecarImage(cfg.Sidecar, cfg.SidecarImage)
	level := string(cfg.Sidecar.LogLevel)
	if level == "" {
		level = "error"
	}
	ready := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/healthz/ready", Port: intstr.FromInt32(mesh.HealthPort),
	}}}
	startup := ready.DeepCopy()
	startup.PeriodSeconds, startup.FailureThreshold = 1, 120
	ready.PeriodSeconds = 5
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	resources := cfg.Sidecar.Resources
	if resources.Requests == nil && resources.Limits == nil {
		resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
	}
	return corev1.Container{
		Name:          ProxyContainer,
		Image:         image,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Command:       []string{"/usr/local/bin/envoy"},
		Args:          []string{"--config-path", OverlayFile, "--config-yaml", boot, "--log-level", level, "--drain-strategy", "immediate"},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			{Name: OTelResourceEnv, Value: otelResource(serviceAccount)},
		},
		Ports: []corev1.ContainerPort{
			{Name: "osm-prometheus", ContainerPort: mesh.PrometheusPort, Protocol: corev1.ProtocolTCP},
			{Name: "osm-health", ContainerPort: mesh.HealthPort, Protocol: corev1.ProtocolTCP},
		},
		Resources:      resources,
		StartupProbe:   startup,
		ReadinessProbe: ready,
		VolumeMounts: []corev1.VolumeMount{
			{Name: IdentityVolume, MountPath: IdentityDir, ReadOnly: true},
			{Name: SDSVolume, MountPath: SDSDir, ReadOnly: true},
			{Name: BootstrapVolume, MountPath: BootstrapDir, ReadOnly: true},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](ProxyUID),
			RunAsGroup:               ptr.To[int64](ProxyUID),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// OTelResourceEnv holds the OpenTelemetry resource of the proxy's spans,
// which the environment resource detector of the mesh's tracer config reads
// (source/extensions/tracers/opentelemetry/resource_detectors/environment:
// "key=value" pairs separated by commas; Kubernetes expands the $(VAR)
// references from the variables before it). Its attributes win over the
// tracer's service_name (resource_provider.cc merges detected attributes
// over it). It is harmless while tracing is off.
const OTelResourceEnv = "OTEL_RESOURCE_ATTRIBUTES"

// otelResource names the proxy's workload: service.name is its identity,
// serviceaccount.namespace (no Kubernetes name holds "," or "=").
func otelResource(serviceAccount string) string {
	return "service.name=" + serviceAccount + ".$(POD_NAMESPACE),service.namespace=$(POD_NAMESPACE)," +
		"k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME)"
}

// initContainer programs the pod's traffic redirection, writes the proxy's
// bootstrap overlay, then exits.
func initContainer(cfg Config, ex redirect, overlay string) corev1.Container {
	script, _ := scripts.get(fmt.Sprint(ex), func() (string, error) { return ex.script(), nil })
	script += overlayScript(overlay)
	image := cfg.Sidecar.InitImage
	if image == "" {
		image = cfg.InitImage
	}
	if image == "" {
		image = DefaultInitImage
	}
	return corev1.Container{
		Name:         InitContainer,
		Image:        image,
		Command:      []string{"sh", "-c", script},
		VolumeMounts: []corev1.VolumeMount{{Name: BootstrapVolume, MountPath: BootstrapDir}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
	}
}

// memo remembers a pure function's results: the pods of a workload share
// their bootstrap and redirection script, and rendering them is most of an
// injection's cost. It starts over when it holds max entries.
type memo struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

func (m *memo) get(key string, render func() (string, error)) (string, error) {
	m.mu.Lock()
	v, ok := m.m[key]
	m.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := render()
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= m.max {
		m.m = make(map[string]string, m.max)
	}
	m.m[key] = v
	return v, nil
}

var bootstraps, scripts, overlays = &memo{max: 4096}, &memo{max: 1024}, &memo{max: 1024}

// proxyBootstrap is the sidecar's bootstrap, with the node ID expanded from
// the container's environment by Kubernetes, as compact JSON.
func proxyBootstrap(pod *corev1.Pod, cfg Config, p probeConfig) (string, error) {
	key := fmt.Sprintf("%s|%s|%d|%s|%s", cfg.XDSHost, cfg.XDSServerName, cfg.XDSPort, mesh.ServiceAccountOf(pod.Spec.ServiceAccountName), p.key())
	return bootstraps.get(key, func() (string, error) { return renderBootstrap(pod, cfg, p) })
}

// ipv6Overlay is the bootstrap overlay of a sidecar whose kernel has IPv6,
// as compact JSON.
func ipv6Overlay(p probeConfig) (string, error) {
	return overlays.get(p.key(), func() (string, error) {
		listeners, _ := p.resources()
		raw, err := bootstrap.JSON(bootstrap.IPv6Overlay(listeners), "")
		if err != nil {
			return "", fmt.Errorf("encoding the sidecar's IPv6 listeners: %w", err)
		}
		return string(raw), nil
	})
}

// overlayScript writes the overlay where the kernel has IPv6 (Envoy aborts
// binding [::] where it has not), and an empty bootstrap elsewhere.
func overlayScript(overlay string) string {
	return "if [ -e /proc/net/if_inet6 ]; then\ncat > " + OverlayFile + " <<'EOF'\n" + overlay + "\nEOF\nelse\necho '{}' > " + OverlayFile + "\nfi\n"
}

func renderBootstrap(pod *corev1.Pod, cfg Config, p probeConfig) (string, error) {
	listeners, clusters := p.resources()
	b, err := bootstrap.Envoy(bootstrap.Options{
		NodeID:      mesh.PodNodeID("$(POD_NAMESPACE)", "$(POD_NAME)"),
		Cluster:     mesh.ServiceAccountOf(pod.Spec.ServiceAccountName),
		XDSHost:     cfg.XDSHost,
		XDSPort:     uint32(cfg.XDSPort),
		ServerName:  cfg.XDSServerName,
		IdentityDir: IdentityDir,
		SDSDir:      SDSDir,
		Listeners:   listeners,
		Clusters:    clusters,
	})
	if err != nil {
		return "", fmt.Errorf("building the sidecar bootstrap: %w", err)
	}
	raw, err := bootstrap.JSON(b, "")
	if err != nil {
		return "", fmt.Errorf("encoding the sidecar bootstrap: %w", err)
	}
	return string(raw), nil
}
