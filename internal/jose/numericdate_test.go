package jose

import (
	"math"
	"strconv"
	"testing"
)

// TestTV37ParseClaimsNumericDateRange: exp, nbf, iat and auth_time are NumericDates within
// 0 … 253402300799 (year 9999), fractions allowed (RFC 7519 §2); anything else is refused as a
// bad claim naming it, never clamped.
func TestTV37ParseClaimsNumericDateRange(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"exp", "nbf", "iat", "auth_time"} {
		for _, tc := range []struct {
			value string
			ok    bool
		}{
			{"0", true}, {"1700000000", true}, {"1700000000.5", true}, {"253402300799", true}, {"-0", true},
			{"253402300799.5", false}, {"253402300800", false}, {"1.8e12", false}, {"1e300", false},
			{"9223372036854775808", false}, {"-1", false}, {"-9223372036854775808", false}, {"-0.5", false},
		} {
			var cl Claims
			err := ParseClaims(`{"`+name+`":`+tc.value+`}`, &cl)
			switch {
			case tc.ok && err != nil:
				t.Errorf("%s %s refused: %v", name, tc.value, err)
			case !tc.ok && (err == nil || err.Kind != BadClaim || err.Name != name):
				t.Errorf("%s %s: %v, want a BadClaim naming %s", name, tc.value, err, name)
			}
		}
	}
	var cl Claims
	if err := ParseClaims(`{"exp":1700000000.25}`, &cl); err != nil || cl.Exp != 1700000000.25 {
		t.Errorf("exp 1700000000.25: %v, %v", cl.Exp, err)
	}
}

func TestValidNumericDate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f    float64
		want bool
	}{{0, true}, {MaxNumericDate, true}, {MaxNumericDate + 1, false}, {-1e-9, false}, {1e300, false},
		{math.NaN(), false}, {math.Inf(1), false}, {math.Inf(-1), false}} {
		if got := ValidNumericDate(tc.f); got != tc.want {
			t.Errorf("ValidNumericDate(%s) = %v", strconv.FormatFloat(tc.f, 'g', -1, 64), got)
		}
	}
}
