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

// numericDate converts a NumericDate to a time. Every NumericDate it gets was checked to lie
// within 0 … 253402300799 where it was decoded (jose.ParseClaims, NumericDate.UnmarshalJSON), so
// the time is the token's own value: nothing is clamped.
func numericDate(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// unixSeconds returns t as fractional Unix seconds.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// skewHint is added to time errors off by less than 15 minutes beyond the leeway, which is more
// often a wrong clock than a stale token.
func skewHint(off float64) string {
	if off < 15*60 {
		return " (clock skew?)"
	}
	return ""
}

// secondsText formats a span of seconds for an error message: as a time.Duration rounded to the
// second, or in days when it is too long for one (NumericDates reach year 9999), so that no span
// overflows into a negative text.
func secondsText(f float64) string {
	if f < 0 {
		return "-" + secondsText(-f)
	}
	if f >= float64(math.MaxInt64/int64(time.Second)) || math.IsNaN(f) {
		return fmt.Sprintf("%.0f days", math.Floor(f/86400))
	}
	return fmt.Sprint(time.Duration(f * float64(time.Second)).Round(time.Second))
}
