package jose

import "testing"

// TestIsJWTShapedAndIsB64Token: which tokens go the JWT way, which are opaque bearer tokens.
func TestIsJWTShapedAndIsB64Token(t *testing.T) {
	t.Parallel()
	cases := []struct {
		token     string
		jwt, b64t bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", true, true},
		{"eyJhbGciOiJSUzI1NiJ9.e30", true, true}, // eyJ with a dot: a broken JWS
		{"eyJ.a.b.c.d", true, true},              // a JWE
		{"a.b.c", true, true},                    // three segments
		{"..", true, true},                       // three empty segments
		{"eyJhbGciOiJSUzI1NiJ9", false, true},    // one segment: opaque
		{"NzQ2ZjY1NmU2ZjcwNjE3MTc1NjU0ZjQ0NzQ2ZjZiNjU2ZQ", false, true},
		{"ya29.a0AfH6SMB", false, true}, // one dot, not eyJ: opaque
		{"abc==", false, true},
		{"", false, false},
		{"=abc", false, false},
		{"ab c", false, false},
		{"abc=d", false, false},
		{"é", false, false},
	}
	for _, c := range cases {
		if got := IsJWTShaped(c.token); got != c.jwt {
			t.Errorf("IsJWTShaped(%q) = %v, want %v", c.token, got, c.jwt)
		}
		if got := IsB64Token(c.token); got != c.b64t {
			t.Errorf("IsB64Token(%q) = %v, want %v", c.token, got, c.b64t)
		}
	}
}
