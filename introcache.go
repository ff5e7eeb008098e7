package onesoidc

import (
	"strings"
	"time"
	"unsafe"

	"github.com/ones-now/onesoidc/internal/cache"
	"github.com/ones-now/onesoidc/internal/jose"
)

// The introspection cache: an answer of the provider's introspection endpoint (RFC 7662 §2.2) is
// reused for later validations of the same opaque token, keyed by a hash of the token (never the
// token itself). An entry keeps what a hit needs and no more: the answer packed (jose.Packed:
// the answer's text once, for Claims, and where in it each string of the result lies, with
// "exp" and "iat"), and until when it may be reused; the result is built on each hit. A refusal
// keeps its error. The cache is bounded by memory (introspectionCacheBytes), not by a count.

// introEntry is one cached introspection answer, or a refusal, held in the cache's own node.
// Entries are immutable: results share their text.
type introEntry struct {
	// text is the start of the packed answer (jose.PackedAt), nil for a refusal. Its tag is the
	// EntityKind of the result, with tagAud when the answer has "aud" (even empty); 0 is an
	// answer whose claims did not fit the compact form, read again on a hit
	// (introspector.unpack).
	text   *byte
	reject *ValidationError // non-nil: the token is refused
	until  time.Time        // reused until then
}

// introNodeExtra is what the cache's node holds for an introEntry beyond the two pointers that
// cache.Overhead counts.
const introNodeExtra = unsafe.Sizeof(introEntry{}) - 2*unsafe.Sizeof(uintptr(0))

// tagAud, in the tag of a packed answer, says that the answer has "aud".
const tagAud = 1 << 8

// maxSearchedAud is how many values of "aud" packAnswer looks for in the answer; the others are
// kept after it.
const maxSearchedAud = 4

// packAnswer packs cl, the claims of the result of the answer body (introspector.claims), with
// kind as the tag. Strings that are text of body are kept as spans of it, found wherever the
// same bytes are; only the first maxSearchedAud values of aud are looked for, so that an answer
// of many values costs no more than a few passes over it. An answer whose claims do not fit the
// compact form is packed alone, with tag 0.
func packAnswer(body string, cl *jose.Claims, kind EntityKind) jose.Packed {
	find := func(s string) string {
		if i := strings.Index(body, s); s != "" && i >= 0 {
			return body[i : i+len(s)]
		}
		return s
	}
	cl.Sub, cl.ClientID, cl.Scope = find(cl.Sub), find(cl.ClientID), find(cl.Scope)
	cl.Username, cl.Role, cl.Acr = find(cl.Username), find(cl.Role), find(cl.Acr)
	if len(cl.Aud) > 0 {
		cl.Aud = append([]string(nil), cl.Aud...) // not the answer's own slice
		for i := range min(len(cl.Aud), maxSearchedAud) {
			cl.Aud[i] = find(cl.Aud[i])
		}
	}
	tag := uint16(kind)
	if cl.Aud != nil {
		tag |= tagAud
	}
	if p := jose.Pack(body, cl, tag); p.Compact() {
		return p
	}
	return jose.PackPayload(body)
}

// unpack sets cl to the claims of the result of the packed answer p and returns the kind of its
// entity; cl.Aud is appended to aud. An answer packed alone is read again. It reports false only
// if that fails, which it cannot for an answer that was read once.
func (in *introspector) unpack(p jose.Packed, cl *jose.Claims, aud []string) (EntityKind, bool) {
	if tag := p.Tag(); tag != 0 {
		p.Unpack(cl, nil)
		if tag&tagAud != 0 {
			cl.Aud = present(p.Aud(aud))
		}
		return EntityKind(tag &^ tagAud), true
	}
	body := []byte(p.Payload())
	res, err := parseIntrospection(body)
	if err != nil {
		return 0, false
	}
	res.Raw = body
	var kind EntityKind
	*cl, kind = in.claims(res)
	if cl.Aud != nil {
		cl.Aud = present(append(aud, cl.Aud...))
	}
	return kind, true
}

// present returns list, or an empty list (not nil) when it has no values: the answer had the
// member.
func present(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// introEntryCost is the memory an entry holds: the cache's overhead (its node holds the entry),
// the packed answer rounded up to 32 bytes (the allocator's size classes near 300 bytes), and a
// refusal's error.
func introEntryCost(e introEntry) uint32 {
	n := cache.Overhead + introNodeExtra + uintptr((jose.PackedAt(e.text).Bytes()+31)&^31)
	if r := e.reject; r != nil {
		n += unsafe.Sizeof(*r) + uintptr(len(r.detail))
		if _, ok := r.Err.(*TokenExpiredError); ok {
			n += unsafe.Sizeof(TokenExpiredError{})
		}
	}
	return uint32(n)
}
