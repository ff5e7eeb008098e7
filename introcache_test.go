package onesoidc

import (
	"testing"
)

// mustParseIntrospection reads body as IntrospectToken does.
func mustParseIntrospection(t testing.TB, body []byte) *IntrospectionResult {
	t.Helper()
	res, err := parseIntrospection(body)
	if err != nil {
		t.Fatal(err)
	}
	res.Raw = body
	return res
}
