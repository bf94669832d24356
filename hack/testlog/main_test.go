package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// Keys in every form a log line could carry them are found; certificates
// (as PEM and as base64, the way ca.crt appears in JSON) and ordinary lines
// are not. RSA keys of each common size are made several times over: the
// lengths inside their DER vary from key to key.
func TestScanFindsKeysInEveryForm(t *testing.T) {
	for _, bits := range []int{2048, 3072, 4096} {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				t.Fatal(err)
			}
			pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			for form, der := range map[string][]byte{"PKCS #1": x509.MarshalPKCS1PrivateKey(k), "PKCS #8": pkcs8} {
				if line := base64.StdEncoding.EncodeToString(der); len(Scan(1, line)) == 0 {
					t.Errorf("an RSA %d key (%s) in base64 is not found: %.40s…", bits, form, line)
				}
			}
		}
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	asJSON := func(b []byte) string { j, _ := json.Marshal(map[string][]byte{"tls.key": b}); return string(j) }
	for name, line := range map[string]string{
		"EC PEM":               string(pemOf("EC PRIVATE KEY", sec1)),
		"PKCS #8 PEM":          string(pemOf("PRIVATE KEY", pkcs8)),
		"RSA PEM":              string(pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))),
		"EC PEM in JSON":       asJSON(pemOf("EC PRIVATE KEY", sec1)),
		"PKCS #8 DER in JSON":  asJSON(pkcs8),
		"RSA PKCS #8 in JSON":  asJSON(rsaPKCS8),
		"RSA PKCS #1 in JSON":  asJSON(x509.MarshalPKCS1PrivateKey(rsaKey)),
		"a PEM body line":      base64.StdEncoding.EncodeToString(sec1)[:64],
		"a token in a header":  "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.e30.sig",
		"a key inside a value": `"msg"="applied" "data"="` + base64.StdEncoding.EncodeToString(pemOf("PRIVATE KEY", pkcs8)) + `"`,
	} {
		var found bool
		for _, l := range strings.Split(line, "\n") {
			found = found || len(Scan(1, l)) > 0
		}
		if !found {
			t.Errorf("%s: not found in %q", name, line)
		}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mesh root"}, NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	for _, pub := range []any{&ec.PublicKey, &rsaKey.PublicKey} {
		signer := any(ec)
		if _, isRSA := pub.(*rsa.PublicKey); isRSA {
			signer = rsaKey
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range append(strings.Split(string(pemOf("CERTIFICATE", der)), "\n"), asJSON(pemOf("CERTIFICATE", der)), asJSON(der)) {
			if f := Scan(1, l); len(f) > 0 {
				t.Errorf("a certificate is taken for a secret (%v): %.60s…", f, l)
			}
		}
	}
	for _, clean := range []string{
		"-----BEGIN CERTIFICATE-----",
		"=== RUN   TestOperatorServesAMesh",
		`"msg"="Reconciled" "MeshMember"={"name":"demo","namespace":"shop"}`,
	} {
		if f := Scan(1, clean); len(f) > 0 {
			t.Errorf("%q: found %v", clean, f)
		}
	}
}

// A passing package prints its result line; a failing one all its output.
func TestRunPrintsWhatGoTestWould(t *testing.T) {
	in := strings.Join([]string{
		"=== RUN   TestA", "    a_test.go:1: noise", "--- PASS: TestA (0.00s)", "PASS", "ok  \texample.com/a\t0.1s",
		"=== RUN   TestB", "    b_test.go:9: the reason", "--- FAIL: TestB (0.00s)", "FAIL", "FAIL\texample.com/b\t0.1s",
	}, "\n")
	var out bytes.Buffer
	if _, err := run(strings.NewReader(in), &out, false); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Contains(got, "noise") || !strings.Contains(got, "ok  \texample.com/a") || !strings.Contains(got, "the reason") {
		t.Errorf("printed:\n%s", got)
	}
}
