// Package meshtest builds model inputs for tests: from YAML manifests, or from
// a synthetic mesh of a given size.
package meshtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

var codecs = serializer.NewCodecFactory(mesh.NewScheme())

// ReadFile reads the manifest file into model inputs (Decode).
func ReadFile(path string) (mesh.Inputs, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return mesh.Inputs{}, err
	}
	in, err := Decode(raw)
	if err != nil {
		return in, fmt.Errorf("%s: %w", path, err)
	}
	return in, nil
}

// Decode reads a multi-document YAML manifest into model inputs.
func Decode(data []byte) (mesh.Inputs, error) {
	var in mesh.Inputs
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return in, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return in, fmt.Errorf("document %d: %w", i, err)
		}
		if !in.Add(obj) {
			return in, fmt.Errorf("document %d: %s is not a model input", i, gvk)
		}
	}
	if in.Mesh == nil {
		return in, errors.New("the manifest has no MeshInstance")
	}
	return in, nil
}
