package inject

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// source is where the kubelet takes a mounted file from: a key of a
// Secret or a ConfigMap of the pod's namespace.
type source struct {
	kind, name, key string
	optional        bool
}

func (s source) String() string {
	return fmt.Sprintf("%s %s key %s (optional %v)", s.kind, s.name, s.key, s.optional)
}

// resolveFile finds, as the kubelet mounts container c's volumes, where
// the file at path comes from. It fails on a path no volume holds, and on
// one that two sources of a projected volume both write.
func resolveFile(pod *corev1.Pod, c corev1.Container, file string) (source, error) {
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") && (mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		return source{}, fmt.Errorf("container %s mounts nothing at %s", c.Name, file)
	}
	rel := strings.TrimPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == mount.Name {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return source{}, fmt.Errorf("container %s mounts volume %s, which the pod does not have", c.Name, mount.Name)
	}
	// What a Secret or ConfigMap source puts at rel: the item whose path it
	// is, or, with no items, every key at its own name.
	pick := func(kind, name string, items []corev1.KeyToPath, optional *bool) (source, bool) {
		s := source{kind: kind, name: name, optional: optional != nil && *optional}
		if len(items) == 0 {
			s.key = rel
			return s, !strings.Contains(rel, "/")
		}
		for _, it := range items {
			if path.Clean(it.Path) == rel {
				s.key = it.Key
				return s, true
			}
		}
		return source{}, false
	}
	var found []source
	switch {
	case vol.Secret != nil:
		if s, ok := pick("Secret", vol.Secret.SecretName, vol.Secret.Items, vol.Secret.Optional); ok {
			found = append(found, s)
		}
	case vol.ConfigMap != nil:
		if s, ok := pick("ConfigMap", vol.ConfigMap.Name, vol.ConfigMap.Items, vol.ConfigMap.Optional); ok {
			found = append(found, s)
		}
	case vol.Projected != nil:
		for _, p := range vol.Projected.Sources {
			var s source
			var ok bool
			switch {
			case p.Secret != nil:
				s, ok = pick("Secret", p.Secret.Name, p.Secret.Items, p.Secret.Optional)
			case p.ConfigMap != nil:
				s, ok = pick("ConfigMap", p.ConfigMap.Name, p.ConfigMap.Items, p.ConfigMap.Optional)
			}
			if ok {
				found = append(found, s)
			}
		}
	default:
		return source{}, fmt.Errorf("volume %s is neither a Secret, a ConfigMap nor a projected volume", vol.Name)
	}
	switch len(found) {
	case 0:
		return source{}, fmt.Errorf("volume %s holds no %s", vol.Name, rel)
	case 1:
		return found[0], nil
	}
	return source{}, fmt.Errorf("volume %s: %d sources write %s: %v", vol.Name, len(found), rel, found)
}

// identityFiles are the files a proxy's bootstrap reads, by role: "cert",
// "key" and "trust" (the roots it verifies the xDS server, or its peers,
// by). Envoy reads them through its SDS files; a proxyless application
// from its gRPC bootstrap.
func identityFiles(t *testing.T, pod *corev1.Pod, c corev1.Container) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	if pod.Annotations[mesh.ProxyKindAnnotation] == string(mesh.ProxyGRPC) {
		var boot struct {
			Servers []struct {
				Creds []struct {
					Config map[string]string `json:"config"`
				} `json:"channel_creds"`
			} `json:"xds_servers"`
			Providers map[string]struct {
				Config map[string]string `json:"config"`
			} `json:"certificate_providers"`
		}
		for _, e := range c.Env {
			if e.Name == GRPCBootstrapEnv {
				if err := json.Unmarshal([]byte(e.Value), &boot); err != nil {
					t.Fatalf("container %s: the gRPC bootstrap does not parse: %v", c.Name, err)
				}
			}
		}
		configs := []map[string]string{}
		for _, s := range boot.Servers {
			for _, cr := range s.Creds {
				configs = append(configs, cr.Config)
			}
		}
		for _, p := range boot.Providers {
			configs = append(configs, p.Config)
		}
		for _, cfg := range configs {
			for role, key := range map[string]string{"cert": "certificate_file", "key": "private_key_file", "trust": "ca_certificate_file"} {
				if f := cfg[key]; f != "" {
					out[role] = append(out[role], f)
				}
			}
		}
		return out
	}
	for name, raw := range sdsFiles {
		resp := &discoveryv3.DiscoveryResponse{}
		if err := protojson.Unmarshal(raw, resp); err != nil {
			t.Fatalf("SDS file %s: %v", name, err)
		}
		for _, a := range resp.GetResources() {
			sec := &tlsv3.Secret{}
			if err := a.UnmarshalTo(sec); err != nil {
				t.Fatalf("SDS file %s: %v", name, err)
			}
			if tc := sec.GetTlsCertificate(); tc != nil {
				out["cert"] = append(out["cert"], tc.GetCertificateChain().GetFilename())
				out["key"] = append(out["key"], tc.GetPrivateKey().GetFilename())
			}
			if vc := sec.GetValidationContext(); vc != nil {
				out["trust"] = append(out["trust"], vc.GetTrustedCa().GetFilename())
			}
		}
	}
	return out
}

// checkIdentityFiles checks where the files the proxy's bootstrap reads
// come from, as the kubelet mounts them: its certificate and key from its
// service account's identity Secret, and the roots it trusts from the
// mesh's trust bundle ConfigMap, never from the ca.crt of its Secret (an
// issuer may leave that empty), none of them optional (a proxy started
// without one could not reach the xDS server).
func checkIdentityFiles(t *testing.T, pod *corev1.Pod, c corev1.Container, meshName string) {
	t.Helper()
	secret := meshv1alpha1.IdentitySecretName(mesh.ServiceAccountOf(pod.Spec.ServiceAccountName))
	want := map[string]source{
		"cert":  {kind: "Secret", name: secret, key: corev1.TLSCertKey},
		"key":   {kind: "Secret", name: secret, key: corev1.TLSPrivateKeyKey},
		"trust": {kind: "ConfigMap", name: meshv1alpha1.TrustBundleConfigMapName(meshName), key: meshv1alpha1.TrustBundleKey},
	}
	files := identityFiles(t, pod, c)
	for role, w := range want {
		if len(files[role]) == 0 {
			t.Errorf("container %s: the bootstrap reads no %s file", c.Name, role)
		}
		for _, f := range files[role] {
			got, err := resolveFile(pod, c, f)
			if err != nil {
				t.Errorf("container %s: the %s file %s: %v", c.Name, role, f, err)
			} else if got != w {
				t.Errorf("container %s: the %s file %s comes from %s, want %s", c.Name, role, f, got, w)
			}
		}
	}
}
