package v1alpha1

// ConditionIngressCertificateReady is on a MeshInstance whose
// spec.certificates.ingressGateway is set: True once the ingress
// gateway's client certificate is issued into its Secret; False, with
// reason CertificatePending and cert-manager's message, until then.
const ConditionIngressCertificateReady = "IngressCertificateReady"
