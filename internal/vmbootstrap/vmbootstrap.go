// Package vmbootstrap turns a MeshVM's bootstrap Secret into the folder a VM
// admin copies to the VM: for an Envoy VM, the Envoy bootstrap and TLS
// files, an iptables script that sends the VM's traffic through Envoy, and a
// systemd unit; for a proxyless gRPC VM, the gRPC xDS bootstrap and the TLS
// files.
package vmbootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Names of the files besides the Secret's own keys.
const (
	IptablesScript = "iptables.sh"
	SystemdUnit    = "osm-envoy.service"
)

// envoyUID is the user Envoy runs as; its own traffic bypasses the redirect.
const envoyUser = "envoy"

// Fetch reads a MeshVM and its bootstrap Secret and returns the VM and its
// folder's files.
func Fetch(ctx context.Context, c client.Reader, namespace, name string) (*meshv1alpha1.MeshVM, map[string][]byte, error) {
	vm := &meshv1alpha1.MeshVM{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, vm); err != nil {
		return nil, nil, fmt.Errorf("reading MeshVM %s/%s: %w", namespace, name, err)
	}
	if vm.Status.BootstrapSecretName == "" {
		return nil, nil, fmt.Errorf("MeshVM %s/%s has no bootstrap Secret yet; see kubectl describe meshvm %s -n %s", namespace, name, name, namespace)
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: vm.Status.BootstrapSecretName}, secret); err != nil {
		return nil, nil, fmt.Errorf("reading the bootstrap Secret: %w", err)
	}
	files, err := Files(vm, secret)
	return vm, files, err
}

// Files returns the files of the VM's folder, by name. A proxyless gRPC VM
// gets its xDS bootstrap and identity files only: its application talks to
// the mesh itself, with no Envoy to run and no traffic to redirect.
func Files(vm *meshv1alpha1.MeshVM, secret *corev1.Secret) (map[string][]byte, error) {
	keys := []string{controllers.BootstrapKey, controllers.CertKey, controllers.KeyKey, controllers.CAKey, controllers.ClientCertSDSKey, controllers.TrustSDSKey}
	if vm.Proxyless() {
		keys = []string{controllers.GRPCBootstrapKey, controllers.CertKey, controllers.KeyKey, controllers.CAKey}
	}
	out := map[string][]byte{}
	for _, k := range keys {
		if len(secret.Data[k]) == 0 {
			return nil, fmt.Errorf("bootstrap Secret %s/%s has no %s yet: is the MeshVM Ready?", secret.Namespace, secret.Name, k)
		}
		out[k] = secret.Data[k]
	}
	if vm.Proxyless() {
		return out, nil
	}
	var ports []int32
	for _, p := range vm.Spec.Ports {
		ports = append(ports, p.Port)
	}
	slices.Sort(ports)
	data := map[string]any{
		"Ports": ports, "User": envoyUser, "Dir": controllers.VMConfigDir, "VM": vm.Namespace + "/" + vm.Name,
		"Inbound": mesh.InboundListenerPort, "Outbound": mesh.OutboundListenerPort,
	}
	for name, tmpl := range map[string]*template.Template{IptablesScript: iptables, SystemdUnit: unit} {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", name, err)
		}
		out[name] = b.Bytes()
	}
	return out, nil
}

// NextSteps tells the VM admin what to do with the folder Files made for
// vm once it is at its place on the VM.
func NextSteps(vm *meshv1alpha1.MeshVM) string {
	if vm.Proxyless() {
		return fmt.Sprintf("Copy the folder to %s on the VM and start the gRPC application with\n  GRPC_XDS_BOOTSTRAP=%s/%s\nin its environment; it reads the identity files there again every %s.",
			controllers.VMConfigDir, controllers.VMConfigDir, controllers.GRPCBootstrapKey, bootstrap.GRPCRefresh)
	}
	return fmt.Sprintf("Copy the folder to %s on the VM, install %s as a systemd unit and start it.", controllers.VMConfigDir, SystemdUnit)
}

// Marker is the file that says a folder was written by Write: Write
// creates its folder, and writes again only into a folder that carries it.
const Marker = ".osm-vm-bootstrap"

