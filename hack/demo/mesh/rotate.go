package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/hack/demo/progress"
)

// rotateRoot asks the mesh for a new self-signed root (a raised
// spec.certificates.rootGeneration), with a settle time of seconds (the
// demo's proxies all take their certificates over xDS, and acknowledge
// them), and prints each phase as the operator reports it, then how long
// the rotation took and how many leaves were re-issued.
func rotateRoot(ctx context.Context, k client.Client, ps proxies, p *progress.Printer, out io.Writer) error {
	for _, px := range ps {
		go px.follow()
	}
	mi := &meshv1alpha1.MeshInstance{}
	if err := k.Get(ctx, client.ObjectKey{Name: mesh}, mi); err != nil {
		return err
	}
	before := mi.DeepCopy()
	mi.Spec.Certificates.RootGeneration = max(mi.Spec.Certificates.RootGeneration, mi.Status.RootGeneration) + 1
	mi.Spec.Certificates.Rotation.Settle = "5s"
	if err := k.Patch(ctx, mi, client.MergeFrom(before)); err != nil {
		return err
	}
	start := time.Now()
	p.Step("rotating the mesh to a new self-signed root (spec.certificates.rootGeneration: %d, settle 5s)", mi.Spec.Certificates.RootGeneration)
	var phase meshv1alpha1.RotationPhase
	var signing, retiring time.Duration
	err := retry(ctx, 10*time.Minute, func() error {
		if err := k.Get(ctx, client.ObjectKey{Name: mesh}, mi); err != nil {
			return err
		}
		rot := mi.Status.Rotation
		if rot != nil && rot.Phase != phase {
			phase = rot.Phase
			switch phase {
			case meshv1alpha1.RotationSigning:
				signing = time.Since(start)
			case meshv1alpha1.RotationRetiring:
				retiring = time.Since(start)
			}
			p.Step("rotation phase %s: %s", phase, rot.Waiting)
		}
		if rot != nil || mi.Status.SigningIssuer == nil || mi.Status.SigningIssuer.Name != fmt.Sprintf("osm-%s-ca-g%d", mesh, mi.Spec.Certificates.RootGeneration) {
			return fmt.Errorf("the rotation is not complete")
		}
		return nil
	})
	if err != nil {
		return err
	}
	took := time.Since(start)
	if len(mi.Status.TrustBundle) == 0 {
		return fmt.Errorf("the mesh has no trust bundle after the rotation")
	}
	leaves := mi.Status.Identities + 1 // and the xDS serving certificate
	fmt.Fprintf(out, "\nRotated to a new root in %.1fs: announced for %.1fs, %d leaves re-issued in %.1fs of signing (%.1f/s), the former root retired in %.1fs; the bundle holds %d root, sha256 %.16s…\n",
		took.Seconds(), signing.Seconds(), leaves, (retiring - signing).Seconds(), float64(leaves)/max(retiring-signing, time.Millisecond).Seconds(),
		(took - retiring).Seconds(), len(mi.Status.TrustBundle), mi.Status.TrustBundle[0].SHA256Fingerprint)
	return nil
}
