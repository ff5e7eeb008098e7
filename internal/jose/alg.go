package jose

import "crypto"

// Alg is a supported JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
type Alg uint8

// The supported algorithms; AlgUnknown stands for any other name ("none", HS256 ...).
const (
	AlgUnknown Alg = iota
	RS256
	RS384
	RS512
	PS256
	PS384
	PS512
	ES256
	ES384
	ES512
	EdDSA
	numAlgs
)

var algNames = [numAlgs]string{"", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// String returns the "alg" name (RFC 7518 §3.1), or "" for AlgUnknown.
func (a Alg) String() string { return algNames[a] }

// ParseAlg returns the Alg of a supported "alg" name (RFC 7515 §4.1.1: case-sensitive), or
// AlgUnknown (for "none", HS*, any other name and any other spelling).
func ParseAlg(s string) Alg {
	switch s {
	case "RS256":
		return RS256
	case "RS384":
		return RS384
	case "RS512":
		return RS512
	case "PS256":
		return PS256
	case "PS384":
		return PS384
	case "PS512":
		return PS512
	case "ES256":
		return ES256
	case "ES384":
		return ES384
	case "ES512":
		return ES512
	case "EdDSA":
		return EdDSA
	}
	return AlgUnknown
}

// IsRSA reports an RSA algorithm, PKCS#1 v1.5 or PSS (RFC 7518 §3.3, §3.5).
func (a Alg) IsRSA() bool { return a >= RS256 && a <= PS512 }

// IsPSS reports an RSASSA-PSS algorithm (RFC 7518 §3.5).
func (a Alg) IsPSS() bool { return a >= PS256 && a <= PS512 }

// IsEC reports an ECDSA algorithm (RFC 7518 §3.4).
func (a Alg) IsEC() bool { return a >= ES256 && a <= ES512 }

// Hash is the digest of the algorithm (zero for EdDSA, which hashes internally).
func (a Alg) Hash() crypto.Hash {
	switch a {
	case RS256, PS256, ES256:
		return crypto.SHA256
	case RS384, PS384, ES384:
		return crypto.SHA384
	case RS512, PS512, ES512:
		return crypto.SHA512
	}
	return 0
}

// AlgSet is a set of algorithms: bit a is set for Alg a (1 << a).
type AlgSet uint16

// Has reports whether a is in the set; AlgUnknown never is.
func (s AlgSet) Has(a Alg) bool { return a != AlgUnknown && s&(1<<a) != 0 }

// Names returns the names of the set's algorithms in the order of the constants.
func (s AlgSet) Names() []string {
	var out []string
	for a := RS256; a < numAlgs; a++ {
		if s.Has(a) {
			out = append(out, a.String())
		}
	}
	return out
}

// AllAlgs holds every supported algorithm.
const AllAlgs = AlgSet(1<<numAlgs - 2)
