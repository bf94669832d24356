package runner

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

var (
	translationErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "osm_xds_translation_errors_total",
		Help: "Proxy group translations that failed; the group kept its last good snapshot.",
	})
	syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "osm_xds_sync_duration_seconds",
		Help:    "Time to rebuild the model and translate and publish the touched groups.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	groupsTranslated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "osm_xds_groups_translated_total",
		Help: "Proxy group translations.",
	})
	groupsPatched = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "osm_xds_groups_patched_total",
		Help: "Proxy groups sent new endpoints of the services they call without a translation: only those endpoints changed.",
	})
	modelProblems = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "osm_mesh_problems",
		Help: "Objects the last model build could not use as written.",
	})
	ruleViolations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "osm_xds_envoy_rule_violations_total",
		Help: "Proxy group translations that broke one of Envoy's load rules (counted as translation errors too); the group kept its last good snapshot.",
	})
	syncErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "osm_xds_sync_errors_total",
		Help: "Syncs that failed as a whole (the model could not be read); each is retried with backoff.",
	})
	syncFailing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "osm_xds_sync_failing",
		Help: "1 while the runner's last sync failed and a retry is pending, else 0.",
	})
	groupsFailing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "osm_xds_groups_failing",
		Help: "Proxy groups whose last translation failed: they keep their last good snapshot.",
	})
)

func init() {
	metrics.Registry.MustRegister(translationErrors, syncDuration, groupsTranslated, groupsPatched, modelProblems, groupsFailing, ruleViolations, syncErrors, syncFailing)
}

// sync rebuilds the model and republishes the groups that c touches.
func (r *Runner) sync(ctx context.Context, c changes) error {
	start := time.Now()
	defer func() { syncDuration.Observe(time.Since(start).Seconds()) }()
	in, meshes, err := mesh.ListInformers(ctx, r.opts.Cache)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	failed := r.failures()
	policies := map[string][]Policy{}
	var problems int
	for _, mi := range meshes {
		in.Mesh = mi
		in.ClusterDomain = r.opts.ClusterDomain
		m, ps := mesh.Build(in)
		shared := translate.NewShared()
		// The mesh's trust bundle, read once for all its groups; shared:
		// read-only.
		bundleKey := client.ObjectKey{Namespace: r.opts.TrustNamespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}
		bundle := sync.OnceValues(func() (*corev1.Secret, error) { return r.secret(ctx, bundleKey) })
		problems += len(ps)
		for _, p := range ps {
			r.opts.Log.V(1).Info("Left out of the mesh", "mesh", mi.Name, "object", p.Object, "reason", p.Err.Error())
		}
		// A changed service touches the groups that back it now as well as
		// those that depended on it: a new endpoint changes its group's
		// inbound config. It also touches the groups a policy lets call
		// its identities (the reverse of the policies): a service's first
		// endpoints are in no caller's dependencies yet.
		c := withServicesOf(m, c)
		backers := map[mesh.Identity]bool{}
		for k := range c.services {
			if s := m.Service(k); s != nil {
				for _, id := range s.Identities {
					backers[id] = true
					for _, caller := range m.Callers(id) {
						backers[caller] = true
					}
				}
			}
		}
		for _, g := range m.Groups {
			key := g.String()
			live[key] = true
			// A group that sees every service (a Permissive mesh, a
			// proxyless gRPC client) is touched by any service change,
			// a service new to it included.
			seesAll := len(c.services) > 0 && (m.Mode == mesh.ModePermissive || g.Kind == mesh.ProxyGRPC)
			if !c.full && !c.meshes[mi.Name] && !seesAll && !backers[g.Identity] && !r.touches(key, g, c) {
				continue
			}
			v := m.View(g)
			if _, failing := failed[key]; !failing {
				patched, err := r.patch(ctx, c, key, v, shared, r.last[mi.Name])
				if err != nil {
					r.opts.Log.Error(err, "Translating a proxy group whose endpoints changed", "mesh", mi.Name, "group", key)
				}
				if patched {
					groupsPatched.Inc()
					continue
				}
			}
			if err := r.publish(ctx, mi.Name, shared, bundle, v); err != nil {
				translationErrors.Inc()
				if envoyrules.IsViolation(err) {
					ruleViolations.Inc()
				}
				r.opts.Log.Error(err, "Kept the last good config of a proxy group", "mesh", mi.Name, "group", key)
				failed[key] = failure{namespace: g.Identity.Namespace, err: err}
				continue
			}
			delete(failed, key)
			deps := map[mesh.ServiceKey]bool{}
			for _, k := range v.Dependencies() {
				deps[k] = true
			}
			r.deps[key] = deps
		}
		policies[mi.Name] = policiesOf(&in, m, ps, r.deps)
		r.last[mi.Name] = lastModelOf(m)
	}
	for name := range r.last {
		if !slices.ContainsFunc(meshes, func(mi *meshv1alpha1.MeshInstance) bool { return mi.Name == name }) {
			delete(r.last, name)
		}
	}
	r.pmu.Lock()
	r.policies = policies
	r.pmu.Unlock()
	modelProblems.Set(float64(problems))
	for key := range r.deps {
		if !live[key] {
			delete(r.deps, key)
			r.opts.Snapshots.Remove(key)
		}
	}
	for key := range failed {
		if !live[key] {
			delete(failed, key)
		}
	}
	for key := range r.checked {
		if !live[key] {
			delete(r.checked, key)
			delete(r.trust, key)
		}
	}
	r.setFailures(failed)
	return nil
}

