package mesh

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// portProtocol is the application protocol of a service port: its appProtocol
// when set, else the prefix of its name (http-, http2-, grpc-, tcp-), else TCP.
func portProtocol(p corev1.ServicePort) Protocol {
	if p.AppProtocol != nil {
		switch strings.ToLower(*p.AppProtocol) {
		case "http", "http1", "http/1.1":
			return ProtocolHTTP
		case "http2", "h2c", "kubernetes.io/h2c":
			return ProtocolHTTP2
		case "grpc":
			return ProtocolGRPC
		default:
			return ProtocolTCP
		}
	}
	name := strings.ToLower(p.Name)
	for _, c := range []struct {
		prefix string
		proto  Protocol
	}{{"http2", ProtocolHTTP2}, {"http", ProtocolHTTP}, {"grpc", ProtocolGRPC}, {"tcp", ProtocolTCP}} {
		if name == c.prefix || strings.HasPrefix(name, c.prefix+"-") {
			return c.proto
		}
	}
	return ProtocolTCP
}
