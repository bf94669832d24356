// Package san reads the subject alternative names of a certificate or a
// certificate request as their DER holds them. crypto/x509 parses URIs
// (losing their spelling: the scheme is lowercased) and skips the kinds of
// names it does not know (otherName, directoryName, registeredID, ...),
// while a signer copies the extension as it is and a peer may match on any
// of it: what decides who a certificate names reads the extension itself.
package san

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OID is the subject alternative name extension's.
var OID = asn1.ObjectIdentifier{2, 5, 29, 17}

// Names are a SAN extension's names, by kind, in their order.
type Names struct {
	DNS, URI, Email []string
	IP              [][]byte
	// Other are the GeneralName tags of every other kind of name (0
	// otherName, 3 x400Address, 4 directoryName, 5 ediPartyName, 8
	// registeredID).
	Other []int
}

// Count is the number of names.
func (n Names) Count() int {
	return len(n.DNS) + len(n.URI) + len(n.Email) + len(n.IP) + len(n.Other)
}

// Parse reads the SAN extension among exts; no extension gives no names.
// Two SAN extensions, or one that is not a sequence of GeneralNames, are an
// error.
func Parse(exts []pkix.Extension) (Names, error) {
	var out Names
	found := false
	for _, e := range exts {
		if !e.Id.Equal(OID) {
			continue
		}
		if found {
			return Names{}, errors.New("two subject alternative name extensions")
		}
		found = true
		der := cryptobyte.String(e.Value)
		var seq cryptobyte.String
		if !der.ReadASN1(&seq, cbasn1.SEQUENCE) || !der.Empty() {
			return Names{}, errors.New("the subject alternative name extension is not a sequence")
		}
		for !seq.Empty() {
			var v cryptobyte.String
			var tag cbasn1.Tag
			if !seq.ReadAnyASN1(&v, &tag) {
				return Names{}, errors.New("a subject alternative name is malformed")
			}
			if tag&0xc0 != 0x80 { // context-specific, as every GeneralName is
				return Names{}, fmt.Errorf("a subject alternative name has tag %#x", uint8(tag))
			}
			switch number := int(tag & 0x1f); {
			case tag == cbasn1.Tag(1).ContextSpecific():
				out.Email = append(out.Email, string(v))
			case tag == cbasn1.Tag(2).ContextSpecific():
				out.DNS = append(out.DNS, string(v))
			case tag == cbasn1.Tag(6).ContextSpecific():
				out.URI = append(out.URI, string(v))
			case tag == cbasn1.Tag(7).ContextSpecific():
				out.IP = append(out.IP, []byte(v))
			default:
				out.Other = append(out.Other, number)
			}
		}
	}
	return out, nil
}