// lastModel is what a sync keeps of a mesh's model for the next one.
type lastModel struct {
	services map[mesh.ServiceKey]*mesh.Service
	ipv6     bool
}

func lastModelOf(m *mesh.Mesh) lastModel {
	l := lastModel{services: make(map[mesh.ServiceKey]*mesh.Service, len(m.Services)), ipv6: m.IPv6}
	for _, s := range m.Services {
		l.services[s.Key] = s
	}
	return l
}

// patch sends the group of v the new endpoints of the services of c it
// calls, into its last snapshot, when they are all c changed for it
// (patchable): the endpoint churn of a rolling update then costs a group
// that sees every service (a Permissive mesh) a few
// ClusterLoadAssignments, not a translation of the whole mesh. It returns
// false when the group needs translating.
func (r *Runner) patch(ctx context.Context, c changes, key string, v *mesh.View, shared *translate.Shared, last lastModel) (bool, error) {
	deps, published := r.deps[key]
	if !published {
		return false, nil
	}
	services, ok := patchable(c, deps, v, last)
	if !ok {
		return false, nil
	}
	var endpoints []translate.Encoded
	for _, s := range services {
		clas, err := shared.Endpoints(v, s)
		if err != nil {
			return false, err
		}
		for _, cla := range clas {
			e, err := shared.Encode(cla)
			if err != nil {
				return false, err
			}
			endpoints = append(endpoints, e)
		}
	}
	return r.opts.Snapshots.PatchEndpoints(ctx, key, endpoints)
}

