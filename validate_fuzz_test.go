package onesoidc

import (
	"context"
	"testing"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
	"github.com/ones-now/onesoidc/internal/mockidp"
)

// staticValidator is a validator with a pre-loaded key set that never fetches: a miss falls in
// the cooldown of a refetch that "just happened".
func staticValidator(t testing.TB, idp *mockidp.IdP) *validator {
	t.Helper()
	set, _, err := parseJWKS(idp.JWKS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	set.refreshAt = time.Now().Add(24 * time.Hour)
	keys := &jwksCache{now: time.Now, cooldown: 24 * time.Hour, maxAge: 24 * time.Hour, lastMiss: time.Now()}
	keys.set.Store(set)
	return &validator{issuer: idp.Issuer, clientID: testClientID, leeway: time.Minute, now: time.Now, algs: jose.AllAlgs,
		keys: keys, cache: newTokenCache(1 << 20)}
}

// FuzzValidateToken feeds arbitrary strings to ValidateToken's path: nothing may panic, and
// exactly one of a result and an error comes back. The fuzzer cannot forge a signature of the
// validator's key, so it reaches the splitting, header parsing, decoding, key lookup and
// signature check, but never the claim checks after the signature (only the seed token gets
// there). The parsers themselves are fuzzed in internal/jose (FuzzParseJWS, FuzzParseClaims).
func FuzzValidateToken(f *testing.F) {
	idp := mockidp.NewInMemory()
	idp.UseKey(mockidp.NewKey("ES256"))
	good, err := mockidp.MintWith(idp.SigningKey(), nil, idp.Claims(testClientID, testSubject))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range mockidp.FuzzSeeds(good) {
		f.Add(s)
	}
	v := staticValidator(f, idp)
	f.Fuzz(func(t *testing.T, raw string) {
		res, err := v.validate(context.Background(), raw, modeAny, nil)
		if (res == nil) == (err == nil) {
			t.Fatalf("result %v with error %v", res, err)
		}
	})
}
