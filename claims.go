package onesoidc

import (
	"fmt"
	"math"
	"time"

	"github.com/ones-now/onesoidc/internal/jose"
)

// authReqIDClaim binds a CIBA ID token to its authentication request (CIBA Core §10.1.1).
const authReqIDClaim = jose.AuthReqIDClaim

// maxTokenSize is the longest token accepted; validate refuses longer input before the cache
// lookup and any parsing.
const maxTokenSize = 64 << 10

// maxSubjectLength is the longest "sub" accepted (OpenID Connect Core 1.0 §2: at most 255 ASCII
// characters).
const maxSubjectLength = 255

// numericDate converts a NumericDate to a time, clamping values no time.Time can hold.
func numericDate(f float64) time.Time {
	const limit = 1 << 62 / int64(time.Second) // far beyond any real date, still safe in UnixNano
	switch {
	case f > float64(limit):
		f = float64(limit)
	case f < -float64(limit):
		f = -float64(limit)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// unixSeconds returns t as fractional Unix seconds.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// skewHint is added to time errors off by less than 15 minutes beyond the leeway, which is more
// often a wrong clock than a stale token (SECURITY-CASES HF-18).
func skewHint(off float64) string {
	if off < 15*60 {
		return " (clock skew?)"
	}
	return ""
}

func secondsText(f float64) string {
	return fmt.Sprint(time.Duration(f * float64(time.Second)).Round(time.Second))
}