// patchable says whether the changes c change nothing of the group of v,
// published depending on deps, but the endpoints of services it calls
// (translate.EndpointsOnly), and returns those services. The group's own
// config or certificates changing, or what it depends on, needs a
// translation.
func patchable(c changes, deps map[mesh.ServiceKey]bool, v *mesh.View, last lastModel) ([]*mesh.Service, bool) {
	g := v.Group
	if c.full || c.meshes[v.Mesh.Name] || c.identities[g.Identity] || c.secrets[identitySecret(g)] || last.services == nil {
		return nil, false
	}
	now := v.Dependencies() // sorted, each once
	if len(now) != len(deps) {
		return nil, false // it depends on other services now
	}
	for _, k := range now {
		if !deps[k] {
			return nil, false
		}
	}
	var out []*mesh.Service
	for k := range c.services {
		if !deps[k] {
			continue // neither before nor now
		}
		s := v.Mesh.Service(k)
		if !translate.EndpointsOnly(v, last.services[k], s, last.ipv6) {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// withServicesOf is c with the services that the identities of moved
// workloads back in m counted as changed (a renewed certificate or a
// policy changes no service): a pod that arrives after the EndpointSlice
// naming it (a GitOps tool applying the endpoints before the workloads)
// makes the slice's endpoint resolve only then, which changes the service
// for its callers, not only for the pod's own group.
func withServicesOf(m *mesh.Mesh, c changes) changes {
	if len(c.workloads) == 0 {
		return c
	}
	services := maps.Clone(c.services)
	if services == nil {
		services = map[mesh.ServiceKey]bool{}
	}
	for id := range c.workloads {
		for _, s := range m.ServicesOf(id) {
			services[s.Key] = true
		}
	}
	c.services = services
	return c
}

// failures copies the failing groups, for a sync to update.
func (r *Runner) failures() map[string]failure {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	return maps.Clone(r.failing)
}

// setFailures stores what a sync found, and says so when it changed.
func (r *Runner) setFailures(f map[string]failure) {
	r.fmu.Lock()
	changed := !maps.EqualFunc(f, r.failing, func(a, b failure) bool {
		return a.namespace == b.namespace && a.err.Error() == b.err.Error()
	})
	r.failing = f
	r.fmu.Unlock()
	groupsFailing.Set(float64(len(f)))
	if changed && r.opts.OnFailing != nil {
		r.opts.OnFailing()
	}
}

// identitySecret is the Secret of the certificates of group g.
func identitySecret(g mesh.Group) client.ObjectKey {
	return client.ObjectKey{Namespace: g.Identity.Namespace, Name: meshv1alpha1.IdentitySecretName(g.Identity.ServiceAccount)}
}

// touches says whether the changes c affect group g (published as key).
func (r *Runner) touches(key string, g mesh.Group, c changes) bool {
	deps, published := r.deps[key]
	if !published || c.identities[g.Identity] {
		return true
	}
	if len(c.secrets) > 0 && c.secrets[identitySecret(g)] {
		return true
	}
	for s := range c.services {
		if deps[s] {
			return true
		}
	}
	return false
}

func (r *Runner) publish(ctx context.Context, meshName string, shared *translate.Shared, bundle func() (*corev1.Secret, error), v *mesh.View) error {
	certs, err := r.certificates(ctx, bundle, v.Group)
	if err != nil {
		return err
	}
	res, err := shared.Translate(v, certs)
	if err != nil {
		return err
	}
	groupsTranslated.Inc()
	var trust cache.Trust
	if certs != nil && len(certs.CertChain) > 0 && len(certs.TrustBundle) > 0 {
		trust = r.trust[v.Group.String()]
		trust.Mesh = meshName
	}
	if _, err := r.opts.Snapshots.UpdateTrusting(ctx, v.Group.String(), res, trust); err != nil {
		return err
	}
	return nil
}

// trustOf is what a group's certificates hold, for the census: the SHA-256
// of the trust bundle's PEM, and the fingerprint of the bundle's first CA
// certificate that the leaf chains to (none when none does).
func trustOf(c *translate.Certificates) cache.Trust {
	sum := sha256.Sum256(c.TrustBundle)
	t := cache.Trust{Bundle: hex.EncodeToString(sum[:])}
	var chain []*x509.Certificate
	for rest := c.CertChain; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
			chain = append(chain, cert)
		}
	}
	if len(chain) == 0 {
		return t
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for rest := c.TrustBundle; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return t
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil || block.Type != "CERTIFICATE" {
			continue
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			t.LeafRoot = meshv1alpha1.Fingerprint(ca)
			return t
		}
	}
}

// certificates reads the Secret of a group's identity and the trust bundle
// of its mesh, from the Secret the MeshInstance reconciler writes in the
// operator's namespace (bundle, read once per mesh and sync): not the ca.crt of the identity Secret, which an
// issuer may leave empty and anyone who may write Secrets in the namespace
// may fill. Either is nil while it is not written yet, and translation
// then gives the group no secrets: its proxies wait rather than trust a
// made-up bundle. Certificates a proxy would reject (the key not matching
// the certificate, a trust bundle without certificates) are an error: the
// group keeps its last good config rather than having every proxy NACK.
func (r *Runner) certificates(ctx context.Context, bundle func() (*corev1.Secret, error), g mesh.Group) (*translate.Certificates, error) {
	s, err := r.secret(ctx, identitySecret(g))
	if s == nil || err != nil {
		return nil, err
	}
	b, err := bundle()
	if b == nil || err != nil {
		return nil, err
	}
	c := &translate.Certificates{CertChain: s.Data[corev1.TLSCertKey], PrivateKey: s.Data[corev1.TLSPrivateKeyKey], TrustBundle: b.Data[meshv1alpha1.TrustBundleKey]}
	version := s.ResourceVersion + "," + b.ResourceVersion
	if len(c.CertChain) == 0 || len(c.PrivateKey) == 0 || len(c.TrustBundle) == 0 || r.checked[g.String()] == version {
		// Translation leaves out secrets it lacks a part of, and versions
		// that parsed once parse again.
		return c, nil
	}
	if _, err := tls.X509KeyPair(c.CertChain, c.PrivateKey); err != nil {
		return nil, fmt.Errorf("identity Secret %s/%s: tls.crt and tls.key: %w", s.Namespace, s.Name, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(c.TrustBundle) {
		return nil, fmt.Errorf("trust bundle Secret %s/%s: %s holds no PEM certificate", b.Namespace, b.Name, meshv1alpha1.TrustBundleKey)
	}
	r.checked[g.String()] = version
	r.trust[g.String()] = trustOf(c)
	return c, nil
}

// secret reads a Secret from the informer cache; nil when there is none.
func (r *Runner) secret(ctx context.Context, key client.ObjectKey) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := r.opts.Cache.Get(ctx, key, s); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	return s, nil
}
