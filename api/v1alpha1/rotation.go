package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrustRotationSpec paces a change of the mesh's issuer.
type TrustRotationSpec struct {
	// hold keeps a rotation in the phase it has reached: it goes on when
	// hold is cleared. Setting issuerRef back to the former issuer while
	// the rotation is Announcing or Signing rolls it back.
	// +optional
	Hold bool `json:"hold,omitempty"`

	// reissuePerSecond is how many identity Certificates per second move
	// to the new issuer in phase Signing: cert-manager re-issues each as it
	// moves, so a large mesh is not re-issued all at once.
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	ReissuePerSecond int32 `json:"reissuePerSecond,omitempty"`

	// settle is the least time the Announcing and Retiring phases last, a
	// Go duration: how long a kubelet may take to update the trust bundle
	// and identity files of running pods (about a minute), plus how long
	// proxyless gRPC applications take to re-read them (a minute), since
	// nothing reports what they read. Sidecars acknowledge what they get
	// over xDS, and are waited for as well.
	// +kubebuilder:default="3m"
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Settle string `json:"settle,omitempty"`
}

// DefaultRotationSettle is spec.certificates.rotation.settle's default.
const DefaultRotationSettle = 3 * time.Minute

// DefaultReissuePerSecond is spec.certificates.rotation.reissuePerSecond's
// default.
const DefaultReissuePerSecond = 20

// EffectiveSettle is spec.certificates.rotation.settle, defaulted.
func (m *MeshInstance) EffectiveSettle() time.Duration {
	if d, err := time.ParseDuration(m.Spec.Certificates.Rotation.Settle); err == nil && d >= 0 && m.Spec.Certificates.Rotation.Settle != "" {
		return d
	}
	return DefaultRotationSettle
}

// EffectiveReissuePerSecond is spec.certificates.rotation.reissuePerSecond,
// defaulted.
func (m *MeshInstance) EffectiveReissuePerSecond() int {
	if n := m.Spec.Certificates.Rotation.ReissuePerSecond; n > 0 {
		return int(n)
	}
	return DefaultReissuePerSecond
}

// TrustRotation is a change of the mesh's issuer under way.
type TrustRotation struct {
	// phase is Announcing (the new issuer's CA certificates join the
	// bundle; the former issuer still signs), Signing (the new issuer
	// signs; identity Certificates move to it at reissuePerSecond) or
	// Retiring (every leaf chains to the new CA certificates; the former
	// ones leave once no connected proxy holds a leaf they signed).
	Phase RotationPhase `json:"phase"`
	// from is the issuer the rotation moves away from.
	From IssuerReference `json:"from"`
	// to is the issuer it moves to.
	To IssuerReference `json:"to"`
	// fromAnchors and toAnchors are the SHA-256 fingerprints of the CA
	// certificates of each.
	// +optional
	FromAnchors []string `json:"fromAnchors,omitempty"`
	// +optional
	ToAnchors []string `json:"toAnchors,omitempty"`
	// started is when the rotation began; phaseSince when its phase did.
	Started    metav1.Time `json:"started"`
	PhaseSince metav1.Time `json:"phaseSince"`
	// leavesRemaining is the number of the mesh's leaves (identity and
	// xDS serving certificates) not yet signed by the new issuer.
	// +optional
	LeavesRemaining int32 `json:"leavesRemaining,omitempty"`
	// proxiesWaitedFor is the number of connected proxies the phase waits
	// for: that have not acknowledged the bundle holding both issuers' CA
	// certificates (Announcing), or still hold a leaf of the former
	// issuer (Retiring).
	// +optional
	ProxiesWaitedFor int32 `json:"proxiesWaitedFor,omitempty"`
	// rolledBack is set on a rotation that goes back to the issuer a
	// rotation left.
	// +optional
	RolledBack bool `json:"rolledBack,omitempty"`
	// waiting says what the phase waits for.
	// +optional
	Waiting string `json:"waiting,omitempty"`
}

// RotationPhase is a phase of a TrustRotation.
// +kubebuilder:validation:Enum=Announcing;Signing;Retiring
type RotationPhase string

// The phases of a rotation, in order.
const (
	RotationAnnouncing RotationPhase = "Announcing"
	RotationSigning    RotationPhase = "Signing"
	RotationRetiring   RotationPhase = "Retiring"
)

// ConditionTrustRotation is True on a MeshInstance with no change of issuer
// under way, False while one is, its reason the phase (or Held).
const ConditionTrustRotation = "TrustRotationComplete"

// Reasons of ConditionTrustRotation.
const (
	ReasonNoRotation = "NoRotation"
	ReasonAnnouncing = "Announcing"
	ReasonSigning    = "Signing"
	ReasonRetiring   = "Retiring"
	ReasonHeld       = "Held"
)