// Write writes files into dir, which it creates (readable by its owner
// only: it holds the VM's private key), or which an earlier Write of the
// same user created and no one else may change (checkOwnFolder). It
// refuses any other existing path, so that a mistyped --out cannot
// overwrite someone's folder nor Write fill a folder someone else
// prepared, and it replaces each file by renaming a new
// one over it, so that a symbolic link planted in the folder is replaced,
// not followed, and a file's mode is the one given here whatever the old
// file's was: private keys 0600.
func Write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	switch err := os.Mkdir(dir, 0o700); {
	case err == nil:
		if err := writeFile(dir, Marker, []byte("Written by osm-operator vm bootstrap.\n"), 0o600); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrExist):
		if err := checkOwnFolder(dir); err != nil {
			return err
		}
	default:
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		mode := os.FileMode(0o644)
		switch name {
		case controllers.KeyKey:
			mode = 0o600
		case IptablesScript:
			mode = 0o755
		}
		if err := writeFile(dir, name, files[name], mode); err != nil {
			return err
		}
	}
	return nil
}

// checkOwnFolder says why Write may not write again into dir, an existing
// path, or nil when it may: dir must be a folder (not a link to one) with
// the Marker, a regular file, both owned by the user running Write, and the
// folder open to no one else (no group or other permission bits). The
// marker alone proves nothing: anyone may create a folder, say /tmp/vm1
// mode 0777, and put a marker in it, then swap iptables.sh, which systemd
// runs as root on the VM, between Write and the admin's copy.
func checkOwnFolder(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("%s exists and is not a folder; choose another --out", dir)
	}
	marker, err := os.Lstat(filepath.Join(dir, Marker))
	if err != nil || !marker.Mode().IsRegular() {
		return fmt.Errorf("folder %s exists and was not written by osm-operator vm bootstrap; choose another --out or remove it", dir)
	}
	me := os.Geteuid()
	for _, f := range []struct {
		what string
		st   fs.FileInfo
	}{{"folder " + dir, st}, {"its marker " + Marker, marker}} {
		if uid, ok := owner(f.st); !ok || uid != me {
			who := "an unknown user"
			if ok {
				who = fmt.Sprintf("uid %d", uid)
			}
			return fmt.Errorf("%s is owned by %s, not by you (uid %d): someone else prepared it and could change its files (iptables.sh runs as root on the VM) before they reach the VM; choose another --out or remove %s", f.what, who, me, dir)
		}
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("folder %s has mode %04o: others than its owner may read or change its files (the VM's private key; iptables.sh, which runs as root on the VM); choose another --out or remove it", dir, perm)
	}
	return nil
}

// writeFile writes dir/name with mode through a new file renamed over it.
func writeFile(dir, name string, data []byte, mode os.FileMode) error {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return fmt.Errorf("file name %q is not a plain name", name)
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, there is nothing to remove
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

var iptables = template.Must(template.New(IptablesScript).Parse(`#!/bin/sh
# Sends the traffic of MeshVM {{.VM}} through its Envoy: inbound connections
# to its ports go to {{.Inbound}} (mutual TLS and SMI policy), outbound TCP to {{.Outbound}}.
# Envoy's own traffic (user {{.User}}) and loopback are left alone.
set -eu
iptables -t nat -N OSM_INBOUND 2>/dev/null || iptables -t nat -F OSM_INBOUND
{{- range .Ports}}
iptables -t nat -A OSM_INBOUND -p tcp --dport {{.}} -j REDIRECT --to-ports {{$.Inbound}}
{{- end}}
iptables -t nat -C PREROUTING -p tcp -j OSM_INBOUND 2>/dev/null || iptables -t nat -A PREROUTING -p tcp -j OSM_INBOUND
iptables -t nat -N OSM_OUTBOUND 2>/dev/null || iptables -t nat -F OSM_OUTBOUND
iptables -t nat -A OSM_OUTBOUND -m owner --uid-owner {{.User}} -j RETURN
iptables -t nat -A OSM_OUTBOUND -d 127.0.0.0/8 -j RETURN
iptables -t nat -A OSM_OUTBOUND -p tcp -j REDIRECT --to-ports {{.Outbound}}
iptables -t nat -C OUTPUT -p tcp -j OSM_OUTBOUND 2>/dev/null || iptables -t nat -A OUTPUT -p tcp -j OSM_OUTBOUND
`))

var unit = template.Must(template.New(SystemdUnit).Parse(`[Unit]
Description=Envoy proxy of MeshVM {{.VM}} (OSM Operator)
After=network-online.target
Wants=network-online.target

[Service]
User={{.User}}
ExecStartPre=+{{.Dir}}/iptables.sh
ExecStart=/usr/local/bin/envoy --config-path {{.Dir}}/envoy.yaml --log-level error
Restart=always
RestartSec=2
AmbientCapabilities=CAP_NET_BIND_SERVICE
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
`))
