package onesoidc

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ones-now/onesoidc/onesoidctest"
)

// TestNestedJSONDepthIsBounded: a signed payload or header whose extra member nests arrays or
// objects deeper than 32 levels (up to 20,000, within the 64 KiB token bound) is refused as
// malformed without exhausting the stack; 31 levels of a claim the validator does not read are
// accepted and decode with Claims.
func TestNestedJSONDepthIsBounded(t *testing.T) {
	t.Parallel()
	idp := onesoidctest.NewInMemory()
	c := newValidationClient(t, idp)
	k := idp.SigningKey()
	header := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"JWT"`, k.Algorithm, k.KeyID)
	claims, _ := json.Marshal(idp.Claims(testClientID, testSubject))
	payload := func(extra string) string { return string(claims[:len(claims)-1]) + `,"x":` + extra + `}` }
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	for name, tok := range map[string]string{
		"arrays 33":         signRaw(t, idp, header+"}", payload(nest("[", "]", 33))),
		"objects 33":        signRaw(t, idp, header+"}", payload(nest(`{"a":`, "}", 33))),
		"arrays 20000":      signRaw(t, idp, header+"}", payload(nest("[", "]", 20000))),
		"objects 5000":      signRaw(t, idp, header+"}", payload(nest(`{"a":`, "}", 5000))),
		"header arrays 300": signRaw(t, idp, header+`,"x":`+nest("[", "]", 300)+"}", string(claims)),
	} {
		res, err := c.ValidateToken(t.Context(), tok)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantReject(t, res, err, ErrMalformedToken, tok)
	}
	res := wantAccept(t)(c.ValidateToken(t.Context(), signRaw(t, idp, header+"}", payload(nest("[", "]", 31)))))
	var v struct{ X any }
	if err := res.Claims(&v); err != nil || v.X == nil {
		t.Errorf("Claims of 31 levels: %v, %v", v, err)
	}
}
