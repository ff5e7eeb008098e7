package onesoidc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ones-now/onesoidc/internal/jose"
)

// Every JSON answer of the provider is read by its exact member names. RFC 8259 §4 makes names
// case-sensitive and asks that those of one object be unique, while encoding/json fills a field
// from any member whose name equals its tag without regard to case, and from the last of
// duplicates: {"ACCESS_TOKEN":…} was read as access_token, {"issuer":a,"Issuer":b} as issuer b,
// {"error":"authorization_pending","Error":"access_denied"} as access_denied. checkMembers
// refuses such answers; members under other names stay ignored, as the specifications ask (RFC
// 6749 §5.1, RFC 8414 §2, RFC 7517 §4). It runs where an answer arrives from the network (a
// token, discovery or JWKS fetch), never on the validation of a token.

// memberError refuses a provider answer whose member names are ambiguous (checkMembers). It
// matches ErrInvalidResponse, so that the refusal of an error answer (RFC 6749 §5.2), which is
// not a successful answer, matches it too.
type memberError struct{ msg string }

func (e *memberError) Error() string { return e.msg }

// Is reports whether target is ErrInvalidResponse.
func (e *memberError) Is(target error) bool { return target == ErrInvalidResponse }

// checkMembers refuses body, a JSON answer of the provider, unless it is one JSON object in
// UTF-8 in which no member name comes twice, also under case folding, and none equals one of
// read (the names this package reads from it) only without regard to case (jose.CheckMembers).
// The refusal quotes the member's name only when it is one of read, compared without regard to
// case, so that a provider's own text (a token sent as a member name) never reaches an error or a
// log; it never quotes a value. As in jose.CheckMembers, a number beyond float64 (1e400) or
// nesting deeper than 32 levels anywhere in the answer is refused too.
func checkMembers(body []byte, read []string) error {
	jerr := jose.CheckMembers(string(body), read...)
	if jerr == nil {
		return nil
	}
	for _, m := range read {
		if strings.EqualFold(jerr.Name, m) {
			return &memberError{fmt.Sprintf("member %q: %s", sanitize(jerr.Name, 100), jerr.Msg)}
		}
	}
	return &memberError{jerr.Msg}
}

// decode reads the JSON answer r into v, a pointer to a struct whose fields name the members
// read (jose.JSONNames), and refuses it with an *HTTPError whose reason is what (ErrInvalidResponse)
// when encoding/json cannot, or when checkMembers refuses it for those names. JSON null has no
// members to mistake: it decodes to nothing, and the caller finds the members it requires
// missing.
func (r *response) decode(what string, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return r.invalid(what, err)
	}
	if err := checkDecoded(r.body, v); err != nil {
		return r.invalid(what, err)
	}
	return nil
}

// checkDecoded is checkMembers for body, which encoding/json decoded into v (a pointer to a
// struct), with the names of v's fields; JSON null passes (see decode).
func checkDecoded(body []byte, v any) error {
	if string(bytes.TrimSpace(body)) == "null" {
		return nil
	}
	return checkMembers(body, jose.JSONNames(v))
}
