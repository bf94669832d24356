package inject

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// templatePaths says where each workload kind keeps its pod template; a Pod
// is its own template.
var templatePaths = map[string][]string{
	"Pod":         nil,
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

// Manifests injects the pods and pod templates of a multi-document YAML
// stream, as the webhook would, and returns the stream with them injected.
// Documents of other kinds, and pods left alone, are returned as they came;
// notes say which were left alone and why. The first bad document stops
// everything with an error naming it.
func Manifests(in []byte, cfg Config) (out []byte, notes []string, err error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(in)))
	var docs [][]byte
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || isComment(doc) {
			continue
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", i, err)
		}
		changed, n, err := injectObject(obj, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("document %d (%s): %w", i, describe(obj), err)
		}
		notes = append(notes, n...)
		if !changed {
			docs = append(docs, bytes.TrimRight(doc, "\n"))
			continue
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, nil, fmt.Errorf("document %d (%s): %w", i, describe(obj), err)
		}
		docs = append(docs, bytes.TrimRight(y, "\n"))
	}
	return append(bytes.Join(docs, []byte("\n---\n")), '\n'), notes, nil
}

func isComment(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

func describe(obj map[string]any) string {
	u := unstructured(obj)
	if ns := u.str("metadata", "namespace"); ns != "" {
		return fmt.Sprintf("%s %s/%s", u.str("kind"), ns, u.str("metadata", "name"))
	}
	return fmt.Sprintf("%s %s", u.str("kind"), u.str("metadata", "name"))
}

// injectObject injects obj in place if it is a workload, or each item of a
// List.
func injectObject(obj map[string]any, cfg Config) (bool, []string, error) {
	kind, _ := obj["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		changed, notes := false, []string(nil)
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			c, n, err := injectObject(m, cfg)
			if err != nil {
				return false, nil, fmt.Errorf("items[%d] (%s): %w", i, describe(m), err)
			}
			changed = changed || c
			notes = append(notes, n...)
		}
		return changed, notes, nil
	}
	path, ok := templatePaths[kind]
	if !ok {
		return false, nil, nil
	}
	tmpl := obj
	for _, p := range path {
		next, ok := tmpl[p].(map[string]any)
		if !ok {
			return false, nil, fmt.Errorf("%s has no pod template at .%s", kind, strings.Join(path, "."))
		}
		tmpl = next
	}
	var t corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(map[string]any{"metadata": tmpl["metadata"], "spec": tmpl["spec"]}, &t); err != nil {
		return false, nil, fmt.Errorf("reading the pod template: %w", err)
	}
	pod := &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
	// Asked for by hand: the namespace's membership does not matter.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "manual", Labels: map[string]string{meshv1alpha1.MonitorLabel: cfg.Mesh}}}
	d, err := Decide(pod, ns, nil)
	if err != nil {
		return false, nil, err
	}
	if !d.Inject {
		return false, []string{fmt.Sprintf("%s: left alone: %s", describe(obj), d.Reason)}, nil
	}
	if err := Pod(pod, cfg); err != nil {
		return false, nil, err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec})
	if err != nil {
		return false, nil, fmt.Errorf("writing the pod template: %w", err)
	}
	meta, _ := u["metadata"].(map[string]any)
	delete(meta, "creationTimestamp")
	tmpl["metadata"], tmpl["spec"] = meta, u["spec"]
	return true, nil, nil
}

type unstructured map[string]any

func (u unstructured) str(path ...string) string {
	var cur any = map[string]any(u)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}
