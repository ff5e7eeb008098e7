package onesoidc

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for the provider's answers: the discovery document, the JWK Set, token responses
// and backchannel answers. Seed corpora live in testdata/fuzz/<Name>/. Each checks that nothing
// panics, that an answer is either refused with a typed error or accepted whole, and that what is
// accepted keeps the rules the parser promises.

const fuzzIssuer = "https://idp.example/oidc"

func fuzzResponse(body []byte) *response {
	return &response{op: "fuzz", url: "https://idp.example/oidc/x", status: 200, body: body}
}

// FuzzDiscoveryDocument: an accepted document names the issuer exactly and only https
// endpoints; a refused one is a *ConfigError or an *HTTPError.
func FuzzDiscoveryDocument(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		meta, err := parseMetadata(fuzzResponse(body), fuzzIssuer)
		if err != nil {
			if meta != nil || !(errors.As(err, new(*ConfigError)) || errors.As(err, new(*HTTPError))) {
				t.Fatalf("meta %v with error %T %v", meta, err, err)
			}
			return
		}
		if meta.Issuer != fuzzIssuer || meta.TokenEndpoint == "" || meta.JWKSURI == "" {
			t.Fatalf("accepted %+v", meta)
		}
		for _, e := range []string{meta.TokenEndpoint, meta.JWKSURI, meta.BackchannelAuthenticationEndpoint, meta.DeviceAuthorizationEndpoint,
			meta.IntrospectionEndpoint, meta.RevocationEndpoint} {
			if u, err := url.Parse(e); e != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
				t.Fatalf("accepted endpoint %q", e)
			}
		}
	})
}

// FuzzJWKS: an accepted set has 1 to 100 usable keys, each of exactly one kind, and is found
// again by kid.
func FuzzJWKS(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		set, _, err := parseJWKS(body, nil)
		if (set == nil) == (err == nil) {
			t.Fatalf("set %v with error %v", set, err)
		}
		if err != nil {
			return
		}
		if len(set.keys) == 0 || len(set.keys) > maxJWKSKeys {
			t.Fatalf("%d keys accepted", len(set.keys))
		}
		for _, k := range set.keys {
			kinds := 0
			for _, has := range []bool{k.RSA != nil, k.EC != nil, k.Ed != nil} {
				if has {
					kinds++
				}
			}
			if kinds != 1 || (k.RSA != nil && k.RSA.N.BitLen() < minRSAKeyBits) {
				t.Fatalf("unusable key accepted: %+v", k)
			}
			if k.hasKid && len(set.byKid[k.kid]) == 0 {
				t.Fatalf("key %q not indexed", k.kid)
			}
		}
	})
}

// FuzzTokenResponse: an accepted token response has an access token, the Bearer type and an
// expiry of 1 s to 68 years from now.
func FuzzTokenResponse(f *testing.F) {
	c := &OpenIDConnectClient{now: time.Now}
	f.Fuzz(func(t *testing.T, body []byte) {
		now := time.Now()
		tok, tr, err := c.parseTokenResponse(fuzzResponse(body), "openid")
		if err != nil {
			if tok != nil || tr != nil || !errors.As(err, new(*HTTPError)) || !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("token %v with error %T %v", tok, err, err)
			}
			return
		}
		if tok.AccessToken == "" || tok.TokenType != "Bearer" || !tok.Expiry.After(now) || tok.Expiry.Sub(now) > 69*365*24*time.Hour {
			t.Fatalf("accepted %+v", tok)
		}
		if tr.Scope == "" {
			t.Fatalf("scope not defaulted to the requested one")
		}
	})
}

// FuzzBackchannelAnswer: an accepted acknowledgement has an auth_req_id of 22 to 1024 visible
// ASCII characters, expires_in of 1 s to 24 h and an interval of 1 s to 5 minutes.
func FuzzBackchannelAnswer(f *testing.F) {
	c := &OpenIDConnectClient{now: time.Now}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := c.parseBackchannelAnswer(fuzzResponse(body))
		if err != nil {
			if out != nil || !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("answer %v with error %T %v", out, err, err)
			}
			return
		}
		if checkAuthReqID(out.AuthReqID) != nil || strings.TrimSpace(out.AuthReqID) != out.AuthReqID {
			t.Fatalf("accepted auth_req_id %q", out.AuthReqID)
		}
		if out.ExpiresIn < time.Second || out.ExpiresIn > maxCIBAExpiresIn || out.Interval < time.Second || out.Interval > maxCIBAInterval {
			t.Fatalf("accepted %+v", out)
		}
	})
}
