package v1alpha1

// ConditionIdentityIssuanceRestricted on a MeshInstance says whether the
// operator alone decides which CertificateRequests the mesh's issuers sign.
// It is False when another approver (cert-manager's default one, which
// approves every request) approved a request for them: then anyone who may
// create a Certificate can obtain any identity of the mesh.
const ConditionIdentityIssuanceRestricted = "IdentityIssuanceRestricted"

// Reasons of ConditionIdentityIssuanceRestricted.
const (
	ReasonOnlyTheOperatorApproves = "OnlyTheOperatorApproves"
	ReasonApprovedByAnother       = "ApprovedByAnotherApprover"
)
